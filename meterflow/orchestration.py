"""Chaining steps: each step runs as a child run of the pipeline's run, or a finished run with the
same inputs is reused.

A child is created here (with its entry point, parent, descriptive name and code version) only
after its options have been validated, then its entry script runs in a subprocess with an
explicit environment: the child run's id, the tracking URI, and whatever the caller passes (the
pipeline's local MongoDB server). Nothing is handed over by changing this process's environment.
MLflow is reached only through ``meterflow.tracking``.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from meterflow import tracking
from meterflow.config import Options
from meterflow.entrypoints import ENTRY_POINTS, command_args
from meterflow.errors import MeterflowError

log = logging.getLogger(__name__)

CODE_GLOBS = ("meterflow/**/*.py", "steps/*.py", "*.py", "MLproject")
TAG_CODE_VERSION = "meterflow.code_version"
MEMORY_SHARE = 0.8  # of the available memory that steps running at the same time may fill
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
# Variables a child must not inherit: the child's run and experiment are passed explicitly.
_RUN_VARIABLES = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Options that make a child run's name tell it apart from its siblings in the MLflow UI.
_NAME_OPTIONS = {
    "harmonization": ("resolution", "normalization"),
    "clustering": ("model", "distance_metric", "number_of_clusters"),
    "forecasting": ("model", "horizon"),
    "anomaly": ("detector",),
}


def _die_with_parent() -> None:
    """In a child step's process: receive SIGTERM when the pipeline dies, also by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``), so no step runs on for a pipeline that is gone."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def code_version(project_dir: Path) -> str:
    """Hash of the project's code, so a code change never reuses old runs."""
    h = hashlib.sha256()
    files = sorted({p for g in CODE_GLOBS for p in project_dir.glob(g) if p.is_file()})
    for p in files:
        h.update(str(p.relative_to(project_dir)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def run_name(entry_point: str, options: Options) -> str:
    """A name a person can read in the runs list, e.g. ``clustering kmeans euclidean k=0``."""
    params = options.params()
    shown = [
        params[k] if k in ("model", "distance_metric", "normalization") else f"{k}={params[k]}"
        for k in _NAME_OPTIONS.get(entry_point, ())
    ]
    return " ".join([entry_point, *shown])


# Params that say where a step computes, not what: never a reason to rerun it.
EXECUTION_ONLY = ("dask_scheduler",)


def find_reusable_run(
    entry_point: str,
    params: Mapping[str, str],
    code_version: str,
    ignore: tuple[str, ...] = (),
    *,
    runs: list | None = None,
) -> str | None:
    """A finished run of ``entry_point`` with the same params and code version, if any.

    Params are compared as MLflow stores them (strings, after ``Options.params``); names in
    ``ignore`` do not take part (e.g. a carry-over run that does not change the result when the
    other inputs are equal), and those in ``EXECUTION_ONLY``. ``runs``: the candidates (default:
    the current experiment's).
    """
    skip = set(ignore) | set(EXECUTION_ONLY)
    for run in tracking.finished_runs(entry_point) if runs is None else runs:
        if run.data.tags.get(TAG_CODE_VERSION) != code_version:
            continue
        logged = run.data.params
        if all(_same_param(logged.get(k), v) for k, v in params.items() if k not in skip):
            return run.info.run_id
    return None


def _same_param(logged: str | None, value: str) -> bool:
    """``mlflow run`` logs entry-point params shell-quoted (an empty string as ``''``)."""
    return logged is not None and logged in (value, shlex.quote(value))


def available_memory_mb() -> float:
    """Memory this machine can give to new processes now, MB."""
    import psutil

    return psutil.virtual_memory().available / 2**20


def memory_groups(peaks: Mapping[str, float | None], available_mb: float) -> list[list[str]]:
    """Independent steps in groups that run at the same time, in order: a step joins the
    current group while the group's last peaks (``None``: unknown, taken as 0) stay within
    ``MEMORY_SHARE`` of ``available_mb``; a step that alone exceeds it runs alone."""
    budget = MEMORY_SHARE * available_mb
    groups: list[list[str]] = []
    used = budget + 1.0  # no open group yet
    for name, peak in peaks.items():
        need = peak or 0.0
        if groups and used + need <= budget:
            groups[-1].append(name)
            used += need
        else:
            groups.append([name])
            used = need
    if len(groups) > 1:
        known = ", ".join(f"{n} {p / 1024:.1f} GB" for n, p in peaks.items() if p)
        log.info(
            "last peaks %s; %.1f GB available: steps run in turn as %s",
            *(known, available_mb / 1024, " then ".join("+".join(g) for g in groups)),
        )
    return groups


def native_threads(n_processes: int) -> dict[str, str]:
    """Thread-pool sizes of the native libraries (BLAS, OpenMP) for each of ``n_processes``
    steps that run at the same time: the cores shared out, at least one each; variables the
    user set are kept. On 2 cores, a second BLAS thread that waits for a busy core spins: the
    forecasting step's DSHW fits took 7.0 CPU-s instead of 1.2 for 20 series."""
    per_process = str(max(1, (os.cpu_count() or 1) // max(1, n_processes)))
    return {var: per_process for var in NATIVE_THREAD_VARIABLES if var not in os.environ}


@dataclass(frozen=True)
class StepRunner:
    """Runs the pipeline's steps as children of the run ``parent_run_id``, in ``project_dir``."""

    project_dir: Path
    reuse: bool
    parent_run_id: str
    experiment_id: str
    child_env: Mapping[str, str] = field(default_factory=dict)  # e.g. MONGODB_URI

    def run(
        self, entry_point: str, options: Options, *, ignore: tuple[str, ...] = ()
    ) -> tuple[str, bool]:
        """Run one step; return (run id, reused)."""
        version = code_version(self.project_dir)
        if self.reuse:
            found = self._reusable(entry_point, options, version, ignore)
            if found:
                log.info("%s: reusing finished run %s (same inputs)", entry_point, found)
                tracking.tag_run(self.parent_run_id, {f"meterflow.step.{entry_point}": found})
                return found, True
        run_id = self._start_child(entry_point, options, version)
        tracking.tag_run(self.parent_run_id, {f"meterflow.step.{entry_point}": run_id})
        return run_id, False

    def run_together(self, steps: Mapping[str, Options]) -> dict[str, tuple[str, bool]]:
        """Run independent steps at the same time (one process each) as far as the memory
        available holds their last peaks (``memory_groups``); all are waited for, then the
        first failure, if any, is raised."""
        peaks = {name: self._last_peak_mb(name) for name in steps}
        results: dict[str, tuple[str, bool]] = {}
        for group in memory_groups(peaks, available_memory_mb()):
            runner = replace(self, child_env={**self.child_env, **native_threads(len(group))})
            with ThreadPoolExecutor(max_workers=len(group)) as pool:
                futures = {name: pool.submit(runner.run, name, steps[name]) for name in group}
            failed = [f.exception() for f in futures.values() if f.exception() is not None]
            if failed:
                raise failed[0]
            results |= {name: future.result() for name, future in futures.items()}
        return results

    def _last_peak_mb(self, entry_point: str) -> float | None:
        """The peak memory of the step's newest finished run (None: never measured)."""
        runs = tracking.finished_runs(entry_point, max_results=1, experiment_id=self.experiment_id)
        return runs[0].data.metrics.get(tracking.PEAK_RSS_METRIC) if runs else None

    def _reusable(
        self, entry_point: str, options: Options, version: str, ignore: tuple[str, ...]
    ) -> str | None:
        runs = tracking.finished_runs(entry_point, experiment_id=self.experiment_id)
        return find_reusable_run(entry_point, options.params(), version, ignore, runs=runs)

    def _start_child(self, entry_point: str, options: Options, version: str) -> str:
        run_id = tracking.create_child_run(
            entry_point,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            run_name=run_name(entry_point, options),
            source=str(self.project_dir),
            tags={TAG_CODE_VERSION: version},
        )
        script = ENTRY_POINTS[entry_point].script
        command = [sys.executable, script, *command_args(options)]
        env = self._environment(run_id, self.experiment_id)
        log.info("%s: run %s started", entry_point, run_id)
        returncode = subprocess.call(
            command, cwd=self.project_dir, env=env, preexec_fn=_die_with_parent
        )
        if returncode != 0:
            tracking.mark_failed(run_id)
            reason = tracking.run_tag(run_id, tracking.TAG_FAILURE) or "see its log above"
            raise MeterflowError(f"step {entry_point} failed (run {run_id}): {reason}")
        return run_id

    def _environment(self, run_id: str, experiment_id: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _RUN_VARIABLES}
        env.update(self.child_env)
        env.update(
            MLFLOW_RUN_ID=run_id,
            MLFLOW_EXPERIMENT_ID=experiment_id,
            MLFLOW_TRACKING_URI=tracking.tracking_uri(),
        )
        return env
