"""The ``main`` entry point: chain every step as child runs of one parent run.

Starts what the run needs (the local MongoDB wire-protocol server when ``MONGODB_URI`` is unset,
the demo fleet when asked) and stops it at the end. Each step is reused instead of rerun when a
finished run with the same parameters (including upstream run ids and source fingerprints) and
the same code version exists. The children's options are built from the pipeline's own options,
which share their types and defaults with the steps' (``meterflow.config``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
)
from meterflow.errors import ConfigError
from meterflow.orchestration import StepRunner
from meterflow.sources import fingerprint, formats
from meterflow.sources.mongo_server import LocalMongoServer

log = logging.getLogger(__name__)

Steps = dict[str, tuple[str, bool]]  # entry point -> (run id, reused)


@contextmanager
def mongo_uri_for_run(env: Environment) -> Iterator[str]:
    """``MONGODB_URI`` if set, else a local wire-protocol server for the duration of the run."""
    if env.mongodb_uri:
        yield env.mongodb_uri
        return
    with LocalMongoServer(env.local_mongo_path) as uri:
        yield uri


def run_pipeline(opts: PipelineOptions, env: Environment) -> str:
    """Run every step; return the parent run id."""
    project_dir = Path.cwd()
    if not (project_dir / "MLproject").is_file():
        raise ConfigError(
            f"run the pipeline from the project folder (no MLproject in {project_dir})"
        )
    tracking.configure(env)
    started = time.monotonic()
    with mongo_uri_for_run(env) as mongo_uri:
        env = env.with_mongodb_uri(mongo_uri)
        if opts.demo:
            _ensure_demo(opts, env)
        with tracking.step_run("main", opts) as run:
            runner = StepRunner(project_dir, opts.reuse, child_env={"MONGODB_URI": mongo_uri})
            steps = _run_steps(opts, env, runner)
            _log_summary(run, steps, time.monotonic() - started)
            return run.run_id


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


def _log_summary(run: tracking.StepRun, steps: Steps, duration_s: float) -> None:
    reused = sum(r for _, r in steps.values())
    run.log_metrics(
        {"steps_run": len(steps) - reused, "steps_reused": reused, "duration_s": duration_s}
    )
    run.log_dict(
        {k: {"run_id": rid, "reused": r} for k, (rid, r) in steps.items()},
        "pipeline_steps.json",
    )
    log.info("pipeline finished: %d steps run, %d reused", len(steps) - reused, reused)


def _run_steps(opts: PipelineOptions, env: Environment, runner: StepRunner) -> Steps:
    steps = _run_etl(opts, env, runner)
    etl_runs = ",".join(steps[k][0] for k in ("etl_newmongo", "etl_sql", "etl_oldmongo"))
    previous = tracking.finished_runs("harmonization", max_results=1)
    harmonization = HarmonizationOptions(
        etl_runs=etl_runs,
        previous_run=previous[0].info.run_id if previous else "",
        resolution=opts.resolution,
        normalization=opts.normalization,
        dtw_window=opts.dtw_window,
        dtw_max_profiles=opts.dtw_max_profiles,
    )
    steps["harmonization"] = runner.run("harmonization", harmonization, ignore=("previous_run",))
    steps.update(_run_models(opts, env, runner, profiles_run=steps["harmonization"][0]))
    return steps


def _run_etl(opts: PipelineOptions, env: Environment, runner: StepRunner) -> Steps:
    mongo = fingerprint.mongo_fingerprint(
        env.require_mongodb_uri(), env.mongo_database, formats.MONGO_COLLECTION
    )
    steps: Steps = {}
    steps["load_newmongo"] = runner.run(
        "load_newmongo", LoadNewMongoOptions(source_fingerprint=mongo)
    )
    cleaning = {"resolution": opts.resolution}
    steps["etl_newmongo"] = runner.run(
        "etl_newmongo", EtlNewMongoOptions(raw_run=steps["load_newmongo"][0], **cleaning)
    )
    sql = fingerprint.sql_fingerprint(env.sql_url)
    steps["etl_sql"] = runner.run("etl_sql", EtlSqlOptions(source_fingerprint=sql, **cleaning))
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
    )
    forecasting = ForecastingOptions(
        profiles_run=profiles_run, model=opts.forecast_model, epochs=opts.epochs
    )
    labels = env.truth_dir / "anomalies.csv"
    anomaly = AnomalyOptions(
        profiles_run=profiles_run,
        labels=str(labels) if opts.demo and labels.is_file() else "",
        epochs=opts.epochs,
    )
    return {
        "clustering": runner.run("clustering", clustering),
        "forecasting": runner.run("forecasting", forecasting),
        "anomaly": runner.run("anomaly", anomaly),
    }
