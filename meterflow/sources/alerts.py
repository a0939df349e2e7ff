"""Anomaly alerts written back where operators read them: a SQL table and a MongoDB collection.

One row (document) per flagged event of a meter: ``alert_id`` (``<run_id>:<meter_id>:<start>``,
deterministic), ``run_id``, ``detector``, ``meter_id``, ``start`` and ``end`` (naive, the
series' own local clock, end exclusive), ``kind`` (a guess, may be null), ``peak_score`` and
``n_flagged``. Writes are idempotent per run: the alerts of run X replace every earlier alert
of run X (SQL: delete + insert in one transaction; MongoDB: ``delete_many`` + ``insert_many``),
alerts of other runs are untouched. MongoDB stores times as BSON datetimes (millisecond
precision); SQL as DateTime (PostgreSQL: microseconds).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pymongo.errors import PyMongoError

from meterflow.errors import SourceError
from meterflow.redact import redact_uri
from meterflow.sources.mongo import _client
from meterflow.sources.sql import describe_db_error, engine_for

ALERT_TABLE = "anomaly_alerts"
ALERT_COLUMNS = (
    "alert_id",
    "run_id",
    "detector",
    "meter_id",
    "start",
    "end",
    "kind",
    "peak_score",
    "n_flagged",
)
EVENT_COLUMNS = ("meter_id", "start", "end", "kind", "peak_score", "n_flagged")
SOURCE_ALERTS = "alerts"
_DTYPES = {  # pandas' string dtype for ids; ``kind`` stays object so a missing guess is None
    "alert_id": "str",
    "run_id": "str",
    "detector": "str",
    "meter_id": "str",
    "start": "datetime64[ns]",
    "end": "datetime64[ns]",
    "kind": object,
    "peak_score": "float64",
    "n_flagged": "int64",
}


def _naive_times(values: pd.Series, name: str) -> pd.Series:
    """``values`` as naive datetime64[ns]; ValueError for missing or time-zone-aware stamps."""
    times = pd.to_datetime(values)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"alert {name!r} must be naive (the series' local clock)")
    if times.isna().any():
        raise ValueError(f"alert {name!r} has missing times")
    return times.astype("datetime64[ns]")


def alert_rows(events: pd.DataFrame, run_id: str, detector: str) -> pd.DataFrame:
    """The alerts of ``events`` (one per event) in ``ALERT_COLUMNS`` order, with ``run_id``,
    ``detector`` and ``alert_id`` = ``<run_id>:<meter_id>:<start isoformat>``.

    ValueError when a column is missing (a table without rows may have none) or two events
    share a meter and start."""
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing and len(events):
        raise ValueError(f"events lack column(s) {missing}")
    if not len(events):
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in _DTYPES.items()})
    meter = events["meter_id"].astype(str).to_numpy(object)
    start = _naive_times(events["start"], "start")
    ids = [f"{run_id}:{m}:{s.isoformat()}" for m, s in zip(meter, start, strict=True)]
    out = pd.DataFrame(
        {
            "alert_id": ids,
            "run_id": str(run_id),
            "detector": str(detector),
            "meter_id": meter,
            "start": start.to_numpy(),
            "end": _naive_times(events["end"], "end").to_numpy(),
            "kind": pd.Series(
                [None if pd.isna(k) else str(k) for k in events["kind"]], dtype=object
            ),
            "peak_score": events["peak_score"].astype("float64").to_numpy(),
            "n_flagged": events["n_flagged"].astype("int64").to_numpy(),
        }
    )
    dup = out["alert_id"].duplicated()
    if dup.any():
        raise ValueError(f"events share a meter and start: {out['alert_id'][dup].iloc[0]}")
    return out.astype(_DTYPES)[list(ALERT_COLUMNS)]


def _records(alerts: pd.DataFrame, run_id: str) -> list[dict[str, Any]]:
    """Rows of ``alerts`` as dicts of plain Python values (datetime, float, int, str, None);
    ValueError when a column is missing or a row belongs to another run."""
    missing = [c for c in ALERT_COLUMNS if c not in alerts.columns]
    if missing and len(alerts):
        raise ValueError(f"alerts lack column(s) {missing}")
    if not len(alerts):
        return []
    if (alerts["run_id"].astype(str) != str(run_id)).any():
        raise ValueError(f"alerts hold rows of a run other than {run_id!r}")
    frame = alerts[list(ALERT_COLUMNS)].assign(
        start=_naive_times(alerts["start"], "start"), end=_naive_times(alerts["end"], "end")
    )
    records = []
    for row in frame.itertuples(index=False, name=None):
        rec = dict(zip(ALERT_COLUMNS, row, strict=True))
        for key in ("alert_id", "run_id", "detector", "meter_id"):
            rec[key] = str(rec[key])
        for key in ("start", "end"):
            rec[key] = pd.Timestamp(rec[key]).to_pydatetime(warn=False)
        score = float(rec["peak_score"])
        rec["peak_score"] = None if math.isnan(score) else score
        rec["n_flagged"] = int(rec["n_flagged"])
        rec["kind"] = None if pd.isna(rec["kind"]) else str(rec["kind"])
        records.append(rec)
    return records


def alert_table(table: str = ALERT_TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQL alert table: primary key ``alert_id``, indexes on (meter_id, start) and run_id."""
    return sa.Table(
        table,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("alert_id", sa.String(400), primary_key=True),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("detector", sa.String(200), nullable=False),
        sa.Column("meter_id", sa.String(200), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(200), nullable=True),
        sa.Column("peak_score", sa.Float(), nullable=True),
        sa.Column("n_flagged", sa.Integer(), nullable=False),
        sa.Index(f"ix_{table}_meter_start", "meter_id", "start"),
        sa.Index(f"ix_{table}_run_id", "run_id"),
    )


def write_alerts_sql(url: str, alerts: pd.DataFrame, run_id: str, table: str = ALERT_TABLE) -> int:
    """Replace the alerts of ``run_id`` in ``table`` at ``url`` by ``alerts`` (one transaction;
    the table is created if missing). Returns the number of rows written; database errors
    raise SourceError (credentials hidden)."""
    records = _records(alerts, run_id)
    tbl = alert_table(table)
    engine = engine_for(url, source=SOURCE_ALERTS)
    try:
        with engine.begin() as conn:
            tbl.metadata.create_all(conn, checkfirst=True)
            conn.execute(sa.delete(tbl).where(tbl.c.run_id == str(run_id)))
            if records:
                conn.execute(sa.insert(tbl), records)
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(
            f"cannot write alerts to table {table!r}: {describe_db_error(exc, url)}",
            source=SOURCE_ALERTS,
        ) from None
    finally:
        engine.dispose()
    return len(records)


def write_alerts_mongo(
    uri: str,
    database: str,
    alerts: pd.DataFrame,
    run_id: str,
    collection: str = ALERT_TABLE,
    *,
    timeout_ms: int = 5000,
) -> int:
    """Replace the alerts of ``run_id`` in ``database.collection`` at ``uri`` by ``alerts``
    (documents with ``_id`` = ``alert_id``; indexes on (meter_id, start) and run_id). Returns
    the number of documents written; server errors raise SourceError (credentials hidden)."""
    docs = [{"_id": rec["alert_id"], **rec} for rec in _records(alerts, run_id)]
    client = _client(uri, timeout_ms)
    try:
        coll = client[database][collection]
        coll.create_index([("meter_id", 1), ("start", 1)])
        coll.create_index("run_id")
        coll.delete_many({"run_id": str(run_id)})
        if docs:
            coll.insert_many(docs, ordered=True)
    except PyMongoError as exc:
        raise SourceError(
            f"cannot write alerts to {database}.{collection}: {type(exc).__name__} "
            f"[{redact_uri(uri)}]",
            source=SOURCE_ALERTS,
        ) from None
    finally:
        client.close()
    return len(docs)


__all__ = [
    "ALERT_COLUMNS",
    "ALERT_TABLE",
    "alert_rows",
    "alert_table",
    "write_alerts_mongo",
    "write_alerts_sql",
]
