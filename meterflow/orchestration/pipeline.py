"""The ``main`` and ``retrain`` entry points: chain every step as child runs of one parent run,
then promote the new models that beat their champion (``meterflow.orchestration.registry``),
and tell the night on the parent run, finished or failed: its description, the ``night_steps``
table and ``report.html`` (``meterflow.orchestration.night``).

Starts what the run needs (the local MongoDB wire-protocol server when ``MONGODB_URI`` is unset,
the demo fleet when asked) and stops it at the end. Each step is reused instead of rerun when a
finished run with the same parameters (including upstream run ids and source fingerprints) and
the same code version exists (``reuse``). The runner walks the table of steps (``steps``): their
inputs, what runs beside what, what is promoted; the children's options are the pipeline's own
options forwarded to them (``meterflow.settings.step_options``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from meterflow import tracking
from meterflow.errors import ConfigError
from meterflow.orchestration.lock import RunLock
from meterflow.orchestration.night import gather, tell
from meterflow.orchestration.preflight import check_sqlite_store, sqlite_path
from meterflow.orchestration.reconcile import end_abandoned_runs
from meterflow.orchestration.registry import promote_models
from meterflow.orchestration.runner import StepRunner, Steps
from meterflow.orchestration.state import missing_from_store, read_state, refusal, write_state
from meterflow.orchestration.steps import PROMOTED, Step, etl_runs, stages
from meterflow.redact import redact_uri
from meterflow.report.collect import RunTables
from meterflow.settings import Environment, Options, PipelineOptions, RetrainOptions, step_options
from meterflow.sources.mongo_server import LocalMongoServer

log = logging.getLogger(__name__)

LOCK_FILE = "meterflow.lock"  # in the data folder: one main/retrain at a time


@contextmanager
def mongo_uri_for_run(env: Environment) -> Iterator[str]:
    """``MONGODB_URI`` if set, else a local wire-protocol server for the duration of the run."""
    if env.mongodb_uri:
        yield env.mongodb_uri
        return
    with LocalMongoServer(env.local_mongo_path) as uri:
        yield uri


def run_pipeline(opts: PipelineOptions, env: Environment) -> str:
    """Run every step; return the parent run id. Holds the data folder's run lock throughout:
    a second ``main``/``retrain`` exits at once naming the holder."""
    project_dir = Path.cwd()
    if not (project_dir / "MLproject").is_file():
        raise ConfigError(
            f"run the pipeline from the project folder (no MLproject in {project_dir})"
        )
    tracking.configure(env)
    entry_point = "retrain" if isinstance(opts, RetrainOptions) else "main"
    env.data_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(env.data_dir / LOCK_FILE, what=entry_point) as lock:
        check_state(env, start_over=opts.start_over)
        started = time.monotonic()
        with mongo_uri_for_run(env) as mongo_uri:
            env = env.with_mongodb_uri(mongo_uri)
            if opts.demo:
                _ensure_demo(opts, env)
            with tracking.step_run(entry_point, opts) as run:
                lock.update(mlflow_run_id=run.run_id)
                run.set_tags({"mlflow.runName": f"{entry_point} {date.today():%Y-%m-%d}"})
                end_abandoned_runs(run.experiment_id, run.run_id)
                runner = StepRunner(
                    project_dir,
                    opts.reuse,
                    run.run_id,
                    run.experiment_id,
                    child_env={"MONGODB_URI": mongo_uri},
                )
                try:
                    steps = _run_steps(opts, env, runner)
                    promotion = (
                        promote_models(steps, opts.promotion_margin, run) if opts.promote else None
                    )
                except Exception as e:
                    _tell_failure(run, runner, opts, time.monotonic() - started, e)
                    raise
                _log_summary(run, steps, time.monotonic() - started)
                tables = RunTables()
                night = gather(
                    entry_point, runner, tables, promotion=promotion, promote=opts.promote,
                    duration_s=time.monotonic() - started,
                )  # fmt: skip
                tell(run, night, tables)
                _record_state(env, run.run_id, entry_point)
                return run.run_id


def _tell_failure(
    run: tracking.StepRun, runner: StepRunner, opts: PipelineOptions, took: float, e: Exception
) -> None:
    """Tell a failed night on its parent run (which step failed and why, what ran before it),
    best effort: the failure itself is what the caller reports."""
    reason = " ".join(str(e).split())[:500] or type(e).__name__
    try:
        tables = RunTables()
        night = gather(
            run.entry_point, runner, tables, promotion=None, promote=opts.promote,
            duration_s=took, failure=reason,
        )  # fmt: skip
        tell(run, night, tables)
    except Exception as told:  # the night's own failure must reach the caller, not this one
        log.warning("the failed night's story was not logged: %s: %s", type(told).__name__, told)


def check_state(env: Environment, *, start_over: bool) -> None:
    """Refuse a damaged SQLite tracking store, and a store that lost what the data folder's
    state record knows (see ``meterflow.orchestration.state``) unless ``start_over`` says to
    start over knowingly."""
    path = sqlite_path(tracking.tracking_uri())
    if path is not None:
        check_sqlite_store(path)
    record = read_state(env.data_dir) if not start_over else None
    if record is None:
        if start_over:
            log.warning("start_over: the tracking store is not checked against the state record")
        return
    missing = missing_from_store(
        record,
        run_exists=tracking.run_exists,
        champion_version=lambda step: tracking.alias_version(step, tracking.CHAMPION),
    )
    if missing:
        uri = redact_uri(tracking.tracking_uri())
        raise ConfigError(refusal(env.data_dir, uri, missing, record))


def _record_state(env: Environment, run_id: str, entry_point: str) -> None:
    champions = {s: tracking.alias_version(s, tracking.CHAMPION) for s in PROMOTED}
    write_state(
        env.data_dir,
        run_id=run_id,
        entry_point=entry_point,
        experiment=env.experiment,
        champions={s: str(v) for s, v in champions.items() if v is not None},
    )


def _ensure_demo(opts: PipelineOptions, env: Environment) -> None:
    from meterflow.demo import DemoSpec, ensure_demo

    spec = DemoSpec(n_meters=opts.demo_meters, history_days=opts.demo_days, seed=opts.demo_seed)
    ensure_demo(
        spec,
        data_dir=env.data_dir,
        sql_url=env.sql_url,
        mongo_uri=env.require_mongodb_uri(),
        mongo_database=env.mongo_database,
    )


# Headline metrics of the children, repeated on the pipeline run: (step, child metric, name).
HEADLINES = (
    ("forecasting", "test_mae", "forecast_test_mae"),
    ("forecasting", "skill_vs_best_baseline", "forecast_skill_vs_best_baseline"),
    ("anomaly", "f1", "anomaly_f1"),
    ("anomaly", "auc_pr", "anomaly_auc_pr"),
    ("anomaly", "event_recall", "anomaly_event_recall"),
    ("anomaly", "planted_f1", "anomaly_planted_f1"),
    ("anomaly", "planted_event_recall", "anomaly_planted_event_recall"),
    ("clustering", "silhouette", "clustering_silhouette"),
    ("clustering", "k", "clustering_k"),
)


def _headline_metrics(steps: Steps) -> dict[str, float]:
    """The children's headline metrics and the ETL totals, for the pipeline run."""
    children = {step: tracking.run_metrics(run_id) for step, (run_id, _) in steps.items()}
    out = {name: children[s][m] for s, m, name in HEADLINES if m in children.get(s, {})}
    for total in ("readings_in", "readings_kept", "readings_quarantined"):
        out[total] = sum(children[s].get(total, 0.0) for s in etl_runs() if s in children)
    return out


def _log_summary(run: tracking.StepRun, steps: Steps, duration_s: float) -> None:
    reused = sum(r for _, r in steps.values())
    run.log_metrics(
        {"steps_run": len(steps) - reused, "steps_reused": reused, "duration_s": duration_s}
    )
    run.log_metrics(_headline_metrics(steps))
    log.info(
        "pipeline finished: %d of %d steps run, %d reused", len(steps) - reused, len(steps), reused
    )


def _run_steps(opts: PipelineOptions, env: Environment, runner: StepRunner) -> Steps:
    """Walk the table of steps (``meterflow.orchestration.steps``), stage after stage."""
    done: Steps = {}

    def prepare(step: Step, finished: Steps) -> Options:
        inputs = _inputs(step, opts, env, runner.experiment_id, {**done, **finished})
        return step_options(step.name, opts, **inputs)

    for lanes in stages():
        done |= runner.run_stage(lanes, prepare)
    return done


def _inputs(
    step: Step, opts: PipelineOptions, env: Environment, experiment_id: str, done: Steps
) -> dict[str, str]:
    """What ``step`` takes besides the pipeline's options: its upstream run ids, its source's
    fingerprint, its own newest finished run, files the pipeline found."""
    inputs = {
        option: ",".join(done[name][0] for name in names) for option, names in step.upstream.items()
    }
    if step.fingerprint is not None:
        inputs["source_fingerprint"] = step.fingerprint(env)
    if step.carry_over:
        previous = tracking.finished_runs(step.name, max_results=1, experiment_id=experiment_id)
        inputs[step.carry_over] = previous[0].info.run_id if previous else ""
    if step.found is not None:
        inputs |= step.found(opts, env)
    return inputs
