"""Anomaly alerts: one per event across runs, merged without a database (``merge_alerts``) and
written to SQL (SQLite, PostgreSQL) and MongoDB, where a later run updates what an earlier one
raised and a rerun changes nothing; the ``AlertSink`` contract checked on every registered sink
and on a toy Parquet sink added in this module by one registry line."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pymongo
import pytest
import sqlalchemy as sa

from meterflow.anomaly.alerts import (
    ALERT_COLUMNS,
    RUN_ALERT_COLUMNS,
    alert_rows,
    merge_alerts,
    typed_alerts,
)
from meterflow.errors import MeterflowError, SourceError
from meterflow.settings import Environment
from meterflow.sources.alert_sinks import ALERT_SINKS, AlertSink
from meterflow.sources.alert_sinks import mongo as mongo_sink
from meterflow.sources.alert_sinks import sql as sql_sink
from meterflow.sources.alert_sinks.base import (
    ALERT_TABLE,
    AlertRowsError,
    AlertWrite,
    checked_now,
    stored_frame,
)
from meterflow.sources.alert_sinks.mongo import MongoAlertSink
from meterflow.sources.alert_sinks.sql import SqlAlertSink
from meterflow.sources.mongo_server import free_port

T0 = pd.Timestamp("2024-03-31 01:45:00")  # a DST night, on the series' own naive clock
H = pd.Timedelta(hours=1)
NOW_A = pd.Timestamp("2024-04-01 03:00:00.123456", tz="UTC")
NOW_B = pd.Timestamp("2024-04-02 05:00:00", tz="Europe/Brussels")  # 03:00 UTC
NOW_B2 = pd.Timestamp("2024-04-03 03:00:00")  # naive: UTC
NOW_A_STORED = pd.Timestamp("2024-04-01 03:00:00.123")  # naive UTC, whole milliseconds
DATABASE = "alerts"
NO_ALERTS = pd.DataFrame(columns=list(ALERT_COLUMNS))


def events(n: int, offset_h: int = 0, meter: str = "M1") -> pd.DataFrame:
    """``n`` events of ``meter`` starting ``offset_h`` hours after T0, 3 hours apart."""
    start = pd.DatetimeIndex([T0 + pd.Timedelta(hours=offset_h + 3 * i) for i in range(n)])
    return pd.DataFrame(
        {
            "meter_id": meter,
            "start": start,
            "end": start + pd.Timedelta(minutes=45),
            "kind": [None if i % 2 else "spike" for i in range(n)],
            "peak_score": [0.125 + 1.5 * i + offset_h for i in range(n)],
            "n_flagged": [3 + i for i in range(n)],
        }
    )


def event(start: pd.Timestamp, end: pd.Timestamp, kind: str | None = "spike", **kw: Any):
    """One event of M1 (``meter_id``, ``peak_score``, ``n_flagged`` in ``kw``)."""
    row = {"meter_id": "M1", "start": start, "end": end, "kind": kind}
    return {**row, "peak_score": 1.0, "n_flagged": 4, **kw}


def run_alerts(run_id: str, *rows: dict[str, Any], detector: str = "iforest") -> pd.DataFrame:
    return alert_rows(pd.DataFrame(list(rows)), run_id, detector)


def stored_after(existing: pd.DataFrame, new: pd.DataFrame, run_id: str, now) -> pd.DataFrame:
    """The stored alerts after the merge of ``new`` is applied, sorted by ``alert_id``."""
    to_update, to_insert = merge_alerts(existing, new, run_id, now)
    assert not set(to_insert["alert_id"]) & set(existing["alert_id"])
    kept = existing[~existing["alert_id"].isin(to_update["alert_id"])]
    frames = [f for f in (kept, to_update, to_insert) if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else NO_ALERTS
    return out.sort_values("alert_id", ignore_index=True)


def by_id(alerts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["alert_id"]: r for r in alerts.to_dict("records")}


# --- the run's rows ------------------------------------------------------------------------


def test_alert_rows_are_deterministic_and_typed():
    alerts = alert_rows(events(2), "run1", "iforest")
    assert tuple(alerts.columns) == RUN_ALERT_COLUMNS
    assert alerts["alert_id"].tolist() == [
        "M1:spike:2024-03-31T01:45:00",
        "M1:unknown:2024-03-31T04:45:00",
    ]
    assert (alerts["run_id"] == "run1").all() and (alerts["detector"] == "iforest").all()
    assert alerts["kind"].tolist() == ["spike", None]
    pd.testing.assert_frame_equal(alerts, alert_rows(events(2), "run1", "iforest"))
    # another run finds the same events under the same ids
    assert alert_rows(events(2), "run2", "x")["alert_id"].tolist() == alerts["alert_id"].tolist()
    empty = alert_rows(events(0), "run1", "iforest")
    assert len(empty) == 0 and tuple(empty.columns) == RUN_ALERT_COLUMNS
    assert empty.dtypes.to_dict() == alerts.dtypes.to_dict()
    with pytest.raises(ValueError, match="share a meter, kind and start"):
        alert_rows(pd.concat([events(1), events(1)]), "run1", "iforest")
    two_kinds = pd.concat([events(1), events(1).assign(kind="level_shift")])
    assert len(alert_rows(two_kinds, "run1", "iforest")) == 2


# --- merge_alerts: no database ---------------------------------------------------------------


def test_new_events_become_open_alerts():
    new = alert_rows(events(2), "A", "iforest")
    to_update, to_insert = merge_alerts(NO_ALERTS, new, "A", NOW_A)
    assert len(to_update) == 0 and tuple(to_insert.columns) == ALERT_COLUMNS
    assert to_insert["alert_id"].tolist() == new["alert_id"].tolist()
    assert (to_insert["status"] == "open").all()
    assert (to_insert[["first_seen_run", "last_seen_run"]] == "A").all().all()
    for col in ("first_seen_at", "last_seen_at"):
        assert (to_insert[col] == NOW_A_STORED).all()
    for col in ("start", "end", "peak_score", "n_flagged", "kind"):
        assert to_insert[col].tolist() == new[col].tolist()
    assert to_update.dtypes.to_dict() == to_insert.dtypes.to_dict()
    with pytest.raises(ValueError, match="other than"):
        merge_alerts(NO_ALERTS, new, "B", NOW_A)


def test_a_later_overlapping_window_updates_the_alert():
    a = run_alerts("A", event(T0, T0 + 2 * H, peak_score=3.0, n_flagged=8))
    stored = stored_after(NO_ALERTS, a, "A", NOW_A)
    # the next night's window starts inside the event: a later start, a later end
    b = run_alerts("B", event(T0 + H, T0 + 5 * H, peak_score=2.0, n_flagged=6), detector="lstm")
    to_update, to_insert = merge_alerts(stored, b, "B", NOW_B)
    assert len(to_insert) == 0 and len(to_update) == 1
    got = to_update.iloc[0]
    assert got["alert_id"] == "M1:spike:2024-03-31T01:45:00" == a["alert_id"].iloc[0]
    assert (got["start"], got["end"]) == (T0, T0 + 5 * H)
    assert (got["first_seen_run"], got["first_seen_at"]) == ("A", NOW_A_STORED)
    assert (got["last_seen_run"], got["last_seen_at"]) == ("B", pd.Timestamp("2024-04-02 03:00"))
    assert (got["peak_score"], got["n_flagged"], got["detector"]) == (3.0, 8, "lstm")
    assert got["status"] == "open"
    # an earlier start moves the start back; the id stays
    c = run_alerts("C", event(T0 - H, T0 + H, n_flagged=20))
    got = merge_alerts(stored, c, "C", NOW_B)[0].iloc[0]
    assert (got["alert_id"], got["start"], got["end"]) == (
        a["alert_id"].iloc[0],
        T0 - H,
        T0 + 2 * H,
    )
    assert got["n_flagged"] == 20


def test_touching_events_are_one_alert_and_a_gap_is_another():
    stored = stored_after(NO_ALERTS, run_alerts("A", event(T0, T0 + H)), "A", NOW_A)
    touching = run_alerts("B", event(T0 + H, T0 + 2 * H))  # starts where the alert ends
    to_update, to_insert = merge_alerts(stored, touching, "B", NOW_B)
    assert len(to_insert) == 0 and to_update["end"].tolist() == [T0 + 2 * H]
    gap = run_alerts("B", event(T0 + H + pd.Timedelta(minutes=15), T0 + 2 * H))
    to_update, to_insert = merge_alerts(stored, gap, "B", NOW_B)
    assert len(to_update) == 0
    assert to_insert["alert_id"].tolist() == ["M1:spike:2024-03-31T03:00:00"]


def test_other_kinds_and_meters_are_other_alerts():
    stored = stored_after(
        NO_ALERTS, run_alerts("A", event(T0, T0 + 2 * H), event(T0, T0 + 2 * H, None)), "A", NOW_A
    )
    assert stored["alert_id"].tolist() == [
        "M1:spike:2024-03-31T01:45:00",
        "M1:unknown:2024-03-31T01:45:00",
    ]
    b = run_alerts(
        "B",
        event(T0 + H, T0 + 3 * H, "level_shift"),  # another kind: a new alert
        event(T0 + H, T0 + 3 * H, "spike", meter_id="M2"),  # another meter: a new alert
        event(T0 + H, T0 + 3 * H, None),  # no kind guessed, as before: the same alert
    )
    to_update, to_insert = merge_alerts(stored, b, "B", NOW_B)
    assert to_update["alert_id"].tolist() == ["M1:unknown:2024-03-31T01:45:00"]
    assert sorted(to_insert["alert_id"]) == [
        "M1:level_shift:2024-03-31T02:45:00",
        "M2:spike:2024-03-31T02:45:00",
    ]


def test_operator_status_is_kept():
    stored = stored_after(NO_ALERTS, alert_rows(events(2), "A", "iforest"), "A", NOW_A)
    stored["status"] = ["acknowledged", "closed"]
    b = alert_rows(events(2).assign(end=lambda e: e["end"] + H), "B", "iforest")
    to_update, to_insert = merge_alerts(stored, b, "B", NOW_B)
    assert len(to_insert) == 0 and to_update["status"].tolist() == ["acknowledged", "closed"]
    assert (to_update["last_seen_run"] == "B").all()


def test_a_rerun_changes_nothing():
    a = alert_rows(events(3), "A", "iforest")
    stored = stored_after(NO_ALERTS, a, "A", NOW_A)
    assert all(len(f) == 0 for f in merge_alerts(stored, a, "A", NOW_B))
    b = alert_rows(events(3, offset_h=1).assign(start=lambda e: e["start"] - H), "B", "lstm")
    b = pd.concat([b, run_alerts("B", event(T0 + 20 * H, T0 + 21 * H), detector="lstm")])
    after_b = stored_after(stored, b, "B", NOW_B)
    assert len(after_b) == 4 and (after_b["last_seen_run"] == "B").all()
    for now in (NOW_B, NOW_B2):  # the same run again, even a day later
        to_update, to_insert = merge_alerts(after_b, b, "B", now)
        assert len(to_update) == 0 and len(to_insert) == 0
    empty = alert_rows(events(0), "B", "lstm")
    assert all(len(f) == 0 for f in merge_alerts(after_b, empty, "B", NOW_B))


def test_a_run_bridging_alerts_updates_the_earliest_and_is_stable():
    stored = stored_after(
        NO_ALERTS, run_alerts("A", event(T0, T0 + H), event(T0 + 3 * H, T0 + 4 * H)), "A", NOW_A
    )
    # two touching events of one run, spanning both stored alerts: one group
    b = run_alerts("B", event(T0 + H, T0 + 2 * H), event(T0 + 2 * H, T0 + 5 * H))
    to_update, to_insert = merge_alerts(stored, b, "B", NOW_B)
    assert len(to_insert) == 0
    assert to_update["alert_id"].tolist() == ["M1:spike:2024-03-31T01:45:00"]
    assert to_update["end"].tolist() == [T0 + 5 * H] and to_update["n_flagged"].tolist() == [8]
    after_b = stored_after(stored, b, "B", NOW_B)
    assert all(len(f) == 0 for f in merge_alerts(after_b, b, "B", NOW_B2))
    # two touching events of a run that meet nothing: one new alert, stable as well
    fresh = run_alerts("C", event(T0 + 9 * H, T0 + 10 * H), event(T0 + 10 * H, T0 + 11 * H))
    to_update, to_insert = merge_alerts(after_b, fresh, "C", NOW_B)
    assert len(to_update) == 0 and to_insert["end"].tolist() == [T0 + 11 * H]
    after_c = stored_after(after_b, fresh, "C", NOW_B)
    assert all(len(f) == 0 for f in merge_alerts(after_c, fresh, "C", NOW_B2))


# --- the stores --------------------------------------------------------------------------------


def run_a() -> pd.DataFrame:
    """Two events of M1: a spike, then one of no guessed kind."""
    return run_alerts(
        "A",
        event(T0, T0 + 2 * H, peak_score=3.0, n_flagged=8),
        event(T0 + 6 * H, T0 + 7 * H, None, peak_score=1.5),
    )


def run_b() -> pd.DataFrame:
    """The next night: the spike, seen from a later window start and lasting longer, and a new
    level shift."""
    return run_alerts(
        "B",
        event(T0 + H, T0 + 4 * H, peak_score=2.0, n_flagged=6),
        event(T0 + 9 * H, T0 + 12 * H, "level_shift", peak_score=5.0),
        detector="lstm",
    )


def check_across_runs(
    write: Callable[[pd.DataFrame, str, pd.Timestamp], AlertWrite],
    read: Callable[[], pd.DataFrame],
    acknowledge: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
) -> None:
    """Run A raises 2 alerts, an operator acknowledges one, run B continues it and raises a
    new one: 3 alerts; B again changes nothing. Alerts of other meters or long past are not
    read."""
    assert write(alert_rows(events(0), "Z", "d"), "Z", NOW_A) == (0, 0)
    other = [event(T0 - 240 * H, T0 - 239 * H), event(T0 + H, T0 + 2 * H, meter_id="M9")]
    assert write(run_alerts("Z", *other), "Z", NOW_A) == (2, 0)
    assert write(run_a(), "A", NOW_A) == (2, 0)
    spike = "M1:spike:2024-03-31T01:45:00"
    acknowledge(spike)
    seen: list[set[str]] = []
    merge = module.merge_alerts
    spy = lambda ex, *a: seen.append(set(ex.get("alert_id", ()))) or merge(ex, *a)  # noqa: E731
    monkeypatch.setattr(module, "merge_alerts", spy)
    assert write(run_b(), "B", NOW_B) == (1, 1)
    assert seen[-1] == {spike, "M1:unknown:2024-03-31T07:45:00"}  # only what can match
    after_b = read()
    stored = by_id(after_b)
    assert len(stored) == 5
    got = stored[spike]
    assert (got["first_seen_run"], got["last_seen_run"]) == ("A", "B")
    assert got["status"] == "acknowledged"
    assert (pd.Timestamp(got["start"]), pd.Timestamp(got["end"])) == (T0, T0 + 4 * H)
    assert pd.Timestamp(got["first_seen_at"]) == NOW_A_STORED
    assert pd.Timestamp(got["last_seen_at"]) == pd.Timestamp("2024-04-02 03:00")
    assert (got["peak_score"], int(got["n_flagged"]), got["detector"]) == (3.0, 8, "lstm")
    untouched = stored["M1:unknown:2024-03-31T07:45:00"]
    assert (untouched["last_seen_run"], untouched["status"]) == ("A", "open")
    assert pd.isna(untouched["kind"])
    new = stored["M1:level_shift:2024-03-31T10:45:00"]
    assert (new["first_seen_run"], new["last_seen_run"], new["status"]) == ("B", "B", "open")
    assert write(run_b(), "B", NOW_B2) == (0, 0)  # the rerun
    pd.testing.assert_frame_equal(read(), after_b)
    with pytest.raises(AlertRowsError, match="other than"):
        write(run_b(), "A", NOW_B)


def read_sql(url: str, table: str = ALERT_TABLE) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(tbl).order_by(tbl.c.alert_id)).mappings().all()
    finally:
        engine.dispose()
    return pd.DataFrame([dict(r) for r in rows], columns=list(ALERT_COLUMNS))


def acknowledge_sql(url: str, alert_id: str, table: str = ALERT_TABLE) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
            done = conn.execute(
                sa.update(tbl).where(tbl.c.alert_id == alert_id).values(status="acknowledged")
            )
            assert done.rowcount == 1
    finally:
        engine.dispose()


def fresh_collection() -> str:
    """A collection of its own: nx-27017 shares a collection among all database names."""
    return f"alerts_{uuid.uuid4().hex[:8]}"


def read_mongo(uri: str, collection: str) -> pd.DataFrame:
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=False) as client:
        docs = list(client[DATABASE][collection].find({}).sort("_id", 1))
    assert all(d["_id"] == d["alert_id"] for d in docs)
    return pd.DataFrame(docs, columns=list(ALERT_COLUMNS))


def acknowledge_mongo(uri: str, collection: str, alert_id: str) -> None:
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        done = client[DATABASE][collection].update_one(
            {"_id": alert_id}, {"$set": {"status": "acknowledged", "note": "on it"}}
        )
    assert done.matched_count == 1


def test_sqlite_alerts_are_one_per_event_across_runs(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    check_across_runs(
        lambda alerts, run, now: SqlAlertSink(url).write(alerts, run, now=now),
        lambda: read_sql(url),
        lambda alert_id: acknowledge_sql(url, alert_id),
        monkeypatch,
        sql_sink,
    )
    engine = sa.create_engine(url)
    try:
        indexes = {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes(ALERT_TABLE)}
    finally:
        engine.dispose()
    assert {("meter_id", "start"), ("meter_id", "end"), ("last_seen_run",)} <= indexes


@pytest.mark.postgres
def test_postgresql_alerts_are_one_per_event_across_runs(postgres_url: str, monkeypatch):
    table = f"alerts_{uuid.uuid4().hex[:8]}"
    check_across_runs(
        lambda alerts, run, now: SqlAlertSink(postgres_url, table).write(alerts, run, now=now),
        lambda: read_sql(postgres_url, table),
        lambda alert_id: acknowledge_sql(postgres_url, alert_id, table),
        monkeypatch,
        sql_sink,
    )


def test_mongo_alerts_are_one_per_event_across_runs(mongo_uri: str, monkeypatch):
    name = fresh_collection()
    check_across_runs(
        lambda alerts, run, now: MongoAlertSink(mongo_uri, DATABASE, name).write(
            alerts, run, now=now
        ),
        lambda: read_mongo(mongo_uri, name),
        lambda alert_id: acknowledge_mongo(mongo_uri, name, alert_id),
        monkeypatch,
        mongo_sink,
    )
    with pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        coll = client[DATABASE][name]
        info = coll.index_information()
        note = coll.find_one({"_id": "M1:spike:2024-03-31T01:45:00"})["note"]
    keys = {tuple(k for k, _ in ix["key"]) for ix in info.values()}
    assert {("meter_id", "start"), ("meter_id", "end"), ("last_seen_run",)} <= keys
    assert note == "on it"  # a field an operator added survives the update


def test_mongo_redoes_a_merge_when_an_operator_changed_a_status_meanwhile(
    mongo_uri: str, monkeypatch: pytest.MonkeyPatch
):
    name = fresh_collection()
    sink = MongoAlertSink(mongo_uri, DATABASE, name)
    assert sink.write(run_a(), "A", now=NOW_A) == (2, 0)
    spike, read = "M1:spike:2024-03-31T01:45:00", mongo_sink._candidates
    reads: list[int] = []

    def read_then_close(coll, new):
        docs = read(coll, new)
        if not reads:  # the operator closes the alert right after the first read
            coll.update_one({"_id": spike}, {"$set": {"status": "closed"}})
        reads.append(len(docs))
        return docs

    monkeypatch.setattr(mongo_sink, "_candidates", read_then_close)
    assert sink.write(run_b(), "B", now=NOW_B) == (1, 1)
    assert reads == [2, 3]  # the redo saw the alert inserted by the first pass
    got = by_id(read_mongo(mongo_uri, name))[spike]
    assert (got["status"], got["last_seen_run"], pd.Timestamp(got["end"])) == (
        "closed",
        "B",
        T0 + 4 * H,
    )


OLD_TABLE = """CREATE TABLE anomaly_alerts (
    alert_id VARCHAR(400) PRIMARY KEY, run_id VARCHAR(200) NOT NULL,
    detector VARCHAR(200) NOT NULL, meter_id VARCHAR(200) NOT NULL, start DATETIME NOT NULL,
    "end" DATETIME NOT NULL, kind VARCHAR(200), peak_score FLOAT, n_flagged INTEGER NOT NULL)"""
OLD_INDEX = "CREATE INDEX ix_anomaly_alerts_meter_start ON anomaly_alerts (meter_id, start)"


def test_a_sql_table_of_the_old_layout_is_refused_untouched(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(OLD_TABLE))
            conn.execute(sa.text(OLD_INDEX))
            conn.execute(
                sa.text(
                    "INSERT INTO anomaly_alerts VALUES "
                    "('r:M1:x', 'r', 'd', 'M1', '2024-03-31 01:45:00', '2024-03-31 02:30:00', "
                    "NULL, 1.0, 3)"
                )
            )
    finally:
        engine.dispose()
    with pytest.raises(SourceError) as err:
        SqlAlertSink(url).write(run_a(), "A", now=NOW_A)
    message = str(err.value)
    assert "'anomaly_alerts'" in message and "older layout" in message
    for col in ("status", "first_seen_run", "first_seen_at", "last_seen_run", "last_seen_at"):
        assert col in message
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT alert_id FROM anomaly_alerts")).all()
    finally:
        engine.dispose()
    assert rows == [("r:M1:x",)]


def test_renaming_an_old_table_as_the_refusal_says_starts_afresh(tmp_path: Path):
    """The old table renamed to ``<name>_v1`` keeps its rows and its indexes' names; the new
    table is created beside it and written."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(OLD_TABLE))
            conn.execute(sa.text(OLD_INDEX))
            conn.execute(sa.text("ALTER TABLE anomaly_alerts RENAME TO anomaly_alerts_v1"))
    finally:
        engine.dispose()
    sink = SqlAlertSink(url)
    sink.write(run_a(), "A", now=NOW_A)
    assert len(sink.read()) == len(run_a())


def test_mongo_documents_of_the_old_layout_are_refused(mongo_uri: str):
    name = fresh_collection()
    old = {"_id": "r:M1:x", "alert_id": "r:M1:x", "run_id": "r", "detector": "d"}
    old |= {"meter_id": "M1", "start": T0.to_pydatetime(), "end": (T0 + H).to_pydatetime()}
    old |= {"kind": "spike", "peak_score": 1.0, "n_flagged": 3}
    with pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        client[DATABASE][name].insert_one(old)
    with pytest.raises(SourceError, match="older layout") as err:
        MongoAlertSink(mongo_uri, DATABASE, name).write(run_a(), "A", now=NOW_A)
    assert f"{DATABASE}.{name}" in str(err.value) and "first_seen_run" in str(err.value)


def test_unreachable_sql_error_hides_the_password():
    url = f"postgresql+psycopg2://meter:s3cr3t@127.0.0.1:{free_port()}/alerts"
    with pytest.raises(SourceError) as err:
        SqlAlertSink(url).write(alert_rows(events(1), "r", "iforest"), "r")
    assert "s3cr3t" not in str(err.value) and "127.0.0.1" in str(err.value)
    with pytest.raises(SourceError) as err:
        SqlAlertSink("nosuchdb://meter:s3cr3t@db.example/x").write(
            alert_rows(events(0), "r", "d"), "r"
        )
    assert "s3cr3t" not in str(err.value)


def test_unreachable_mongo_error_names_the_host_without_the_password():
    uri = f"mongodb://meter:s3cr3t@127.0.0.1:{free_port()}/"
    with pytest.raises(SourceError) as err:
        MongoAlertSink(uri, "db", timeout_ms=300).write(alert_rows(events(1), "r", "d"), "r")
    assert "s3cr3t" not in str(err.value) and "127.0.0.1" in str(err.value)


# --- the AlertSink contract, on every registered sink -------------------------------------------


@pytest.fixture()
def sink_env(tmp_path: Path, mongo_uri: str) -> Environment:
    """An environment that configures a store for every registered sink."""
    return Environment(
        data_dir=tmp_path,
        sql_url=f"sqlite:///{tmp_path / 'historian.db'}",
        mongodb_uri=mongo_uri,
        mongo_database=f"alerts_{uuid.uuid4().hex[:8]}",
        experiment="alerts",
    )


def own_alerts(sink: AlertSink, meter: str) -> pd.DataFrame:
    """What ``sink`` reads back of ``meter`` (a store may hold other tests' alerts), typed."""
    stored = sink.read()
    assert tuple(stored.columns) == ALERT_COLUMNS
    assert stored["alert_id"].is_monotonic_increasing
    return typed_alerts(stored[stored["meter_id"] == meter], ALERT_COLUMNS)


def check_sink_contract(sink: AlertSink) -> None:
    """Idempotent writes (one alert per event across runs, a rerun changes nothing), alerts
    read back as merged, bad rows refused with a MeterflowError before anything is written."""
    meter = f"C{uuid.uuid4().hex[:8]}"
    a = run_alerts(
        "A",
        event(T0, T0 + 2 * H, meter_id=meter, peak_score=3.0, n_flagged=8),
        event(T0 + 6 * H, T0 + 7 * H, None, meter_id=meter, peak_score=1.5),
    )
    b = run_alerts(
        "B",
        event(T0 + H, T0 + 4 * H, meter_id=meter, peak_score=2.0, n_flagged=6),
        event(T0 + 9 * H, T0 + 12 * H, "level_shift", meter_id=meter),
        detector="lstm",
    )
    with pytest.raises(MeterflowError, match="other than"):
        sink.write(a, "B", now=NOW_A)
    with pytest.raises(MeterflowError, match="lack column"):
        sink.write(a.drop(columns="detector"), "A", now=NOW_A)
    assert len(own_alerts(sink, meter)) == 0
    expected = stored_after(NO_ALERTS, a, "A", NOW_A)
    assert sink.write(a, "A", now=NOW_A) == (2, 0)
    for _ in range(2):  # the rerun, and once more: nothing changes
        assert sink.write(a, "A", now=NOW_B) == (0, 0)
        pd.testing.assert_frame_equal(
            own_alerts(sink, meter), typed_alerts(expected, ALERT_COLUMNS)
        )
    expected = stored_after(expected, b, "B", NOW_B)
    assert sink.write(b, "B", now=NOW_B) == (1, 1)
    assert sink.write(b, "B", now=NOW_B2) == (0, 0)
    got = own_alerts(sink, meter)
    pd.testing.assert_frame_equal(got, typed_alerts(expected, ALERT_COLUMNS))
    assert len(got) == 3 and got["first_seen_run"].tolist().count("A") == 2
    assert sink.write(alert_rows(events(0), "Z", "d"), "Z", now=NOW_A) == (0, 0)
    assert isinstance(sink.describe(), str) and sink.name in ALERT_SINKS


@pytest.mark.parametrize("name", sorted(ALERT_SINKS))
def test_every_registered_sink_meets_the_contract(name: str, sink_env: Environment):
    sink = ALERT_SINKS[name](sink_env)
    assert sink is not None, f"{name} is not configured by an environment that sets every store"
    check_sink_contract(sink)


def test_the_mongo_sink_is_skipped_without_a_uri(sink_env: Environment):
    assert ALERT_SINKS["mongo"](sink_env.model_copy(update={"mongodb_uri": None})) is None


# A worked example: a new sink is one class and one registry line.


class ParquetAlertSink:
    """A toy sink: every alert in one Parquet file, rewritten whole by each write."""

    name = "parquet"

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_env(cls, env: Environment) -> ParquetAlertSink:
        return cls(env.data_dir / "alerts.parquet")

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> pd.DataFrame:
        if not self.path.exists():
            return stored_frame([])
        return stored_frame(pd.read_parquet(self.path).to_dict("records"))

    def write(self, alerts: pd.DataFrame, run_id: str, *, now=None) -> AlertWrite:
        when = checked_now(alerts, run_id, now)
        stored = self.read()
        to_update, to_insert = merge_alerts(stored, alerts, run_id, when)
        kept = stored[~stored["alert_id"].isin(to_update["alert_id"])]
        frames = [f for f in (kept, to_update, to_insert) if len(f)]
        if frames:
            typed_alerts(pd.concat(frames), ALERT_COLUMNS).to_parquet(self.path)
        return AlertWrite(len(to_insert), len(to_update))


def test_a_toy_parquet_sink_registered_by_one_line_meets_the_contract(
    sink_env: Environment, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(ALERT_SINKS, "parquet", ParquetAlertSink.from_env)
    sink = ALERT_SINKS["parquet"](sink_env)
    check_sink_contract(sink)
    assert sink.describe() == str(sink_env.data_dir / "alerts.parquet")
