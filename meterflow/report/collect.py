"""Reading what the night's steps logged (through ``meterflow.tracking``) into the report's
sections; a section whose step did not finish, or whose table is missing or has another layout,
becomes one line saying why.

What is read, by name: the ETL runs' ``corrections_summary`` tables and metrics
(``readings_in``, ``readings_kept``, ``readings_quarantined``, ``meter_days_out``), the clustering
run's ``cluster_sizes`` and ``centers`` tables and ``k``/``silhouette`` metrics, the forecasting
run's ``candidates`` and ``error_by_step`` tables, the anomaly run's ``alerts`` table (else its
``alerts_raised`` metric).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

import meterflow
from meterflow.errors import MeterflowError
from meterflow.orchestration.story import FAILED, REUSED, Night, StepOutcome, source_of
from meterflow.report.render import Report, Section, unavailable
from meterflow.report.sections import (
    ALERTS,
    CLUSTERS,
    FORECASTS,
    QUALITY,
    alerts_section,
    clusters_section,
    forecast_section,
    night_section,
    quality_section,
)
from meterflow.schemas import Table
from meterflow.tracking import artifacts

log = logging.getLogger(__name__)

# A table with another layout than the report reads raises one of these: the section says so.
LAYOUT_ERRORS = (MeterflowError, KeyError, ValueError, TypeError)


Reader = Callable[[str, str], pd.DataFrame]  # (run id, table name) -> table, or MeterflowError


class RunTables:
    """Tables read from runs (by ``reader``, default the tracking store's), each once; a
    missing one remembered as missing."""

    def __init__(self, reader: Reader = artifacts.read_table) -> None:
        self._reader = reader
        self._read: dict[tuple[str, str], pd.DataFrame | MeterflowError] = {}

    def get(self, run_id: str, name: str) -> pd.DataFrame:
        """The table; MeterflowError naming the run and table when it has none."""
        key = (run_id, name)
        if key not in self._read:
            try:
                self._read[key] = self._reader(run_id, name)
            except MeterflowError as e:
                self._read[key] = e
        found = self._read[key]
        if isinstance(found, MeterflowError):
            raise found
        return found

    def optional(self, run_id: str, name: str) -> pd.DataFrame | None:
        """The table, or None when the run has none."""
        try:
            return self.get(run_id, name)
        except MeterflowError:
            return None

    def read(self) -> list[str]:
        """``run_id/name`` of every table asked for, found or not (for the log)."""
        return [f"{run[:8]}/{name}" for run, name in self._read]


def _section(
    title: str, night: Night, step: str, build: Callable[[StepOutcome], Section]
) -> Section:
    """``build(outcome)`` of a step that finished; else, or when its tables do not fit, one
    line saying why."""
    outcome = night.outcome(step)
    if outcome is None:
        return unavailable(title, f"the {step} step was not reached")
    if outcome.status == FAILED:
        return unavailable(title, f"the {step} step failed")
    try:
        return build(outcome)
    except LAYOUT_ERRORS as e:
        log.warning("report: section %r left out: %s: %s", title, type(e).__name__, e)
        return unavailable(title, f"{type(e).__name__}: {e}")


def quarantine_reasons(night: Night, tables: RunTables) -> pd.DataFrame | None:
    """The ETL runs' ``corrections_summary`` rows with their source; None if none has one."""
    parts = []
    for o in night.outcomes:
        if o.step.startswith("etl_") and o.status != FAILED:
            summary = tables.optional(o.run_id, Table.CORRECTIONS_SUMMARY)
            if summary is not None:
                parts.append(summary.assign(source=source_of(o.step)))
    return pd.concat(parts, ignore_index=True) if parts else None


def alerts_raised(night: Night, tables: RunTables) -> int | None:
    """Alerts the night's own anomaly run raised: the rows of its ``alerts`` table, else its
    ``alerts_raised`` metric (None: the step was reused or failed, or the run says neither)."""
    anomaly = night.outcome("anomaly")
    if anomaly is None or anomaly.status != "run":
        return None
    alerts = tables.optional(anomaly.run_id, Table.ALERTS)
    if alerts is not None:
        return len(alerts)
    counted = night.child("anomaly").metrics.get("alerts_raised")
    return None if counted is None else int(counted)


def build_report(
    night: Night, tables: RunTables, durations_png: bytes | None, parent_run_id: str
) -> Report:
    """Every section of the night's report."""

    def quality() -> Section:
        try:
            return quality_section(night, quarantine_reasons(night, tables))
        except LAYOUT_ERRORS as e:
            return unavailable(QUALITY, f"{type(e).__name__}: {e}")

    def clusters(o: StepOutcome) -> Section:
        sizes = tables.get(o.run_id, Table.CLUSTER_SIZES)
        centers = tables.optional(o.run_id, Table.CENTERS)
        return clusters_section(sizes, centers, dict(night.child(o.step).metrics))

    def forecasts(o: StepOutcome) -> Section:
        candidates = tables.get(o.run_id, Table.CANDIDATES)
        return forecast_section(candidates, tables.optional(o.run_id, Table.ERROR_BY_STEP), night)

    def alerts(o: StepOutcome) -> Section:
        reused = o.run_id if o.status == REUSED else ""
        return alerts_section(tables.get(o.run_id, Table.ALERTS), reused)

    sections = (
        night_section(night, durations_png),
        quality(),
        _section(CLUSTERS, night, "clustering", clusters),
        _section(FORECASTS, night, "forecasting", forecasts),
        _section(ALERTS, night, "anomaly", alerts),
    )
    return Report(
        title=f"meterflow {night.entry_point} night of {night.day}",
        subtitle=f"Parent run {parent_run_id}, experiment {night.experiment_id}",
        sections=sections,
        footer=f"Written by meterflow {meterflow.__version__} at the end of the night.",
    )
