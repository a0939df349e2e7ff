"""When a step is reused instead of rerun: a finished run of the same entry point with the same
params (upstream run ids and source fingerprints included) and the same code version.

All three go into one reuse key, a tag of every child run the runner creates, so a reusable run
is found by one indexed search of the tracking store that sees every run of the experiment,
however many there are (``tracking.finished_run_tagged``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from meterflow import tracking

# What the code version covers: a change to any of these never reuses old runs.
CODE_GLOBS = (
    "meterflow/**/*.py",
    "steps/*.py",
    "*.py",
    "MLproject",
    "pyproject.toml",
    "constraints.txt",
)
TAG_CODE_VERSION = "meterflow.code_version"
TAG_REUSE_KEY = "meterflow.reuse_key"
# Params that say where a step computes, not what: never a reason to rerun it.
EXECUTION_ONLY = ("dask_scheduler",)


def code_version(project_dir: Path) -> str:
    """Hash of the project's code (``CODE_GLOBS``), so a code change never reuses old runs."""
    h = hashlib.sha256()
    files = sorted({p for g in CODE_GLOBS for p in project_dir.glob(g) if p.is_file()})
    for p in files:
        h.update(str(p.relative_to(project_dir)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def reuse_key(
    entry_point: str, params: Mapping[str, str], code_version: str, ignore: tuple[str, ...] = ()
) -> str:
    """The key two runs share exactly when one may stand for the other: the entry point, the
    code version and the params (as ``Options.params`` gives them) except those in ``ignore``
    (e.g. a carry-over run that does not change the result when the other inputs are equal)
    and in ``EXECUTION_ONLY``."""
    skip = set(ignore) | set(EXECUTION_ONLY)
    kept = {k: str(v) for k, v in sorted(params.items()) if k not in skip}
    text = json.dumps([entry_point, code_version, kept], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def find_reusable_run(key: str, experiment_id: str | None = None) -> str | None:
    """The newest finished run tagged with the reuse ``key`` in the experiment (default: the
    current one), searched among all its runs; None if there is none."""
    return tracking.finished_run_tagged(TAG_REUSE_KEY, key, experiment_id=experiment_id)
