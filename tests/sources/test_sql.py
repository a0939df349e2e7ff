"""SQL historian adapter on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.schemas import profile_matrix
from meterflow.sources.meters import read_meters
from meterflow.sources.mongo_server import free_port
from meterflow.sources.sql import etl_sql
from meterflow.sources.sql_historian import (
    adbc_target,
    read_historian_arrow,
    read_historian_frame,
)

TZ = "Europe/Rome"
METERS = pd.DataFrame(
    {"meter_id": ["M1", "M2"], "contractual_power_kw": [3.0, 6.0], "production_kw": [2.0, 0.0],
     "type": ["household", "commercial"], "latitude": [42.0, 42.1],
     "longitude": [12.0, 12.1]}
)  # fmt: skip


def day_ends(day: str) -> pd.DatetimeIndex:
    """Naive UTC END stamps of the intervals of local day ``day`` (historian convention)."""
    start = pd.Timestamp(day).tz_localize(TZ)
    stop = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(TZ)
    starts = pd.date_range(start, stop, freq="15min", inclusive="left")
    return (starts + pd.Timedelta(minutes=15)).tz_convert("UTC").tz_localize(None)


def historian_rows() -> pd.DataFrame:
    ends = day_ends("2024-01-10").append(day_ends("2024-01-11"))
    n = len(ends)
    parts = [
        pd.DataFrame({"timestamp": ends, "tagname": "M1.1.8.0", "energy": 0.2, "quality": 192}),
        pd.DataFrame({"timestamp": ends, "tagname": "M1.2.8.0", "energy": 0.05, "quality": 192}),
        pd.DataFrame({"timestamp": ends, "tagname": "M2.1.8.0", "energy": np.linspace(0.1, 1, n),
                      "quality": 192}),
    ]  # fmt: skip
    rows = pd.concat(parts, ignore_index=True)
    # defects: bad OPC quality with garbage, uncertain quality (kept), unknown tag, unknown meter
    bad = (rows["tagname"] == "M2.1.8.0") & (rows["timestamp"] == ends[10])
    rows.loc[bad, ["energy", "quality"]] = [-999.0, 0]
    unsure = (rows["tagname"] == "M1.1.8.0") & (rows["timestamp"] == ends[20])
    rows.loc[unsure, "quality"] = 64
    extra = pd.DataFrame({"timestamp": ends[:3], "tagname": ["M1.3.8.0", "M9.1.8.0", "M9.2.8.0"],
                          "energy": 1.0, "quality": 192})  # fmt: skip
    return pd.concat([rows, extra], ignore_index=True)


def write_store(url: str, rows: pd.DataFrame) -> None:
    engine = sa.create_engine(url)
    md = sa.MetaData()
    hist = sa.Table("historian", md, sa.Column("timestamp", sa.DateTime, nullable=False),
                    sa.Column("tagname", sa.String(64), nullable=False),
                    sa.Column("energy", sa.Float), sa.Column("quality", sa.Integer))  # fmt: skip
    meters = sa.Table("meter_description", md, sa.Column("meter_id", sa.String(32)),
                      *(sa.Column(c, sa.Float) for c in ("contractual_power_kw", "production_kw")),
                      sa.Column("type", sa.String(32)),
                      *(sa.Column(c, sa.Float) for c in ("latitude", "longitude")))  # fmt: skip
    with engine.begin() as conn:
        md.drop_all(conn)
        md.create_all(conn)
        records = rows.assign(timestamp=rows["timestamp"].dt.to_pydatetime()).to_dict("records")
        conn.execute(hist.insert(), records)
        conn.execute(meters.insert(), METERS.to_dict("records"))
    engine.dispose()


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'historian.db'}"
    write_store(url, historian_rows())
    return url


def check_result(res) -> None:
    m = res.metrics
    assert m["readings_in"] == 3 * 192 + 3 == m["rows_read"]
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"]
    reasons = res.quarantine.loc[res.quarantine["action"] == "dropped"].groupby("reason").size()
    assert reasons.to_dict() == {"bad_quality": 1, "unknown_tag": 1, "unknown_meter": 2}
    assert m["readings_uncertain"] == 1 and m["readings_filled"] == 1
    prof = res.profiles.set_index("meter_id")
    assert np.allclose(profile_matrix(prof.loc[["M1"]]), 200.0 - 50.0)  # import - export
    m2 = profile_matrix(prof.loc[["M2"]]).ravel()
    assert np.allclose(m2, np.linspace(100, 1000, 192))  # the bad row refilled by interpolation


def test_sqlite_historian_translated_cleaned_and_reconciled(sqlite_url: str):
    res = etl_sql(
        sqlite_url, meters=read_meters(sqlite_url), config=CleaningConfig(resolution_min=15)
    )
    check_result(res)
    q = res.quarantine
    assert q[(q["register"] == "export") & (q["meter_id"] == "M1")].empty
    assert set(res.profiles["date"]) == {pd.Timestamp("2024-01-10"), pd.Timestamp("2024-01-11")}


def test_small_chunks_give_the_same_result(sqlite_url: str):
    a = etl_sql(
        sqlite_url,
        meters=METERS,
        config=CleaningConfig(resolution_min=15),
        chunk_size=37,
        block_meters=1,
    )
    b = etl_sql(sqlite_url, meters=METERS, config=CleaningConfig(resolution_min=15))
    pd.testing.assert_frame_equal(a.profiles, b.profiles)
    assert a.metrics["readings_in"] == b.metrics["readings_in"]


def test_time_range_selects_interval_starts(sqlite_url: str):
    start = pd.Timestamp("2024-01-10", tz=TZ)
    end = pd.Timestamp("2024-01-11", tz=TZ)
    res = etl_sql(
        sqlite_url, meters=METERS, config=CleaningConfig(resolution_min=15), start=start, end=end
    )
    assert res.metrics["rows_read"] == 3 * 96 + 3
    assert list(res.profiles["date"].unique()) == [pd.Timestamp("2024-01-10")]
    bare = read_historian_frame(sqlite_url, start=start, end=end)
    assert len(bare) == 3 * 96 + 3


def test_unreachable_database_error_hides_the_password():
    url = f"postgresql+psycopg2://meter:s3cr3t@127.0.0.1:{free_port()}/historian"
    with pytest.raises(SourceError) as err:
        etl_sql(url, meters=METERS, config=CleaningConfig(resolution_min=15))
    text = str(err.value)
    assert "s3cr3t" not in text and "cannot read the historian" in text
    assert "source=sql" in text and "127.0.0.1" in text


def test_missing_table_and_empty_selection_are_source_errors(tmp_path: Path, sqlite_url: str):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(empty).connect().close()
    with pytest.raises(SourceError, match="table 'historian' not found"):
        etl_sql(empty, meters=METERS, config=CleaningConfig(resolution_min=15))
    with pytest.raises(SourceError, match="has no rows"):
        etl_sql(
            sqlite_url, meters=METERS, config=CleaningConfig(resolution_min=15), start="2030-01-01"
        )


def test_meters_table_is_read_and_validated(sqlite_url: str, tmp_path: Path):
    meters = read_meters(sqlite_url)
    pd.testing.assert_frame_equal(meters, METERS, check_dtype=False)
    bad = f"sqlite:///{tmp_path / 'bad.db'}"
    write_store(bad, historian_rows())
    engine = sa.create_engine(bad)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE meter_description SET contractual_power_kw = 0 WHERE meter_id = 'M2'"
        )
    engine.dispose()
    with pytest.raises(SourceError, match=r"contractual_power_kw must be > 0.*meter=M2, row=2"):
        read_meters(bad)


# --- Arrow read through ADBC: the same rows and the same result as the SQLAlchemy path ---------


def assert_same_result(a, b) -> None:
    for name in ("profiles", "quarantine", "quality", "corrections_summary", "scale_corrections"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    skip = {"read_seconds", "clean_seconds", "read_arrow"}
    assert {k: v for k, v in a.metrics.items() if k not in skip} == {
        k: v for k, v in b.metrics.items() if k not in skip
    }


def test_adbc_target_converts_urls_without_logging_them():
    assert adbc_target("sqlite:///data/historian.db") == ("sqlite", "data/historian.db")
    assert adbc_target("sqlite://") is None and adbc_target("sqlite:///:memory:") is None
    assert adbc_target("postgresql+psycopg2://u:p%40ss@db.example:5433/hist?sslmode=require") == (
        "postgresql",
        "postgresql://u:p%40ss@db.example:5433/hist?sslmode=require",
    )
    assert adbc_target("mysql+pymysql://u:p@h/db") is None


def test_sqlite_adbc_read_gives_the_same_rows_and_result(sqlite_url: str):
    pytest.importorskip("adbc_driver_sqlite")
    start = pd.Timestamp("2024-01-10 12:00", tz=TZ)
    arrow = pd.concat(
        [b.to_pandas() for b in read_historian_arrow(sqlite_url, start=start, chunk_size=50)],
        ignore_index=True,
    )
    bare = read_historian_frame(sqlite_url, start=start)
    assert arrow.to_numpy().tolist() == bare.to_numpy().tolist()
    fast = etl_sql(
        sqlite_url, meters=METERS, config=CleaningConfig(resolution_min=15), chunk_size=100
    )
    slow = etl_sql(
        sqlite_url, meters=METERS, config=CleaningConfig(resolution_min=15), use_adbc=False
    )
    assert fast.metrics["read_arrow"] == 1.0 and slow.metrics["read_arrow"] == 0.0
    assert_same_result(fast, slow)
    check_result(fast)


def test_adbc_falls_back_to_sqlalchemy_on_values_it_cannot_take_exactly(tmp_path: Path):
    pytest.importorskip("adbc_driver_sqlite")
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    rows = historian_rows()
    write_store(url, rows)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # text in the energy column (SQLite keeps it as text)
        conn.exec_driver_sql("UPDATE historian SET energy = 'n/a' WHERE rowid = 300")
    engine.dispose()
    fast = etl_sql(url, meters=METERS, config=CleaningConfig(resolution_min=15), chunk_size=1024)
    slow = etl_sql(url, meters=METERS, config=CleaningConfig(resolution_min=15), use_adbc=False)
    assert fast.metrics["read_arrow"] == 0.0  # fell back, same result
    assert_same_result(fast, slow)
    bad = fast.quarantine.loc[fast.quarantine["reason"] == "malformed_value"]
    assert len(bad) == 1 and bad["detail"].iloc[0] == "energy 'n/a' is not a number"
    assert bad["location"].iloc[0].startswith("historian[tagname=")


# --- PostgreSQL: a throwaway server (the session fixture postgres_url in tests/conftest.py) -


@pytest.mark.postgres
def test_postgresql_historian_matches_sqlite(postgres_url: str, sqlite_url: str):
    write_store(postgres_url, historian_rows())
    cfg = CleaningConfig(resolution_min=15)
    res = etl_sql(postgres_url, meters=read_meters(postgres_url), config=cfg, chunk_size=100)
    check_result(res)
    ref = etl_sql(sqlite_url, meters=METERS, config=CleaningConfig(resolution_min=15))
    pd.testing.assert_frame_equal(res.profiles, ref.profiles)
    start = pd.Timestamp("2024-01-11", tz=TZ)
    part = etl_sql(
        postgres_url, meters=METERS, config=CleaningConfig(resolution_min=15), start=start
    )
    assert part.metrics["rows_read"] == 3 * 96


@pytest.mark.postgres
def test_postgresql_adbc_read_matches_sqlalchemy(postgres_url: str):
    pytest.importorskip("adbc_driver_postgresql")
    write_store(postgres_url, historian_rows())
    fast = etl_sql(postgres_url, meters=METERS, config=CleaningConfig(resolution_min=15))
    slow = etl_sql(
        postgres_url, meters=METERS, config=CleaningConfig(resolution_min=15), use_adbc=False
    )
    assert fast.metrics["read_arrow"] == 1.0 and slow.metrics["read_arrow"] == 0.0
    assert_same_result(fast, slow)
    check_result(fast)
    start = pd.Timestamp("2024-01-11", tz=TZ)
    n = sum(b.num_rows for b in read_historian_arrow(postgres_url, start=start))
    assert n == 3 * 96 == len(read_historian_frame(postgres_url, start=start))
