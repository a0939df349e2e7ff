"""The SQL historian table read in chunks (any SQLAlchemy URL): query, tags and the two reads.

The ``historian`` table holds one row per tag and interval: ``timestamp`` (naive, END of the
interval), ``tagname`` (``<meter_id>.1.8.0`` import, ``<meter_id>.2.8.0`` export), ``energy``
(kWh, >= 0) and ``quality`` (OPC 192 good, 64 uncertain, else bad); ``formats`` names them.

Reading: SQLite and PostgreSQL URLs are read Arrow-natively through ADBC (``adbc-driver-sqlite``
/ ``adbc-driver-postgresql``) in record batches of ``chunk_size`` rows
(:func:`read_historian_arrow`); every other dialect, or when ADBC is not installed, cannot
connect or hands back a column type it cannot translate exactly, goes through SQLAlchemy with a
server-side cursor in chunks (:func:`read_historian`; the same rows either way: both paths run
the same reflected, compiled SELECT). The table and its columns are always checked through
SQLAlchemy first, so errors read the same. ``sql_translate`` turns the rows into readings and
``sql`` is the ETL adapter.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Sequence

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from meterflow.domain import RAW_INTERVAL_MIN, SOURCE_SQL
from meterflow.errors import SourceError
from meterflow.sources.formats import HISTORIAN_TABLE
from meterflow.sources.sql_engine import describe_db_error, driver_text, engine_for
from meterflow.sources.times import TimeLike, utc_naive

HISTORIAN_COLUMNS = ("timestamp", "tagname", "energy", "quality")
Tags = Sequence[str | None] | None  # historian tags to select (None: all; None in it: NULL tags)


def historian_query(
    table: sa.Table,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    raw_interval_min: int = RAW_INTERVAL_MIN,
    timestamp_as_text: bool = True,
    tags: Tags = None,
) -> sa.Select:
    """SELECT of the historian columns for intervals STARTING in [start, end) (UTC), of the
    ``tags`` only unless None (None in the list: the rows without a tag).

    The timestamp comes back as text (parsed once per distinct value, fast on every driver)
    unless ``timestamp_as_text`` is False (the Arrow read of PostgreSQL takes native timestamps).
    """
    col = table.c
    ts = sa.cast(col.timestamp, sa.String) if timestamp_as_text else col.timestamp
    stmt = sa.select(ts, col.tagname, col.energy, col.quality)
    if tags is not None:
        named = [t for t in tags if t is not None]
        conds = [col.tagname.in_(named)] if named else []
        if None in tags:
            conds.append(col.tagname.is_(None))
        stmt = stmt.where(sa.or_(*conds) if conds else sa.false())
    shift = pd.Timedelta(minutes=raw_interval_min)
    if (lo := utc_naive(start)) is not None:
        stmt = stmt.where(col.timestamp >= (lo + shift).to_pydatetime())
    if (hi := utc_naive(end)) is not None:
        stmt = stmt.where(col.timestamp < (hi + shift).to_pydatetime())
    return stmt


def _reflect(conn: sa.Connection, table: str) -> sa.Table:
    """The historian ``table`` as reflected; SourceError when it or a column is missing."""
    if not sa.inspect(conn).has_table(table):
        raise SourceError(f"table {table!r} not found", source=SOURCE_SQL)
    tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
    missing = [c for c in HISTORIAN_COLUMNS if c not in tbl.c]
    if missing:
        raise SourceError(f"table {table!r} lacks column(s) {missing}", source=SOURCE_SQL)
    return tbl


def _read_error(exc: Exception, url: str | sa.URL) -> SourceError:
    """SourceError about a failed historian read, without credentials."""
    return SourceError(
        f"cannot read the historian: {describe_db_error(exc, url)}", source=SOURCE_SQL
    )


@contextlib.contextmanager
def _historian_connection(url: str | sa.URL) -> Iterator[tuple[sa.Engine, sa.Connection]]:
    """A connection to ``url``; database and driver errors become SourceError (no credentials)
    and the engine is disposed afterwards."""
    engine = engine_for(url, source=SOURCE_SQL)
    try:
        with engine.connect() as conn:
            yield engine, conn
    except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        raise _read_error(exc, url) from None
    finally:
        engine.dispose()


def _compiled_historian_sql(
    conn: sa.Connection,
    dialect: sa.Dialect,
    table: str,
    *,
    start: TimeLike,
    end: TimeLike,
    raw_interval_min: int,
    timestamp_as_text: bool = True,
    tags: Tags = None,
) -> str:
    """The historian SELECT (table checked by reflection) as ``dialect`` runs it: the bounds
    and tags are rendered as literals by the dialect, so a raw DBAPI or ADBC cursor can run it."""
    stmt = historian_query(
        _reflect(conn, table),
        start=start,
        end=end,
        raw_interval_min=raw_interval_min,
        timestamp_as_text=timestamp_as_text,
        tags=tags,
    )
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def historian_sql(
    url: str | sa.URL,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    table: str = HISTORIAN_TABLE,
    raw_interval_min: int = RAW_INTERVAL_MIN,
    timestamp_as_text: bool = True,
    tags: Tags = None,
) -> str:
    """The historian SELECT as the database at ``url`` runs it (table and columns checked by
    reflection; the bounds and tags rendered as literals by the dialect)."""
    with _historian_connection(url) as (engine, conn):
        return _compiled_historian_sql(
            conn,
            engine.dialect,
            table,
            start=start,
            end=end,
            raw_interval_min=raw_interval_min,
            timestamp_as_text=timestamp_as_text,
            tags=tags,
        )


def historian_tags(url: str | sa.URL, table: str = HISTORIAN_TABLE) -> list[str | None]:
    """The distinct tags of the historian (None when a row has no tag). With an index that
    starts with ``tagname`` on SQLite or PostgreSQL, one index seek per tag (a loose index scan
    as a recursive query); otherwise ``SELECT DISTINCT``. Errors as for the reads."""
    with _historian_connection(url) as (engine, conn):
        col = _reflect(conn, table).c.tagname
        indexes = sa.inspect(conn).get_indexes(table)
        leading = any(ix["column_names"][:1] == ["tagname"] for ix in indexes)
        if not (leading and engine.dialect.name in ("sqlite", "postgresql")):
            return [tag for (tag,) in conn.execute(sa.select(col).distinct())]
        found = sa.select(sa.func.min(col).label("tag")).cte("tags", recursive=True)
        after = sa.select(sa.func.min(col)).where(col > found.c.tag).scalar_subquery()
        found = found.union_all(sa.select(after).where(found.c.tag.is_not(None)))
        tags = [
            tag for (tag,) in conn.execute(sa.select(found.c.tag).where(found.c.tag.is_not(None)))
        ]
        null = sa.select(col).where(col.is_(None)).limit(1)
        if col.nullable and conn.execute(null).first() is not None:
            tags.append(None)
        return tags


def read_historian(
    url: str | sa.URL,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    chunk_size: int = 200_000,
    table: str = HISTORIAN_TABLE,
    raw_interval_min: int = RAW_INTERVAL_MIN,
    tags: Tags = None,
) -> Iterator[list[tuple]]:
    """Stream raw historian rows ``(timestamp text, tagname, energy, quality)`` of ``tags``
    (None: all) in chunks through SQLAlchemy's DBAPI connection (a server-side cursor on
    PostgreSQL). Connection problems raise SourceError (no credentials)."""
    with _historian_connection(url) as (engine, conn):
        sql = _compiled_historian_sql(
            conn,
            engine.dialect,
            table,
            start=start,
            end=end,
            raw_interval_min=raw_interval_min,
            tags=tags,
        )
        dbapi = conn.connection.dbapi_connection
        if dbapi is None:
            raise SourceError("the database connection is closed", source=SOURCE_SQL)
        server_side = engine.dialect.driver in ("psycopg2", "psycopg")
        cursor = dbapi.cursor(name="meterflow_historian") if server_side else dbapi.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(chunk_size):
                yield rows
        finally:
            cursor.close()
            conn.rollback()


def read_historian_frame(url: str | sa.URL, **kwargs: object) -> pd.DataFrame:
    """The bare read, for comparison and inspection: all selected rows in one DataFrame."""
    reads = read_historian(url, **kwargs)  # type: ignore[arg-type]
    chunks = [pd.DataFrame(rows, columns=list(HISTORIAN_COLUMNS)) for rows in reads]
    if not chunks:
        return pd.DataFrame(columns=list(HISTORIAN_COLUMNS))
    return pd.concat(chunks, ignore_index=True)


# --- Arrow-native read through ADBC -------------------------------------------------------------

ADBC_DRIVERS = {"sqlite": "adbc_driver_sqlite.dbapi", "postgresql": "adbc_driver_postgresql.dbapi"}


class ArrowReadError(Exception):
    """The Arrow (ADBC) read cannot serve this URL or these rows; the caller reads through
    SQLAlchemy instead. The message never holds credentials."""


class NotExact(ArrowReadError):
    """A batch whose column types or nulls the translation cannot take over exactly as the
    SQLAlchemy path would (e.g. text in the energy column of a SQLite historian)."""


def adbc_target(url: str | sa.URL) -> tuple[str, str] | None:
    """``(backend, ADBC URI)`` for a SQLite file or PostgreSQL URL, None for anything else.

    The URI carries the credentials of ``url``: it goes to the driver only, never to a log.
    """
    try:
        u = sa.make_url(url)
    except (ArgumentError, ValueError):
        return None
    backend = u.get_backend_name()
    if backend == "sqlite":
        # in-memory and URI-style (query options) databases stay with SQLAlchemy
        if not u.database or u.database == ":memory:" or u.query:
            return None
        return backend, u.database
    if backend == "postgresql":
        return backend, u.set(drivername="postgresql").render_as_string(hide_password=False)
    return None


def read_historian_arrow(
    url: str | sa.URL,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    chunk_size: int = 200_000,
    table: str = HISTORIAN_TABLE,
    raw_interval_min: int = RAW_INTERVAL_MIN,
    tags: Tags = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the historian rows of ``tags`` (None: all) as Arrow record batches through ADBC
    (SQLite: batches of ``chunk_size`` rows; PostgreSQL: binary COPY, the driver's batches).
    The table is checked
    and the SELECT compiled through SQLAlchemy first (SourceError as on the other path).
    ArrowReadError when ADBC cannot serve the URL (other dialect, driver not installed,
    connection or driver failure)."""
    target = adbc_target(url)
    if target is None:
        raise ArrowReadError("no ADBC driver for this dialect")
    backend, uri = target
    try:
        dbapi = importlib.import_module(ADBC_DRIVERS[backend])
        from adbc_driver_manager import Error as AdbcError
    except ImportError:
        raise ArrowReadError(f"{ADBC_DRIVERS[backend]} is not installed") from None
    sql = historian_sql(
        url,
        start=start,
        end=end,
        table=table,
        raw_interval_min=raw_interval_min,
        timestamp_as_text=backend == "sqlite",
        tags=tags,
    )
    try:
        with dbapi.connect(uri) as conn, conn.cursor() as cursor:
            if backend == "sqlite":  # also the window the driver infers column types from
                opts = {"adbc.sqlite.query.batch_rows": str(max(int(chunk_size), 1024))}
                cursor.adbc_statement.set_options(**opts)
            cursor.execute(sql)
            yield from cursor.fetch_record_batch()
    except (AdbcError, pa.ArrowException, OSError) as exc:
        raise ArrowReadError(f"{type(exc).__name__}: {driver_text(exc, url)}") from None
