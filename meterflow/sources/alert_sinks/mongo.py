"""The MongoDB alert sink: one collection, documents with ``_id`` = ``alert_id``. A write
``find``s the documents that can match (as the SQL sink selects them), then ``bulk_write``s
``InsertOne`` and ``ReplaceOne`` by ``_id``: the document as read with the merged fields set, so
fields an operator added stay (not ``$set``: nx-27017 stores the datetimes it sets as strings),
guarded by the status as read; when an operator changed it meanwhile, the merge is redone (at
most 3 times, then SourceError). Documents of the old per-run layout raise SourceError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from pymongo import InsertOne, ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from meterflow.anomaly.alerts import ALERT_COLUMNS, MUTABLE_COLUMNS, merge_alerts
from meterflow.errors import SourceError
from meterflow.redact import redact_uri
from meterflow.sources.alert_sinks.base import (
    ALERT_TABLE,
    SOURCE_ALERTS,
    AlertWrite,
    checked_now,
    chunks,
    old_layout,
    records,
    stored_frame,
    window,
)
from meterflow.sources.mongo_client import SERVER_SELECTION_TIMEOUT_MS, mongo_client

if TYPE_CHECKING:
    from meterflow.settings import Environment

_TRIES = 3


def _candidates(coll: Collection, new: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The stored documents that can match an event of ``new``, by ``_id`` (SourceError for
    documents of the old layout)."""
    meters, lo, hi = window(new)
    docs: dict[str, dict[str, Any]] = {}
    for chunk in chunks(meters):
        query = {"meter_id": {"$in": chunk}, "end": {"$gte": lo}, "start": {"$lte": hi}}
        docs.update((str(d["_id"]), d) for d in coll.find(query))
    missing = sorted({c for d in docs.values() for c in ALERT_COLUMNS if c not in d})
    if missing:
        raise old_layout(f"collection {coll.full_name!r}", missing)
    return docs


def _apply(
    coll: Collection,
    docs: dict[str, dict[str, Any]],
    to_update: pd.DataFrame,
    to_insert: pd.DataFrame,
) -> tuple[int, int]:
    """Replace the documents of ``to_update`` (as read, merged fields set) unless an operator
    changed their status since ``docs`` was read, insert ``to_insert``: (replaced, missed)."""
    ops: list[InsertOne | ReplaceOne] = [
        InsertOne({"_id": rec["alert_id"], **rec}) for rec in records(to_insert)
    ]
    for rec in records(to_update):
        doc = docs[rec["alert_id"]]
        body = {k: v for k, v in doc.items() if k != "_id"}
        body.update((c, rec[c]) for c in MUTABLE_COLUMNS)
        ops.append(ReplaceOne({"_id": doc["_id"], "status": doc["status"]}, body))
    if not ops:
        return 0, 0
    result = coll.bulk_write(ops, ordered=True)
    return result.matched_count, len(to_update) - result.matched_count


def _merge(coll: Collection, alerts: pd.DataFrame, run_id: str, now: pd.Timestamp) -> AlertWrite:
    """Read, merge and write until no replacement missed (an operator changed a status in
    between; the merge is idempotent, so a redo only finishes what the last one missed)."""
    inserted = updated = 0
    for _ in range(_TRIES):
        docs = _candidates(coll, alerts)
        to_update, to_insert = merge_alerts(pd.DataFrame(docs.values()), alerts, run_id, now)
        replaced, missed = _apply(coll, docs, to_update, to_insert)
        inserted, updated = inserted + len(to_insert), updated + replaced
        if not missed:
            return AlertWrite(inserted, updated)
    raise SourceError(
        f"alert statuses in {coll.full_name} kept changing while written; run again",
        source=SOURCE_ALERTS,
    )


@dataclass(frozen=True)
class MongoAlertSink:
    """Alerts in ``database.collection`` at ``uri`` (indexes on (meter_id, start),
    (meter_id, end) and last_seen_run)."""

    uri: str
    database: str
    collection: str = ALERT_TABLE
    timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS
    name: str = "mongo"

    @classmethod
    def from_env(cls, env: Environment) -> MongoAlertSink | None:
        """The sink of the environment's MongoDB database; None when MONGODB_URI is not set."""
        return cls(env.mongodb_uri, env.mongo_database) if env.mongodb_uri else None

    def describe(self) -> str:
        return self.database

    def _error(self, action: str, exc: PyMongoError) -> SourceError:
        return SourceError(
            f"cannot {action} alerts in {self.database}.{self.collection}: "
            f"{type(exc).__name__} [{redact_uri(self.uri)}]",
            source=SOURCE_ALERTS,
        )

    def write(
        self, alerts: pd.DataFrame, run_id: str, *, now: datetime | pd.Timestamp | None = None
    ) -> AlertWrite:
        """Merge ``alerts`` (see ``AlertSink``); server errors, documents of the old layout and
        statuses that keep changing raise SourceError."""
        when = checked_now(alerts, run_id, now)
        client = mongo_client(self.uri, source=SOURCE_ALERTS, timeout_ms=self.timeout_ms)
        try:
            coll = client[self.database][self.collection]
            for keys in ([("meter_id", 1), ("start", 1)], [("meter_id", 1), ("end", 1)]):
                coll.create_index(keys)
            coll.create_index("last_seen_run")
            return _merge(coll, alerts, run_id, when) if len(alerts) else AlertWrite(0, 0)
        except PyMongoError as exc:
            raise self._error("write", exc) from None
        finally:
            client.close()

    def read(self) -> pd.DataFrame:
        """Every stored alert (operator-added fields dropped)."""
        client = mongo_client(self.uri, source=SOURCE_ALERTS, timeout_ms=self.timeout_ms)
        try:
            docs = client[self.database][self.collection].find({})
            return stored_frame(docs)
        except PyMongoError as exc:
            raise self._error("read", exc) from None
        finally:
            client.close()
