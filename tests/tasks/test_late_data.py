"""Late MongoDB documents (a read time before the watermark, stored after the load that passed
it) through the real stores and MLflow: the look-back of ``load_newmongo`` loads them, the ETL
rebuilds their meter-day and harmonization replaces it; without the look-back they are missed."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import numpy as np
import pandas as pd
import pymongo
import pytest

from meterflow import tracking
from meterflow.demo import DemoSpec
from meterflow.schemas import profile_slot_columns
from meterflow.settings import (
    Environment,
    EtlNewMongoOptions,
    HarmonizationOptions,
    LoadNewMongoOptions,
)
from meterflow.sources.formats import MONGO_COLLECTION
from meterflow.sources.mongo import lookback_since
from meterflow.tasks.etl import run_etl_newmongo
from meterflow.tasks.harmonization import run_harmonization
from meterflow.tasks.newmongo import run_load_newmongo
from tests.tasks.conftest import demo_environment

pytestmark = pytest.mark.slow  # end to end through MLflow: `pytest -m 'not slow'` skips

SPEC = DemoSpec(n_meters=3, history_days=6, mongo_days=3, overlap_days=1, seed=5)
TZ = SPEC.timezone


@pytest.fixture(scope="module")
def env(tmp_path_factory, mongo_uri, tracking_server) -> Iterator[Environment]:
    root = tmp_path_factory.mktemp("late")
    with demo_environment(root, mongo_uri, tracking_server, SPEC, "late") as env:
        yield env


def _collection(env: Environment, client: pymongo.MongoClient):
    return client[env.mongo_database][MONGO_COLLECTION]


def _withhold(env: Environment, meter: str, start: pd.Timestamp, hours: int) -> list[dict]:
    """Delete ``meter``'s documents with ``start < ts <= start + hours`` and return them."""
    flt = {
        "meter_id": meter,
        "ts": {
            "$gt": start.tz_convert("UTC").tz_localize(None).to_pydatetime(),
            "$lte": (start + pd.Timedelta(hours=hours))
            .tz_convert("UTC")
            .tz_localize(None)
            .to_pydatetime(),
        },
    }
    with pymongo.MongoClient(env.mongodb_uri) as client:
        coll = _collection(env, client)
        docs = list(coll.find(flt))
        coll.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
    assert docs
    return docs


def _insert(env: Environment, docs: list[dict]) -> None:
    with pymongo.MongoClient(env.mongodb_uri) as client:
        _collection(env, client).insert_many(docs)


def _ids(docs: list[dict]) -> set[str]:
    return {str(d["_id"]) for d in docs}


def _metrics(run_id: str) -> dict[str, float]:
    return mlflow.get_run(run_id).data.metrics


@pytest.fixture(scope="module")
def runs(env) -> dict:
    """Two groups of reads of the day before the newest one are held back from the first load
    and stored later: group 1 before a load with the default look-back, group 2 before a load
    with ``lookback_days=0`` and then a default one."""
    with pymongo.MongoClient(env.mongodb_uri) as client:
        coll = _collection(env, client)
        newest = pd.Timestamp(coll.find_one({}, sort=[("ts", -1)])["ts"]).tz_localize("UTC")
        meters = sorted(coll.distinct("meter_id"))
    day = newest.tz_convert(TZ).normalize() - pd.Timedelta(days=1)  # a complete local day
    group1 = _withhold(env, meters[0], day + pd.Timedelta(hours=10), 1)
    group2 = _withhold(env, meters[1], day + pd.Timedelta(hours=14), 1)
    out = {"day": day.tz_localize(None), "meter": meters[0], "group1": group1, "group2": group2}
    out["load1"] = run_load_newmongo(LoadNewMongoOptions(), env)
    out["etl1"] = run_etl_newmongo(EtlNewMongoOptions(raw_run=out["load1"]), env)
    out["harm1"] = run_harmonization(
        HarmonizationOptions(etl_runs=out["etl1"], compute_dtw=False), env
    )
    _insert(env, group1)
    out["load2"] = run_load_newmongo(LoadNewMongoOptions(), env)
    out["etl2"] = run_etl_newmongo(EtlNewMongoOptions(raw_run=out["load2"]), env)
    out["harm2"] = run_harmonization(
        HarmonizationOptions(etl_runs=out["etl2"], previous_run=out["harm1"], compute_dtw=False),
        env,
    )
    _insert(env, [{k: v for k, v in d.items() if k != "_id"} for d in group2])  # fresh _ids
    out["load3"] = run_load_newmongo(LoadNewMongoOptions(lookback_days=0), env)
    out["load4"] = run_load_newmongo(LoadNewMongoOptions(), env)
    return out


def test_lookback_load_merges_late_documents_and_keeps_the_watermark(runs):
    first = mlflow.get_run(runs["load1"]).data.tags
    watermark = pd.Timestamp(first["meterflow.watermark"])
    assert _ids(runs["group1"]).isdisjoint(tracking.load_table(runs["load1"], "documents")["_id"])
    tags = mlflow.get_run(runs["load2"]).data.tags
    assert pd.Timestamp(tags["meterflow.since"]) == watermark
    assert pd.Timestamp(tags["meterflow.lookback_since"]) == lookback_since(watermark, 2, TZ)
    assert pd.Timestamp(tags["meterflow.watermark"]) == watermark  # nothing newer: unchanged
    m = _metrics(runs["load2"])
    late = len(runs["group1"])
    assert m["late_documents"] == late >= 1
    assert m["documents"] == late  # no document after the watermark
    assert m["lookback_documents"] > late  # the other reads of the window, re-read as context
    documents = tracking.load_table(runs["load2"], "documents")
    assert set(documents["_id"]) == _ids(runs["group1"])


def test_etl_rebuilds_the_late_meter_day_and_harmonization_replaces_it(runs):
    m = _metrics(runs["etl2"])
    assert m["readings_in"] == 2 * len(runs["group1"])  # import and export of each late read
    key = (runs["meter"], runs["day"])
    rebuilt = tracking.load_table(runs["etl2"], "profiles").set_index(["meter_id", "date"])
    slots = profile_slot_columns(rebuilt)
    assert rebuilt.loc[key, slots].notna().all()
    energy = {
        run: tracking.load_table(runs[run], "profiles").set_index(["meter_id", "date"])
        for run in ("harm1", "harm2")
    }
    assert np.allclose(energy["harm2"].loc[key, slots], rebuilt.loc[key, slots])
    assert not np.allclose(energy["harm1"].loc[key, slots], rebuilt.loc[key, slots])
    assert _metrics(runs["harm2"])["carried_over_meter_days"] > 0


def _reads(docs: pd.DataFrame | list[dict]) -> set[tuple[str, pd.Timestamp]]:
    frame = pd.DataFrame(docs)
    ts = pd.to_datetime(frame["ts"], utc=True)
    return set(zip(frame["meter_id"].astype(str), ts, strict=True))


def test_late_documents_older_than_the_look_back_are_found_and_merged(runs):
    """``lookback_days=0`` reads only after the watermark, but the collection's marks show that
    documents were stored since the last load that the window does not hold: they are found
    through the ``_id`` index and their day is re-read, counted and merged."""
    group2 = runs["group2"]
    m = _metrics(runs["load3"])
    assert m["late_before_lookback_documents"] == m["late_documents"] == len(group2)
    assert m["late_unlocated_documents"] == 0
    documents = tracking.load_table(runs["load3"], "documents")
    assert _reads(documents) == _reads(group2)
    tags = mlflow.get_run(runs["load3"]).data.tags
    day_start = pd.Timestamp(runs["day"]).tz_localize(TZ).tz_convert("UTC")
    assert pd.Timestamp(tags["meterflow.lookback_since"]) == day_start
    m = _metrics(runs["load4"])  # the next load: nothing late left
    assert m["late_documents"] == m["late_before_lookback_documents"] == 0
