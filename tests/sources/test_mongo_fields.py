"""Mongo documents missing a required field (meter_id, ts, import_kwh, export_kwh), read from the
real wire-protocol server: missing in some documents -> quarantined per document with the fields
found and the document's location; renamed or missing in every document (a schema change) ->
one-line SourceError naming the field, the collection and the fields found instead."""

from __future__ import annotations

import pandas as pd
import pymongo
import pytest

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.sources.mongo import etl_newmongo, read_mongo_documents
from tests.sources.test_mongo import DAY0, DB, METERS, documents

REQUIRED = ("meter_id", "ts", "import_kwh", "export_kwh")
CONFIG = CleaningConfig(resolution_min=15)


@pytest.fixture()
def collection(mongo_uri: str, request) -> str:
    name = f"fields_{request.node.name}".replace("[", "_").replace("]", "_")[:60]
    with pymongo.MongoClient(mongo_uri) as client:
        client[DB][name].drop()
    return name


def insert(uri: str, coll: str, docs: list[dict]) -> list:
    with pymongo.MongoClient(uri) as client:
        return client[DB][coll].insert_many([dict(d) for d in docs]).inserted_ids


def damaged(docs: list[dict], field: str, rename: str | None, where: range | None) -> list[dict]:
    """``docs`` with ``field`` removed (or renamed to ``rename``) in documents ``where`` (all)."""
    out = []
    for i, doc in enumerate(docs):
        doc = dict(doc)
        if where is None or i in where:
            value = doc.pop(field)
            if rename:
                doc[rename] = value
        out.append(doc)
    return out


@pytest.mark.parametrize("method", ["arrow", "pymongo"])
@pytest.mark.parametrize("field", REQUIRED)
@pytest.mark.parametrize("rename", [None, "renamed_field"])
def test_field_missing_from_every_document_fails_in_one_line(
    mongo_uri: str, collection: str, field: str, rename: str | None, method: str
):
    insert(mongo_uri, collection, damaged(documents(8), field, rename, None))
    with pytest.raises(SourceError) as err:
        read_mongo_documents(mongo_uri, DB, collection, method=method)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"required field {field} is missing from the 16 document(s) read from " in msg
    assert f"{DB}.{collection}" in msg and "renamed or removed?" in msg
    found = msg.split("fields found instead: ", 1)[1]
    assert field not in found.split(" (")[0].split(", ")
    if rename:
        assert rename in found


@pytest.mark.parametrize("field", REQUIRED)
def test_field_missing_from_some_documents_is_quarantined_per_document(
    mongo_uri: str, collection: str, field: str
):
    docs = damaged(documents(12), field, None, range(8, 10))  # read 4 of A and of B
    ids = insert(mongo_uri, collection, docs)
    read = read_mongo_documents(mongo_uri, DB, collection)
    result = etl_newmongo(read, meters=METERS, config=CONFIG)
    q = result.quarantine
    hit = q[q["location"].isin([f"{collection}/_id={ids[i]}" for i in (8, 9)])]
    assert len(hit) == 2 * 2  # both registers of both documents
    reason = "missing_key" if field in ("meter_id", "ts") else "missing_value"
    assert set(hit["reason"]) == {reason} and set(hit["action"]) == {"dropped"}
    assert hit["detail"].str.startswith(f"{field} missing; fields: _id, ").all()
    assert not hit["detail"].str.split("; fields: ").str[1].str.contains(field).any()
    m = result.metrics
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"]


def test_renamed_read_time_fails_an_incremental_read_instead_of_reading_nothing(
    mongo_uri: str, collection: str
):
    """A read filtered on ``ts`` cannot see documents without it: once the newest documents of
    the collection all lack it (100 of them), the read fails instead of finding nothing new."""
    docs = documents(6 + 50)
    insert(mongo_uri, collection, docs[:12])  # reads 0..5 of A and B
    first = read_mongo_documents(mongo_uri, DB, collection)
    watermark = first["ts"].max()
    assert watermark == DAY0 + pd.Timedelta(minutes=15 * 5)
    insert(mongo_uri, collection, damaged(docs[12:], "ts", "timestamp", None))  # 100 renamed
    with pytest.raises(SourceError, match=r"required field ts is missing from the 0 document") as e:
        read_mongo_documents(mongo_uri, DB, collection, since=watermark)
    assert "fields found instead: _id, meter_id, import_kwh" in str(e.value)
    assert "timestamp" in str(e.value)


def test_renamed_meter_id_fails_a_read_filtered_by_meter(mongo_uri: str, collection: str):
    insert(mongo_uri, collection, damaged(documents(4), "meter_id", "meter", None))
    with pytest.raises(SourceError, match="required field meter_id is missing from the 0 doc"):
        read_mongo_documents(mongo_uri, DB, collection, meters=["A"])


@pytest.mark.parametrize("field", REQUIRED)
def test_etl_of_a_documents_table_without_a_field_fails_in_one_line(field: str):
    """A documents table (e.g. the Parquet artifact of a load) where no document has a value in
    a required field: one line naming the field and the collection, no IndexError."""
    frame = pd.DataFrame(
        {"_id": [f"id{i}" for i in range(4)], "meter_id": "A",
         "ts": DAY0 + pd.Timedelta(minutes=15) * pd.RangeIndex(4),
         "import_kwh": [1.0, 1.1, 1.2, 1.3], "export_kwh": 0.0}
    )  # fmt: skip
    frame = frame.assign(**{field: None})
    with pytest.raises(SourceError) as err:
        etl_newmongo(frame, meters=METERS, config=CONFIG, collection="readings")
    msg = str(err.value)
    assert "\n" not in msg
    assert f"required field {field} is missing from all 4 documents of readings" in msg
    assert "fields found instead: " in msg


def test_documents_none_of_which_is_usable_give_an_empty_result_not_an_error():
    """Every document quarantined for another reason (unknown meter): nothing usable, no crash."""
    frame = pd.DataFrame(
        {"meter_id": "ZZ", "ts": DAY0 + pd.Timedelta(minutes=15) * pd.RangeIndex(3),
         "import_kwh": [1.0, 1.1, 1.2], "export_kwh": 0.0}
    )  # fmt: skip
    result = etl_newmongo(frame, meters=METERS, config=CONFIG)
    assert result.profiles.empty
    assert set(result.quarantine["reason"]) == {"unknown_meter"}
    assert result.metrics["readings_quarantined"] == 6
