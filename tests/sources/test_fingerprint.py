"""Source fingerprints change with every insert and delete, also of late documents, and read only
metadata and indexes (constant cost at any store size)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pymongo
import pytest
import sqlalchemy as sa
from bson import ObjectId

from meterflow.sources.fingerprint import mongo_fingerprint, sql_fingerprint
from meterflow.sources.formats import HISTORIAN_TABLE
from meterflow.sources.mongo_changes import store_marks, stored_since

T0 = datetime(2025, 1, 1)


def _docs(n: int, start: datetime, meter: str = "M1") -> list[dict]:
    return [
        {"meter_id": meter, "ts": start + timedelta(minutes=15 * i), "import_kwh": float(i)}
        for i in range(n)
    ]


@pytest.fixture()
def collection(mongo_uri: str, request) -> str:
    name = f"fp_{request.node.name}_{time.time_ns()}"[:60]
    with pymongo.MongoClient(mongo_uri) as client:
        coll = client["fingerprint"][name]
        coll.insert_many(_docs(96, T0))
        coll.create_index("ts")
    return name


def test_a_late_document_an_insert_and_a_delete_each_change_the_mongo_fingerprint(
    mongo_uri: str, collection: str
):
    seen = {mongo_fingerprint(mongo_uri, "fingerprint", collection)}
    assert mongo_fingerprint(mongo_uri, "fingerprint", collection) in seen  # stable
    with pymongo.MongoClient(mongo_uri) as client:
        coll = client["fingerprint"][collection]
        coll.insert_one(_docs(1, T0 - timedelta(days=30))[0])  # late: an old reading time
        seen.add(mongo_fingerprint(mongo_uri, "fingerprint", collection))
        coll.insert_many(_docs(4, T0 + timedelta(days=1)))
        seen.add(mongo_fingerprint(mongo_uri, "fingerprint", collection))
        coll.delete_one({"ts": T0 + timedelta(hours=3)})
        seen.add(mongo_fingerprint(mongo_uri, "fingerprint", collection))
    assert len(seen) == 4


def test_documents_stored_after_a_load_are_found_by_their_id(mongo_uri: str, collection: str):
    before = store_marks(mongo_uri, "fingerprint", collection)
    assert before.count == 96 and before.ordered and before.newest_ts == T0 + timedelta(hours=23.75)
    late = _docs(3, T0 + timedelta(hours=5), meter="M2")
    with pymongo.MongoClient(mongo_uri) as client:
        client["fingerprint"][collection].insert_many([*late, *_docs(2, T0 + timedelta(days=2))])
    after = store_marks(mongo_uri, "fingerprint", collection)
    assert after.count - before.count == 5
    assert ObjectId(after.newest_id) > ObjectId(before.newest_id)
    until = T0 + timedelta(days=1)
    found = stored_since(
        mongo_uri, "fingerprint", collection, after_id=before.newest_id, until=until
    )
    assert sorted(found["ts"]) == [d["ts"] for d in late] and set(found["meter_id"]) == {"M2"}


def _historian(url: str) -> sa.Table:
    meta = sa.MetaData()
    table = sa.Table(
        HISTORIAN_TABLE,
        meta,
        sa.Column("timestamp", sa.DateTime),
        sa.Column("tagname", sa.String(40)),
        sa.Column("energy", sa.Float),
        sa.Column("quality", sa.Integer),
    )
    engine = sa.create_engine(url)
    meta.drop_all(engine)
    meta.create_all(engine)
    engine.dispose()
    return table


def _execute(url: str, statement: sa.Executable) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(statement)
    engine.dispose()


def _rows(n: int, start: datetime) -> list[dict]:
    return [
        {"timestamp": start + timedelta(minutes=15 * i), "tagname": "M1.1.8.0", "energy": 0.1,
         "quality": 192}
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_an_insert_an_old_row_and_a_delete_each_change_the_sql_fingerprint(
    store: str, tmp_path, request
):
    url = (
        f"sqlite:///{tmp_path / 'h.db'}"
        if store == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    table = _historian(url)
    _execute(url, table.insert().values(_rows(96, T0)))
    seen = [sql_fingerprint(url)]
    changes = [
        table.insert().values(_rows(1, T0 - timedelta(days=30))),  # a late, old row
        table.insert().values(_rows(4, T0 + timedelta(days=1))),
        table.delete().where(table.c.timestamp == T0),
    ]
    for change in changes:
        _execute(url, change)
        for _ in range(40):  # PostgreSQL publishes its row counters within about a second
            if sql_fingerprint(url) not in seen:
                break
            time.sleep(0.1)
        seen.append(sql_fingerprint(url))
    assert len(set(seen)) == 4
