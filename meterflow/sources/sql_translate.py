"""Raw historian rows (DBAPI tuples or Arrow record batches) -> compact reading columns.

Every row is one reading: import rows give +Wh, export rows -Wh, stamped at the interval START.
Rows that cannot be translated are quarantined at the edge with their historian key as location:
bad OPC quality (``bad_quality``), a tag that is not ``<meter>.1.8.0``/``.2.8.0``
(``unknown_tag``), an unparseable timestamp or value (``malformed_row``/``malformed_value``), a
NULL key (``missing_key``). Uncertain-quality rows (OPC 64) are kept (their values are the
meter's) and counted. A historian in local time has its wall-clock stamps placed in UTC
(``etl.localtime.localise``); rows at a skipped or unplaceable repeated time are quarantined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from meterflow.domain import RAW_INTERVAL_MIN, SOURCE_SQL
from meterflow.etl import Reason, make_readings
from meterflow.etl.coerce import ParsedNumbers, describe_coercion, describe_malformed, parse_numbers
from meterflow.etl.localtime import AMBIGUOUS, LOCAL_OK, NONEXISTENT, in_windows, localise
from meterflow.etl.quarantine import concat_quarantine, quarantine_frame
from meterflow.etl.readings import EXPORT, IMPORT, Locator
from meterflow.schemas import Action
from meterflow.sources.formats import (
    HISTORIAN_TABLE,
    OPC_GOOD,
    OPC_UNCERTAIN,
    TAG_EXPORT,
    TAG_IMPORT,
)
from meterflow.sources.sql_historian import NotExact

_NULL_TS = np.iinfo(np.int64).min  # end stamp of a row whose timestamp is NULL
_BAD_TS = _NULL_TS + 1  # ... whose timestamp cannot be parsed
_KEY_TIME = "%Y-%m-%d %H:%M:%S"  # timestamps in quarantine locations (interval end as stored)
_OFFSET = r"\d\d:\d\d(?::\d\d(?:\.\d*)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"  # time + offset


def _no_flags(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(coerced, malformed) of a numeric Arrow column: none."""
    return np.zeros(n, bool), np.zeros(n, bool)


def _float_column(col: pa.Array) -> np.ndarray:
    """float64 values (NaN for nulls) of an integer or floating Arrow column, exactly as
    ``float()`` of the driver's Python values; NotExact for any other type."""
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise NotExact(f"column of type {col.type}")
    return col.cast(pa.float64()).to_numpy(zero_copy_only=False)


@dataclass
class _Columns:
    """Compact historian rows translated so far (one entry per kept row)."""

    meter: list[np.ndarray]
    register: list[np.ndarray]
    start_ns: list[np.ndarray]
    energy_wh: list[np.ndarray]
    first_row: list[int]  # source row of the chunk's first row
    kept: list[np.ndarray | None]  # chunk rows kept (None: all of them)

    def pop_chunk(self, c: int) -> _Piece:
        """Chunk ``c`` with its source rows; its columns are released here."""
        meter, kept = self.meter[c], self.kept[c]
        row = self.first_row[c] + (np.arange(len(meter)) if kept is None else kept)
        chunk = _Piece(meter, self.register[c], self.start_ns[c], self.energy_wh[c], row)
        for f in (self.meter, self.register, self.start_ns, self.energy_wh, self.kept):
            f[c] = None  # type: ignore[call-overload]
        return chunk

    def clear(self) -> None:
        """Forget every chunk."""
        for f in fields(self):
            getattr(self, f.name).clear()


class _Piece(NamedTuple):
    """Kept rows of one chunk, or of a batch of meters: reading columns and source rows."""

    meter: np.ndarray
    register: np.ndarray
    start_ns: np.ndarray
    energy_wh: np.ndarray
    row: np.ndarray


_NO_ROWS = _Piece(
    np.array([], np.int32),
    np.array([], np.int8),
    np.array([], np.int64),
    np.array([], np.float64),
    np.array([], np.int64),
)


def _pop_all(cols: _Columns) -> _Piece:
    """Every chunk of ``cols`` as one piece, in read order (the chunks are released)."""
    parts = [cols.pop_chunk(c) for c in range(len(cols.meter))] or [_NO_ROWS]
    cols.clear()
    return _Piece(*(np.concatenate(f) for f in zip(*parts, strict=True)))


def _block_readings(batch: _Piece, ids: np.ndarray) -> pd.DataFrame:
    """Readings of one block, sorted stably by meter code (within a meter: as read)."""
    # 16-bit keys get numpy's radix sort
    key = batch.meter.astype(np.uint16) if len(ids) <= 1 << 16 else batch.meter
    order = np.argsort(key, kind="stable")
    return make_readings(
        pd.Categorical.from_codes(batch.meter[order], categories=ids),
        pd.DatetimeIndex(batch.start_ns[order], tz="UTC"),
        batch.energy_wh[order],
        source=SOURCE_SQL,
        register=pd.Categorical.from_codes(batch.register[order], categories=[IMPORT, EXPORT]),
        row=batch.row[order],
    )


@dataclass(frozen=True)
class _ChunkRows:
    """One chunk's rows as translated, for quarantining some of them."""

    end_ns: np.ndarray  # interval end (``_NULL_TS``/``_BAD_TS``: missing/unparseable)
    meter: np.ndarray  # meter code (-1: no meter)
    reg: np.ndarray  # 0 import, 1 export, -1 unknown tag
    signed_wh: np.ndarray
    raw: Callable[[np.ndarray], tuple[list, list]]  # rows -> (tags, timestamps) as stored
    first_row: int  # rows read before this chunk


class HistorianTranslator:
    """Translates chunks of raw historian rows (tuples from the DBAPI cursor or Arrow record
    batches from ADBC) into compact reading columns + quarantine."""

    def __init__(
        self,
        raw_interval_min: int = RAW_INTERVAL_MIN,
        table: str = HISTORIAN_TABLE,
        timezone: str = "UTC",
    ) -> None:
        self.raw_ns = raw_interval_min * 60 * 10**9
        self.table = table
        self.timezone = timezone  # of the naive stamps; stamps are kept as stored until readings()
        self.meter_ids: list[str] = []
        self._meter_code: dict[str, int] = {}
        self._tag: dict[str, tuple[int, int]] = {}  # tag -> (meter code, register 0/1, -1 bad)
        self.cols = _Columns([], [], [], [], [], [])
        self._last_tags: tuple[pa.Array, np.ndarray, np.ndarray] | None = None
        self.quarantine: list[pd.DataFrame] = []
        self.rows = 0
        self.uncertain = 0

    def _parse_tags(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        meter = np.empty(len(uniques), dtype=np.int32)
        reg = np.empty(len(uniques), dtype=np.int8)
        for i, tag in enumerate(uniques):  # distinct tags only (2 per meter)
            if not str(tag).strip():
                meter[i], reg[i] = -1, -1  # a blank tag names no meter: a missing key
                continue
            if tag not in self._tag:
                mid, _, obis = str(tag).partition(".")
                r = {TAG_IMPORT: 0, TAG_EXPORT: 1}.get(obis, -1)
                if mid not in self._meter_code:
                    self._meter_code[mid] = len(self.meter_ids)
                    self.meter_ids.append(mid)
                self._tag[tag] = (self._meter_code[mid], r)
            meter[i], reg[i] = self._tag[tag]
        return meter, reg

    def _parse_times(self, uniques: np.ndarray | list) -> np.ndarray:
        """End stamps (ns) of distinct timestamp texts in the historian's zone: naive text as
        written, text with an offset converted per value (offsets may differ row to row) to
        that zone's wall-clock time (UTC by default); ``_BAD_TS`` where unparseable."""
        texts = pd.Series(uniques, dtype=object).astype(str).str.strip()
        end = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
        end_ns = end.to_numpy("datetime64[ns]").view(np.int64).copy()
        if self.timezone != "UTC":
            aware = texts.str.contains(_OFFSET, regex=True).to_numpy() & end.notna().to_numpy()
            end_ns[aware] = self._wall(end_ns[aware])
        end_ns[end.isna().to_numpy()] = _BAD_TS
        return end_ns

    def _wall(self, utc_ns: np.ndarray) -> np.ndarray:
        """Wall-clock time (naive ns) in the historian's zone of UTC instants."""
        utc = pd.DatetimeIndex(utc_ns.view("datetime64[ns]"), tz="UTC")
        return utc.tz_convert(self.timezone).tz_localize(None).as_unit("ns").asi8

    def add(self, rows: list[tuple]) -> None:
        """Translate one chunk of DBAPI rows (NULL keys stay missing: code -1 never indexes a
        neighbouring value)."""
        n = len(rows)
        table = np.array(rows, dtype=object).reshape(n, 4)  # fast C transpose of the tuples
        ts_txt, tags, energy, quality = (table[:, i] for i in range(4))
        t_codes, t_uniq = pd.factorize(ts_txt)  # NULL -> -1 -> the appended _NULL_TS
        end_ns = np.append(self._parse_times(t_uniq), _NULL_TS)[t_codes]
        g_codes, g_uniq = pd.factorize(tags)
        meter_u, reg_u = self._parse_tags(g_uniq)
        self._emit(
            end_ns,
            np.append(meter_u, -1)[g_codes],
            np.append(reg_u, -1)[g_codes],
            lambda hit: (list(tags[hit]), list(ts_txt[hit])),
            parse_numbers(energy),
            parse_numbers(quality).values,
        )

    def _locations(self, raw: tuple[list, list], end_ns: np.ndarray, row: np.ndarray) -> np.ndarray:
        """``historian[tagname='..', timestamp='..']`` of raw rows: their key, the timestamp as
        parsed (UTC interval end) or, when it cannot be, as stored; a row without any key is
        named by its position in the selection (``historian row N``)."""
        tags, stamps = raw
        parsed = pd.DatetimeIndex(np.where(end_ns <= _BAD_TS, 0, end_ns)).strftime(_KEY_TIME)
        out = []
        for t, x, p, e, r in zip(tags, stamps, parsed, end_ns, row, strict=True):
            shown = p if e > _BAD_TS else (None if x is None else str(x))
            key = f"[tagname={t!r}, timestamp={shown!r}]" if t or shown else f" row {r}"
            out.append(self.table + key)
        return np.array(out, dtype=object)

    def add_arrow(self, batch: pa.RecordBatch) -> None:
        """Translate one Arrow record batch (columns as :func:`read_historian_arrow` selects
        them). NotExact, before anything is kept, when a column cannot be taken over exactly;
        the caller then starts over through SQLAlchemy."""
        if batch.num_columns != 4:
            raise NotExact(f"{batch.num_columns} columns")
        if batch.num_rows == 0:
            return
        ts, tags, energy, quality = batch.columns
        if not pa.types.is_string(tags.type):
            raise NotExact(f"tag column of type {tags.type}")
        null_ts = ts.is_null().to_numpy(zero_copy_only=False) if ts.null_count else None
        if pa.types.is_timestamp(ts.type):  # PostgreSQL: naive, or aware (UTC instant)
            as_ns = ts.cast(pa.timestamp("ns", tz=ts.type.tz)).cast(pa.int64())
            end_ns = as_ns.fill_null(_NULL_TS).to_numpy()
            if ts.type.tz is not None and self.timezone != "UTC":
                end_ns = np.where(end_ns == _NULL_TS, _NULL_TS, self._wall(end_ns))
        elif pa.types.is_string(ts.type) or pa.types.is_large_string(ts.type):
            # historians are time-ordered: parse each run of equal stamps once
            runs = pc.run_end_encode(ts.fill_null("") if null_ts is not None else ts)
            run_ends = runs.run_ends.to_numpy()
            t_dict = pc.dictionary_encode(runs.values)
            per_run = self._parse_times(t_dict.dictionary.to_numpy(zero_copy_only=False))
            per_run = per_run[t_dict.indices.to_numpy()]
            end_ns = np.repeat(per_run, np.diff(run_ends, prepend=0))
        else:
            raise NotExact(f"timestamp column of type {ts.type}")
        if null_ts is not None:
            end_ns[null_ts] = _NULL_TS
        e_kwh, q = _float_column(energy), _float_column(quality)
        g_dict = pc.dictionary_encode(tags.fill_null("") if tags.null_count else tags)
        codes, tag_text = g_dict.indices.to_numpy(), g_dict.dictionary
        if self._last_tags is not None and self._last_tags[0].equals(tag_text):
            meter_u, reg_u = self._last_tags[1:]  # same distinct tags as the previous batch
        else:
            meter_u, reg_u = self._parse_tags(tag_text.to_numpy(zero_copy_only=False))
            self._last_tags = (tag_text, meter_u, reg_u)
        self._emit(
            end_ns,
            meter_u[codes],
            reg_u[codes],
            lambda hit: (tags.take(hit).to_pylist(), ts.take(hit).cast(pa.string()).to_pylist()),
            ParsedNumbers(e_kwh, *_no_flags(len(e_kwh)), e_kwh),
            q,
        )

    def _emit(
        self,
        end_ns: np.ndarray,
        meter: np.ndarray,
        reg: np.ndarray,
        locate: Callable[[np.ndarray], tuple[list, list]],
        energy: ParsedNumbers,
        q: np.ndarray,
    ) -> None:
        """Quarantine untranslatable rows of one chunk and keep the others as columns."""
        signed_wh = np.where(reg == 1, -1000.0, 1000.0) * energy.values
        chunk = _ChunkRows(end_ns, meter, reg, signed_wh, locate, first_row=self.rows)
        self.rows += len(end_ns)
        rules = [
            ((end_ns == _NULL_TS) | (meter < 0), Reason.MISSING_KEY, "tag or timestamp is NULL"),
            (end_ns == _BAD_TS, Reason.MALFORMED_ROW, "timestamp cannot be parsed"),
            (reg < 0, Reason.UNKNOWN_TAG, "tag is not <meter>.1.8.0 or <meter>.2.8.0"),
            (energy.malformed, Reason.MALFORMED_VALUE, None),
            ((q != OPC_GOOD) & (q != OPC_UNCERTAIN), Reason.BAD_QUALITY, None),
        ]
        dropped = np.zeros(len(end_ns), dtype=bool)
        for mask, reason, detail in rules:
            hit = np.flatnonzero(mask & ~dropped)
            if len(hit):
                dropped[hit] = True
                if reason == Reason.MALFORMED_VALUE:
                    detail = describe_malformed("energy", energy.raw[hit])
                elif reason == Reason.BAD_QUALITY:
                    detail = np.char.add("OPC quality ", q[hit].astype(str)).astype(object)
                self._quarantine(chunk, hit, Action.DROPPED, reason, detail)
        fixed = np.flatnonzero(energy.coerced & ~dropped)
        if len(fixed):
            detail = describe_coercion("energy", energy.raw[fixed], energy.values[fixed])
            self._quarantine(chunk, fixed, Action.CORRECTED, Reason.COERCED_VALUE, detail)
        start_ns = end_ns - self.raw_ns  # (rows with a missing or bad stamp are dropped)
        self._keep(chunk.first_row, ~dropped, meter, reg, start_ns, signed_wh, q == OPC_UNCERTAIN)

    def _quarantine(
        self,
        chunk: _ChunkRows,
        hit: np.ndarray,
        action: Action,
        reason: Reason,
        detail: str | np.ndarray,
    ) -> None:
        """Quarantine rows ``hit`` of a chunk (a missing meter or time stays missing)."""
        end_ns = chunk.end_ns[hit]
        start_ns = np.where(end_ns <= _BAD_TS, end_ns, end_ns - self.raw_ns)
        start_ns = np.where(start_ns <= _BAD_TS, np.iinfo(np.int64).min, start_ns)
        ids = np.append(np.asarray(self.meter_ids, dtype=object), "")
        wh = chunk.signed_wh[hit]
        self.quarantine.append(
            quarantine_frame(
                meter_id=ids[chunk.meter[hit]],
                timestamp=pd.DatetimeIndex(start_ns, tz="UTC"),
                source=SOURCE_SQL,
                original_value=wh,
                new_value=wh if action == Action.CORRECTED else np.nan,
                action=action,
                reason=reason,
                detail=detail,
                register=np.where(chunk.reg[hit] == 1, EXPORT, IMPORT).astype(object),
                location=self._locations(chunk.raw(hit), end_ns, chunk.first_row + 1 + hit),
            )
        )

    def _keep(self, first_row, keep, meter, reg, start_ns, signed_wh, uncertain) -> None:
        """Keep the translated rows ``keep`` of a chunk as compact columns."""
        kept = None
        if not keep.all():
            kept = np.flatnonzero(keep)
            meter, reg, uncertain = meter[kept], reg[kept], uncertain[kept]
            start_ns, signed_wh = start_ns[kept], signed_wh[kept]
        self.uncertain += int(np.count_nonzero(uncertain))
        self.cols.meter.append(meter.astype(np.int32, copy=False))
        self.cols.register.append(reg.astype(np.int8, copy=False))
        self.cols.start_ns.append(start_ns)
        self.cols.energy_wh.append(signed_wh)
        self.cols.first_row.append(first_row)
        self.cols.kept.append(kept)

    def readings(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(readings, quarantine) of every row translated (one block of meters): readings
        ordered by meter code (first appearance), then as read; the columns are released."""
        ids = np.asarray(self.meter_ids, dtype=object)
        block, quarantine = _pop_all(self.cols), concat_quarantine(self.quarantine)
        self.quarantine = []
        if self.timezone != "UTC":
            block, local_q = self._localised(block, ids)
            quarantine = concat_quarantine([quarantine, local_q])
        return _block_readings(block, ids), quarantine

    def _localised(self, batch: _Piece, ids: np.ndarray) -> tuple[_Piece, pd.DataFrame]:
        """A batch's stamps (wall-clock interval ends in the historian's zone, as stored) as
        UTC interval starts; rows at a skipped or unplaceable repeated wall-clock time are
        quarantined (``etl.localtime.localise``: store order places the repeated hour)."""
        wall_end = batch.start_ns + self.raw_ns
        series = batch.meter.astype(np.int64) * 2 + batch.register
        utc_end, status = localise(series, wall_end, batch.row, self.timezone)
        ok = status == LOCAL_OK
        kept = _Piece(
            batch.meter[ok], batch.register[ok], utc_end[ok] - self.raw_ns,
            batch.energy_wh[ok], batch.row[ok],
        )  # fmt: skip
        parts = []
        for code, reason, detail in (
            (
                NONEXISTENT,
                Reason.NONEXISTENT_LOCAL_TIME,
                f"wall-clock time skipped by the spring-forward change in {self.timezone}",
            ),
            (
                AMBIGUOUS,
                Reason.AMBIGUOUS_LOCAL_TIME,
                f"wall-clock time repeated by the autumn change in {self.timezone}, and the "
                "tag has not exactly two rows there: summer or standard time unknown",
            ),
        ):
            hit = np.flatnonzero(status == code)
            rows = _Piece(*(f[hit] for f in batch))
            parts.append(
                _local_time_quarantine(rows, wall_end[hit], ids, reason, detail, self.table)
            )
        return kept, concat_quarantine(parts)

    def stamp_range(self) -> tuple[int, int] | None:
        """First and last interval end kept (ns, as stored), None without rows."""
        ends = [(int(a.min()), int(a.max())) for a in self.cols.start_ns if len(a)]
        if not ends:
            return None
        return min(e[0] for e in ends) + self.raw_ns, max(e[1] for e in ends) + self.raw_ns

    def stamps_in(self, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(series ``meter * 2 + register``, interval end as stored) of the kept rows whose end
        lies in the flat ``[lo, hi)`` ``bounds`` (``etl.localtime.windows``)."""
        series, stamps = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for meter, reg, start in zip(
            self.cols.meter, self.cols.register, self.cols.start_ns, strict=True
        ):
            end = start + self.raw_ns
            hit = in_windows(end, bounds)
            series.append(meter[hit].astype(np.int64) * 2 + reg[hit])
            stamps.append(end[hit])
        return np.concatenate(series), np.concatenate(stamps)


def _local_time_quarantine(
    rows: _Piece, wall_end: np.ndarray, ids: np.ndarray, reason: Reason, detail: str, table: str
) -> pd.DataFrame:
    """Quarantine ``rows`` whose wall-clock interval ends as stored (``wall_end``) have no UTC
    instant: no timestamp; located by their historian key."""
    obis = np.where(rows.register == 1, f".{TAG_EXPORT}", f".{TAG_IMPORT}")
    tags = ids[rows.meter] + obis
    stamps = pd.DatetimeIndex(wall_end.view("datetime64[ns]")).strftime(_KEY_TIME)
    keys = [f"{table}[tagname={t!r}, timestamp={x!r}]" for t, x in zip(tags, stamps, strict=True)]
    return quarantine_frame(
        meter_id=ids[rows.meter],
        timestamp=np.full(len(wall_end), np.datetime64("NaT"), "M8[ns]"),
        source=SOURCE_SQL,
        original_value=rows.energy_wh,
        new_value=np.nan,
        action=Action.DROPPED,
        reason=reason,
        detail=detail,
        register=np.where(rows.register == 1, EXPORT, IMPORT).astype(object),
        location=np.array(keys, dtype=object),
    )


def historian_locator(table: str, raw_interval_min: int, timezone: str = "UTC") -> Locator:
    """Location of readings as the historian key: ``table[tagname='M1.1.8.0', timestamp='..']``
    (the interval END as the historian stamps it: wall-clock time in ``timezone``; a time of
    the repeated autumn hour adds ``occurrence=1`` (summer time) or ``2``)."""
    shift = pd.Timedelta(minutes=raw_interval_min)

    def locate(rows: pd.DataFrame) -> np.ndarray:
        obis = np.where(rows["register"].astype(object) == EXPORT, TAG_EXPORT, TAG_IMPORT)
        tags = rows["meter_id"].astype(object).to_numpy() + "." + obis
        ends = rows["timestamp"] + shift
        if timezone == "UTC":
            stamps = ends.dt.strftime(f"'{_KEY_TIME}']").to_numpy(str)
        else:
            stamps = _wall_keys(ends, timezone)
        return np.array(
            [f"{table}[tagname={t!r}, timestamp={x}" for t, x in zip(tags, stamps, strict=True)],
            dtype=object,
        )

    return locate


def _wall_keys(ends: pd.Series, timezone: str) -> np.ndarray:
    """``'<wall-clock time>']`` of UTC interval ends in ``timezone``, with ``, occurrence=N``
    before the bracket for a time of the repeated autumn hour (1: summer time, 2: standard)."""
    wall = ends.dt.tz_convert(timezone).dt.tz_localize(None)
    text = wall.dt.strftime(f"'{_KEY_TIME}'").to_numpy(str)
    n = len(wall)
    strict = wall.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    summer = wall.dt.tz_localize(timezone, ambiguous=np.ones(n, bool), nonexistent="NaT")
    repeated = (strict.isna() & summer.notna()).to_numpy()
    second = repeated & (summer != ends).to_numpy()
    suffix = np.where(repeated, np.where(second, ", occurrence=2]", ", occurrence=1]"), "]")
    return np.char.add(text, suffix)
