"""What changed in the readings collection since a load, at a cost that follows the change.

A load records the collection's :class:`StoreMarks` (its estimated size, from metadata, and its
newest ``_id``, through the ``_id`` index) before it reads. The next load compares: every document
stored since is either in the window it reads, or a late one older than that window. Those are
found through the ``_id`` index — ObjectIds grow with insertion time — without scanning the
collection (:func:`stored_since`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import pymongo
from bson import ObjectId

from meterflow.domain import SOURCE_NEWMONGO
from meterflow.sources.mongo_client import mongo_collection, retry_transient
from meterflow.sources.times import TimeLike, utc_naive

_OBJECT_ID = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class StoreMarks:
    """The collection's size (estimated, from metadata), newest ``_id`` (as text) and newest
    ``ts`` (through its index)."""

    count: int
    newest_id: str
    newest_ts: object = None

    @property
    def ordered(self) -> bool:
        """Whether ``_id`` grows with insertion (ObjectIds), so newer documents can be found."""
        return bool(_OBJECT_ID.fullmatch(self.newest_id))


def store_marks(uri: str, database: str, collection: str) -> StoreMarks:
    """The collection's :class:`StoreMarks`, at constant cost."""

    def marks() -> StoreMarks:
        with mongo_collection(uri, database, collection, source=SOURCE_NEWMONGO) as coll:
            newest = coll.find_one({}, {"_id": 1}, sort=[("_id", pymongo.DESCENDING)])
            latest = coll.find_one({}, {"ts": 1, "_id": 0}, sort=[("ts", pymongo.DESCENDING)])
            count = coll.estimated_document_count()
        return StoreMarks(
            count=count,
            newest_id="" if newest is None else str(newest["_id"]),
            newest_ts=(latest or {}).get("ts"),
        )

    return retry_transient(marks, f"marks of {database}.{collection}")


def stored_since(
    uri: str, database: str, collection: str, *, after_id: str, until: TimeLike
) -> pd.DataFrame:
    """``meter_id`` and ``ts`` (naive UTC) of the documents stored after the one ``after_id``
    (an ObjectId as text) whose read time is at or before ``until``: the late ones."""
    flt = {"_id": {"$gt": ObjectId(after_id)}, "ts": {"$lte": utc_naive(until).to_pydatetime()}}

    def read() -> list[dict]:
        with mongo_collection(uri, database, collection, source=SOURCE_NEWMONGO) as coll:
            return list(coll.find(flt, {"_id": 0, "meter_id": 1, "ts": 1}))

    found = retry_transient(read, f"late documents of {database}.{collection}")
    frame = pd.DataFrame(found, columns=["meter_id", "ts"])
    frame["ts"] = pd.to_datetime(frame["ts"])
    return frame
