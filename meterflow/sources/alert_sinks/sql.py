"""The SQL alert sink (SQLite, PostgreSQL, any SQLAlchemy URL): one table, primary key
``alert_id``. A write reads only the stored alerts that can match (the batch's meters with
``end`` at or after its earliest start and ``start`` at or before its latest end, one second of
slack; indexes on (meter_id, start) and (meter_id, end)), then updates (never ``status`` nor
``first_seen_*``) and inserts, in one transaction.

A table created with the old per-run layout (``run_id``, ids ``<run_id>:<meter_id>:<start>``) is
not migrated: its NOT NULL ``run_id`` would refuse new rows. A table missing any of
``ALERT_COLUMNS`` raises SourceError naming the table and the missing columns; rename it
(``ALTER TABLE anomaly_alerts RENAME TO anomaly_alerts_v1``) and the next run starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from meterflow.anomaly.alerts import ALERT_COLUMNS, MUTABLE_COLUMNS, STATUS_OPEN, merge_alerts
from meterflow.errors import SourceError
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
from meterflow.sources.sql_engine import describe_db_error, engine_for, redact_url

if TYPE_CHECKING:
    from meterflow.settings import Environment


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
        # named apart from the old layout's ix_<table>_* indexes, which keep their names when
        # an old table is renamed to start afresh (SQLite and PostgreSQL alike)
        sa.Index(f"{table}_by_meter_start", "meter_id", "start"),
        sa.Index(f"{table}_by_meter_end", "meter_id", "end"),
        sa.Index(f"{table}_by_last_seen_run", "last_seen_run"),
    )


def _candidates(conn: sa.Connection, tbl: sa.Table, new: pd.DataFrame) -> pd.DataFrame:
    """The stored alerts that can match an event of ``new`` (SourceError for an old table)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns(tbl.name)}
    missing = [c for c in ALERT_COLUMNS if c not in columns]
    if missing:
        raise old_layout(f"table {tbl.name!r}", missing)
    rows: list[dict[str, Any]] = []
    if not len(new):
        return pd.DataFrame(rows, columns=list(ALERT_COLUMNS))
    meters, lo, hi = window(new)
    for chunk in chunks(meters):
        query = sa.select(*(tbl.c[c] for c in ALERT_COLUMNS)).where(
            tbl.c.meter_id.in_(chunk), tbl.c.end >= lo, tbl.c.start <= hi
        )
        rows += [dict(r) for r in conn.execute(query).mappings()]
    return pd.DataFrame(rows, columns=list(ALERT_COLUMNS))


def _apply(
    conn: sa.Connection, tbl: sa.Table, to_update: pd.DataFrame, to_insert: pd.DataFrame
) -> None:
    """Update the merged columns of ``to_update`` (by ``alert_id``), insert ``to_insert``."""
    updates = records(to_update)
    if updates:
        stmt = (
            sa.update(tbl)
            .where(tbl.c.alert_id == sa.bindparam("b_alert_id"))
            .values({c: sa.bindparam(f"b_{c}") for c in MUTABLE_COLUMNS})
        )
        keys = ("alert_id", *MUTABLE_COLUMNS)
        conn.execute(stmt, [{f"b_{k}": rec[k] for k in keys} for rec in updates])
    inserts = records(to_insert)
    if inserts:
        conn.execute(sa.insert(tbl), inserts)


@dataclass(frozen=True)
class SqlAlertSink:
    """Alerts in ``table`` of the database at ``url`` (created if missing)."""

    url: str
    table: str = ALERT_TABLE
    name: str = "sql"

    @classmethod
    def from_env(cls, env: Environment) -> SqlAlertSink:
        """The sink of the environment's SQL database (always configured)."""
        return cls(env.sql_url)

    def describe(self) -> str:
        return redact_url(self.url)

    def _error(self, action: str, exc: sa.exc.SQLAlchemyError) -> SourceError:
        return SourceError(
            f"cannot {action} alerts in table {self.table!r}: {describe_db_error(exc, self.url)}",
            source=SOURCE_ALERTS,
        )

    def write(
        self, alerts: pd.DataFrame, run_id: str, *, now: datetime | pd.Timestamp | None = None
    ) -> AlertWrite:
        """Merge ``alerts`` in one transaction (see ``AlertSink``); a table of the old layout
        and database errors raise SourceError."""
        when = checked_now(alerts, run_id, now)
        tbl = alert_table(self.table)
        engine = engine_for(self.url, source=SOURCE_ALERTS)
        try:
            with engine.begin() as conn:
                tbl.metadata.create_all(conn, checkfirst=True)
                existing = _candidates(conn, tbl, alerts)
                to_update, to_insert = merge_alerts(existing, alerts, run_id, when)
                _apply(conn, tbl, to_update, to_insert)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error("write", exc) from None
        finally:
            engine.dispose()
        return AlertWrite(len(to_insert), len(to_update))

    def read(self) -> pd.DataFrame:
        """Every stored alert (none when the table does not exist yet)."""
        engine = engine_for(self.url, source=SOURCE_ALERTS)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(self.table):
                    return stored_frame([])
                tbl = sa.Table(self.table, sa.MetaData(), autoload_with=conn)
                rows = conn.execute(sa.select(*(tbl.c[c] for c in ALERT_COLUMNS))).mappings()
                return stored_frame(dict(r) for r in rows)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error("read", exc) from None
        finally:
            engine.dispose()
