"""Reading documents as the store holds them -> a typed documents table, nothing guessed.

Values stored with a drifted type are read when that is unambiguous and the reading is
recorded as ``coerced_value`` (action corrected; detail says what was read how): numbers as
text (``'1234.5'``, decimal comma ``'1,5'``; ``'1,234'`` is ambiguous and not read), read times
as ISO 8601 text (naive = UTC) or epoch milliseconds, integer meter ids.
What cannot be read is marked per document (``issue``/``issue_detail``) and both its register
readings are quarantined: ``missing_key`` (meter id or read time missing or unreadable; detail
lists the document's fields; never filled from a neighbour), ``malformed_value`` (register text
that is not a number; raw text in detail), ``malformed_row`` (register of another type),
``missing_value`` (a register missing; detail lists the document's fields).

A required field (:data:`REQUIRED_FIELDS`) without a value in every document of a read is not a
damaged document but a schema change (a renamed or removed field): :func:`require_fields`
fails in one line naming the field and the fields found instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from meterflow.errors import SourceError
from meterflow.etl.coerce import read_number_text
from meterflow.etl.quarantine import Reason
from meterflow.etl.readings import EXPORT, IMPORT

REGISTER_COLUMNS = {IMPORT: "import_kwh", EXPORT: "export_kwh"}
REQUIRED_FIELDS = ("meter_id", "ts", *REGISTER_COLUMNS.values())
ISSUE_COLUMNS = ("issue", "issue_detail", "coercions")
FieldsOf = Callable[[np.ndarray], np.ndarray]
"""Positions of documents -> the names of the fields each document has (``"a, b, c"``)."""

COERCION_SEP = "; "  # between the entries of ``coercions`` (each starts with its field name)
_FIELDS_MARK = "; fields: "  # ends the detail of a missing field: the fields the document has
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


def _join(a: np.ndarray, b: np.ndarray, sep: str = COERCION_SEP) -> np.ndarray:
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
    value, problem = read_number_text(text)
    if problem:
        return np.nan, f"{name} {_raw(text)} {problem}", ""
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
        return np.array(
            [", ".join(c for c, p in zip(cols, row, strict=True) if p) for row in present],
            dtype=object,
        )

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


def _registers(
    raw: pd.DataFrame, out: pd.DataFrame, issue: np.ndarray, detail: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Read the register fields into ``out``; their first problem recorded in ``issue`` and
    ``detail`` where none is yet. Returns (coercions, missing): ``missing`` names the missing
    registers of each document (``"import_kwh missing"``; empty where none or where the document
    has another issue)."""
    n = len(raw)
    coercions, absent = _texts(n), []
    for name in REGISTER_COLUMNS.values():
        values, r_issue, r_detail, r_coerced = _register(name, raw.get(name), n)
        first = (r_issue != "") & (issue == "")
        issue[first], detail[first] = r_issue[first], r_detail[first]
        out[name] = values
        coercions = _join(coercions, r_coerced)
        absent.append(np.where(np.isnan(values) & (r_issue == ""), name, "").astype(object))
    missing = _join(*absent, sep=" and ")
    missing = np.where((missing != "") & (issue == ""), missing + " missing", "").astype(object)
    return coercions, missing


def normalize_documents(
    raw: pd.DataFrame, *, extra: Sequence[str] = (), fields_of: FieldsOf | None = None
) -> pd.DataFrame:
    """Typed documents table (Parquet-writable): ``_id`` text, ``meter_id`` text, ``ts`` UTC,
    registers and ``extra`` numeric fields as floats, plus ``issue`` (reason code or empty),
    ``issue_detail`` and ``coercions`` (see module docstring); ``context`` is kept.

    ``fields_of`` names the fields of documents missing a required field or holding no usable
    meter id or read time (for the detail; default: the columns of ``raw`` holding a value).
    Idempotent: an issue already recorded in ``raw`` is kept, coercions are added to those
    recorded.
    """
    n = len(raw)
    mid, m_problem, m_coerced = _meter_ids(raw.get("meter_id"), n)
    ts, t_problem, t_coerced = _times(raw.get("ts"), n)
    detail = _join(m_problem, t_problem, ", ")
    issue = np.where(detail != "", str(Reason.MISSING_KEY), "").astype(object)
    out = pd.DataFrame({"_id": _ids(raw.get("_id"), n), "meter_id": mid})
    out["ts"] = pd.DatetimeIndex(ts).tz_localize("UTC")
    listed = issue != ""  # details that end with the document's fields
    r_coerced, missing = _registers(raw, out, issue, detail)
    coercions = _join(_join(m_coerced, t_coerced), r_coerced)
    issue[missing != ""], detail[missing != ""] = str(Reason.MISSING_VALUE), missing[missing != ""]
    listed |= missing != ""
    for name in extra:
        c = raw.get(name)
        vals = np.full(n, np.nan) if c is None else pd.to_numeric(c, errors="coerce")
        out[name] = np.asarray(vals, dtype=np.float64)
    before = raw["issue"].fillna("").astype(str).to_numpy(object) if "issue" in raw else None
    if before is not None:  # normalised before: keep what was found then
        kept = before != ""
        listed &= ~kept
        issue[kept] = before[kept]
        detail[kept] = raw["issue_detail"].fillna("").astype(str).to_numpy(object)[kept]
        coercions = _join(raw["coercions"].fillna("").astype(str).to_numpy(object), coercions)
    pos = np.flatnonzero(listed)
    if len(pos):
        detail[pos] = detail[pos] + _FIELDS_MARK + (fields_of or _present_fields(raw))(pos)
    out["issue"], out["issue_detail"], out["coercions"] = issue, detail, coercions
    if "context" in raw:
        out["context"] = raw["context"].to_numpy(bool)
    return out


class FieldPresence:
    """Which :data:`REQUIRED_FIELDS` hold a value in some document of a read, and the fields the
    documents have, gathered over the blocks of a read (normalised documents, any order)."""

    def __init__(self) -> None:
        self.documents = 0
        self.present: set[str] = set()
        self.listed: dict[str, None] = {}  # fields named in details of missing fields
        self.valued: dict[str, None] = {}  # columns holding a value

    def add(self, documents: pd.DataFrame) -> None:
        """Count in one block of documents."""
        self.documents += len(documents)
        self.present |= {
            f for f in REQUIRED_FIELDS if f in documents and documents[f].notna().any()
        }
        details = documents["issue_detail"].fillna("").astype(str)
        lists = details[details.str.contains(_FIELDS_MARK, regex=False)].unique()
        self.listed |= dict.fromkeys(
            f for d in lists for f in d.split(_FIELDS_MARK, 1)[1].split(", ") if f
        )
        cols = [c for c in documents.columns if c not in (*ISSUE_COLUMNS, "context")]
        self.valued |= dict.fromkeys(c for c in cols if documents[c].notna().any())

    def found(self) -> list[str]:
        """The fields named in the details of documents missing a field, in order of first
        appearance; without any, the columns holding a value."""
        return list(self.listed or self.valued)

    def check(self, *, where: str, source: str) -> None:
        """Raise SourceError (one line) when a required field holds no value in any document
        counted in (see :func:`require_fields`)."""
        missing = [f for f in REQUIRED_FIELDS if f not in self.present]
        if not (self.documents and missing):
            return
        several = len(missing) > 1
        raise SourceError(
            f"required field{'s' if several else ''} {', '.join(missing)} "
            f"{'are' if several else 'is'} missing from all {self.documents} documents of "
            f"{where} (renamed or removed?); fields found instead: "
            f"{', '.join(self.found()) or 'none'}",
            source=source,
        )


def require_fields(documents: pd.DataFrame, *, where: str, source: str) -> None:
    """Raise SourceError (one line) when a :data:`REQUIRED_FIELDS` field holds no value in any
    of ``documents`` (normalised; a missing column counts as empty): a renamed or removed field
    is a schema change, not a damaged document. The message names the fields found instead."""
    presence = FieldPresence()
    presence.add(documents)
    presence.check(where=where, source=source)


def read_times_of(documents: pd.DataFrame) -> np.ndarray:
    """The read time (UTC, naive datetime64) each document has once normalised (NaT where it
    has none), without normalising the rest."""
    return _times(documents.get("ts"), len(documents))[0]


def meter_ids_of(documents: pd.DataFrame) -> pd.Series:
    """The meter id each document has once normalised (text, integer ids read as text; missing
    where it has none), without normalising the rest; a text column stays compact."""
    col = documents.get("meter_id")
    if col is not None and pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
        return col.where(col.str.strip() != "").reset_index(drop=True)
    return pd.Series(_meter_ids(col, len(documents))[0], dtype=object)


DocumentLocator = Callable[[np.ndarray], np.ndarray]
"""Positions of documents -> where each sits in its store (text)."""


def document_locator(
    documents: pd.DataFrame, collection: str | None = None, rows: np.ndarray | None = None
) -> DocumentLocator:
    """Where documents sit: ``<collection>/_id=<id>`` (``documents/_id=<id>`` without a
    collection name), ``documents row N`` for a document without ``_id`` (N: its position, or
    its entry of ``rows`` for a block of a larger table); computed on demand (for the
    quarantined documents only)."""
    ids = documents.get("_id")
    prefix = f"{collection or 'documents'}/_id="

    def locate(pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        named = pos if rows is None else np.asarray(rows, np.int64)[pos]
        rows_text = np.char.add("documents row ", named.astype(str)).astype(object)
        if ids is None:
            return rows_text
        found = _ids(ids.iloc[pos], len(pos))
        has = np.array([v is not None for v in found], dtype=bool)
        return np.where(has, np.char.add(prefix, found.astype(str)).astype(object), rows_text)

    return locate
