"""Cumulative registers (one document per meter and read) -> interval energy readings.

**Documents** are first normalised (:func:`normalize_documents`): values stored with a drifted
type are read when that is unambiguous and the reading is recorded as ``coerced_value``
(action corrected; detail says what was read how): numbers as text (``'1234.5'``, decimal comma
``'1,5'``; ``'1,234'`` is ambiguous and not read), read times as ISO 8601 text (naive = UTC) or
epoch milliseconds, integer meter ids.
What cannot be read is marked per document (``issue``/``issue_detail``) and both its register
readings are quarantined: ``missing_key`` (meter id or read time missing or unreadable; detail
lists the document's fields; never filled from a neighbour), ``malformed_value`` (register text
that is not a number; raw text in detail), ``malformed_row`` (register of another type).

**Differencing**: per meter, documents are sorted by read time ``ts`` (the END of the interval);
each register value is differenced against the previous usable read of the same meter, so a
reading starts at the previous read and spans ``(ts - ts_prev) / raw interval`` intervals (> 1
across missing documents; the shared gap filling spreads it, conserving energy).

Per register, a negative difference is never passed on as energy:

- **glitch**: one read off its trend and back at the next read (a dip ``v[i] < v[i-1] <=
  v[i+1]`` or a spike ``v[i] > v[i+1] >= v[i-1]``) -> read ``i`` is ignored for that register
  (its interval reading quarantined as ``counter_glitch``) and read ``i+1`` is differenced
  against read ``i-1`` (span 2), so the glitch neither loses nor creates energy;
- **rollover**: the register wrapped at ``rollover_wh`` and the wrapped difference fits the
  contract for the span -> reconstructed (action corrected, reason ``counter_rollover``);
- **reset** (meter replaced, register restarts near 0): the new value fits the contract for the
  span -> the interval is quarantined (``counter_reset``): when in it the new meter started is
  unknown. The next interval is differenced against the new register, so nothing else is lost;
- any other decrease -> quarantined (``counter_decrease``), differencing continues from the new
  value. Too large positive jumps are left to the shared outlier rule.

Document-level problems quarantine both registers' readings: the issues above, missing values
(``missing_value``), unknown meter, off-grid read time, duplicates (exact or conflicting,
resolved against the neighbouring reads). The first usable document of a meter has no
predecessor (``counter_baseline``) unless ``context`` documents (already loaded by an earlier
run) precede it; context documents are used for differencing only and never counted. Every
quarantine row carries the document's location (``<collection>/_id=<id>``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.errors import SourceError
from meterflow.etl.config import CleaningConfig
from meterflow.etl.duplicates import resolve_duplicates
from meterflow.etl.quarantine import Reason, concat_quarantine, quarantine_frame
from meterflow.etl.readings import EXPORT, IMPORT, make_readings
from meterflow.schemas import Action

REGISTER_COLUMNS = {IMPORT: "import_kwh", EXPORT: "export_kwh"}
ISSUE_COLUMNS = ("issue", "issue_detail", "coercions")
FieldsOf = Callable[[np.ndarray], np.ndarray]
"""Positions of documents -> the names of the fields each document has (``"a, b, c"``)."""

_SEP = "; "  # between the entries of ``coercions`` (each starts with its field name)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2},\d{3}")  # '1,234': decimal or thousands separator?
_EPOCH_MS = (1e11, 1e14)  # 1973 .. 5138 in milliseconds (seconds would be 1e9 .. 1e10)
_MISSING, _NUM, _TEXT, _TIME, _OTHER = range(5)
_INFERRED = {
    "empty": _MISSING, "floating": _NUM, "integer": _NUM, "mixed-integer-float": _NUM,
    "string": _TEXT, "datetime": _TIME, "datetime64": _TIME,
}  # fmt: skip


def _kind(v: object) -> int:
    if v is None:
        return _MISSING
    if isinstance(v, str):
        return _TEXT
    if isinstance(v, bool | np.bool_ | int | np.integer):
        return _NUM  # booleans count as 0/1, as the typed (pymongoarrow) read converts them
    if isinstance(v, float | np.floating):
        return _MISSING if v != v else _NUM
    if isinstance(v, dt.datetime | np.datetime64):
        return _MISSING if pd.isna(v) else _TIME
    if hasattr(v, "to_decimal"):  # bson Decimal128
        return _NUM
    return _OTHER


def _classify(col: pd.Series) -> np.ndarray:
    """Kind of each value; typed columns without a Python loop."""
    dtype = col.dtype
    if dtype is not np.dtype(object):
        kind = None
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            kind = _NUM
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            kind = _TIME
        elif pd.api.types.is_string_dtype(dtype):
            kind = _TEXT
    else:  # object columns of one type (the usual case) without a loop either
        kind = _INFERRED.get(pd.api.types.infer_dtype(col, skipna=True))
    if kind is not None:
        return np.where(col.isna().to_numpy(), _MISSING, kind).astype(np.int8)
    return np.fromiter(map(_kind, col.to_numpy(object)), np.int8, len(col))


def _raw(v: object) -> str:
    """A stored value as it appears in details (text quoted, cut at 60 characters)."""
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(a: np.ndarray, b: np.ndarray, sep: str = _SEP) -> np.ndarray:
    """Element-wise ``a + sep + b`` of text arrays, leaving out empty parts."""
    a_empty, b_empty = a == "", b == ""
    if b_empty.all():
        return a
    if a_empty.all():
        return b
    return np.where(a_empty, b, np.where(b_empty, a, a + sep + b)).astype(object)


def _texts(n: int) -> np.ndarray:
    return np.full(n, "", dtype=object)


def _meter_ids(col: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(meter id text or None, problem, coercion) per document; integer ids read as text."""
    out, problem, coerced = np.full(n, None, dtype=object), _texts(n), _texts(n)
    if col is None:
        problem[:] = "meter_id missing"
        return out, problem, coerced
    kinds, values = _classify(col), col.to_numpy(object)
    text = np.flatnonzero(kinds == _TEXT)
    out[text] = values[text]
    ids = pd.Series(values[text], dtype=object)
    blank_ids = [u for u in ids.unique() if not u.strip()]  # few distinct ids: no loop over all
    blank = text[ids.isin(blank_ids).to_numpy(bool)] if blank_ids else text[:0]
    out[blank] = None
    problem[kinds == _MISSING] = "meter_id missing"
    problem[blank] = "meter_id blank"
    for i in np.flatnonzero((kinds != _TEXT) & (kinds != _MISSING)):
        v = values[i]
        if isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
            out[i] = str(int(v))
            coerced[i] = f"meter_id {v} read as '{out[i]}'"
        else:
            problem[i] = f"meter_id {_raw(v)} is not a meter id"
    return out, problem, coerced


def _times(col: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(read time as UTC datetime64[ns], problem, coercion) per document."""
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    problem, coerced = _texts(n), _texts(n)
    if col is None:
        problem[:] = "ts missing"
        return out, problem, coerced
    kinds = _classify(col)
    problem[kinds == _MISSING] = "ts missing"
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        ts = pd.DatetimeIndex(col)
        ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
        return ts.tz_localize(None).as_unit("ns").to_numpy(), problem, coerced
    values = col.to_numpy(object)
    t = np.flatnonzero(kinds == _TIME)
    if len(t):
        out[t] = _naive_utc(pd.to_datetime(pd.Series(values[t], dtype=object), utc=True))
    text = np.flatnonzero(kinds == _TEXT)
    if len(text):
        raw = pd.Series(values[text], dtype=object)
        ts = pd.to_datetime(raw.str.strip(), format="ISO8601", utc=True, errors="coerce")
        ok = ts.notna().to_numpy()
        out[text[ok]] = _naive_utc(ts[ok])
        read = ts[ok].map(pd.Timestamp.isoformat).to_numpy(object)
        coerced[text[ok]] = [
            f"ts {_raw(v)} read as {r}" for v, r in zip(raw[ok], read, strict=True)
        ]
        problem[text[~ok]] = [f"ts {_raw(v)} is not an ISO 8601 time" for v in raw[~ok]]
    for i in np.flatnonzero((kinds == _NUM) | (kinds == _OTHER)):
        v = values[i]
        if _whole_number(v) and _EPOCH_MS[0] <= v < _EPOCH_MS[1]:
            stamp = pd.Timestamp(int(v), unit="ms", tz="UTC")
            out[i] = stamp.tz_localize(None).as_unit("ns").to_datetime64()
            coerced[i] = f"ts {v} read as {stamp.isoformat()} (epoch milliseconds)"
        else:
            problem[i] = f"ts {_raw(v)} is not a time in epoch milliseconds"
    return out, problem, coerced


def _whole_number(v: object) -> bool:
    """An integer, or a float without fraction (JavaScript writers store epochs as doubles)."""
    if isinstance(v, bool | np.bool_):
        return False
    return isinstance(v, int | np.integer) or (isinstance(v, float | np.floating) and v % 1 == 0)


def _naive_utc(ts: pd.Series) -> np.ndarray:
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns").to_numpy()


def _number_text(name: str, text: str) -> tuple[float, str, str]:
    """(value, problem, coercion) of a register stored as text."""
    s = text.strip()
    if _NUMBER.fullmatch(s):
        value = float(s)
    elif _DECIMAL_COMMA.fullmatch(s) and not _THOUSANDS.fullmatch(s):
        value = float(s.replace(",", "."))
    elif _THOUSANDS.fullmatch(s):
        return np.nan, f"{name} {_raw(text)} is ambiguous (decimal or thousands separator)", ""
    else:
        return np.nan, f"{name} {_raw(text)} is not a number", ""
    return value, "", f"{name} {_raw(text)} read as {value!r}"


def _register(
    name: str, col: pd.Series | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(value kWh, issue, issue detail, coercion) per document; a missing value stays NaN."""
    values, issue, detail, coerced = np.full(n, np.nan), _texts(n), _texts(n), _texts(n)
    if col is None:
        return values, issue, detail, coerced
    kinds = _classify(col)
    if not ((kinds == _TEXT) | (kinds == _OTHER)).any():
        try:
            return col.to_numpy(np.float64, na_value=np.nan), issue, detail, coerced
        except (TypeError, ValueError):
            pass  # bson Decimal128 values: read one by one below
    raw = col.to_numpy(object)
    num = np.flatnonzero(kinds == _NUM)
    values[num] = [
        float(v.to_decimal()) if hasattr(v, "to_decimal") else float(v) for v in raw[num]
    ]
    for i in np.flatnonzero(kinds == _TEXT):
        values[i], detail[i], coerced[i] = _number_text(name, raw[i])
        issue[i] = str(Reason.MALFORMED_VALUE) if detail[i] else ""
    other = np.flatnonzero(kinds == _OTHER)
    issue[other] = str(Reason.MALFORMED_ROW)
    detail[other] = [f"{name} of type {type(v).__name__} is not a number" for v in raw[other]]
    return values, issue, detail, coerced


def _present_fields(raw: pd.DataFrame) -> FieldsOf:
    """The default :data:`FieldsOf`: the frame's columns that hold a value in each row."""
    cols = [c for c in raw.columns if c not in (*ISSUE_COLUMNS, "context")]

    def fields_of(pos: np.ndarray) -> np.ndarray:
        present = raw.iloc[pos][cols].notna().to_numpy()
        return np.array([", ".join(c for c, p in zip(cols, row, strict=True) if p)
                         for row in present], dtype=object)  # fmt: skip

    return fields_of


def _ids(col: pd.Series | None, n: int) -> np.ndarray:
    """Document ``_id`` as text (None when absent)."""
    if col is None:
        return np.full(n, None, dtype=object)
    values = col.to_numpy(object)
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype is not np.dtype(object):
        return np.where(col.isna().to_numpy(), None, values).astype(object)
    na = pd.isna(values)
    out = np.full(n, None, dtype=object)
    out[~na] = [v if isinstance(v, str) else str(v) for v in values[~na]]
    return out


def normalize_documents(
    raw: pd.DataFrame, *, extra: Sequence[str] = (), fields_of: FieldsOf | None = None
) -> pd.DataFrame:
    """Typed documents table (Parquet-writable): ``_id`` text, ``meter_id`` text, ``ts`` UTC,
    registers and ``extra`` numeric fields as floats, plus ``issue`` (reason code or empty),
    ``issue_detail`` and ``coercions`` (see module docstring); ``context`` is kept.

    ``fields_of`` names the fields of documents without a usable meter id or read time (for the
    detail; default: the columns of ``raw`` holding a value). Idempotent: an issue already
    recorded in ``raw`` is kept, coercions are added to those recorded.
    """
    n = len(raw)

    def col(name: str) -> pd.Series | None:
        return raw.get(name)

    mid, m_problem, m_coerced = _meter_ids(col("meter_id"), n)
    ts, t_problem, t_coerced = _times(col("ts"), n)
    issue, detail = _texts(n), _texts(n)
    key_problem = _join(m_problem, t_problem, ", ")
    bad = np.flatnonzero(key_problem != "")
    if len(bad):
        fields = (fields_of or _present_fields(raw))(bad)
        issue[bad] = str(Reason.MISSING_KEY)
        detail[bad] = key_problem[bad] + "; fields: " + fields.astype(object)
    out = pd.DataFrame({"_id": _ids(col("_id"), n), "meter_id": mid})
    out["ts"] = pd.DatetimeIndex(ts).tz_localize("UTC")
    coercions = _join(m_coerced, t_coerced)
    for name in REGISTER_COLUMNS.values():
        values, r_issue, r_detail, r_coerced = _register(name, col(name), n)
        first = (r_issue != "") & (issue == "")
        issue[first], detail[first] = r_issue[first], r_detail[first]
        out[name] = values
        coercions = _join(coercions, r_coerced)
    for name in extra:
        c = col(name)
        vals = np.full(n, np.nan) if c is None else pd.to_numeric(c, errors="coerce")
        out[name] = np.asarray(vals, dtype=np.float64)
    if "issue" in raw:  # normalised before: keep what was found then
        before = raw["issue"].fillna("").astype(str).to_numpy(object)
        kept = before != ""
        issue[kept] = before[kept]
        detail[kept] = raw["issue_detail"].fillna("").astype(str).to_numpy(object)[kept]
        coercions = _join(raw["coercions"].fillna("").astype(str).to_numpy(object), coercions)
    out["issue"], out["issue_detail"], out["coercions"] = issue, detail, coercions
    if "context" in raw:
        out["context"] = raw["context"].to_numpy(bool)
    return out


DocumentLocator = Callable[[np.ndarray], np.ndarray]
"""Positions of documents -> where each sits in its store (text)."""


def document_locator(documents: pd.DataFrame, collection: str | None = None) -> DocumentLocator:
    """Where documents sit: ``<collection>/_id=<id>`` (``documents/_id=<id>`` without a
    collection name), ``documents row N`` for a document without ``_id``; computed on demand
    (for the quarantined documents only)."""
    ids = documents.get("_id")
    prefix = f"{collection or 'documents'}/_id="

    def locate(pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        rows = np.char.add("documents row ", pos.astype(str)).astype(object)
        if ids is None:
            return rows
        found = _ids(ids.iloc[pos], len(pos))
        has = np.array([v is not None for v in found], dtype=bool)
        return np.where(has, np.char.add(prefix, found.astype(str)).astype(object), rows)

    return locate


@dataclass
class _Docs:
    """Per-document arrays of one translation."""

    mid: np.ndarray
    t_ns: np.ndarray
    bad_ts: np.ndarray
    regs: dict[str, np.ndarray]  # Wh
    code: np.ndarray  # position in the meters table, -1 unknown
    ctx: np.ndarray
    locate: DocumentLocator
    issue: np.ndarray
    issue_detail: np.ndarray
    coercions: np.ndarray


def _doc_arrays(docs: pd.DataFrame, meters: pd.DataFrame, locate: DocumentLocator) -> _Docs:
    n = len(docs)
    mid = docs["meter_id"].astype(object).to_numpy()
    ts = pd.to_datetime(docs["ts"], utc=True, errors="coerce")
    known = pd.Index(meters["meter_id"].astype(str))
    return _Docs(
        mid=mid,
        t_ns=ts.to_numpy("datetime64[ns]").view(np.int64),
        bad_ts=ts.isna().to_numpy(),
        regs={r: 1000 * docs[c].to_numpy(np.float64) for r, c in REGISTER_COLUMNS.items()},
        code=pd.Categorical(mid, categories=known).codes.astype(np.int64),
        ctx=docs["context"].to_numpy(bool) if "context" in docs else np.zeros(n, bool),
        locate=locate,
        issue=docs["issue"].fillna("").astype(str).to_numpy(object),
        issue_detail=docs["issue_detail"].fillna("").astype(str).to_numpy(object),
        coercions=docs["coercions"].fillna("").astype(str).to_numpy(object),
    )


class _Rows:
    """Collects the adapter's quarantine rows (context documents are never listed)."""

    def __init__(self, d: _Docs, source: str, raw_ns: int) -> None:
        self.d, self.source, self.raw_ns = d, source, raw_ns
        self.parts: list[pd.DataFrame] = []

    def add(
        self,
        docs: np.ndarray,
        stamp_ns: np.ndarray,
        register: str,
        values: tuple[np.ndarray | float, np.ndarray | float],
        action: Action,
        reason: Reason,
        detail: str | np.ndarray,
    ) -> None:
        """Rows for the ``register`` readings of documents ``docs``: interval start ``stamp_ns``,
        ``values`` = (original, new) in signed Wh."""
        keep = ~self.d.ctx[docs]
        if not keep.any():
            return
        n = len(docs)
        original, new = (np.broadcast_to(np.asarray(v, dtype=float), n)[keep] for v in values)
        self.parts.append(
            quarantine_frame(
                meter_id=self.d.mid[docs[keep]], timestamp=np.asarray(stamp_ns)[keep],
                source=self.source, original_value=original, new_value=new, action=action,
                reason=reason, detail=detail if isinstance(detail, str) else detail[keep],
                register=register, location=self.d.locate(docs[keep]),
            )
        )  # fmt: skip

    def drop_docs(self, docs: np.ndarray, reason: Reason, detail: str | np.ndarray) -> None:
        """Both register readings of documents ``docs`` dropped."""
        missing = np.iinfo(np.int64).min  # NaT: the document has no usable read time
        stamp = np.where(self.d.bad_ts[docs], missing, self.d.t_ns[docs] - self.raw_ns)
        for r, sign in ((IMPORT, 1.0), (EXPORT, -1.0)):
            value = sign * self.d.regs[r][docs]
            self.add(docs, stamp, r, (value, np.nan), Action.DROPPED, reason, detail)


def _document_rules(d: _Docs, rows: _Rows, raw_ns: int) -> np.ndarray:
    """Quarantine documents that cannot give readings; return the mask of the others."""
    n = len(d.mid)
    alive = np.ones(n, dtype=bool)
    for code in pd.unique(d.issue[d.issue != ""]):
        hit = np.flatnonzero(d.issue == code)
        rows.drop_docs(hit, Reason(code), d.issue_detail[hit])
        alive[hit] = False
    no_imp, no_exp = ~np.isfinite(d.regs[IMPORT]), ~np.isfinite(d.regs[EXPORT])
    rules = [
        (d.bad_ts | pd.isna(d.mid), Reason.MISSING_KEY, "read time or meter missing"),
        (d.code < 0, Reason.UNKNOWN_METER, "meter not in the meters table"),
        (no_imp | no_exp, Reason.MISSING_VALUE, None),
        (d.t_ns % raw_ns != 0, Reason.OFF_GRID, "read not on the raw interval grid"),
    ]
    for mask, reason, detail in rules:
        hit = np.flatnonzero(mask & alive)
        if detail is None:  # which registers are missing
            names = np.where(no_imp[hit], REGISTER_COLUMNS[IMPORT], "").astype(object)
            both = np.where(no_imp[hit] & no_exp[hit], " and ", "").astype(object)
            names = names + both + np.where(no_exp[hit], REGISTER_COLUMNS[EXPORT], "")
            detail = (names + " missing").astype(object)
        rows.drop_docs(hit, reason, detail)
        alive[hit] = False
    return alive


def _usable_sequence(d: _Docs, alive: np.ndarray, rows: _Rows, raw_ns: int):
    """Usable documents sorted by (meter, ts) without duplicates, and the first of each meter
    (the baseline, quarantined unless it is context)."""
    pos = np.flatnonzero(alive)
    pos = pos[np.lexsort((d.t_ns[pos], d.code[pos]))]
    vals = np.stack([d.regs[IMPORT][pos], d.regs[EXPORT][pos]], axis=1)
    exact, conflicting, chosen = resolve_duplicates(d.code[pos], d.t_ns[pos] // raw_ns, vals)
    rows.drop_docs(pos[exact], Reason.DUPLICATE, "document repeated with the same registers")
    rows.drop_docs(
        pos[conflicting], Reason.CONFLICTING_DUPLICATE,
        np.char.add("kept import_kwh ", (vals[chosen, 0] / 1000).astype(str)).astype(object),
    )  # fmt: skip
    keep = np.ones(len(pos), dtype=bool)
    keep[exact] = keep[conflicting] = False
    pos = pos[keep]
    first = np.r_[True, d.code[pos][1:] != d.code[pos][:-1]]
    rows.drop_docs(pos[first], Reason.COUNTER_BASELINE, "first register read of the meter")
    return pos, first


def _glitches(v: np.ndarray, first: np.ndarray, tol: float) -> np.ndarray:
    """Reads off their trend and back at the next read of the same meter (dip or spike)."""
    g = np.zeros(len(v), dtype=bool)
    if len(v) < 3:
        return g
    prev, mid, nxt = v[:-2], v[1:-1], v[2:]
    interior = ~first[1:-1] & ~first[2:]
    back = nxt - prev >= -tol  # the next read is at or above the one before the glitch
    g[1:-1] = interior & back & ((mid - prev < -tol) | (mid - nxt > tol))
    return g


def _kwh(wh: np.ndarray) -> np.ndarray:
    return np.round(wh / 1000, 6).astype(str)


@dataclass(frozen=True)
class _Limits:
    per_interval_wh: np.ndarray  # contract bound of one interval, per meter
    tol_wh: float
    rollover_wh: float


def _register_readings(
    d: _Docs, pos: np.ndarray, first: np.ndarray, r: str, lim: _Limits, rows: _Rows,
    raw_ns: int, source: str,
) -> pd.DataFrame:  # fmt: skip
    """Readings of register ``r`` from the usable sequence (glitches, rollovers, resets and
    decreases handled as in the module docstring)."""
    sign = 1.0 if r == IMPORT else -1.0
    v = d.regs[r][pos]
    glitch = _glitches(v, first, lim.tol_wh)
    g = np.flatnonzero(glitch)
    detail = np.char.add(
        np.char.add(np.char.add("register ", _kwh(v[g - 1])), np.char.add(" -> ", _kwh(v[g]))),
        np.char.add(" -> ", _kwh(v[g + 1])),
    ).astype(object)
    original = sign * (v[g] - v[g - 1])
    rows.add(pos[g], d.t_ns[pos[g - 1]], r, (original, np.nan), Action.DROPPED,
             Reason.COUNTER_GLITCH, detail)  # fmt: skip
    seq, seq_first = pos[~glitch], first[~glitch]  # a glitch is never the first read
    later = np.flatnonzero(~seq_first)
    cur, before = seq[later], seq[later - 1]
    span = (d.t_ns[cur] - d.t_ns[before]) // raw_ns
    diff = d.regs[r][cur] - d.regs[r][before]
    bound = lim.per_interval_wh[d.code[cur]] * span + lim.tol_wh
    neg = diff < -lim.tol_wh
    wrapped = diff + lim.rollover_wh
    roll = neg & (d.regs[r][before] >= 0.5 * lim.rollover_wh) & (wrapped >= 0) & (wrapped <= bound)
    reset = neg & ~roll & (d.regs[r][cur] <= bound)
    decrease = neg & ~roll & ~reset
    energy = np.where(roll, wrapped, diff)
    for mask, reason, action in (
        (reset, Reason.COUNTER_RESET, Action.DROPPED),
        (decrease, Reason.COUNTER_DECREASE, Action.DROPPED),
        (roll, Reason.COUNTER_ROLLOVER, Action.CORRECTED),
    ):
        h = np.flatnonzero(mask)
        new = sign * wrapped[h] if action == Action.CORRECTED else np.nan
        change = np.char.add(
            np.char.add("register ", _kwh(d.regs[r][before[h]])),
            np.char.add(" -> ", _kwh(d.regs[r][cur[h]])),
        ).astype(object)
        rows.add(cur[h], d.t_ns[before[h]], r, (sign * diff[h], new), action, reason, change)
    ok = np.flatnonzero(~(reset | decrease))
    _coercion_rows(d, cur[ok], d.t_ns[before[ok]], r, sign * energy[ok], rows)
    return make_readings(
        d.mid[cur[ok]], d.t_ns[before[ok]], sign * energy[ok], source=source, register=r,
        span=span[ok].astype(np.int32), row=cur[ok], context=d.ctx[cur[ok]],
    )  # fmt: skip


def _coercion_rows(
    d: _Docs, docs: np.ndarray, stamp_ns: np.ndarray, r: str, energy: np.ndarray, rows: _Rows
) -> None:
    """``coerced_value`` rows for the register ``r`` readings of documents read with a
    coercion of their meter id, read time or this register."""
    name = REGISTER_COLUMNS[r]
    picked, details, own = [], [], []
    for j in np.flatnonzero(d.coercions[docs] != ""):
        parts = [p for p in d.coercions[docs[j]].split(_SEP)
                 if p.split(" ", 1)[0] in ("meter_id", "ts", name)]  # fmt: skip
        if parts:
            picked.append(j)
            details.append(_SEP.join(parts))
            own.append(any(p.startswith(name + " ") for p in parts))
    if not picked:
        return
    j = np.asarray(picked, dtype=np.int64)
    original = np.where(own, np.nan, energy[j])  # a register stored as text had no number
    rows.add(docs[j], stamp_ns[j], r, (original, energy[j]), Action.CORRECTED,
             Reason.COERCED_VALUE, np.asarray(details, dtype=object))  # fmt: skip


def registers_to_readings(
    documents: pd.DataFrame,
    meters: pd.DataFrame,
    config: CleaningConfig,
    *,
    source: str,
    rollover_kwh: float,
    locate: DocumentLocator | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Translate register documents (meter_id, ts UTC, import_kwh, export_kwh, optional
    ``_id``, bool ``context`` and the issue columns of :func:`normalize_documents`; raw documents
    are normalised first) into (readings, adapter quarantine) as in the module docstring.

    ``locate``: where documents sit (default :func:`document_locator`); readings' ``row``
    indexes ``documents``.
    """
    missing = [c for c in ("meter_id", "ts", *REGISTER_COLUMNS.values()) if c not in documents]
    if missing:
        raise SourceError(f"documents lack field(s) {missing}", source=source)
    docs = documents if "issue" in documents else normalize_documents(documents)
    raw_ns = config.raw_interval_min * 60 * 10**9
    docs = docs.reset_index(drop=True)
    d = _doc_arrays(docs, meters, locate or document_locator(docs))
    rows = _Rows(d, source, raw_ns)
    alive = _document_rules(d, rows, raw_ns)
    pos, first = _usable_sequence(d, alive, rows, raw_ns)
    interval_h = config.raw_interval_min / 60
    scale = interval_h * 1000 * (1 + config.outlier_tolerance)
    per_interval = {
        IMPORT: meters["contractual_power_kw"].to_numpy(float) * scale,
        EXPORT: meters["production_kw"].to_numpy(float) * scale,
    }
    parts = []
    for r in (IMPORT, EXPORT):
        lim = _Limits(per_interval[r], config.outlier_abs_tolerance_wh, rollover_kwh * 1000)
        parts.append(_register_readings(d, pos, first, r, lim, rows, raw_ns, source))
    readings = pd.concat(parts, ignore_index=True)
    readings["meter_id"] = pd.Categorical(readings["meter_id"].astype(object))
    readings["register"] = pd.Categorical(
        readings["register"].astype(object), categories=[IMPORT, EXPORT]
    )
    return readings, concat_quarantine(rows.parts)
