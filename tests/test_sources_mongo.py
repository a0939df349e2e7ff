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
from meterflow.sources.mongo import etl_newmongo, read_mongo_documents, read_mongo_previous
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
    cfg = CleaningConfig()
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
