"""What the parent run logs about its night, finished or failed: the ``night_steps`` table (every
step, run, reused or failed, with its run and a link to it), the ``step_durations`` figure, the
description (``story.describe_night``) and the HTML report ``report.html``
(``meterflow.report``).

The steps' runs are read through ``meterflow.tracking``; no run is created for a reused step (a
placeholder child would be found by the reuse and upstream lookups).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import date

import pandas as pd

from meterflow import tracking
from meterflow.errors import MeterflowError
from meterflow.orchestration.runner import StepRunner
from meterflow.orchestration.steps import PROMOTED, pipeline_steps
from meterflow.orchestration.story import (
    DURATIONS_FIGURE,
    REPORT_FILE,
    ChildRun,
    Night,
    StepOutcome,
    describe_night,
    night_steps,
    promotions,
)
from meterflow.report.collect import RunTables, alerts_raised, build_report
from meterflow.report.figures import durations_figure, png
from meterflow.report.render import render
from meterflow.schemas import Table
from meterflow.tracking import artifacts

log = logging.getLogger(__name__)


def ordered_outcomes(record: dict[str, StepOutcome]) -> tuple[StepOutcome, ...]:
    """The runner's record in the order of the table of steps."""
    order = {step.name: i for i, step in enumerate(pipeline_steps())}
    return tuple(sorted(record.values(), key=lambda o: order.get(o.step, len(order))))


def read_children(outcomes: tuple[StepOutcome, ...]) -> dict[str, ChildRun]:
    """The metrics and tags of every step's run (a run the store cannot give is left out)."""
    children = {}
    for o in outcomes:
        if not o.run_id:
            continue
        try:
            record = artifacts.run_record(o.run_id)
        except MeterflowError as e:
            log.warning("%s: run %s not read for the story: %s", o.step, o.run_id, e)
            continue
        children[o.step] = ChildRun(record.metrics, record.tags)
    return children


def gather(
    entry_point: str,
    runner: StepRunner,
    tables: RunTables,
    *,
    promotion: pd.DataFrame | None,
    promote: bool,
    duration_s: float,
    failure: str = "",
) -> Night:
    """The night as the story tells it, from the runner's record and the steps' runs."""
    outcomes = ordered_outcomes(runner.record)
    night = Night(
        entry_point=entry_point,
        experiment_id=runner.experiment_id,
        day=f"{date.today():%Y-%m-%d}",
        outcomes=outcomes,
        planned=tuple(step.name for step in pipeline_steps()),
        children=read_children(outcomes),
        promotions=promotions(promotion, PROMOTED, outcomes, promote=promote),
        duration_s=duration_s,
        failure=failure,
    )
    return replace(night, alerts=alerts_raised(night, tables))


def tell(run: tracking.StepRun, night: Night, tables: RunTables) -> None:
    """Log the night on its parent run: table, figure, description, report."""
    started = time.monotonic()
    run.log_table(night_steps(night), Table.NIGHT_STEPS)
    durations = None
    if night.outcomes:
        fig = durations_figure(night.outcomes)
        durations = png(fig)
        run.log_figure(fig, DURATIONS_FIGURE)
    run.describe(describe_night(night))
    page = render(build_report(night, tables, durations, run.run_id))
    artifacts.log_text(run.run_id, page, REPORT_FILE)
    log.info(
        "%s: story and %s (%d kB) logged in %.1f s; tables read: %s",
        night.entry_point,
        REPORT_FILE,
        len(page) // 1024,
        time.monotonic() - started,
        ", ".join(tables.read()) or "none",
    )
