"""The contract every alert sink meets (``AlertSink``) and what the sinks share: the checked
rows of a write, the candidate window of a batch and the error for a store of the old layout.

A sink merges a run's alerts (``meterflow.anomaly.alerts.alert_rows``) into its store, one
alert per event across runs: an event an earlier run raised is updated (never its ``status``
nor ``first_seen_*``), a rerun of the same run changes nothing. Rows that break the alert
contract raise ``AlertRowsError`` before the store is reached; store failures raise
``SourceError`` with credentials hidden. ``tests/sources/test_alerts.py`` checks every sink of
the registry (``meterflow.sources.alert_sinks.ALERT_SINKS``) against this contract.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import pandas as pd

from meterflow.anomaly.alerts import (
    ALERT_COLUMNS,
    merge_alerts,
    naive_times,
    typed_alerts,
    utc_naive,
)
from meterflow.errors import SchemaError, SourceError

ALERT_TABLE = "anomaly_alerts"
SOURCE_ALERTS = "alerts"
_SLACK = pd.Timedelta(seconds=1)  # of the candidate query, around the batch's span
_IN_CHUNK = 500  # meters per candidate query


class AlertRowsError(SchemaError):
    """Alert rows a sink refuses: missing columns, or rows of another run."""


class AlertWrite(NamedTuple):
    """What a write did to the stored alerts."""

    inserted: int
    updated: int


class AlertSink(Protocol):
    """Where operators read anomaly alerts (see the module doc for the contract)."""

    name: str

    def write(
        self, alerts: pd.DataFrame, run_id: str, *, now: datetime | pd.Timestamp | None = None
    ) -> AlertWrite:
        """Merge the run's ``alerts`` into the store (``now``: default the current UTC time)."""
        ...

    def read(self) -> pd.DataFrame:
        """Every stored alert, ``ALERT_COLUMNS`` (extra fields dropped), sorted by alert_id."""
        ...

    def describe(self) -> str:
        """Where the sink writes, credentials hidden (for run tags and logs)."""
        ...


def checked_now(
    alerts: pd.DataFrame, run_id: str, now: datetime | pd.Timestamp | None
) -> pd.Timestamp:
    """``now`` as naive UTC, after checking the rows against the alert contract
    (``AlertRowsError``), before any store is reached."""
    when = utc_naive(now)
    try:
        merge_alerts(pd.DataFrame(), alerts, run_id, when)
    except ValueError as exc:
        raise AlertRowsError(f"alert rows refused: {exc}") from None
    return when


def stored_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Stored alerts (dicts) as a frame of ``ALERT_COLUMNS`` sorted by ``alert_id``."""
    frame = pd.DataFrame(list(rows), columns=list(ALERT_COLUMNS))
    return frame.sort_values("alert_id", ignore_index=True)


def records(alerts: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of stored ``alerts`` as dicts of plain Python values (datetime, float, int, str,
    None)."""
    out = []
    for row in typed_alerts(alerts, ALERT_COLUMNS).itertuples(index=False, name=None):
        rec = dict(zip(ALERT_COLUMNS, row, strict=True))
        for key in ("alert_id", "meter_id", "status", "detector"):
            rec[key] = str(rec[key])
        for key in ("first_seen_run", "last_seen_run"):
            rec[key] = str(rec[key])
        for key in ("start", "end", "first_seen_at", "last_seen_at"):
            rec[key] = pd.Timestamp(rec[key]).to_pydatetime(warn=False)
        score = float(rec["peak_score"])
        rec["peak_score"] = None if math.isnan(score) else score
        rec["n_flagged"] = int(rec["n_flagged"])
        out.append(rec)
    return out


def window(new: pd.DataFrame) -> tuple[list[str], datetime, datetime]:
    """The batch's meters and the span a stored alert must meet to match one of its events."""
    meters = sorted(set(new["meter_id"].astype(str)))
    lo = naive_times(new["start"], "start").min() - _SLACK
    hi = naive_times(new["end"], "end").max() + _SLACK
    return meters, lo.to_pydatetime(), hi.to_pydatetime()


def chunks(items: list[str]) -> Iterable[list[str]]:
    """``items`` in slices small enough for one ``IN`` query."""
    return (items[i : i + _IN_CHUNK] for i in range(0, len(items), _IN_CHUNK))


def old_layout(what: str, missing: list[str]) -> SourceError:
    """The error for a store created with the old per-run layout (not migrated)."""
    return SourceError(
        f"alert {what} lacks column(s) {missing}: it has an older layout (one row per run and "
        f"event) and is not migrated; rename it (e.g. to <name>_v1) to start afresh",
        source=SOURCE_ALERTS,
    )
