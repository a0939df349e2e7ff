"""A small record of the pipeline's state beside the data, to recognise a tracking store that
lost it.

The data folder and the tracking store go together: the store holds the watermarks (tags of the
loads), the reusable runs and the champions. A store that is empty, replaced or restored from an
old copy would make the next nightly run start over silently: reload every document, register
version-1 champions. After each finished pipeline run ``state.json`` (in the data folder) records
that run, its experiment and the champion versions; before the next run
:func:`missing_from_store` says what of it the store does not know, and the run is refused unless
the user starts over knowingly (``start_over=true``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meterflow.errors import ConfigError

STATE_FILE = "state.json"
FORMAT = 1


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_FILE


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The record in ``data_dir``, None if there is none; ConfigError if it is unreadable."""
    path = state_path(data_dir)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"state record {path} is unreadable ({type(e).__name__}); restore it, or pass "
            "-P start_over=true to start over knowingly"
        ) from None
    if not isinstance(record, dict) or not record.get("last_run_id"):
        raise ConfigError(f"state record {path} has no last run; restore it or start over")
    return record


def write_state(
    data_dir: Path,
    *,
    run_id: str,
    entry_point: str,
    experiment: str,
    champions: Mapping[str, str],
) -> Path:
    """Record a finished pipeline run (atomically: a crash leaves the old record)."""
    path = state_path(data_dir)
    record = {
        "format": FORMAT,
        "last_run_id": run_id,
        "entry_point": entry_point,
        "experiment": experiment,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "champions": dict(champions),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def missing_from_store(
    record: Mapping[str, Any],
    *,
    run_exists: Callable[[str], bool],
    champion_version: Callable[[str], str | None],
) -> str | None:
    """What of ``record`` the tracking store does not know (one line), or None if it knows it
    all: the last run, and each recorded champion (a version may have moved on, not vanished)."""
    run_id = record["last_run_id"]
    if not run_exists(run_id):
        return f"it does not know the last {record.get('entry_point', 'pipeline')} run {run_id}"
    for step, version in (record.get("champions") or {}).items():
        now = champion_version(step)
        if now is None or int(now) < int(version):
            return f"its {step} champion is {now or 'missing'}, recorded as version {version}"
    return None


def refusal(data_dir: Path, tracking_uri: str, what: str, record: Mapping[str, Any]) -> str:
    """The one-line reason a run is refused against a store that lost the state."""
    return (
        f"tracking store {tracking_uri} does not match {state_path(data_dir)}: {what} "
        f"(recorded {record.get('finished', '?')}); the store is empty, replaced or older than "
        "the data. Restore it or point MLFLOW_TRACKING_URI at the right one, or pass "
        "-P start_over=true to start over knowingly (every document reloaded, new champions)"
    )
