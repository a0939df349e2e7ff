"""The ``main`` entry point: chain every step as child runs of one parent run.

Starts what the run needs (the local MongoDB wire-protocol server when ``MONGODB_URI`` is unset,
the demo fleet when asked) and stops it at the end. Each step is reused instead of rerun when a
finished run with the same parameters (including upstream run ids and source fingerprints) and
the same code version exists.
"""

from __future__ import annotations

import hashlib
import logging
import os
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
    Options,
    PipelineOptions,
)
from meterflow.errors import ConfigError
from meterflow.sources import fingerprint, formats
from meterflow.sources.mongo_server import LocalMongoServer

log = logging.getLogger(__name__)

CODE_GLOBS = ("meterflow/**/*.py", "steps/*.py", "*.py", "MLproject")


def code_version(project_dir: Path) -> str:
    """Hash of the project's code, so a code change never reuses old runs."""
    h = hashlib.sha256()
    files = sorted({p for g in CODE_GLOBS for p in project_dir.glob(g) if p.is_file()})
    for p in files:
        h.update(str(p.relative_to(project_dir)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def mongo_uri_for_run(env: Environment) -> Iterator[str]:
    """``MONGODB_URI`` if set, else a local wire-protocol server for the duration of the run."""
    if env.mongodb_uri:
        yield env.mongodb_uri
        return
    with LocalMongoServer(env.local_mongo_path) as uri:
        previous = os.environ.get("MONGODB_URI")
        os.environ["MONGODB_URI"] = uri  # inherited by the child steps
        try:
            yield uri
        finally:
            if previous is None:
                os.environ.pop("MONGODB_URI", None)
            else:
                os.environ["MONGODB_URI"] = previous


def run_pipeline(opts: PipelineOptions, env: Environment) -> str:
    """Run every step; return the parent run id."""
    project_dir = Path.cwd()
    if not (project_dir / "MLproject").is_file():
        raise ConfigError(
            f"run the pipeline from the project folder (no MLproject in {project_dir})"
        )
    tracking.configure(env.experiment)
    started = time.monotonic()
    with mongo_uri_for_run(env) as mongo_uri:
        if opts.demo:
            from meterflow.demo import DemoSpec, ensure_demo

            spec = DemoSpec(
                n_meters=opts.demo_meters, history_days=opts.demo_days, seed=opts.demo_seed
            )
            ensure_demo(
                spec,
                data_dir=env.data_dir,
                sql_url=env.sql_url,
                mongo_uri=mongo_uri,
                mongo_database=env.mongo_database,
            )
        with tracking.step_run("main", opts) as run:
            steps = _run_steps(opts, env, mongo_uri, project_dir)
            reused = sum(r for _, r in steps.values())
            run.set_tags({f"meterflow.step.{k}": rid for k, (rid, _) in steps.items()})
            run.log_metrics(
                {
                    "steps_run": len(steps) - reused,
                    "steps_reused": reused,
                    "duration_s": time.monotonic() - started,
                }
            )
            run.log_dict(
                {k: {"run_id": rid, "reused": r} for k, (rid, r) in steps.items()},
                "pipeline_steps.json",
            )
            log.info("pipeline finished: %d steps run, %d reused", len(steps) - reused, reused)
            return run.run_id


def _run_steps(
    opts: PipelineOptions, env: Environment, mongo_uri: str, project_dir: Path
) -> dict[str, tuple[str, bool]]:
    version = code_version(project_dir)

    def child(entry_point: str, options: Options, ignore: tuple[str, ...] = ()) -> tuple[str, bool]:
        return tracking.run_child(
            entry_point,
            options.params(),
            project_dir=project_dir,
            code_version=version,
            reuse=opts.reuse,
            ignore=ignore,
        )

    cleaning = {"resolution": opts.resolution}
    steps: dict[str, tuple[str, bool]] = {}
    steps["load_newmongo"] = child(
        "load_newmongo",
        LoadNewMongoOptions(
            source_fingerprint=fingerprint.mongo_fingerprint(
                mongo_uri, env.mongo_database, formats.MONGO_COLLECTION
            )
        ),
    )
    steps["etl_newmongo"] = child(
        "etl_newmongo", EtlNewMongoOptions(raw_run=steps["load_newmongo"][0], **cleaning)
    )
    steps["etl_sql"] = child(
        "etl_sql",
        EtlSqlOptions(source_fingerprint=fingerprint.sql_fingerprint(env.sql_url), **cleaning),
    )
    steps["etl_oldmongo"] = child(
        "etl_oldmongo",
        EtlOldMongoOptions(
            source_fingerprint=fingerprint.folder_fingerprint(env.exports_dir),
            reference_run=steps["etl_sql"][0],
            **cleaning,
        ),
    )
    etl_runs = ",".join(steps[k][0] for k in ("etl_newmongo", "etl_sql", "etl_oldmongo"))
    previous = tracking.finished_runs("harmonization", max_results=1)
    steps["harmonization"] = child(
        "harmonization",
        HarmonizationOptions(
            etl_runs=etl_runs,
            previous_run=previous[0].info.run_id if previous else "",
            resolution=opts.resolution,
            normalization=opts.normalization,
            dtw_window=opts.dtw_window,
            dtw_max_profiles=opts.dtw_max_profiles,
        ),
        ignore=("previous_run",),
    )
    profiles_run = steps["harmonization"][0]
    steps["clustering"] = child(
        "clustering",
        ClusteringOptions(
            profiles_run=profiles_run,
            model=opts.model,
            distance_metric=opts.distance_metric,
            number_of_clusters=opts.number_of_clusters,
            prosumers=opts.prosumers,
        ),
    )
    steps["forecasting"] = child(
        "forecasting",
        ForecastingOptions(
            profiles_run=profiles_run, model=opts.forecast_model, epochs=opts.epochs
        ),
    )
    labels = env.truth_dir / "anomalies.csv"
    steps["anomaly"] = child(
        "anomaly",
        AnomalyOptions(
            profiles_run=profiles_run,
            labels=str(labels) if opts.demo and labels.is_file() else "",
            epochs=opts.epochs,
        ),
    )
    return steps
