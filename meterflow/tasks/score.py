"""The ``score`` entry point: a registered model (the forecasting champion by default) over
every meter of a Parquet dataset, in meter blocks, here or on a Dask cluster
(``meterflow.models.batch``); the run logs the counts, the time and where the output is."""

from __future__ import annotations

import logging
from pathlib import Path

from meterflow import tracking
from meterflow.models.batch import FleetScore, score_fleet
from meterflow.settings import Environment, ScoreOptions

log = logging.getLogger(__name__)

LISTING = "score/output.json"  # the run's artifact: the output folder and its files


def run_score(opts: ScoreOptions, env: Environment) -> str:
    tracking.configure(env)
    with tracking.step_run("score", opts) as run:
        model_uri = opts.model_uri or tracking.champion_uri("forecasting")
        out = Path(opts.out) if opts.out else env.data_dir / "scores" / run.run_id
        result = score_fleet(
            model_uri,
            opts.readings,
            out,
            block_meters=opts.block_meters,
            scheduler=opts.dask_scheduler,
        )
        run.log_metrics(result.metrics())
        run.set_tags(_tags(result))
        run.log_dict(result.listing(), LISTING)
        run.describe(_description(result))
        log.info("score: %s", _description(result))
        return run.run_id


def _tags(result: FleetScore) -> dict[str, str]:
    return {
        "score.output": str(result.out),
        "score.model": result.fixed_uri,
        "score.model_run": result.model_run,
    }


def _description(result: FleetScore) -> str:
    m = result.metrics()
    return (
        f"{m['meters_scored']:.0f} meters scored by {result.model_uri} ({result.fixed_uri}) in "
        f"{m['blocks']:.0f} blocks, {m['seconds']:.1f} s: {m['rows_out']:.0f} rows in "
        f"{result.out}"
    )
