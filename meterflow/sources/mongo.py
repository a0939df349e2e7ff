"""MongoDB readings documents -> register differences -> shared cleaning.

One document per meter and read: ``meter_id``, ``ts`` (UTC END of the interval),
``import_kwh``/``export_kwh`` cumulative registers (see ``formats``). Reads go through pymongo
with a projection and a ``find`` time filter (``aggregate`` ``$match`` on datetimes is wrong
on the local wire-protocol server), in batches; ``pymongoarrow`` and plain pymongo are both
available (``method``), the default is the faster one in ``benchmarks/etl_throughput.py``.

Type drift never fails a read: the typed Arrow read raises on the first document of another
type (a number or time stored as text, an epoch time, an integer meter id), and that read is then
redone with pymongo (one warning), which reads values as stored. Both give the same documents
table: what is unambiguous is coerced and recorded (``coercions``), the rest is marked per
document (``issue``, ``issue_detail``) for the ETL to quarantine (see ``etl.counters``), as
are documents missing a required field (meter_id, ts, import_kwh, export_kwh). A required field
with a value in no document of a read nor in the newest documents of the collection is a schema
change (renamed or removed): the read fails in one line naming it and the fields found instead.

Incremental loads: ``since`` is an exclusive lower bound on ``ts`` (the watermark of the last
successful load: ``EtlResult.watermark``). To continue differencing across that boundary,
:func:`read_mongo_previous` fetches the documents already loaded that the new ones need as
context: the last read at or before ``since`` per meter, and, with a ``timezone``, every read
of the local day that ``since`` falls in, so that this day can still become complete.

Late documents (read times at or before the watermark, stored after the load that passed it) are
merged by re-reading whole local days before the watermark: :func:`lookback_since` gives that
earlier ``since``; the load keeps the documents no earlier load loaded and passes the others to
:func:`etl_newmongo` as context, which rebuilds the re-read days without counting them again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from bson import ObjectId
from pymongo.collection import Collection

from meterflow.domain import REGISTER_ROLLOVER_KWH, SOURCE_NEWMONGO
from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig, EtlResult, clean_readings
from meterflow.etl.counters import registers_to_readings
from meterflow.etl.documents import (
    DocumentLocator,
    FieldsOf,
    document_locator,
    normalize_documents,
)
from meterflow.etl.readings import Locator, empty_readings
from meterflow.redact import redact_uri
from meterflow.sources.formats import MONGO_COLLECTION, MONGO_DATABASE, MONGO_FIELDS
from meterflow.sources.mongo_client import SERVER_SELECTION_TIMEOUT_MS, mongo_collection
from meterflow.sources.times import TimeLike, utc_naive

log = logging.getLogger(__name__)

Method = Literal["auto", "arrow", "pymongo"]
DEFAULT_METHOD: Literal["arrow", "pymongo"] = "arrow"
_REGISTERS = ("import_kwh", "export_kwh")
_EXTRA = ("voltage_v", "current_a", "power_w")
_FIELDS = ("_id", *MONGO_FIELDS)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _collection(
    uri: str, database: str, collection: str, timeout_ms: int
) -> contextlib.AbstractContextManager[Collection]:
    """The readings collection (see :func:`~meterflow.sources.mongo_client.mongo_collection`)."""
    return mongo_collection(
        uri, database, collection, source=SOURCE_NEWMONGO, timeout_ms=timeout_ms
    )


def _time_filter(since: pd.Timestamp | None, until: pd.Timestamp | None) -> dict:
    cond: dict = {}
    if since is not None:
        cond["$gt"] = since.to_pydatetime()
    if until is not None:
        cond["$lte"] = until.to_pydatetime()
    return {"ts": cond} if cond else {}


def _meter_filter(meters: Sequence[str] | None) -> dict:
    """``meter_id`` among ``meters``, also where a numeric id is stored as an integer."""
    if meters is None:
        return {}
    ids = [str(m) for m in meters]
    ints = [int(m) for m in ids if m.isdigit() and str(int(m)) == m]
    return {"meter_id": {"$in": ids + ints}}


def _frame(docs: pd.DataFrame, fields_of: FieldsOf | None = None) -> pd.DataFrame:
    """Normalise a documents frame (typed columns, issue columns; see
    :func:`~meterflow.etl.documents.normalize_documents`)."""
    return normalize_documents(docs, extra=_EXTRA, fields_of=fields_of)


def _find_pymongo(coll: Collection, flt: dict, batch_size: int) -> pd.DataFrame:
    """Documents as object columns, values as stored (no type inference across documents)."""
    docs = list(coll.find(flt, dict.fromkeys(MONGO_FIELDS, 1), batch_size=batch_size))
    return pd.DataFrame({f: pd.Series([d.get(f) for d in docs], dtype=object) for f in _FIELDS})


def _hex_ids(column: pa.ChunkedArray) -> np.ndarray:
    """ObjectIds of a pymongoarrow ``_id`` column as 24-digit hex text (vectorised)."""
    arr = column.combine_chunks()
    storage = arr.storage if hasattr(arr, "storage") else arr
    n = len(storage)
    if n == 0:
        return np.array([], dtype=object)
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)
    raw = raw[storage.offset * 12 : (storage.offset + n) * 12].reshape(n, 12)
    digits = np.empty((n, 24), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    return digits.view("S24").ravel().astype(str).astype(object)


def _find_arrow(coll: Collection, flt: dict, batch_size: int) -> pd.DataFrame:
    """Typed read; raises TypeError on the first document of another type than the schema."""
    from pymongoarrow.api import Schema, find_arrow_all
    from pymongoarrow.types import ObjectIdType

    schema = Schema(
        {"_id": ObjectIdType(), "meter_id": pa.string(), "ts": pa.timestamp("ms")}
        | {f: pa.float64() for f in (*_REGISTERS, *_EXTRA)}
    )
    table = find_arrow_all(
        coll, flt, schema=schema, projection=dict.fromkeys(MONGO_FIELDS, 1), batch_size=batch_size
    )
    out = table.drop_columns(["_id"]).to_pandas()
    out.insert(0, "_id", _hex_ids(table.column("_id")))
    return out


def _find(coll: Collection, flt: dict, batch_size: int, method: str) -> pd.DataFrame:
    """Raw documents with ``method``; a typed Arrow read that meets drifted types (a number as
    text, a time as text or epoch, an integer meter id, another ``_id`` type) is redone with
    pymongo, which gives the same documents table."""
    if method != "arrow":
        return _find_pymongo(coll, flt, batch_size)
    try:
        return _find_arrow(coll, flt, batch_size)
    except (TypeError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        log.warning(
            "newmongo: %s holds documents of other types than expected (%s); "
            "reading them with pymongo instead of pymongoarrow",
            coll.full_name,
            exc,
        )
        return _find_pymongo(coll, flt, batch_size)


def _fields_of(coll: Collection, ids: pd.Series) -> FieldsOf:
    """A :data:`FieldsOf` that asks the server which fields documents have (the reads project
    the known fields only)."""

    def fields_of(pos: np.ndarray) -> np.ndarray:
        stored = [ids.iloc[i] for i in pos]
        query = [
            *stored,
            *(ObjectId(v) for v in stored if isinstance(v, str) and ObjectId.is_valid(v)),
        ]
        names: dict[str, str] = {}
        for start in range(0, len(query), 1000):
            for doc in coll.find({"_id": {"$in": query[start : start + 1000]}}):
                names[str(doc["_id"])] = ", ".join(doc)
        return np.array([names.get(str(v), "(document gone)") for v in stored], dtype=object)

    return fields_of


_REQUIRED = ("meter_id", "ts", *_REGISTERS)
_NEWEST = 100  # newest documents checked for the required fields on every read


def _require_fields(coll: Collection, raw: pd.DataFrame) -> None:
    """Fail in one line when a required field holds a value neither in any document read nor
    in any of the newest documents of the collection (a renamed or removed field: a schema
    change, which a read filtered on ``ts`` or ``meter_id`` cannot even see), naming the fields
    found instead. Documents that lack it among others are quarantined per document
    (``etl.documents``)."""
    newest = list(coll.find({}, sort=[("_id", -1)], limit=_NEWEST))
    if not newest:
        return
    missing = [
        f for f in _REQUIRED if not raw[f].notna().any() and all(d.get(f) is None for d in newest)
    ]
    if missing:
        found = dict.fromkeys(k for d in newest for k in d)
        several = len(missing) > 1
        raise SourceError(
            f"required field{'s' if several else ''} {', '.join(missing)} "
            f"{'are' if several else 'is'} missing from the {len(raw)} document(s) read from "
            f"{coll.full_name} and from its newest {len(newest)} (renamed or removed?); "
            f"fields found instead: {', '.join(found)}",
            source=SOURCE_NEWMONGO,
        )


def _read(
    coll: Collection,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    meter_flt: dict,
    batch_size: int,
    method: str,
) -> pd.DataFrame:
    """Normalised documents with ``lo < ts <= hi``. A time filter matches BSON dates only, so
    with one the read times stored as text or numbers are fetched too and placed after parsing;
    documents without a readable time are then left to a full load (which quarantines them)."""
    raw = _find(coll, _time_filter(lo, hi) | meter_flt, batch_size, method)
    windowed = lo is not None or hi is not None
    if windowed:
        drifted = [
            _find_pymongo(coll, {"ts": {"$type": t}} | meter_flt, batch_size)
            for t in ("string", "number")
        ]
        raw = pd.concat([raw, *drifted], ignore_index=True)
        raw = raw[~raw["_id"].map(str).duplicated()].reset_index(drop=True)
    _require_fields(coll, raw)
    docs = _frame(raw, _fields_of(coll, raw["_id"]))
    if windowed:
        ts = docs["ts"].dt.tz_localize(None)
        inside = ts.notna() & (lo is None or ts > lo) & (hi is None or ts <= hi)
        unplaced = int(docs["ts"].isna().sum())
        if unplaced:
            log.warning(
                "newmongo: %d document(s) of %s without a readable ts are not in any time window; "
                "a full load (since=all) quarantines them",
                unplaced,
                coll.full_name,
            )
        docs = docs[inside.to_numpy()].reset_index(drop=True)
    return docs


def read_mongo_documents(
    uri: str,
    database: str = MONGO_DATABASE,
    collection: str = MONGO_COLLECTION,
    *,
    since: TimeLike = None,
    until: TimeLike = None,
    meters: Sequence[str] | None = None,
    batch_size: int = 10_000,
    method: Method = "auto",
    timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
) -> pd.DataFrame:
    """Documents with ``since < ts <= until`` (UTC; None = unbounded) as a Parquet-writable
    DataFrame: ``_id`` (text), the ``MONGO_FIELDS`` (ts tz-aware UTC, numbers float) and the
    ``issue``/``issue_detail``/``coercions`` of drifted documents (see
    :func:`~meterflow.etl.documents.normalize_documents`); ``attrs["mongo_collection"]`` names the
    collection. An empty selection gives an empty frame (nothing new); an unreachable server or
    a collection without any document raises SourceError."""
    lo, hi = utc_naive(since), utc_naive(until)
    use = DEFAULT_METHOD if method == "auto" else method
    t0 = time.perf_counter()
    with _collection(uri, database, collection, timeout_ms) as coll:
        if coll.find_one({}, {"_id": 1}) is None:
            raise SourceError(
                f"collection {database}.{collection} holds no documents [{redact_uri(uri)}]",
                source=SOURCE_NEWMONGO,
            )
        docs = _read(coll, lo, hi, _meter_filter(meters), batch_size, use)
    docs.attrs["mongo_collection"] = collection
    log.info(
        "newmongo: %d documents (ts in (%s, %s]) via %s in %.1fs; %d with an issue, %d coerced",
        len(docs),
        lo,
        hi,
        use,
        time.perf_counter() - t0,
        int((docs["issue"] != "").sum()),
        int((docs["coercions"] != "").sum()),
    )
    return docs


def lookback_since(watermark: TimeLike, days: int, timezone: str) -> pd.Timestamp:
    """The local midnight that starts the day ``watermark`` falls in, ``days`` calendar days
    earlier, in UTC: the ``since`` of a read that re-reads whole local days before the watermark
    (a watermark on a local midnight falls in the day it starts). Calendar days, so a DST day is
    23 or 25 hours; a midnight that does not exist locally becomes the day's first instant."""
    w = utc_naive(watermark)
    if w is None:
        raise ValueError("lookback_since needs a watermark")
    if days < 0:
        raise ValueError(f"lookback days must be >= 0, got {days}")
    local = w.tz_localize("UTC").tz_convert(timezone).tz_localize(None)
    start = local.normalize() - pd.Timedelta(days=days)  # naive local wall time
    start = start.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
    return start.tz_convert("UTC")


def read_mongo_previous(
    uri: str,
    database: str = MONGO_DATABASE,
    collection: str = MONGO_COLLECTION,
    *,
    since: str | pd.Timestamp,
    meters: Sequence[str] | None = None,
    timezone: str | None = None,
    timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
) -> pd.DataFrame:
    """Context documents for an incremental load after ``since`` (see module docstring): the
    last document at or before ``since`` of every meter, and with ``timezone`` also all
    documents from the local midnight of the day ``since`` falls in."""
    hi = utc_naive(since)
    if hi is None:
        raise SourceError("read_mongo_previous needs a watermark (since)", source=SOURCE_NEWMONGO)
    if timezone is not None:
        day = (hi - pd.Timedelta(microseconds=1)).tz_localize("UTC").tz_convert(timezone)
        lo = day.normalize().tz_convert("UTC").tz_localize(None) - pd.Timedelta(microseconds=1)
    else:
        lo = hi - pd.Timedelta(hours=1)
    with _collection(uri, database, collection, timeout_ms) as coll:
        window = _read(coll, lo, hi, _meter_filter(meters), 50_000, "pymongo")
        extra = _last_reads(coll, hi, meters, set(window["meter_id"].dropna()))
    docs = pd.concat([window, extra], ignore_index=True)
    docs = docs[(docs["issue"] == "").to_numpy()]  # only usable reads continue a series
    if timezone is None:
        docs = docs.sort_values("ts").groupby("meter_id", sort=True).tail(1)
    if meters is not None:
        docs = docs[docs["meter_id"].isin([str(m) for m in meters])]
    return docs.reset_index(drop=True)


def _last_reads(
    coll: Collection, hi: pd.Timestamp, meters: Sequence[str] | None, seen: set[str]
) -> pd.DataFrame:
    """The last document at or before ``hi`` of each meter not in ``seen`` (one indexed query
    per meter), normalised."""
    stored = [str(m) for m in meters] if meters is not None else coll.distinct("meter_id")
    found = []
    for m in stored:
        if m is None or str(m) in seen:
            continue
        flt = {"meter_id": m, "ts": {"$lte": hi.to_pydatetime()}}
        doc = coll.find_one(flt, dict.fromkeys(MONGO_FIELDS, 1), sort=[("ts", -1)])
        if doc is not None:
            found.append(doc)
    raw = pd.DataFrame({f: pd.Series([d.get(f) for d in found], dtype=object) for f in _FIELDS})
    return _frame(raw)


def _locator(locate_documents: DocumentLocator) -> Locator:
    """Readings' ``row`` (a document's position) -> the document's location."""

    def locate(rows: pd.DataFrame) -> np.ndarray:
        return locate_documents(rows["row"].to_numpy(np.int64))

    return locate


def _with_context(documents: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The normalised documents (``context`` False) after the documents of ``previous`` that are
    not among them by ``_id`` (``context`` True; they may interleave in time with late
    documents). No context without a document with a read time: nothing to rebuild."""
    docs = _frame(documents).assign(context=False)
    if previous is None or not len(previous) or not docs["ts"].notna().any():
        return docs
    prev = _frame(previous).assign(context=True)
    prev = prev[~prev["_id"].astype(str).isin(docs["_id"].astype(str))]
    return pd.concat([prev, docs], ignore_index=True)


def _register_readings(
    docs: pd.DataFrame,
    meters: pd.DataFrame,
    config: CleaningConfig,
    rollover_kwh: float,
    locate: DocumentLocator,
    collection: str,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Interval readings of the documents' registers, and the documents' quarantine; a required
    field without a value in every new document raises SourceError (a schema change)."""
    if not len(docs):
        return empty_readings(SOURCE_NEWMONGO), None
    return registers_to_readings(
        docs,
        meters,
        config,
        source=SOURCE_NEWMONGO,
        rollover_kwh=rollover_kwh,
        locate=locate,
        where=collection,
    )


def etl_newmongo(
    documents: pd.DataFrame,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    previous: pd.DataFrame | None = None,
    rollover_kwh: float = REGISTER_ROLLOVER_KWH,
    collection: str | None = None,
) -> EtlResult:
    """ETL of Mongo documents (from :func:`read_mongo_documents`): drifted documents coerced or
    quarantined, registers to interval readings (glitches/resets/rollovers handled), shared
    cleaning, daily profiles. Quarantine rows name their document ``<collection>/_id=<id>``
    (``collection`` default: ``documents.attrs["mongo_collection"]``, else ``readings``).

    ``previous``: context documents already loaded by an earlier run (from
    :func:`read_mongo_previous`, and the days re-read for late documents); they let the new
    reads be differenced and the days they fall in be completed, and are not counted again.
    ``EtlResult.watermark`` is the latest ``ts`` of ``documents`` (the next run's ``since``).
    """
    collection = collection or documents.attrs.get("mongo_collection") or MONGO_COLLECTION
    docs = _with_context(documents, previous)
    t0 = time.perf_counter()
    locate = document_locator(docs, collection)
    readings, quarantine = _register_readings(
        docs, meters, config, rollover_kwh, locate, collection
    )
    result = clean_readings(
        readings,
        meters,
        config,
        source=SOURCE_NEWMONGO,
        adapter_quarantine=quarantine,
        locate=_locator(locate),
    )
    new = docs.loc[~docs["context"]]
    result.watermark = new["ts"].max() if new["ts"].notna().any() else None
    result.metrics.update(
        documents_in=float(len(new)),
        documents_context=float(len(docs) - len(new)),
        documents_with_issue=float((new["issue"] != "").sum()),
        documents_coerced=float((new["coercions"] != "").sum()),
        clean_seconds=time.perf_counter() - t0,
    )
    if result.watermark is not None:
        result.metrics["watermark_epoch_s"] = result.watermark.timestamp()
    return result


__all__ = ["etl_newmongo", "lookback_since", "read_mongo_documents", "read_mongo_previous"]
