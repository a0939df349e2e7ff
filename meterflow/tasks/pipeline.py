"""The ``main`` and ``retrain`` entry points: chain every step as child runs of one parent run,
then promote the new models that beat their champion (``meterflow.tasks.promote``).

Starts what the run needs (the local MongoDB wire-protocol server when ``MONGODB_URI`` is unset,
the demo fleet when asked) and stops it at the end. Each step is reused instead of rerun when a
finished run with the same parameters (including upstream run ids and source fingerprints) and
the same code version exists. The children's options are built from the pipeline's own options,
which share their types and defaults with the steps' (``meterflow.config``). Steps that share no
input run at the same time: the MongoDB chain beside the history chain, the three model steps
beside each other as far as memory allows (``orchestration.memory_groups``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from meterflow import tracking
from meterflow.config import (
    AnomalyOptions,
    ClusteringOptions,
    Environment,
    EtlNewMongoOptions,
    EtlOldMongoOptions,
    EtlSqlOptions,
    ForecastingOptions,
    HarmonizationOptions,
    LoadNewMongoOptions,
    PipelineOptions,
    RetrainOptions,
)
from meterflow.errors import ConfigError
from meterflow.orchestration import StepRunner
from meterflow.preflight import check_sqlite_store, sqlite_path
from meterflow.promotion import STEPS
from meterflow.reconcile import end_abandoned_runs
from meterflow.redact import redact_uri
from meterflow.runlock import RunLock
from meterflow.runstate import missing_from_store, read_state, refusal, write_state
from meterflow.sources import fingerprint, formats
from meterflow.sources.mongo_server import LocalMongoServer
from meterflow.tasks.promote import promote_models

log = logging.getLogger(__name__)

Steps = dict[str, tuple[str, bool]]  # entry point -> (run id, reused)
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
                steps = _run_steps(opts, env, runner)
                if opts.promote:
                    promote_models(steps, opts.promotion_margin, run)
                _log_summary(run, steps, time.monotonic() - started)
                _record_state(env, run.run_id, entry_point)
                return run.run_id


def check_state(env: Environment, *, start_over: bool) -> None:
    """Refuse a damaged SQLite tracking store, and a store that lost what the data folder's
    state record knows (see ``meterflow.runstate``) unless ``start_over`` says to start over
    knowingly."""
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
    champions = {s: tracking.alias_version(s, tracking.CHAMPION) for s in STEPS}
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
    ("anomaly", "auc_roc", "anomaly_auc_roc"),
    ("anomaly", "auc_pr", "anomaly_auc_pr"),
    ("anomaly", "event_recall", "anomaly_event_recall"),
    ("anomaly", "planted_f1", "anomaly_planted_f1"),
    ("anomaly", "planted_event_recall", "anomaly_planted_event_recall"),
    ("clustering", "silhouette", "clustering_silhouette"),
    ("clustering", "k", "clustering_k"),
)
ETL_STEPS = ("etl_newmongo", "etl_sql", "etl_oldmongo")


def _headline_metrics(steps: Steps) -> dict[str, float]:
    """The children's headline metrics and the ETL totals, for the pipeline run."""
    children = {step: tracking.run_metrics(run_id) for step, (run_id, _) in steps.items()}
    out = {name: children[s][m] for s, m, name in HEADLINES if m in children.get(s, {})}
    for total in ("readings_in", "readings_kept", "readings_quarantined"):
        out[total] = sum(children[s].get(total, 0.0) for s in ETL_STEPS if s in children)
    return out


def _log_summary(run: tracking.StepRun, steps: Steps, duration_s: float) -> None:
    reused = sum(r for _, r in steps.values())
    run.log_metrics(
        {"steps_run": len(steps) - reused, "steps_reused": reused, "duration_s": duration_s}
    )
    run.log_metrics(_headline_metrics(steps))
    run.log_dict(
        {k: {"run_id": rid, "reused": r} for k, (rid, r) in steps.items()},
        "pipeline_steps.json",
    )
    log.info("pipeline finished: %d steps run, %d reused", len(steps) - reused, reused)


def _run_steps(opts: PipelineOptions, env: Environment, runner: StepRunner) -> Steps:
    steps = _run_etl(opts, env, runner)
    etl_runs = ",".join(steps[k][0] for k in ("etl_newmongo", "etl_sql", "etl_oldmongo"))
    previous = tracking.finished_runs(
        "harmonization", max_results=1, experiment_id=runner.experiment_id
    )
    harmonization = HarmonizationOptions(
        etl_runs=etl_runs,
        previous_run=previous[0].info.run_id if previous else "",
        resolution=opts.resolution,
        normalization=opts.normalization,
        dtw_window=opts.dtw_window,
        dtw_max_profiles=opts.dtw_max_profiles,
        dask_scheduler=opts.dask_scheduler,
    )
    steps["harmonization"] = runner.run("harmonization", harmonization, ignore=("previous_run",))
    steps.update(_run_models(opts, env, runner, profiles_run=steps["harmonization"][0]))
    return steps


def _run_etl(opts: PipelineOptions, env: Environment, runner: StepRunner) -> Steps:
    """The MongoDB chain (load, then clean) and the history chain (historian, then the old
    exports checked against it) at the same time: they share no input."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        chains = [pool.submit(chain, opts, env, runner) for chain in (_new_data, _history)]
    return {name: run for chain in chains for name, run in chain.result().items()}


def _new_data(opts: PipelineOptions, env: Environment, runner: StepRunner) -> Steps:
    mongo = fingerprint.mongo_fingerprint(
        env.require_mongodb_uri(), env.mongo_database, formats.MONGO_COLLECTION
    )
    steps: Steps = {}
    steps["load_newmongo"] = runner.run(
        "load_newmongo", LoadNewMongoOptions(source_fingerprint=mongo)
    )
    steps["etl_newmongo"] = runner.run(
        "etl_newmongo",
        EtlNewMongoOptions(raw_run=steps["load_newmongo"][0], resolution=opts.resolution),
    )
    return steps


def _history(opts: PipelineOptions, env: Environment, runner: StepRunner) -> Steps:
    cleaning = {"resolution": opts.resolution}
    steps: Steps = {}
    steps["etl_sql"] = runner.run(
        "etl_sql",
        EtlSqlOptions(
            source_fingerprint=fingerprint.sql_fingerprint(env.sql_url),
            historian_timezone=opts.historian_timezone,
            **cleaning,
        ),
    )
    exports = EtlOldMongoOptions(
        source_fingerprint=fingerprint.folder_fingerprint(env.exports_dir),
        reference_run=steps["etl_sql"][0],
        **cleaning,
    )
    steps["etl_oldmongo"] = runner.run("etl_oldmongo", exports)
    return steps


def _run_models(
    opts: PipelineOptions, env: Environment, runner: StepRunner, *, profiles_run: str
) -> Steps:
    clustering = ClusteringOptions(
        profiles_run=profiles_run,
        model=opts.model,
        distance_metric=opts.distance_metric,
        number_of_clusters=opts.number_of_clusters,
        prosumers=opts.prosumers,
        dask_scheduler=opts.dask_scheduler,
    )
    forecasting = ForecastingOptions(
        profiles_run=profiles_run,
        model=opts.forecast_model,
        epochs=opts.forecast_epochs,
        dask_scheduler=opts.dask_scheduler,
    )
    labels = env.truth_dir / "anomalies.csv"
    anomaly = AnomalyOptions(
        profiles_run=profiles_run,
        labels=str(labels) if opts.demo and labels.is_file() else "",
        epochs=opts.epochs,
        dask_scheduler=opts.dask_scheduler,
    )
    # independent of each other: run at the same time
    return runner.run_together(
        {"clustering": clustering, "forecasting": forecasting, "anomaly": anomaly}
    )
