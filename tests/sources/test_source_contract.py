"""Every registered source (``sources.registry``) run through the source contract on one
synthetic fleet written to a real SQLite historian, the local MongoDB wire-protocol server and a
folder of old exports (checks: ``tests.sources.conformance``)."""

from __future__ import annotations

import pymongo
import pytest
from bson import ObjectId

from meterflow.domain import SOURCES as SOURCE_NAMES
from meterflow.sources.formats import MONGO_COLLECTION
from meterflow.sources.meters import read_meters
from meterflow.sources.registry import source_class, source_names
from tests.sources import synthetic_fleet
from tests.sources.conformance import Stores, check_contract, run_source

DB = "meterflow_contract"


@pytest.fixture(scope="module")
def fleet_stores(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str):
    fleet = synthetic_fleet.build(n_meters=10, days=12)
    root = tmp_path_factory.mktemp("contract")
    stores = Stores(root, f"sqlite:///{root / 'historian.db'}", mongo_uri, DB)
    synthetic_fleet.write_historian(stores.sql_url, fleet)
    synthetic_fleet.write_exports(stores.exports_dir, fleet)
    docs = synthetic_fleet.documents(fleet)
    records = docs.assign(_id=docs["_id"].map(ObjectId)).to_dict("records")
    for r in records:
        r["ts"] = r["ts"].to_pydatetime()
    with pymongo.MongoClient(mongo_uri) as client:
        client[DB][MONGO_COLLECTION].drop()
        client[DB][MONGO_COLLECTION].insert_many(records)
    return fleet, stores, read_meters(stores.sql_url), {}


def test_the_registry_lists_the_domain_sources_in_priority_order():
    assert source_names() == SOURCE_NAMES
    for name in source_names():
        cls = source_class(name)
        assert cls.name == name and cls.title
        assert cls.reference_source is None or cls.reference_source in SOURCE_NAMES


@pytest.mark.parametrize("name", source_names())
def test_every_registered_source_keeps_the_contract(name: str, fleet_stores):
    fleet, stores, meters, results = fleet_stores
    result = run_source(name, stores, meters, results)
    check_contract(name, result, fleet, stores)


def test_the_scale_error_of_the_old_exports_is_corrected_to_the_truth(fleet_stores):
    _, stores, meters, results = fleet_stores
    name = next(n for n in source_names() if source_class(n).reference_source is not None)
    result = results.get(name) or run_source(name, stores, meters, results)
    assert set(result.scale_corrections["meter_id"]) == {"M00001", "M00010"}
