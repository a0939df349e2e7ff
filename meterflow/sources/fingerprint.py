"""Cheap fingerprints of each store's content, so the pipeline can tell whether new data arrived
(a step whose fingerprint and parameters did not change is reused, not rerun)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pymongo
import sqlalchemy as sa

from meterflow.errors import SourceError
from meterflow.redact import redact_uri
from meterflow.sources import formats
from meterflow.sources.sql import redact_url


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def sql_fingerprint(url: str, table: str = formats.HISTORIAN_TABLE) -> str:
    """Row count and newest timestamp of the historian table."""
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            t = sa.table(table, sa.column("timestamp"))
            count, newest = conn.execute(
                sa.select(sa.func.count(), sa.func.max(t.c.timestamp))
            ).one()
        engine.dispose()
    except sa.exc.SQLAlchemyError as e:
        raise SourceError(
            f"cannot read table {table!r} at {redact_url(url)}: {type(e).__name__}", source="sql"
        ) from None
    return _digest(count, newest)


def mongo_fingerprint(uri: str, database: str, collection: str) -> str:
    """Document count and newest ``ts`` of the readings collection."""
    try:
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            coll = client[database][collection]
            count = coll.count_documents({})
            newest = coll.find_one({}, {"ts": 1, "_id": 0}, sort=[("ts", pymongo.DESCENDING)])
    except pymongo.errors.PyMongoError as e:
        raise SourceError(
            f"cannot read {database}.{collection} at {redact_uri(uri)}: {type(e).__name__}",
            source="newmongo",
        ) from None
    return _digest(count, (newest or {}).get("ts"))


def folder_fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the CSV files of the old exports."""
    if not folder.is_dir():
        raise SourceError("old exports folder does not exist", source="oldmongo", file=str(folder))
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.csv"))]
    return _digest(*stats)
