"""MongoDB readings documents -> register differences -> shared cleaning.

One document per meter and read: ``meter_id``, ``ts`` (UTC END of the interval),
``import_kwh``/``export_kwh`` cumulative registers (see ``formats``). Reads go through pymongo
with a projection and a ``find`` time filter (``aggregate`` ``$match`` on datetimes is wrong
on the local wire-protocol server), in batches; ``pymongoarrow`` and plain pymongo are both
available (``method``), the default is the faster one in ``benchmarks/etl_throughput.py``.

Incremental loads: ``since`` is an exclusive lower bound on ``ts`` (the watermark of the last
successful load: ``EtlResult.watermark``). To continue differencing across that boundary,
:func:`read_mongo_previous` fetches the documents already loaded that the new ones need as
context: the last read at or before ``since`` per meter, and, with a ``timezone``, every read
of the local day that ``since`` falls in, so that this day can still become complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pymongo
from pymongo.errors import PyMongoError

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig, EtlResult, clean_readings
from meterflow.etl.counters import registers_to_readings
from meterflow.etl.readings import empty_readings
from meterflow.redact import redact_uri
from meterflow.sources.formats import (
    MONGO_COLLECTION,
    MONGO_DATABASE,
    MONGO_FIELDS,
    REGISTER_ROLLOVER_KWH,
    SOURCE_NEWMONGO,
)

log = logging.getLogger(__name__)

Method = Literal["auto", "arrow", "pymongo"]
DEFAULT_METHOD: Literal["arrow", "pymongo"] = "arrow"
_NUMERIC = ("import_kwh", "export_kwh", "voltage_v", "current_a", "power_w")


def _client(uri: str, timeout_ms: int) -> pymongo.MongoClient:
    try:
        # a generous connect timeout: it is also the heartbeat timeout, and a busy server that
        # misses a heartbeat gets its in-flight reads cancelled
        return pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=60_000, tz_aware=False
        )
    except (PyMongoError, ValueError) as exc:
        raise SourceError(
            f"invalid MongoDB URI {redact_uri(uri)}: {type(exc).__name__}", source=SOURCE_NEWMONGO
        ) from None


def _utc_naive(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts


def _time_filter(since: pd.Timestamp | None, until: pd.Timestamp | None) -> dict:
    cond: dict = {}
    if since is not None:
        cond["$gt"] = since.to_pydatetime()
    if until is not None:
        cond["$lte"] = until.to_pydatetime()
    return {"ts": cond} if cond else {}


def _frame(docs: pd.DataFrame) -> pd.DataFrame:
    """Normalise a documents frame: all fields present, ts UTC, numbers float."""
    out = pd.DataFrame(index=range(len(docs)))
    for f in MONGO_FIELDS:
        out[f] = docs[f].to_numpy() if f in docs else np.nan
    out["meter_id"] = out["meter_id"].astype(object)
    ts = pd.to_datetime(out["ts"], errors="coerce")
    out["ts"] = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    out["ts"] = out["ts"].dt.as_unit("ns")
    for f in _NUMERIC:
        out[f] = pd.to_numeric(out[f], errors="coerce").astype(np.float64)
    return out


def _find(
    coll: pymongo.collection.Collection, flt: dict, batch_size: int, method: str
) -> pd.DataFrame:
    projection = {f: 1 for f in MONGO_FIELDS} | {"_id": 0}
    if method == "arrow":
        import pyarrow as pa
        from pymongoarrow.api import Schema, find_arrow_all

        schema = Schema(
            {"meter_id": pa.string(), "ts": pa.timestamp("ms")}
            | {f: pa.float64() for f in _NUMERIC}
        )
        table = find_arrow_all(coll, flt, schema=schema, projection=projection,
                               batch_size=batch_size)  # fmt: skip
        return table.to_pandas()
    cursor = coll.find(flt, projection, batch_size=batch_size)
    return pd.DataFrame.from_records(list(cursor), columns=list(MONGO_FIELDS))


def read_mongo_documents(
    uri: str,
    database: str = MONGO_DATABASE,
    collection: str = MONGO_COLLECTION,
    *,
    since: str | pd.Timestamp | None = None,
    until: str | pd.Timestamp | None = None,
    meters: Sequence[str] | None = None,
    batch_size: int = 10_000,
    method: Method = "auto",
    timeout_ms: int = 5000,
) -> pd.DataFrame:
    """Documents with ``since < ts <= until`` (UTC; None = unbounded) as a DataFrame with the
    ``MONGO_FIELDS`` (ts tz-aware UTC). An empty selection gives an empty frame (nothing new);
    an unreachable server or a collection without any document raises SourceError."""
    lo, hi = _utc_naive(since), _utc_naive(until)
    flt = _time_filter(lo, hi)
    if meters is not None:
        flt["meter_id"] = {"$in": [str(m) for m in meters]}
    use = DEFAULT_METHOD if method == "auto" else method
    t0 = time.perf_counter()
    client = _client(uri, timeout_ms)
    try:
        coll = client[database][collection]
        if coll.find_one({}, {"_id": 1}) is None:
            raise SourceError(
                f"collection {database}.{collection} holds no documents [{redact_uri(uri)}]",
                source=SOURCE_NEWMONGO,
            )
        docs = _frame(_find(coll, flt, batch_size, use))
    except PyMongoError as exc:
        raise SourceError(
            f"cannot read {database}.{collection}: {type(exc).__name__} [{redact_uri(uri)}]",
            source=SOURCE_NEWMONGO,
        ) from None
    finally:
        client.close()
    log.info(
        "newmongo: %d documents (ts in (%s, %s]) via %s in %.1fs",
        len(docs), lo, hi, use, time.perf_counter() - t0,
    )  # fmt: skip
    return docs


def read_mongo_previous(
    uri: str,
    database: str = MONGO_DATABASE,
    collection: str = MONGO_COLLECTION,
    *,
    since: str | pd.Timestamp,
    meters: Sequence[str] | None = None,
    timezone: str | None = None,
    timeout_ms: int = 5000,
) -> pd.DataFrame:
    """Context documents for an incremental load after ``since`` (see module docstring): the
    last document at or before ``since`` of every meter, and with ``timezone`` also all
    documents from the local midnight of the day ``since`` falls in."""
    hi = _utc_naive(since)
    if hi is None:
        raise SourceError("read_mongo_previous needs a watermark (since)", source=SOURCE_NEWMONGO)
    if timezone is not None:
        day = (hi - pd.Timedelta(microseconds=1)).tz_localize("UTC").tz_convert(timezone)
        lo = day.normalize().tz_convert("UTC").tz_localize(None) - pd.Timedelta(microseconds=1)
    else:
        lo = hi - pd.Timedelta(hours=1)
    client = _client(uri, timeout_ms)
    try:
        coll = client[database][collection]
        window = _frame(_find(coll, _time_filter(lo, hi), 50_000, "pymongo"))
        wanted = (
            [str(m) for m in meters]
            if meters is not None
            else [str(m) for m in coll.distinct("meter_id")]
        )
        lacking = sorted(set(wanted) - set(window["meter_id"].astype(str)))
        projection = {f: 1 for f in MONGO_FIELDS} | {"_id": 0}
        extra = []
        for m in lacking:  # one indexed query per meter without a read in the window
            flt = {"meter_id": m, "ts": {"$lte": hi.to_pydatetime()}}
            doc = coll.find_one(flt, projection, sort=[("ts", -1)])
            if doc is not None:
                extra.append(doc)
    except PyMongoError as exc:
        raise SourceError(
            f"cannot read {database}.{collection}: {type(exc).__name__} [{redact_uri(uri)}]",
            source=SOURCE_NEWMONGO,
        ) from None
    finally:
        client.close()
    docs = pd.concat(
        [window, _frame(pd.DataFrame.from_records(extra, columns=list(MONGO_FIELDS)))],
        ignore_index=True,
    )
    if timezone is None:
        docs = docs.sort_values("ts").groupby("meter_id", sort=True).tail(1)
    if meters is not None:
        docs = docs[docs["meter_id"].isin([str(m) for m in meters])]
    return docs.reset_index(drop=True)


def etl_newmongo(
    documents: pd.DataFrame,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    previous: pd.DataFrame | None = None,
    rollover_kwh: float = REGISTER_ROLLOVER_KWH,
) -> EtlResult:
    """ETL of Mongo documents (from :func:`read_mongo_documents`): registers to interval
    readings (resets/rollovers handled), shared cleaning, daily profiles.

    ``previous``: context documents already loaded by an earlier run (from
    :func:`read_mongo_previous`); they let the first new reads be differenced and the day at
    the boundary be completed, and are not counted again. ``EtlResult.watermark`` is the
    latest ``ts`` of ``documents`` (the next run's ``since``).
    """
    docs = _frame(documents).assign(context=False)
    if previous is not None and len(previous):
        prev = _frame(previous).assign(context=True)
        prev = prev[prev["ts"] < docs["ts"].min()] if len(docs) else prev.iloc[:0]
        docs = pd.concat([prev, docs], ignore_index=True)
    t0 = time.perf_counter()
    if len(docs):
        readings, quarantine = registers_to_readings(
            docs, meters, config, source=SOURCE_NEWMONGO, rollover_kwh=rollover_kwh
        )
    else:
        readings, quarantine = empty_readings(SOURCE_NEWMONGO), None
    result = clean_readings(
        readings, meters, config, source=SOURCE_NEWMONGO, adapter_quarantine=quarantine
    )
    new = docs.loc[~docs["context"], "ts"]
    result.watermark = new.max() if len(new) else None
    result.metrics.update(
        documents_in=float(len(new)),
        documents_context=float(len(docs) - len(new)),
        clean_seconds=time.perf_counter() - t0,
    )
    if result.watermark is not None:
        result.metrics["watermark_epoch_s"] = result.watermark.timestamp()
    return result


__all__ = ["etl_newmongo", "read_mongo_documents", "read_mongo_previous"]
