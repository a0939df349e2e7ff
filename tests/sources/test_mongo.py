"""Mongo adapter against the real wire-protocol server: reads, watermark, context, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymongo
import pytest

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.redact import redact_uri
from meterflow.schemas import profile_matrix
from meterflow.sources.mongo import (
    etl_newmongo,
    lookback_since,
    read_mongo_documents,
    read_mongo_previous,
)
from meterflow.sources.mongo_server import free_port

TZ = "Europe/Rome"
DB = "meterflow_test"
METERS = pd.DataFrame(
    {"meter_id": ["A", "B"], "contractual_power_kw": [3.0, 6.0], "production_kw": [0.0, 3.0],
     "type": "household", "latitude": 0.0, "longitude": 0.0}
)  # fmt: skip
DAY0 = pd.Timestamp("2024-01-10", tz=TZ).tz_convert("UTC")  # local midnight


def documents(n_reads: int) -> list[dict]:
    """Reads every 15 min from local midnight of 2024-01-10: A imports 100 Wh per interval,
    B imports 200 Wh and exports 50 Wh."""
    docs = []
    for i in range(n_reads):
        ts = (DAY0 + pd.Timedelta(minutes=15 * i)).tz_localize(None).to_pydatetime()
        docs.append({"meter_id": "A", "ts": ts, "import_kwh": 1000 + 0.1 * i, "export_kwh": 0.0,
                     "voltage_v": 230.0, "current_a": 1.7, "power_w": 400.0})  # fmt: skip
        docs.append({"meter_id": "B", "ts": ts, "import_kwh": 50 + 0.2 * i,
                     "export_kwh": 10 + 0.05 * i, "voltage_v": 231.0, "current_a": 2.0,
                     "power_w": 600.0})  # fmt: skip
    return docs


@pytest.fixture()
def collection(mongo_uri: str, request) -> str:
    name = f"readings_{request.node.name}".replace("[", "_").replace("]", "_")[:60]
    with pymongo.MongoClient(mongo_uri) as client:
        client[DB][name].drop()
    return name


def insert(uri: str, coll: str, docs: list[dict]) -> None:
    with pymongo.MongoClient(uri) as client:
        client[DB][coll].insert_many([dict(d) for d in docs])


def test_arrow_and_pymongo_reads_agree_and_filter_by_time(mongo_uri: str, collection: str):
    insert(mongo_uri, collection, documents(20))
    a = read_mongo_documents(mongo_uri, DB, collection, method="arrow")
    b = read_mongo_documents(mongo_uri, DB, collection, method="pymongo")
    key = ["meter_id", "ts"]
    pd.testing.assert_frame_equal(
        a.sort_values(key, ignore_index=True), b.sort_values(key, ignore_index=True)
    )
    assert len(a) == 40 and str(a["ts"].dt.tz) == "UTC"
    since, until = DAY0 + pd.Timedelta(minutes=30), DAY0 + pd.Timedelta(hours=1)
    part = read_mongo_documents(mongo_uri, DB, collection, since=since, until=until)
    assert sorted(part["ts"].unique()) == [since + pd.Timedelta(minutes=15 * i) for i in (1, 2)]


def test_incremental_load_reads_only_new_documents_and_completes_the_boundary_day(
    mongo_uri: str, collection: str
):
    docs = documents(2 * 96 + 1)  # two full local days of intervals (reads at both ends)
    first, later = docs[: 2 * 60], docs[2 * 60 :]  # the first load stops at 14:45 local
    insert(mongo_uri, collection, first)
    cfg = CleaningConfig(resolution_min=15)
    res1 = etl_newmongo(read_mongo_documents(mongo_uri, DB, collection), meters=METERS, config=cfg)
    assert res1.metrics["readings_in"] == 2 * 2 * 60  # two registers per document
    assert res1.metrics["meter_days_out"] == 0  # day 1 is not complete yet
    assert res1.metrics["quarantined_counter_baseline"] == 4
    since = res1.watermark
    assert since == DAY0 + pd.Timedelta(minutes=15 * 59)

    insert(mongo_uri, collection, later)
    new = read_mongo_documents(mongo_uri, DB, collection, since=since)
    assert len(new) == len(later) and new["ts"].min() > since
    prev = read_mongo_previous(mongo_uri, DB, collection, since=since, timezone=TZ)
    assert set(prev["ts"]) <= {DAY0 + pd.Timedelta(minutes=15 * i) for i in range(60)}
    res2 = etl_newmongo(new, meters=METERS, config=cfg, previous=prev)
    m = res2.metrics
    assert m["readings_in"] == 2 * len(later) and m["documents_in"] == len(later)
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"]
    assert m["quarantined_share"] == 0.0  # no baseline: differencing continues from context
    prof = res2.profiles.set_index(["meter_id", "date"]).sort_index()
    assert list(prof.index.get_level_values("date").unique()) == [
        pd.Timestamp("2024-01-10"), pd.Timestamp("2024-01-11")
    ]  # fmt: skip
    assert np.allclose(profile_matrix(prof.loc[["A"]]), 100.0)
    assert np.allclose(profile_matrix(prof.loc[["B"]]), 150.0)  # 200 import - 50 export
    assert res2.watermark == DAY0 + pd.Timedelta(days=2)

    # a run with nothing new is not an error
    empty = read_mongo_documents(mongo_uri, DB, collection, since=res2.watermark)
    res3 = etl_newmongo(empty, meters=METERS, config=cfg)
    assert empty.empty and res3.metrics["readings_in"] == 0 and res3.watermark is None


def test_previous_without_timezone_is_the_last_read_per_meter(mongo_uri: str, collection: str):
    insert(mongo_uri, collection, documents(10))
    since = DAY0 + pd.Timedelta(minutes=15 * 6)
    prev = read_mongo_previous(mongo_uri, DB, collection, since=since)
    assert sorted(prev["meter_id"]) == ["A", "B"] and set(prev["ts"]) == {since}


def test_unreachable_server_and_empty_collection(mongo_uri: str, collection: str):
    uri = f"mongodb://meter:s3cr3t@127.0.0.1:{free_port()}/"
    with pytest.raises(SourceError) as err:
        read_mongo_documents(uri, DB, collection, timeout_ms=300)
    assert "s3cr3t" not in str(err.value) and "***:***@127.0.0.1" in str(err.value)
    with pytest.raises(SourceError, match="holds no documents"):
        read_mongo_documents(mongo_uri, DB, collection)
    assert redact_uri("mongodb://u:p@h:1/db?x=1") == "mongodb://***:***@h:1/db?x=1"


def test_drifted_documents_fall_back_from_arrow_once_and_read_like_pymongo(
    mongo_uri: str, collection: str, caplog: pytest.LogCaptureFixture
):
    docs = documents(8)
    docs[2]["import_kwh"] = "1000,1"  # A, read 1
    docs[5]["ts"] = docs[5]["ts"].isoformat() + "+00:00"  # B, read 2
    docs[6]["meter_id"] = None  # A, read 3
    insert(mongo_uri, collection, docs)
    with caplog.at_level("WARNING", logger="meterflow.sources.mongo"):
        arrow = read_mongo_documents(mongo_uri, DB, collection, method="arrow")
    assert len([r for r in caplog.records if "pymongo instead of pymongoarrow" in r.message]) == 1
    plain = read_mongo_documents(mongo_uri, DB, collection, method="pymongo")
    pd.testing.assert_frame_equal(arrow, plain)
    assert arrow["_id"].map(type).eq(str).all() and str(arrow["ts"].dtype) == "datetime64[ns, UTC]"
    assert arrow.attrs["mongo_collection"] == collection
    arrow = arrow.sort_values("_id", ignore_index=True)  # as inserted (the read is by meter)
    assert list(arrow["issue"]) == [""] * 6 + ["missing_key"] + [""] * 9
    assert arrow["issue_detail"].iloc[6] == (
        "meter_id missing; fields: _id, meter_id, ts, import_kwh, export_kwh, voltage_v, "
        "current_a, power_w"
    )
    assert arrow.loc[2, "import_kwh"] == 1000.1 and "read as 1000.1" in arrow.loc[2, "coercions"]

    result = etl_newmongo(arrow, meters=METERS, config=CleaningConfig(resolution_min=15))
    q = result.quarantine
    assert set(q["location"]) <= {f"{collection}/_id={i}" for i in arrow["_id"]}
    assert (
        q.loc[q["reason"] == "missing_key", "location"].tolist()
        == [f"{collection}/_id={arrow.loc[6, '_id']}"] * 2
    )
    other = etl_newmongo(
        arrow, meters=METERS, config=CleaningConfig(resolution_min=15), collection="elsewhere"
    )
    assert other.quarantine["location"].str.startswith("elsewhere/_id=").all()
    assert result.metrics["documents_with_issue"] == 1 and result.metrics["documents_coerced"] == 2


def test_incremental_read_places_read_times_stored_as_text_or_epoch(
    mongo_uri: str, collection: str
):
    docs = documents(6)  # A read k at 2k, B read k at 2k + 1
    for i in (2, 3):  # read 1 of A and B (before the window): text
        docs[i]["ts"] = docs[i]["ts"].isoformat()
    docs[8]["ts"] = int(pd.Timestamp(docs[8]["ts"]).value // 10**6)  # A read 4: epoch ms
    b4 = pd.Timestamp(docs[9]["ts"]).tz_localize("UTC")
    docs[9]["ts"] = b4.tz_convert("+02:00").isoformat()  # B read 4: text with an offset
    docs[10]["ts"] = "not a time"  # A read 5: no window can hold it
    insert(mongo_uri, collection, docs)
    since = DAY0 + pd.Timedelta(minutes=15 * 2)
    for method in ("arrow", "pymongo"):
        new = read_mongo_documents(mongo_uri, DB, collection, since=since, method=method)
        got = sorted(zip(new["meter_id"], new["ts"], strict=True))
        want = sorted(
            (m, DAY0 + pd.Timedelta(minutes=15 * k)) for m in "AB" for k in (3, 4, 5)
            if (m, k) != ("A", 5)
        )  # fmt: skip
        assert got == want, method
        assert (new["coercions"] != "").sum() == 2  # A read 4 (epoch), B read 4 (offset)


def test_meter_filter_finds_numeric_ids_stored_as_integers(mongo_uri: str, collection: str):
    docs = documents(3)
    for d in docs:
        if d["meter_id"] == "B":
            d["meter_id"] = 42
    insert(mongo_uri, collection, docs)
    got = read_mongo_documents(mongo_uri, DB, collection, meters=["42"], method="arrow")
    assert list(got["meter_id"]) == ["42"] * 3
    assert got["coercions"].str.startswith("meter_id 42 read as '42'").all()


@pytest.mark.parametrize(
    ("watermark", "days", "timezone", "expected"),
    [
        ("2024-01-12 14:45+01:00", 2, TZ, "2024-01-10 00:00+01:00"),  # afternoon: 2 days + today
        ("2024-01-12 00:00+01:00", 2, TZ, "2024-01-10 00:00+01:00"),  # on midnight: 2 days
        ("2024-01-11 23:00", 2, TZ, "2024-01-10 00:00+01:00"),  # naive is UTC (= the above)
        ("2024-01-12 00:00+01:00", 0, TZ, "2024-01-12 00:00+01:00"),
        ("2024-03-31 12:00+02:00", 0, TZ, "2024-03-31 00:00+01:00"),  # on the 23-hour day
        ("2024-04-01 10:00+02:00", 1, TZ, "2024-03-31 00:00+01:00"),  # back over it: not 24 h
        ("2024-10-28 06:00+01:00", 1, TZ, "2024-10-27 00:00+02:00"),  # back over a 25-hour day
        ("2023-09-04 12:00-03:00", 1, "America/Santiago", "2023-09-03 01:00-03:00"),  # no 00:00
    ],
)
def test_lookback_since_starts_whole_local_days_before_the_watermark(
    watermark: str, days: int, timezone: str, expected: str
):
    got = lookback_since(watermark, days, timezone)
    assert got == pd.Timestamp(expected) and str(got.tz) == "UTC"


def test_lookback_since_needs_a_watermark_and_days_ge_0():
    with pytest.raises(ValueError, match="needs a watermark"):
        lookback_since(None, 2, TZ)
    with pytest.raises(ValueError, match=">= 0"):
        lookback_since("2024-01-12", -1, TZ)


def test_late_documents_rebuild_their_day_from_interleaved_context(mongo_uri: str, collection: str):
    """Late documents between reads already loaded (passed as context, as a look-back load
    does): the day is rebuilt exactly and only the late documents are counted."""
    docs = documents(96 + 1)  # local day 2024-01-10 complete, reads at both ends
    late_pos = [2 * i for i in range(40, 44)]  # A's reads 40..43 arrive late
    insert(mongo_uri, collection, [d for i, d in enumerate(docs) if i not in late_pos])
    known = read_mongo_documents(mongo_uri, DB, collection)
    insert(mongo_uri, collection, [docs[i] for i in late_pos])
    reread = read_mongo_documents(mongo_uri, DB, collection)
    late = reread[~reread["_id"].isin(known["_id"])]
    assert len(late) == 4
    cfg = CleaningConfig(resolution_min=15)
    res = etl_newmongo(late, meters=METERS, config=cfg, previous=known)
    m = res.metrics
    assert m["documents_in"] == 4 and m["documents_context"] == len(known)
    assert m["readings_in"] == 2 * 4 == m["readings_kept"]  # two registers per late document
    prof = res.profiles.set_index(["meter_id", "date"]).sort_index()
    assert list(prof.index) == [
        ("A", pd.Timestamp("2024-01-10")),
        ("B", pd.Timestamp("2024-01-10")),
    ]
    assert np.allclose(profile_matrix(prof.loc[["A"]]), 100.0)
    assert np.allclose(profile_matrix(prof.loc[["B"]]), 150.0)
