"""The ``score`` entry point: a registered model (the forecasting champion by default) over
every meter of a Parquet dataset, in meter blocks, here or on a Dask cluster
(``meterflow.models.batch``); the run logs the counts, the time and where the output is."""

from __future__ import annotations

import logging
from pathlib import Path

from meterflow import tracking
from meterflow.models.batch import FleetScore, score_fleet
from meterflow.prose import count, description, num, seconds
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
        run.describe(score_description(result, str(opts.readings)))
        log.info(
            "score: %d meters scored in %.1f s, output in %s",
            result.metrics()["meters_scored"],
            result.seconds,
            result.out,
        )
        return run.run_id


def _tags(result: FleetScore) -> dict[str, str]:
    return {
        "score.output": str(result.out),
        "score.model": result.fixed_uri,
        "score.model_run": result.model_run,
    }


def score_description(result: FleetScore, readings: str) -> str:
    """The Markdown description of a score run (pure): verdict, data, model, output."""
    m = result.metrics()
    model = result.fixed_uri + (f" (run `{result.model_run}`)" if result.model_run else "")
    asked = "" if result.model_uri == result.fixed_uri else f", resolved from {result.model_uri}"
    verdict = (
        f"Scored {count(m['meters_scored'])} meters with {result.model_uri} in "
        f"{seconds(m['seconds'])} ({num(m['meters_per_second'], 'meters/s')}): "
        f"{count(m['rows_out'])} rows out of {count(m['rows_in'])} in."
    )
    bullets = [
        ("Data", f"readings at {readings}"),
        ("Chosen", f"model {model}{asked}"),
        (
            "Result",
            f"{count(m['blocks'])} blocks of at most {count(m['max_block_meters'])} meters, one "
            f"Parquet file each, in {result.out}",
        ),
        (
            "Look next",
            f"`{LISTING}` (the output folder and each block's file, meters, rows, seconds)",
        ),
    ]
    return description(verdict, bullets)
