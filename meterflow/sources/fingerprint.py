"""Cheap fingerprints of each store's content, so the pipeline can tell whether new data arrived
(a step whose fingerprint and parameters did not change is reused, not rerun)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa

from meterflow.domain import SOURCE_OLDMONGO, SOURCE_SQL
from meterflow.errors import SourceError
from meterflow.sources import formats
from meterflow.sources.mongo_changes import store_marks
from meterflow.sources.sql_engine import describe_db_error, engine_for


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _sql_marks(conn: sa.Connection, table: str) -> tuple:
    """What changes when rows are added, changed or deleted, cheaply: PostgreSQL's row change
    counters, SQLite's row count and largest rowid, else the row count and newest timestamp."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        marks = conn.execute(
            sa.text(
                "select n_tup_ins, n_tup_upd, n_tup_del from pg_stat_user_tables "
                "where relname = :table"
            ),
            {"table": table},
        ).first()
        if marks is not None:
            return tuple(marks)
    t = sa.table(table, sa.column("timestamp"), sa.column("rowid"))
    newest = t.c.rowid if dialect == "sqlite" else t.c.timestamp
    return tuple(conn.execute(sa.select(sa.func.count(), sa.func.max(newest))).one())


def sql_fingerprint(url: str, table: str = formats.HISTORIAN_TABLE) -> str:
    """Marks of the historian table that change with its content (see :func:`_sql_marks`)."""
    engine = engine_for(url, source=SOURCE_SQL)
    try:
        with engine.connect() as conn:
            marks = _sql_marks(conn, table)
    except sa.exc.SQLAlchemyError as e:
        raise SourceError(
            f"cannot read table {table!r}: {describe_db_error(e, url)}", source=SOURCE_SQL
        ) from None
    finally:
        engine.dispose()
    return _digest(*marks)


def mongo_fingerprint(uri: str, database: str, collection: str) -> str:
    """The collection's :class:`~meterflow.sources.mongo_changes.StoreMarks`: constant cost at
    any store size, and they change with every insert or delete."""
    marks = store_marks(uri, database, collection)
    return _digest(marks.count, marks.newest_id, marks.newest_ts)


def folder_fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the CSV files of the old exports."""
    if not folder.is_dir():
        raise SourceError(
            "old exports folder does not exist", source=SOURCE_OLDMONGO, file=str(folder)
        )
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.csv"))]
    return _digest(*stats)
