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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from bson import ObjectId
from pymongo.collection import Collection

from meterflow.defaults import BLOCK_METERS
from meterflow.domain import REGISTER_ROLLOVER_KWH, SOURCE_NEWMONGO
from meterflow.errors import InputError, SourceError
from meterflow.etl import CleaningConfig, EtlResult
from meterflow.etl.blocks import BlockReadings, RowsByMeter, cut_blocks
from meterflow.etl.counters import registers_to_readings
from meterflow.etl.documents import (
    DocumentLocator,
    FieldPresence,
    FieldsOf,
    document_locator,
    normalize_documents,
)
from meterflow.etl.readings import Locator, empty_readings
from meterflow.redact import redact_uri
from meterflow.sources.contract import StoreLocations, etl_source
from meterflow.sources.documentblocks import DocumentBlocks, FrameDocuments, ParquetDocuments
from meterflow.sources.fingerprint import mongo_fingerprint
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


def _require_fields(coll: Collection, present: set[str], n_read: int) -> None:
    """Fail in one line when a required field holds a value neither in any document read
    (``present``: the fields that do, over ``n_read`` documents) nor in any of the newest
    documents of the collection (a renamed or removed field: a schema change, which a read
    filtered on ``ts`` or ``meter_id`` cannot even see), naming the fields found instead.
    Documents that lack it among others are quarantined per document (``etl.documents``)."""
    if all(f in present for f in _REQUIRED):
        return
    newest = list(coll.find({}, sort=[("_id", -1)], limit=_NEWEST))
    if not newest:
        return
    missing = [f for f in _REQUIRED if f not in present and all(d.get(f) is None for d in newest)]
    if missing:
        found = dict.fromkeys(k for d in newest for k in d)
        several = len(missing) > 1
        raise SourceError(
            f"required field{'s' if several else ''} {', '.join(missing)} "
            f"{'are' if several else 'is'} missing from the {n_read} document(s) read from "
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
) -> tuple[pd.DataFrame, set[str], int]:
    """Normalised documents with ``lo < ts <= hi``, the required fields holding a value in a
    document fetched and how many were fetched. A time filter matches BSON dates only, so
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
    present = {f for f in _REQUIRED if raw[f].notna().any()}
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
    return docs, present, len(raw)


def _meter_blocks(coll: Collection, meters: Sequence[str] | None, block_meters: int) -> list[dict]:
    """The meter filters of a read by blocks of ``block_meters`` meters (``etl.blocks``), each
    an ``$in`` on the indexed ``meter_id`` of the stored values: of ``meters``, else of every
    meter id stored (``distinct``; an integer id is the meter of its text) with the documents
    of no meter id (missing, null, blank, another type) in the first block."""
    if meters is not None:
        return [_meter_filter(ids) for ids in cut_blocks(map(str, meters), block_meters)] or [
            _meter_filter([])
        ]
    by_meter: dict[str, list] = {}
    keyless: list = [None]  # also matches a missing field
    for value in coll.distinct("meter_id"):
        text = value if isinstance(value, str) else None
        if isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        if text is not None and text.strip():
            by_meter.setdefault(text, []).append(value)
        elif value is not None:
            keyless.append(value)
    blocks = cut_blocks(by_meter, block_meters) or [[]]
    filters = [{"meter_id": {"$in": [v for m in ids for v in by_meter[m]]}} for ids in blocks]
    filters[0]["meter_id"]["$in"] += keyless
    return filters


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
    block_meters: int = BLOCK_METERS,
) -> pd.DataFrame:
    """Documents with ``since < ts <= until`` (UTC; None = unbounded) as a Parquet-writable
    DataFrame: ``_id`` (text), the ``MONGO_FIELDS`` (ts tz-aware UTC, numbers float) and the
    ``issue``/``issue_detail``/``coercions`` of drifted documents (see
    :func:`~meterflow.etl.documents.normalize_documents`); ``attrs["mongo_collection"]`` names the
    collection. Read ``block_meters`` meters at a time (:func:`_meter_blocks`), so the raw
    documents of one block are in memory at once; the table is ordered by meter (stably), so
    its Parquet file is read a block at a time from few row groups (``documentblocks``).
    An empty selection gives an empty frame (nothing new); an unreachable server or a
    collection without any document raises SourceError."""
    lo, hi = utc_naive(since), utc_naive(until)
    use = DEFAULT_METHOD if method == "auto" else method
    t0 = time.perf_counter()
    parts, present, n_read = [], set(), 0
    with _collection(uri, database, collection, timeout_ms) as coll:
        if coll.find_one({}, {"_id": 1}) is None:
            raise SourceError(
                f"collection {database}.{collection} holds no documents [{redact_uri(uri)}]",
                source=SOURCE_NEWMONGO,
            )
        for flt in _meter_blocks(coll, meters, block_meters):
            docs, found, n = _read(coll, lo, hi, flt, batch_size, use)
            parts.append(docs.sort_values("meter_id", kind="stable", na_position="first"))
            present, n_read = present | found, n_read + n
        _require_fields(coll, present, n_read)
    docs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    docs = docs[~docs["_id"].duplicated()].reset_index(drop=True)  # array meter ids: 2 blocks
    docs.attrs["mongo_collection"] = collection
    log.info(
        "newmongo: %d documents (ts %s) via %s in %.1fs; %d with an issue, %d coerced",
        len(docs),
        _window_words(lo, hi),
        use,
        time.perf_counter() - t0,
        int((docs["issue"] != "").sum()),
        int((docs["coercions"] != "").sum()),
    )
    return docs


def _window_words(lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> str:
    """The read window ``(lo, hi]`` in words: ``from the start`` for no lower bound, ``to the
    end`` for no upper one."""
    start = "from the start" if lo is None else f"after {lo}"
    return f"{start}, {'to the end' if hi is None else f'up to {hi}'}"


def lookback_since(watermark: TimeLike, days: int, timezone: str) -> pd.Timestamp:
    """The local midnight that starts the day ``watermark`` falls in, ``days`` calendar days
    earlier, in UTC: the ``since`` of a read that re-reads whole local days before the watermark
    (a watermark on a local midnight falls in the day it starts). Calendar days, so a DST day is
    23 or 25 hours; a midnight that does not exist locally becomes the day's first instant."""
    w = utc_naive(watermark)
    if w is None:
        raise InputError("lookback_since needs a watermark")
    if days < 0:
        raise InputError(f"lookback days must be >= 0, got {days}")
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
        window, present, n_read = _read(coll, lo, hi, _meter_filter(meters), 50_000, "pymongo")
        _require_fields(coll, present, n_read)
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


def _context(source: DocumentBlocks, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The normalised documents of ``previous`` that are not among the new ones by ``_id``
    (``context`` True, they may interleave in time with late documents), with their position
    (``_row``) before the new documents. No context without a new document with a read time:
    nothing to rebuild."""
    use = previous is not None and len(previous) > 0 and source.any_read_time()
    raw = previous if use else pd.DataFrame({f: pd.Series(dtype=object) for f in _FIELDS})
    prev = _frame(raw).assign(context=True)
    again = source.ids_among(set(prev["_id"].astype(str)))
    prev = prev[~prev["_id"].astype(str).isin(again)].reset_index(drop=True)
    return prev.assign(_row=np.arange(len(prev), dtype=np.int64))


@dataclass
class _NewDocuments:
    """Counts over the blocks' new documents, and their newest read time."""

    count: int = 0
    with_issue: int = 0
    coerced: int = 0
    newest: pd.Timestamp | None = None

    def add(self, docs: pd.DataFrame) -> None:
        self.count += len(docs)
        self.with_issue += int((docs["issue"] != "").sum())
        self.coerced += int((docs["coercions"] != "").sum())
        if docs["ts"].notna().any():
            newest = docs["ts"].max()
            self.newest = newest if self.newest is None else max(self.newest, newest)


class DocumentsSource:
    """The MongoDB documents of a load (``load_newmongo``'s ``documents`` table, in memory or
    as its Parquet file) as a :class:`~meterflow.sources.contract.Source`, as
    :func:`etl_newmongo` describes."""

    name = SOURCE_NEWMONGO
    title = "new MongoDB documents"
    reference_source = None
    load_step = "load_newmongo"

    def __init__(
        self,
        documents: pd.DataFrame | str | Path,
        config: CleaningConfig,
        *,
        previous: pd.DataFrame | None = None,
        rollover_kwh: float = REGISTER_ROLLOVER_KWH,
        collection: str | None = None,
    ) -> None:
        self.started = time.perf_counter()
        is_file = isinstance(documents, str | Path)
        self.source = ParquetDocuments(documents) if is_file else FrameDocuments(documents)
        self.config, self.rollover_kwh = config, rollover_kwh
        self.collection = (
            collection or self.source.attrs.get("mongo_collection") or MONGO_COLLECTION
        )
        self.context = _context(self.source, previous)
        self.placed = self.context[self.context["meter_id"].notna().to_numpy()]
        self.context_by_meter = RowsByMeter(self.placed)
        self.presence, self.new = FieldPresence(), _NewDocuments()

    @classmethod
    def from_stores(cls, stores: StoreLocations, config: CleaningConfig) -> DocumentsSource:
        """Every document of the collection, read now (the ETL step reads a load's table)."""
        uri, database = stores.require_mongodb_uri(), stores.mongo_database
        return cls(read_mongo_documents(uri, database, MONGO_COLLECTION), config)

    @classmethod
    def fingerprint(cls, stores: StoreLocations) -> str:
        uri = stores.require_mongodb_uri()
        return mongo_fingerprint(uri, stores.mongo_database, MONGO_COLLECTION)

    def meter_blocks(self, block_meters: int) -> list[list[str]]:
        meter_ids = set(self.source.meter_ids()) | set(self.placed["meter_id"])
        return cut_blocks(meter_ids, block_meters) or [[]]

    def read_block(self, index: int, meter_ids: list[str], meters: pd.DataFrame) -> BlockReadings:
        """The block's documents (context first) to readings; a document is located by its
        ``_id``, else by its position in the whole read."""
        raw, pos = self.source.block(meter_ids, keyless=index == 0)
        block_new = _frame(raw).assign(context=False)
        self.presence.add(block_new)
        self.new.add(block_new)
        ctx = self.context_by_meter.rows(meter_ids)
        rows = np.concatenate([ctx["_row"].to_numpy(np.int64), len(self.context) + pos])
        docs = pd.concat([ctx.drop(columns="_row"), block_new], ignore_index=True)
        del raw, block_new, ctx
        locate = document_locator(docs, self.collection, rows)
        readings, quarantine = empty_readings(SOURCE_NEWMONGO), None
        if len(docs):
            readings, quarantine = registers_to_readings(
                docs, meters, self.config, source=SOURCE_NEWMONGO, rollover_kwh=self.rollover_kwh,
                locate=locate, where=self.collection, require=False,
            )  # fmt: skip
        return BlockReadings(readings, quarantine, _locator(locate))

    def finish(self, result: EtlResult) -> EtlResult:
        self.presence.check(where=self.collection, source=SOURCE_NEWMONGO)
        result.watermark = self.new.newest
        result.metrics.update(
            documents_in=float(self.new.count),
            documents_context=float(len(self.context)),
            documents_with_issue=float(self.new.with_issue),
            documents_coerced=float(self.new.coerced),
            clean_seconds=time.perf_counter() - self.started,
        )
        if result.watermark is not None:
            result.metrics["watermark_epoch_s"] = result.watermark.timestamp()
        return result


def etl_newmongo(
    documents: pd.DataFrame | str | Path,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    previous: pd.DataFrame | None = None,
    rollover_kwh: float = REGISTER_ROLLOVER_KWH,
    collection: str | None = None,
    block_meters: int = BLOCK_METERS,
) -> EtlResult:
    """ETL of Mongo documents (from :func:`read_mongo_documents`, in memory or as the Parquet
    file of that table): drifted documents coerced or quarantined, registers to interval
    readings (glitches/resets/rollovers handled), shared cleaning, daily profiles, done
    ``block_meters`` meters at a time (``etl.blocks``; documents without a meter id go with the
    first block) with the same result for any block size. Quarantine rows name their document
    ``<collection>/_id=<id>`` (``collection`` default: ``documents.attrs["mongo_collection"]``,
    else ``readings``).

    ``previous``: context documents already loaded by an earlier run (from
    :func:`read_mongo_previous`, and the days re-read for late documents); they let the new
    reads be differenced and the days they fall in be completed, and are not counted again.
    ``EtlResult.watermark`` is the latest ``ts`` of ``documents`` (the next run's ``since``).
    A required field without a value in every document raises SourceError (a schema change).
    """
    source = DocumentsSource(
        documents, config, previous=previous, rollover_kwh=rollover_kwh, collection=collection
    )
    return etl_source(source, meters=meters, block_meters=block_meters)


__all__ = ["etl_newmongo", "lookback_since", "read_mongo_documents", "read_mongo_previous"]
