"""Runs left RUNNING by a process that is gone, found and ended by the next pipeline run.

A pipeline killed while the tracking server was unreachable cannot end its runs, and its lock was
released all the same (the kernel releases it). The next ``main``/``retrain``, holding the lock,
therefore ends every run of the experiment that is RUNNING although nothing runs it: a run
tagged with a process of this host that no longer exists, and any other pipeline run or pipeline
child (only one pipeline runs at a time). A step started on its own (``mlflow run -e``) on
another host is left alone: nothing here can tell whether it still runs.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from meterflow import tracking
from meterflow.processes import process_alive

log = logging.getLogger(__name__)

PIPELINE_ENTRY_POINTS = ("main", "retrain")


@dataclass(frozen=True)
class OpenRun:
    """What decides whether a RUNNING run is abandoned."""

    run_id: str
    entry_point: str
    parent_entry_point: str | None  # the entry point of its parent run, if it has one
    pid: int | None
    host: str | None


def abandonment(
    run: OpenRun, *, host: str, alive: Callable[[int], bool] = process_alive
) -> str | None:
    """Why ``run`` is abandoned (one line), or None if it may still be running. The caller holds
    the pipeline lock, so no other pipeline run is alive."""
    if run.pid is not None and run.host == host:
        return None if alive(run.pid) else f"its process {run.pid} on {host} is gone"
    if run.entry_point in PIPELINE_ENTRY_POINTS:
        return "its pipeline process is gone (the pipeline lock was free)"
    if run.parent_entry_point in PIPELINE_ENTRY_POINTS:
        return "the pipeline that started it is gone (the pipeline lock was free)"
    return None


def open_runs(experiment_id: str, exclude: Iterable[str]) -> list[OpenRun]:
    """The experiment's RUNNING runs except ``exclude``, as :class:`OpenRun`."""
    skip = set(exclude)
    found = [r for r in tracking.running_runs(experiment_id) if r.info.run_id not in skip]
    entry = {r.info.run_id: r.data.tags.get(tracking.MLFLOW_PROJECT_ENTRY_POINT) for r in found}
    runs = []
    for r in found:
        tags = r.data.tags
        parent = tags.get(tracking.MLFLOW_PARENT_RUN_ID)
        parent_entry = entry.get(parent) if parent in entry else _entry_point_of(parent)
        pid = tags.get(tracking.TAG_PID)
        runs.append(
            OpenRun(
                run_id=r.info.run_id,
                entry_point=entry[r.info.run_id] or "",
                parent_entry_point=parent_entry,
                pid=int(pid) if pid and pid.isdigit() else None,
                host=tags.get(tracking.TAG_HOST),
            )
        )
    return runs


def _entry_point_of(run_id: str | None) -> str | None:
    return tracking.run_tag(run_id, tracking.MLFLOW_PROJECT_ENTRY_POINT) if run_id else None


def end_abandoned_runs(experiment_id: str, current_run_id: str) -> int:
    """End every abandoned run of the experiment as KILLED with its reason; how many."""
    host = socket.gethostname()
    ended = 0
    for run in open_runs(experiment_id, exclude=(current_run_id,)):
        reason = abandonment(run, host=host)
        if reason is None:
            continue
        reason = f"{run.entry_point} run left RUNNING: {reason}; ended by run {current_run_id}"
        tracking.end_abandoned(run.run_id, reason)
        log.warning("run %s: %s", run.run_id, reason)
        ended += 1
    return ended
