"""Anomaly alerts written back where operators read them: a SQL table and a MongoDB collection,
one alert per event across runs (the rows and their merge: ``meterflow.anomaly.alerts``).

Writes read only the stored alerts that can match: the batch's meters with ``end`` at or after
its earliest start and ``start`` at or before its latest end, one second of slack (indexes on
(meter_id, start) and (meter_id, end)). SQL: read, update (never ``status`` nor
``first_seen_*``) and insert in one transaction. MongoDB: ``find`` then ``bulk_write`` of
``InsertOne`` and ``ReplaceOne`` by ``_id``: the document as read with the merged fields set,
so fields an operator added stay (not ``$set``: nx-27017 stores the datetimes it sets as
strings), guarded by the status as read; when an operator changed it meanwhile, the merge is
redone (at most 3 times, then SourceError).

Stores created with the old per-run layout (``run_id``, ids ``<run_id>:<meter_id>:<start>``) are
not migrated: their rows are per-run copies of the same events, and their NOT NULL ``run_id``
would refuse new rows. A SQL table missing any of ``ALERT_COLUMNS`` (or a MongoDB candidate
document missing a field) raises SourceError naming the table and the missing columns; rename
it (``ALTER TABLE anomaly_alerts RENAME TO anomaly_alerts_v1``) and the next run starts afresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import pandas as pd
import sqlalchemy as sa
from pymongo import InsertOne, ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from meterflow.anomaly.alerts import (
    ALERT_COLUMNS,
    MUTABLE_COLUMNS,
    STATUS_OPEN,
    merge_alerts,
    naive_times,
    typed_alerts,
    utc_naive,
)
from meterflow.errors import SourceError
from meterflow.redact import redact_uri
from meterflow.sources.mongo_client import SERVER_SELECTION_TIMEOUT_MS, mongo_client
from meterflow.sources.sql_engine import describe_db_error, engine_for

ALERT_TABLE = "anomaly_alerts"
SOURCE_ALERTS = "alerts"
_SLACK = pd.Timedelta(seconds=1)  # of the candidate query, around the batch's span
_IN_CHUNK = 500  # meters per candidate query
_MONGO_TRIES = 3


class AlertWrite(NamedTuple):
    """What a write did to the stored alerts."""

    inserted: int
    updated: int


def _records(alerts: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of stored ``alerts`` as dicts of plain Python values (datetime, float, int, str,
    None)."""
    records = []
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
        records.append(rec)
    return records


def _window(new: pd.DataFrame) -> tuple[list[str], datetime, datetime]:
    """The batch's meters and the span a stored alert must meet to match one of its events."""
    meters = sorted(set(new["meter_id"].astype(str)))
    lo = naive_times(new["start"], "start").min() - _SLACK
    hi = naive_times(new["end"], "end").max() + _SLACK
    return meters, lo.to_pydatetime(), hi.to_pydatetime()


def _chunks(items: list[str]) -> Iterable[list[str]]:
    return (items[i : i + _IN_CHUNK] for i in range(0, len(items), _IN_CHUNK))


def _text_column(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(200), nullable=nullable)


def alert_table(table: str = ALERT_TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQL alert table: primary key ``alert_id``, indexes on (meter_id, start),
    (meter_id, end) and last_seen_run; ``status`` defaults to 'open'."""
    text = _text_column
    return sa.Table(
        table,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("alert_id", sa.String(500), primary_key=True),
        text("meter_id"),
        text("kind", True),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(40), nullable=False, server_default=STATUS_OPEN),
        text("detector"),
        sa.Column("peak_score", sa.Float(), nullable=True),
        sa.Column("n_flagged", sa.Integer(), nullable=False),
        text("first_seen_run"),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        text("last_seen_run"),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Index(f"ix_{table}_meter_start", "meter_id", "start"),
        sa.Index(f"ix_{table}_meter_end", "meter_id", "end"),
        sa.Index(f"ix_{table}_last_seen_run", "last_seen_run"),
    )


def _old_layout(what: str, missing: list[str]) -> SourceError:
    return SourceError(
        f"alert {what} lacks column(s) {missing}: it has an older layout (one row per run and "
        f"event) and is not migrated; rename it (e.g. to <name>_v1) to start afresh",
        source=SOURCE_ALERTS,
    )


def _sql_candidates(conn: sa.Connection, tbl: sa.Table, new: pd.DataFrame) -> pd.DataFrame:
    """The stored alerts that can match an event of ``new`` (SourceError for an old table)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns(tbl.name)}
    missing = [c for c in ALERT_COLUMNS if c not in columns]
    if missing:
        raise _old_layout(f"table {tbl.name!r}", missing)
    rows: list[dict[str, Any]] = []
    if not len(new):
        return pd.DataFrame(rows, columns=list(ALERT_COLUMNS))
    meters, lo, hi = _window(new)
    for chunk in _chunks(meters):
        query = sa.select(*(tbl.c[c] for c in ALERT_COLUMNS)).where(
            tbl.c.meter_id.in_(chunk), tbl.c.end >= lo, tbl.c.start <= hi
        )
        rows += [dict(r) for r in conn.execute(query).mappings()]
    return pd.DataFrame(rows, columns=list(ALERT_COLUMNS))


def _sql_apply(
    conn: sa.Connection, tbl: sa.Table, to_update: pd.DataFrame, to_insert: pd.DataFrame
) -> None:
    """Update the merged columns of ``to_update`` (by ``alert_id``), insert ``to_insert``."""
    updates = _records(to_update)
    if updates:
        stmt = (
            sa.update(tbl)
            .where(tbl.c.alert_id == sa.bindparam("b_alert_id"))
            .values({c: sa.bindparam(f"b_{c}") for c in MUTABLE_COLUMNS})
        )
        keys = ("alert_id", *MUTABLE_COLUMNS)
        conn.execute(stmt, [{f"b_{k}": rec[k] for k in keys} for rec in updates])
    inserts = _records(to_insert)
    if inserts:
        conn.execute(sa.insert(tbl), inserts)


def write_alerts_sql(
    url: str,
    alerts: pd.DataFrame,
    run_id: str,
    table: str = ALERT_TABLE,
    *,
    now: datetime | pd.Timestamp | None = None,
) -> AlertWrite:
    """Merge the run's ``alerts`` (``alert_rows``) into ``table`` at ``url`` (created if
    missing): stored alerts they continue are updated, the others inserted, in one transaction
    (``merge_alerts``; ``now``: default the current UTC time). Returns the counts; database
    errors and a table of the old layout raise SourceError (credentials hidden)."""
    when = utc_naive(now)
    merge_alerts(pd.DataFrame(), alerts, run_id, when)  # checks the rows before connecting
    tbl = alert_table(table)
    engine = engine_for(url, source=SOURCE_ALERTS)
    try:
        with engine.begin() as conn:
            tbl.metadata.create_all(conn, checkfirst=True)
            existing = _sql_candidates(conn, tbl, alerts)
            to_update, to_insert = merge_alerts(existing, alerts, run_id, when)
            _sql_apply(conn, tbl, to_update, to_insert)
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(
            f"cannot write alerts to table {table!r}: {describe_db_error(exc, url)}",
            source=SOURCE_ALERTS,
        ) from None
    finally:
        engine.dispose()
    return AlertWrite(len(to_insert), len(to_update))


def _mongo_candidates(coll: Collection, new: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The stored documents that can match an event of ``new``, by ``_id`` (SourceError for
    documents of the old layout)."""
    meters, lo, hi = _window(new)
    docs: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(meters):
        query = {"meter_id": {"$in": chunk}, "end": {"$gte": lo}, "start": {"$lte": hi}}
        docs.update((str(d["_id"]), d) for d in coll.find(query))
    missing = sorted({c for d in docs.values() for c in ALERT_COLUMNS if c not in d})
    if missing:
        raise _old_layout(f"collection {coll.full_name!r}", missing)
    return docs


def _mongo_apply(
    coll: Collection,
    docs: dict[str, dict[str, Any]],
    to_update: pd.DataFrame,
    to_insert: pd.DataFrame,
) -> tuple[int, int]:
    """Replace the documents of ``to_update`` (as read, merged fields set) unless an operator
    changed their status since ``docs`` was read, insert ``to_insert``: (replaced, missed)."""
    ops: list[InsertOne | ReplaceOne] = [
        InsertOne({"_id": rec["alert_id"], **rec}) for rec in _records(to_insert)
    ]
    for rec in _records(to_update):
        doc = docs[rec["alert_id"]]
        body = {k: v for k, v in doc.items() if k != "_id"}
        body.update((c, rec[c]) for c in MUTABLE_COLUMNS)
        ops.append(ReplaceOne({"_id": doc["_id"], "status": doc["status"]}, body))
    if not ops:
        return 0, 0
    result = coll.bulk_write(ops, ordered=True)
    return result.matched_count, len(to_update) - result.matched_count


def _mongo_merge(
    coll: Collection, alerts: pd.DataFrame, run_id: str, now: pd.Timestamp
) -> AlertWrite:
    """Read, merge and write until no replacement missed (an operator changed a status in
    between; the merge is idempotent, so a redo only finishes what the last one missed)."""
    inserted = updated = 0
    for _ in range(_MONGO_TRIES):
        docs = _mongo_candidates(coll, alerts)
        to_update, to_insert = merge_alerts(pd.DataFrame(docs.values()), alerts, run_id, now)
        replaced, missed = _mongo_apply(coll, docs, to_update, to_insert)
        inserted, updated = inserted + len(to_insert), updated + replaced
        if not missed:
            return AlertWrite(inserted, updated)
    raise SourceError(
        f"alert statuses in {coll.full_name} kept changing while written; run again",
        source=SOURCE_ALERTS,
    )


def write_alerts_mongo(
    uri: str,
    database: str,
    alerts: pd.DataFrame,
    run_id: str,
    collection: str = ALERT_TABLE,
    *,
    now: datetime | pd.Timestamp | None = None,
    timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
) -> AlertWrite:
    """Merge the run's ``alerts`` (``alert_rows``) into ``database.collection`` at ``uri`` as
    ``write_alerts_sql`` does (documents with ``_id`` = ``alert_id``; indexes on
    (meter_id, start), (meter_id, end) and last_seen_run). Returns the counts; server errors,
    documents of the old layout and statuses that keep changing raise SourceError."""
    when = utc_naive(now)
    merge_alerts(pd.DataFrame(), alerts, run_id, when)  # checks the rows before connecting
    client = mongo_client(uri, source=SOURCE_ALERTS, timeout_ms=timeout_ms)
    try:
        coll = client[database][collection]
        for keys in ([("meter_id", 1), ("start", 1)], [("meter_id", 1), ("end", 1)]):
            coll.create_index(keys)
        coll.create_index("last_seen_run")
        return _mongo_merge(coll, alerts, run_id, when) if len(alerts) else AlertWrite(0, 0)
    except PyMongoError as exc:
        raise SourceError(
            f"cannot write alerts to {database}.{collection}: {type(exc).__name__} "
            f"[{redact_uri(uri)}]",
            source=SOURCE_ALERTS,
        ) from None
    finally:
        client.close()


__all__ = [
    "ALERT_TABLE",
    "AlertWrite",
    "alert_table",
    "write_alerts_mongo",
    "write_alerts_sql",
]
