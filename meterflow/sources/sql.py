"""SQL historian (any SQLAlchemy URL) -> readings -> shared cleaning.

The ``historian`` table holds one row per tag and interval: ``timestamp`` (naive UTC, END of
the interval), ``tagname`` (``<meter_id>.1.8.0`` import, ``<meter_id>.2.8.0`` export),
``energy`` (kWh, >= 0) and ``quality`` (OPC 192 good, 64 uncertain, else bad). Every row is one
reading: import rows give +Wh, export rows -Wh, stamped at the interval START. Rows are streamed
with a server-side cursor (``stream_results``) in chunks and kept as compact columns; the
cleaning then runs per batch of meters.

Rows that cannot be translated are quarantined at the edge: bad OPC quality (``bad_quality``),
a tag that is not ``<meter>.1.8.0``/``.2.8.0`` (``unknown_tag``), an unparseable timestamp or
value (``malformed_row``). Uncertain-quality rows (OPC 64) are kept (their values are the
meter's) and counted in the metric ``readings_uncertain``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig, EtlResult, Reason, clean_readings, make_readings
from meterflow.etl.quarantine import concat_quarantine, quarantine_frame
from meterflow.etl.readings import EXPORT, IMPORT
from meterflow.etl.result import merge_results
from meterflow.schemas import Action
from meterflow.sources.formats import (
    HISTORIAN_TABLE,
    OPC_GOOD,
    OPC_UNCERTAIN,
    RAW_INTERVAL_MIN,
    SOURCE_SQL,
    TAG_EXPORT,
    TAG_IMPORT,
)

log = logging.getLogger(__name__)

HISTORIAN_COLUMNS = ("timestamp", "tagname", "energy", "quality")
TimeLike = str | pd.Timestamp | None


def redact_url(url: str | sa.URL) -> str:
    """The URL with its password hidden (safe for logs and messages)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def engine_for(url: str | sa.URL, *, source: str) -> sa.Engine:
    """An engine for ``url``; SourceError (credentials hidden) when the URL is not valid."""
    try:
        return sa.create_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise SourceError(
            f"invalid database URL {redact_url(url)}: {type(exc).__name__}", source=source
        ) from None


def describe_db_error(exc: SQLAlchemyError, url: str | sa.URL) -> str:
    """One line about a database error without the password (driver text is kept only when
    it does not contain it)."""
    text = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    try:
        password = sa.make_url(url).password
    except (ArgumentError, ValueError):
        password = None
    if password and str(password) in first:
        first = first.replace(str(password), "***")
    return f"{first} [{redact_url(url)}]"


def _utc_naive(value: TimeLike) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts


def historian_query(
    table: sa.Table, *, start: TimeLike = None, end: TimeLike = None,
    raw_interval_min: int = RAW_INTERVAL_MIN,
) -> sa.Select:  # fmt: skip
    """SELECT of the historian columns for intervals STARTING in [start, end) (UTC).

    The timestamp comes back as text (parsed once per distinct value, fast on every driver).
    """
    col = table.c
    stmt = sa.select(sa.cast(col.timestamp, sa.String), col.tagname, col.energy, col.quality)
    shift = pd.Timedelta(minutes=raw_interval_min)
    if (lo := _utc_naive(start)) is not None:
        stmt = stmt.where(col.timestamp >= (lo + shift).to_pydatetime())
    if (hi := _utc_naive(end)) is not None:
        stmt = stmt.where(col.timestamp < (hi + shift).to_pydatetime())
    return stmt


def _reflect(conn: sa.Connection, table: str) -> sa.Table:
    if not sa.inspect(conn).has_table(table):
        raise SourceError(f"table {table!r} not found", source=SOURCE_SQL)
    tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
    missing = [c for c in HISTORIAN_COLUMNS if c not in tbl.c]
    if missing:
        raise SourceError(f"table {table!r} lacks column(s) {missing}", source=SOURCE_SQL)
    return tbl


def read_historian(
    url: str | sa.URL,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    chunk_size: int = 200_000,
    table: str = HISTORIAN_TABLE,
    raw_interval_min: int = RAW_INTERVAL_MIN,
) -> Iterator[list[tuple]]:
    """Stream raw historian rows ``(timestamp text, tagname, energy, quality)`` in chunks
    through a server-side cursor. Connection problems raise SourceError (no credentials)."""
    engine = engine_for(url, source=SOURCE_SQL)
    try:
        with engine.connect() as conn:
            tbl = _reflect(conn, table)
            stmt = historian_query(tbl, start=start, end=end, raw_interval_min=raw_interval_min)
            # bounds are our own timestamps: rendered as literals by the dialect, so the raw
            # DBAPI cursor can run the statement and hand back plain tuples
            sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
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
    except SQLAlchemyError as exc:
        raise SourceError(
            f"cannot read the historian: {describe_db_error(exc, url)}", source=SOURCE_SQL
        ) from None
    except engine.dialect.loaded_dbapi.Error as exc:
        raise SourceError(
            f"cannot read the historian: {type(exc).__name__}: {str(exc).splitlines()[0]} "
            f"[{redact_url(url)}]",
            source=SOURCE_SQL,
        ) from None
    finally:
        engine.dispose()


def read_historian_frame(url: str | sa.URL, **kwargs: object) -> pd.DataFrame:
    """The bare read, for comparison and inspection: all selected rows in one DataFrame."""
    chunks = [pd.DataFrame(rows, columns=list(HISTORIAN_COLUMNS)) for rows in
              read_historian(url, **kwargs)]  # type: ignore[arg-type]  # fmt: skip
    if not chunks:
        return pd.DataFrame(columns=list(HISTORIAN_COLUMNS))
    return pd.concat(chunks, ignore_index=True)


@dataclass
class _Columns:
    """Compact historian rows translated so far (one entry per kept row)."""

    meter: list[np.ndarray]
    register: list[np.ndarray]
    start_ns: list[np.ndarray]
    energy_wh: list[np.ndarray]
    row: list[np.ndarray]


class HistorianTranslator:
    """Translates chunks of raw historian rows into compact reading columns + quarantine."""

    def __init__(self, raw_interval_min: int = RAW_INTERVAL_MIN) -> None:
        self.raw_ns = raw_interval_min * 60 * 10**9
        self.meter_ids: list[str] = []
        self._meter_code: dict[str, int] = {}
        self._tag: dict[str, tuple[int, int]] = {}  # tag -> (meter code, register 0/1, -1 bad)
        self.cols = _Columns([], [], [], [], [])
        self.quarantine: list[pd.DataFrame] = []
        self.rows = 0
        self.uncertain = 0

    def _parse_tags(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        meter = np.empty(len(uniques), dtype=np.int64)
        reg = np.empty(len(uniques), dtype=np.int64)
        for i, tag in enumerate(uniques):  # distinct tags only (2 per meter)
            if tag not in self._tag:
                mid, _, obis = str(tag).partition(".")
                r = {TAG_IMPORT: 0, TAG_EXPORT: 1}.get(obis, -1)
                if mid not in self._meter_code:
                    self._meter_code[mid] = len(self.meter_ids)
                    self.meter_ids.append(mid)
                self._tag[tag] = (self._meter_code[mid], r)
            meter[i], reg[i] = self._tag[tag]
        return meter, reg

    def add(self, rows: list[tuple]) -> None:
        """Translate one chunk."""
        n = len(rows)
        row = np.arange(self.rows, self.rows + n, dtype=np.int64)
        self.rows += n
        table = np.array(rows, dtype=object).reshape(n, 4)  # fast C transpose of the tuples
        ts_txt, tags, energy, quality = (table[:, i] for i in range(4))
        t_codes, t_uniq = pd.factorize(ts_txt)
        end_ns = pd.to_datetime(pd.Series(t_uniq), format="ISO8601", errors="coerce")
        end_ns = end_ns.to_numpy("datetime64[ns]").view(np.int64)[t_codes]
        bad_ts = end_ns == np.iinfo(np.int64).min
        g_codes, g_uniq = pd.factorize(tags)
        meter_u, reg_u = self._parse_tags(g_uniq)
        meter, reg = meter_u[g_codes], reg_u[g_codes]
        try:
            e_kwh = energy.astype(np.float64)
        except (TypeError, ValueError):
            e_kwh = pd.to_numeric(pd.Series(energy), errors="coerce").to_numpy(np.float64)
        try:
            q = quality.astype(np.float64)
        except (TypeError, ValueError):
            q = pd.to_numeric(pd.Series(quality), errors="coerce").to_numpy(np.float64)
        start_ns = end_ns - self.raw_ns
        signed_wh = np.where(reg == 1, -1000.0, 1000.0) * e_kwh

        rules = [
            (bad_ts, Reason.MALFORMED_ROW, "timestamp cannot be parsed"),
            (reg < 0, Reason.UNKNOWN_TAG, "tag is not <meter>.1.8.0 or <meter>.2.8.0"),
            ((q != OPC_GOOD) & (q != OPC_UNCERTAIN), Reason.BAD_QUALITY, None),
        ]
        dropped = np.zeros(n, dtype=bool)
        for mask, reason, detail in rules:
            hit = np.flatnonzero(mask & ~dropped)
            if len(hit) == 0:
                continue
            dropped[hit] = True
            det = (
                np.char.add("OPC quality ", q[hit].astype(str)).astype(object)
                if detail is None
                else np.char.add(f"{detail}: ", tags[hit].astype(str)).astype(object)
            )
            self.quarantine.append(
                quarantine_frame(
                    meter_id=np.asarray(self.meter_ids, dtype=object)[meter[hit]],
                    timestamp=np.where(bad_ts[hit], 0, start_ns[hit]),
                    source=SOURCE_SQL, original_value=signed_wh[hit], new_value=np.nan,
                    action=Action.DROPPED, reason=reason, detail=det,
                    register=np.where(reg[hit] == 1, EXPORT, IMPORT).astype(object),
                )
            )  # fmt: skip
        keep = ~dropped
        self.uncertain += int((keep & (q == OPC_UNCERTAIN)).sum())
        self.cols.meter.append(meter[keep].astype(np.int32))
        self.cols.register.append(reg[keep].astype(np.int8))
        self.cols.start_ns.append(start_ns[keep])
        self.cols.energy_wh.append(signed_wh[keep])
        self.cols.row.append(row[keep])

    def batches(self, meter_batch: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """(readings, quarantine) per batch of ``meter_batch`` meters, in meter order."""
        dtypes = {"meter": np.int32, "register": np.int8, "start_ns": np.int64,
                  "energy_wh": np.float64, "row": np.int64}  # fmt: skip
        cat = {}
        for f, t in dtypes.items():  # concatenate column by column, freeing the chunks
            parts = getattr(self.cols, f)
            cat[f] = np.concatenate(parts) if parts else np.array([], t)
            parts.clear()
        q_all = concat_quarantine(self.quarantine)
        ids = np.asarray(self.meter_ids, dtype=object)
        order = np.argsort(cat["meter"], kind="stable")
        meter_sorted = cat["meter"][order]
        names = np.sort(ids)
        for i in range(0, len(names), meter_batch):
            chunk = names[i : i + meter_batch]
            codes = np.flatnonzero(np.isin(ids, chunk))
            lo = np.searchsorted(meter_sorted, codes, side="left")
            hi = np.searchsorted(meter_sorted, codes, side="right")
            sel = order[np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])]
            readings = make_readings(
                pd.Categorical.from_codes(cat["meter"][sel], categories=ids),
                pd.DatetimeIndex(cat["start_ns"][sel], tz="UTC"),
                cat["energy_wh"][sel], source=SOURCE_SQL,
                register=pd.Categorical.from_codes(
                    cat["register"][sel].astype(np.int64), categories=[IMPORT, EXPORT]
                ),
                row=cat["row"][sel],
            )  # fmt: skip
            quarantine = q_all.loc[q_all["meter_id"].isin(chunk)]
            yield readings, quarantine.reset_index(drop=True)


def etl_sql(
    url: str | sa.URL,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    start: TimeLike = None,
    end: TimeLike = None,
    chunk_size: int = 200_000,
    meter_batch: int = 100,
    table: str = HISTORIAN_TABLE,
) -> EtlResult:
    """ETL of the SQL historian at ``url`` for intervals starting in [start, end) (UTC; None =
    unbounded): stream, translate, clean per batch of meters, merge.

    Raises SourceError for an unreachable database, a missing table/column or an empty
    selection.
    """
    t0 = time.perf_counter()
    tr = HistorianTranslator(config.raw_interval_min)
    for rows in read_historian(
        url, start=start, end=end, chunk_size=chunk_size, table=table,
        raw_interval_min=config.raw_interval_min,
    ):  # fmt: skip
        tr.add(rows)
        log.info("sql: %d historian rows read", tr.rows)
    if tr.rows == 0:
        raise SourceError(
            f"historian table {table!r} has no rows for intervals in [{start}, {end}) "
            f"[{redact_url(url)}]",
            source=SOURCE_SQL,
        )
    t1 = time.perf_counter()
    results = [
        clean_readings(r, meters, config, source=SOURCE_SQL, adapter_quarantine=q)
        for r, q in tr.batches(meter_batch)
    ]
    result = merge_results(results)
    result.metrics.update(
        rows_read=float(tr.rows),
        readings_uncertain=float(tr.uncertain),
        read_seconds=t1 - t0,
        clean_seconds=time.perf_counter() - t1,
    )
    return result
