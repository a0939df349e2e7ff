"""Anomaly alerts written back to SQL (SQLite, PostgreSQL) and MongoDB, idempotently per run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pymongo
import pytest
import sqlalchemy as sa

from meterflow.errors import SourceError
from meterflow.sources.alerts import (
    ALERT_COLUMNS,
    ALERT_TABLE,
    alert_rows,
    write_alerts_mongo,
    write_alerts_sql,
)
from meterflow.sources.mongo_server import free_port

T0 = pd.Timestamp("2024-03-31 01:45:00")  # a DST night, on the series' own naive clock


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


def test_alert_rows_are_deterministic_and_typed():
    alerts = alert_rows(events(2), "run1", "iforest")
    assert tuple(alerts.columns) == ALERT_COLUMNS
    assert alerts["alert_id"].tolist() == [
        "run1:M1:2024-03-31T01:45:00",
        "run1:M1:2024-03-31T04:45:00",
    ]
    assert (alerts["run_id"] == "run1").all() and (alerts["detector"] == "iforest").all()
    assert alerts["kind"].tolist() == ["spike", None]
    pd.testing.assert_frame_equal(alerts, alert_rows(events(2), "run1", "iforest"))
    empty = alert_rows(events(0), "run1", "iforest")
    assert len(empty) == 0 and tuple(empty.columns) == ALERT_COLUMNS
    assert empty.dtypes.to_dict() == alerts.dtypes.to_dict()
    with pytest.raises(ValueError, match="share a meter and start"):
        alert_rows(pd.concat([events(1), events(1)]), "run1", "iforest")


def read_sql(url: str, run_id: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tbl = sa.Table(ALERT_TABLE, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(tbl).where(tbl.c.run_id == run_id)).mappings().all()
    finally:
        engine.dispose()
    return pd.DataFrame([dict(r) for r in rows], columns=list(ALERT_COLUMNS))


def read_mongo(uri: str, database: str, run_id: str) -> pd.DataFrame:
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        docs = list(client[database][ALERT_TABLE].find({"run_id": run_id}))
    assert all(d["_id"] == d["alert_id"] for d in docs)
    return pd.DataFrame(docs, columns=list(ALERT_COLUMNS))


def check_stored(stored: pd.DataFrame, alerts: pd.DataFrame) -> None:
    """``stored`` holds exactly ``alerts`` (one row each), times and scores unchanged."""
    got = stored.sort_values("alert_id").reset_index(drop=True)
    want = alerts.sort_values("alert_id").reset_index(drop=True)
    assert got["alert_id"].tolist() == want["alert_id"].tolist()  # no duplicates
    for col in ("start", "end"):
        assert [pd.Timestamp(t) for t in got[col]] == list(want[col])
    assert got["peak_score"].tolist() == want["peak_score"].tolist()
    assert got["n_flagged"].astype(int).tolist() == want["n_flagged"].tolist()
    assert [None if pd.isna(k) else k for k in got["kind"]] == want["kind"].tolist()
    assert set(got["detector"]) <= {"iforest"}


def check_idempotent_rewrites(
    write: Callable[[pd.DataFrame, str], int], read: Callable[[str], pd.DataFrame]
) -> None:
    run_a, run_b = f"A-{uuid.uuid4().hex[:8]}", f"B-{uuid.uuid4().hex[:8]}"
    a1 = alert_rows(events(3), run_a, "iforest")
    b1 = alert_rows(events(2, meter="M2"), run_b, "iforest")
    assert write(a1, run_a) == 3 and write(b1, run_b) == 2
    check_stored(read(run_a), a1)
    a2 = alert_rows(events(2, offset_h=1), run_a, "iforest")  # different starts and scores
    assert write(a2, run_a) == 2
    assert write(a2, run_a) == 2  # the same rerun twice: still no duplicates
    check_stored(read(run_a), a2)
    check_stored(read(run_b), b1)
    assert write(alert_rows(events(0), run_a, "iforest"), run_a) == 0
    assert len(read(run_a)) == 0
    check_stored(read(run_b), b1)
    with pytest.raises(ValueError, match="other than"):
        write(b1, run_a)


def test_sqlite_alerts_replace_the_run(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    check_idempotent_rewrites(
        lambda alerts, run: write_alerts_sql(url, alerts, run), lambda run: read_sql(url, run)
    )
    engine = sa.create_engine(url)
    try:
        indexes = {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes(ALERT_TABLE)}
    finally:
        engine.dispose()
    assert {("meter_id", "start"), ("run_id",)} <= indexes


@pytest.mark.postgres
def test_postgresql_alerts_replace_the_run(postgres_url: str):
    check_idempotent_rewrites(
        lambda alerts, run: write_alerts_sql(postgres_url, alerts, run),
        lambda run: read_sql(postgres_url, run),
    )


def test_mongo_alerts_replace_the_run(mongo_uri: str):
    database = f"alerts_{uuid.uuid4().hex[:8]}"
    check_idempotent_rewrites(
        lambda alerts, run: write_alerts_mongo(mongo_uri, database, alerts, run),
        lambda run: read_mongo(mongo_uri, database, run),
    )
    with pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        info = client[database][ALERT_TABLE].index_information()
    keys = {tuple(k for k, _ in ix["key"]) for ix in info.values()}
    assert {("meter_id", "start"), ("run_id",)} <= keys


def test_unreachable_sql_error_hides_the_password():
    url = f"postgresql+psycopg2://meter:s3cr3t@127.0.0.1:{free_port()}/alerts"
    with pytest.raises(SourceError) as err:
        write_alerts_sql(url, alert_rows(events(1), "r", "iforest"), "r")
    assert "s3cr3t" not in str(err.value) and "127.0.0.1" in str(err.value)
    with pytest.raises(SourceError) as err:
        write_alerts_sql(
            "nosuchdb://meter:s3cr3t@db.example/x", alert_rows(events(0), "r", "d"), "r"
        )
    assert "s3cr3t" not in str(err.value)


def test_unreachable_mongo_error_names_the_host_without_the_password():
    uri = f"mongodb://meter:s3cr3t@127.0.0.1:{free_port()}/"
    with pytest.raises(SourceError) as err:
        write_alerts_mongo(uri, "db", alert_rows(events(1), "r", "d"), "r", timeout_ms=300)
    assert "s3cr3t" not in str(err.value) and "127.0.0.1" in str(err.value)
