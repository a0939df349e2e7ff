"""The three ETLs read and clean their stores a block of meters at a time: the same outputs
(profiles, quarantine, quality, scale corrections, counts, files, watermark) for any block size,
rows of no meter included; the SQL historian is read by tag through its index."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pymongo
import pytest
import sqlalchemy as sa
from bson import ObjectId

from meterflow.etl import CleaningConfig
from meterflow.sources.meters import read_meters
from meterflow.sources.mongo import etl_newmongo, read_mongo_documents
from meterflow.sources.oldexports import etl_oldexports
from meterflow.sources.sql import etl_sql, tag_blocks
from meterflow.sources.sql_historian import historian_tags
from tests.etl.test_meter_blocks import assert_same_result
from tests.sources import synthetic_fleet
from tests.sources.corpus import test_mongo_cases as mongo_cases
from tests.sources.corpus import test_sql_cases as sql_cases
from tests.sources.corpus.common import DAMAGED, METERS

CFG = CleaningConfig(resolution_min=15)
DB = "meterflow_blocks"
ONE = 10_000  # one block of every meter


def insert_documents(uri: str, name: str, docs: pd.DataFrame) -> None:
    records = docs.assign(_id=docs["_id"].map(ObjectId)).to_dict("records")
    for r in records:
        r["ts"] = r["ts"].to_pydatetime()
    with pymongo.MongoClient(uri) as client:
        coll = client[DB][name]
        coll.drop()
        coll.insert_many(records)
        coll.create_index([("meter_id", pymongo.ASCENDING), ("ts", pymongo.ASCENDING)])


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str):
    fleet = synthetic_fleet.build(n_meters=11, days=12)
    root = tmp_path_factory.mktemp("blocks")
    url = f"sqlite:///{root / 'historian.db'}"
    synthetic_fleet.write_historian(url, fleet)
    synthetic_fleet.write_exports(root / "exports", fleet)
    insert_documents(mongo_uri, "synthetic", synthetic_fleet.documents(fleet))
    return url, root / "exports", read_meters(url)


def test_sql_blocks_read_by_tag_give_the_same_result(stores):
    url, _, meters = stores
    assert len(historian_tags(url)) == 2 * 12 + 1  # an index on the tags: a loose index scan
    one = etl_sql(url, meters=meters, config=CFG, block_meters=ONE)
    assert_same_result(etl_sql(url, meters=meters, config=CFG, block_meters=5), one)
    m = one.metrics
    assert m["read_arrow"] == 1.0 and m["quarantined_bad_quality"] > 0
    assert m["quarantined_outlier"] > 0 and m["quarantined_unknown_meter"] > 0
    assert m["quarantined_duplicate"] > 0 and m["quarantined_conflicting_duplicate"] > 0


def test_old_export_blocks_give_the_same_result(stores):
    url, folder, meters = stores
    reference = etl_sql(url, meters=meters, config=CFG).profiles
    one = etl_oldexports(folder, meters=meters, config=CFG, reference_profiles=reference,
                         block_meters=ONE)  # fmt: skip
    got = etl_oldexports(folder, meters=meters, config=CFG, reference_profiles=reference,
                         block_meters=5)  # fmt: skip
    assert_same_result(got, one)
    pd.testing.assert_frame_equal(got.files, one.files)
    assert set(one.scale_corrections["meter_id"]) == {"M00001", "M00010"}  # every 9th meter


def test_mongo_blocks_read_and_clean_the_same(stores, mongo_uri: str, tmp_path: Path):
    _, _, meters = stores
    whole = read_mongo_documents(mongo_uri, DB, "synthetic", block_meters=ONE)
    blocked = read_mongo_documents(mongo_uri, DB, "synthetic", block_meters=5)
    pd.testing.assert_frame_equal(
        blocked.sort_values("_id", ignore_index=True), whole.sort_values("_id", ignore_index=True)
    )
    assert blocked["meter_id"].iloc[1:].is_monotonic_increasing  # no meter first, then by meter
    one = etl_newmongo(whole, meters=meters, config=CFG, block_meters=ONE)
    assert_same_result(etl_newmongo(whole, meters=meters, config=CFG, block_meters=5), one)
    assert one.metrics["quarantined_counter_reset"] > 0
    blocked.to_parquet(tmp_path / "documents.parquet", row_group_size=500)
    from_file = etl_newmongo(tmp_path / "documents.parquet", meters=meters, config=CFG,
                             collection="synthetic", block_meters=5)  # fmt: skip
    assert_same_result(from_file, etl_newmongo(blocked, meters=meters, config=CFG))


def test_mongo_context_documents_in_blocks(stores, mongo_uri: str):
    _, _, meters = stores
    docs = read_mongo_documents(mongo_uri, DB, "synthetic")
    cut = docs["ts"].sort_values().iloc[len(docs) // 2]
    known = docs[(docs["ts"] <= cut).to_numpy() & (docs["issue"] == "").to_numpy()]
    new = docs[(docs["ts"] > cut).to_numpy()].reset_index(drop=True)
    one = etl_newmongo(new, meters=meters, config=CFG, previous=known, block_meters=ONE)
    got = etl_newmongo(new, meters=meters, config=CFG, previous=known, block_meters=3)
    assert_same_result(got, one)
    assert one.metrics["documents_context"] == len(known) and one.watermark == docs["ts"].max()


def damaged_rows() -> sql_cases.Rows:
    """Clean historian rows with rows of no meter (NULL and blank tags, NULL tag and time), an
    unknown meter, an unknown tag and duplicates."""
    rows = sql_cases.clean_rows()
    imp = sql_cases.IMP
    for damage in (
        sql_cases.set_field(imp, 0, None, n=30),
        sql_cases.set_field(imp, 1, None, n=30),  # the same row: no tag, no time
        sql_cases.set_field(imp, 1, "  ", n=20),
        sql_cases.set_field(imp, 1, None, n=10),
        sql_cases.add_row([sql_cases.find(rows, imp)[0], "GHOST.1.8.0", 1.0, 192]),
        sql_cases.add_row([sql_cases.find(rows, imp)[0], f"{DAMAGED}.3.8.0", 1.0, 192]),
        sql_cases.add_row(list(sql_cases.find(rows, imp, 50))),
        sql_cases.add_row([*sql_cases.find(rows, imp, 60)[:2], 0.7, 192]),
    ):
        rows = damage(rows)
    return rows


@pytest.mark.parametrize("indexed", [False, True], ids=["distinct", "loose_index_scan"])
@pytest.mark.parametrize("use_adbc", [True, False], ids=["adbc", "sqlalchemy"])
def test_rows_of_no_meter_go_with_the_first_block(tmp_path: Path, indexed: bool, use_adbc: bool):
    url = f"sqlite:///{tmp_path / 'damaged.db'}"
    sql_cases.write(url, damaged_rows())
    if indexed:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE INDEX ix_tag ON historian (tagname, timestamp)")
    tags = historian_tags(url)
    assert None in tags and "  " in tags and "GHOST.1.8.0" in tags
    blocks = tag_blocks(tags, 1)
    assert [ids for ids, _ in blocks] == [["CLEAN1"], ["DMG1"], ["GHOST"], ["PV1"]]
    assert blocks[0][1][0] == [None, "  "] or blocks[0][1][0] == ["  ", None]
    one = etl_sql(url, meters=METERS, config=CFG, block_meters=ONE, use_adbc=use_adbc)
    got = etl_sql(url, meters=METERS, config=CFG, block_meters=1, use_adbc=use_adbc)
    assert_same_result(got, one)
    q = one.quarantine
    keyless = q[q["meter_id"] == ""]
    assert len(keyless) == 3 and set(keyless["reason"]) == {"missing_key"}
    assert keyless["location"].str.fullmatch(r"historian row \d").sum() == 1  # no tag, no time


def test_drifted_documents_of_no_meter_go_with_the_first_block(mongo_uri: str):
    mongo_cases.insert(mongo_uri, "drifted_blocks", mongo_cases.drifted_fleet())
    docs = read_mongo_documents(mongo_uri, mongo_cases.DB, "drifted_blocks", block_meters=1)
    whole = read_mongo_documents(mongo_uri, mongo_cases.DB, "drifted_blocks", block_meters=ONE)
    assert len(docs) == len(whole) and docs["meter_id"].isna().any()
    one = etl_newmongo(whole, meters=METERS, config=CFG, block_meters=ONE)
    assert_same_result(etl_newmongo(whole, meters=METERS, config=CFG, block_meters=1), one)
