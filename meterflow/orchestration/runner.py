"""Running the steps of the table (``meterflow.orchestration.steps``): each step runs as a child
run of the pipeline's run, or a finished run with the same inputs is reused (``reuse``); the
lanes of a stage run in threads side by side, a memory-bound stage's as far as memory allows.

A child is created here (with its entry point, parent, descriptive name, code version and reuse
key) only after its options have been validated, then its entry script runs in a subprocess with an
explicit environment: the child run's id, the tracking URI, and whatever the caller passes (the
pipeline's local MongoDB server). Nothing is handed over by changing this process's environment.
MLflow is reached only through ``meterflow.tracking``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from meterflow import entrypoints, tracking
from meterflow.entrypoints import command_args
from meterflow.errors import MeterflowError
from meterflow.orchestration.reuse import (
    TAG_CODE_VERSION,
    TAG_REUSE_KEY,
    code_version,
    find_reusable_run,
    reuse_key,
)
from meterflow.orchestration.steps import Lane, Step
from meterflow.orchestration.story import FAILED, REUSED, RUN, StepOutcome
from meterflow.settings import Options

log = logging.getLogger(__name__)

MEMORY_SHARE = 0.8  # of the available memory that steps running at the same time may fill
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
# Variables a child must not inherit: the child's run and experiment are passed explicitly.
_RUN_VARIABLES = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
Steps = dict[str, tuple[str, bool]]  # entry point -> (run id, reused)
Prepare = Callable[[Step, Steps], Options]  # a step's options, from the lane's finished steps
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


def run_name(entry_point: str, options: Options) -> str:
    """A name a person can read in the runs list, e.g. ``clustering kmeans euclidean k=auto``
    (the clustering step renames its run to the k it chose when it finishes)."""
    params = options.params()
    return " ".join(
        [entry_point, *(_shown(k, params[k]) for k in _NAME_OPTIONS.get(entry_point, ()))]
    )


def _shown(option: str, value: object) -> str:
    if option in ("model", "distance_metric", "normalization"):
        return str(value)
    if option == "number_of_clusters":
        return f"k={value if str(value) != '0' else 'auto'}"
    return f"{option}={value}"


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
    # what became of each step this night (run, reused, failed), shared by the lanes' threads
    record: dict[str, StepOutcome] = field(default_factory=dict)

    def run(
        self, entry_point: str, options: Options, *, ignore: tuple[str, ...] = ()
    ) -> tuple[str, bool]:
        """Run one step; return (run id, reused)."""
        started = time.monotonic()
        version = code_version(self.project_dir)
        key = reuse_key(entry_point, options.params(), version, ignore)
        if self.reuse:
            found = find_reusable_run(key, self.experiment_id)
            if found:
                log.info("%s: reusing finished run %s (same inputs)", entry_point, found)
                tracking.tag_run(self.parent_run_id, {f"meterflow.step.{entry_point}": found})
                self._record(entry_point, REUSED, found, started)
                return found, True
        run_id = self._start_child(
            entry_point, options, {TAG_CODE_VERSION: version, TAG_REUSE_KEY: key}, started
        )
        tracking.tag_run(self.parent_run_id, {f"meterflow.step.{entry_point}": run_id})
        self._record(entry_point, RUN, run_id, started)
        return run_id, False

    def _record(
        self, entry_point: str, status: str, run_id: str, started: float, reason: str = ""
    ) -> None:
        took = time.monotonic() - started
        self.record[entry_point] = StepOutcome(entry_point, status, run_id, took, reason)

    def run_stage(self, lanes: Sequence[Lane], prepare: Prepare) -> Steps:
        """Run one stage of the table: its lanes at the same time (one thread each), the steps
        of a lane in order, each one's options prepared once the steps before it in its lane
        finished (``prepare(step, finished)``). All lanes are waited for, then the first
        failure, if any, is raised."""
        results: Steps = {}
        for group, runner in self._groups(lanes):
            with ThreadPoolExecutor(max_workers=len(group)) as pool:
                futures = [pool.submit(runner._run_lane, lane, prepare) for lane in group]
            failed = [f.exception() for f in futures if f.exception() is not None]
            if failed:
                raise failed[0]
            for future in futures:
                results |= future.result()
        return results

    def _run_lane(self, lane: Lane, prepare: Prepare) -> Steps:
        finished: Steps = {}
        for step in lane:
            try:
                options = prepare(step, finished)
            except MeterflowError as e:  # e.g. an input the step needs is missing
                self._record(step.name, FAILED, "", time.monotonic(), str(e))
                raise
            finished[step.name] = self.run(step.name, options, ignore=step.reuse_ignores)
        return finished

    def _groups(self, lanes: Sequence[Lane]) -> list[tuple[list[Lane], StepRunner]]:
        """The lanes in groups that run at the same time, each with its runner: all at once,
        or for a memory-bound stage as far as the memory available holds their last peaks
        (``memory_groups``), the cores shared out among the group's native thread pools."""
        if not any(step.memory_bound for lane in lanes for step in lane):
            return [(list(lanes), self)]
        by_label = {">".join(step.name for step in lane): lane for lane in lanes}
        peaks = {label: self._lane_peak_mb(lane) for label, lane in by_label.items()}
        return [
            (
                [by_label[label] for label in group],
                replace(self, child_env={**self.child_env, **native_threads(len(group))}),
            )
            for group in memory_groups(peaks, available_memory_mb())
        ]

    def _lane_peak_mb(self, lane: Lane) -> float | None:
        """The highest last peak of the lane's steps (None: none measured)."""
        known = [p for p in (self._last_peak_mb(step.name) for step in lane) if p is not None]
        return max(known, default=None)

    def _last_peak_mb(self, entry_point: str) -> float | None:
        """The peak memory of the step's newest finished run (None: never measured)."""
        runs = tracking.finished_runs(entry_point, max_results=1, experiment_id=self.experiment_id)
        return runs[0].data.metrics.get(tracking.PEAK_RSS_METRIC) if runs else None

    def _start_child(
        self, entry_point: str, options: Options, tags: Mapping[str, str], started: float
    ) -> str:
        run_id = tracking.create_child_run(
            entry_point,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            run_name=run_name(entry_point, options),
            source=str(self.project_dir),
            tags=tags,
        )
        script = entrypoints.entry_point(entry_point).script
        command = [sys.executable, script, *command_args(options)]
        env = self._environment(run_id, self.experiment_id)
        log.info("%s: run %s started", entry_point, run_id)
        returncode = subprocess.call(
            command, cwd=self.project_dir, env=env, preexec_fn=_die_with_parent
        )
        if returncode != 0:
            tracking.mark_failed(run_id)
            reason = tracking.run_tag(run_id, tracking.TAG_FAILURE) or (
                f"exit code {returncode}, no reason recorded (see the step's log)"
            )
            self._record(entry_point, FAILED, run_id, started, reason)
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
