"""A SQL historian written in naive local time: detected when declared UTC, converted exactly
when declared (``historian_timezone``), no false alarm on a UTC historian with gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.etl.localtime import AMBIGUOUS, LOCAL_OK, NONEXISTENT, localise
from meterflow.settings import EtlSqlOptions, PipelineOptions
from meterflow.sources.sql import etl_sql
from meterflow.sources.sql_translate import historian_locator

TZ = "Europe/Rome"
METER_IDS = ("M1", "M2", "M3", "M4")
METERS = pd.DataFrame(
    {"meter_id": list(METER_IDS), "contractual_power_kw": 6.0, "production_kw": 3.0,
     "type": "household", "latitude": 42.0, "longitude": 12.0}
)  # fmt: skip
DAYS = ("2024-03-30", "2024-03-31", "2024-04-01", "2024-10-26", "2024-10-27", "2024-10-28")
CONFIG = CleaningConfig(resolution_min=15, timezone=TZ)
SPRING_HOUR = [f"2024-03-31 02:{m:02d}:00" for m in (0, 15, 30, 45)]
AUTUMN_HOUR = [f"2024-10-27 02:{m:02d}:00" for m in (0, 15, 30, 45)]


def utc_ends() -> pd.DatetimeIndex:
    """UTC END stamps of every 15-min interval of the local ``DAYS``, in time order."""
    parts = [
        pd.date_range(
            pd.Timestamp(d).tz_localize(TZ),
            (pd.Timestamp(d) + pd.Timedelta(days=1)).tz_localize(TZ),
            freq="15min",
            inclusive="right",
        )
        for d in DAYS
    ]
    return parts[0].append(parts[1:]).tz_convert("UTC").as_unit("ns")


def rows(local: bool) -> pd.DataFrame:
    """The historian rows in store order (time, then tag), stamps as naive UTC or naive local
    wall-clock time; energy differs per meter, register and interval."""
    ends = utc_ends()
    stamps = ends.tz_convert(TZ) if local else ends
    i = np.arange(len(ends))
    parts = []
    for k, meter in enumerate(METER_IDS):
        for r, obis in enumerate(("1.8.0", "2.8.0")):
            energy = np.round(0.1 + 0.05 * k + 0.1 * r + 0.2 * np.sin(i / 9 + k), 4).clip(0)
            parts.append(pd.DataFrame({"t": i, "order": 2 * k + r, "tagname": f"{meter}.{obis}",
                                       "energy": energy, "quality": 192}))  # fmt: skip
    out = pd.concat(parts).sort_values(["t", "order"], kind="stable")
    out.insert(0, "timestamp", stamps.tz_localize(None)[out["t"].to_numpy()])
    return out.drop(columns=["t", "order"]).reset_index(drop=True)


def write(path: Path | str, frame: pd.DataFrame) -> str:
    """The rows as the ``historian`` table (naive DateTime) of a SQLite file or a database URL."""
    url = f"sqlite:///{path}" if isinstance(path, Path) else path
    engine = sa.create_engine(url)
    hist = sa.Table("historian", sa.MetaData(), sa.Column("timestamp", sa.DateTime),
                    sa.Column("tagname", sa.String(64)), sa.Column("energy", sa.Float),
                    sa.Column("quality", sa.Integer))  # fmt: skip
    with engine.begin() as conn:
        hist.drop(conn, checkfirst=True)
        hist.create(conn)
        frame = frame.reset_index(drop=True)
        records = frame.assign(timestamp=list(frame["timestamp"].dt.to_pydatetime())).to_dict(
            "records"
        )
        conn.execute(hist.insert(), records)
    engine.dispose()
    return url


def at(frame: pd.DataFrame, stamps: list[str], tags: list[str]) -> np.ndarray:
    """Mask of the rows of ``tags`` at the stored ``stamps``."""
    return (
        frame["timestamp"].isin(pd.to_datetime(stamps)) & frame["tagname"].isin(tags)
    ).to_numpy()


def tags(*meters: str) -> list[str]:
    return [f"{m}.{o}" for m in meters for o in ("1.8.0", "2.8.0")]


@pytest.fixture(scope="module")
def utc_result(tmp_path_factory: pytest.TempPathFactory):
    url = write(tmp_path_factory.mktemp("utc") / "h.db", rows(local=False))
    return etl_sql(url, meters=METERS, config=CONFIG)


@pytest.mark.parametrize("use_adbc", [True, False])
def test_naive_local_historian_declared_utc_fails_in_one_line(tmp_path: Path, use_adbc: bool):
    url = write(tmp_path / "h.db", rows(local=True))
    with pytest.raises(SourceError) as err:
        etl_sql(url, meters=METERS, config=CONFIG, use_adbc=use_adbc)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"the historian timestamps look like naive local time in {TZ}, not UTC")
    assert "2024-03-31 02:00-03:00 missing in 8 of 8 tags" in msg
    assert "2024-10-27 02:00-03:00 repeated in 8 of 8 tags" in msg
    assert f"historian_timezone={TZ}" in msg


@pytest.mark.parametrize("use_adbc", [True, False])
def test_declared_local_historian_gives_the_profiles_of_the_utc_one(
    tmp_path: Path, utc_result, use_adbc: bool
):
    url = write(tmp_path / "h.db", rows(local=True))
    got = etl_sql(url, meters=METERS, config=CONFIG, historian_timezone=TZ, use_adbc=use_adbc)
    assert len(got.profiles) == len(METER_IDS) * len(DAYS)
    pd.testing.assert_frame_equal(got.profiles, utc_result.profiles)
    for key in ("readings_in", "readings_kept", "readings_quarantined", "readings_filled"):
        assert got.metrics[key] == utc_result.metrics[key], key
    q = got.quarantine
    assert not q["reason"].isin(["nonexistent_local_time", "ambiguous_local_time"]).any()
    cols = ["meter_id", "timestamp", "reason", "new_value"]
    pd.testing.assert_frame_equal(
        q[cols].sort_values(cols, ignore_index=True),
        utc_result.quarantine[cols].sort_values(cols, ignore_index=True),
    )


def test_repeated_hour_rows_that_cannot_be_placed_and_skipped_hour_rows_are_quarantined(
    tmp_path: Path, utc_result
):
    frame = rows(local=True)
    second_0215 = np.flatnonzero(at(frame, AUTUMN_HOUR[1:2], ["M1.1.8.0"]))[1]
    frame = frame.drop(index=second_0215)  # M1 import: one row at 02:15, DST or standard?
    frame = pd.concat(
        [frame, pd.DataFrame({"timestamp": pd.to_datetime([SPRING_HOUR[2]]),
                              "tagname": ["M2.1.8.0"], "energy": [0.3], "quality": [192]})],
        ignore_index=True,
    )  # fmt: skip
    url = write(tmp_path / "h.db", frame)
    got = etl_sql(url, meters=METERS, config=CONFIG, historian_timezone=TZ)
    q = got.quarantine
    amb = q[q["reason"] == "ambiguous_local_time"]
    assert amb[["meter_id", "register", "location"]].values.tolist() == [
        ["M1", "import", "historian[tagname='M1.1.8.0', timestamp='2024-10-27 02:15:00']"]
    ]
    assert amb["timestamp"].isna().all() and amb["detail"].str.contains("summer or standard").all()
    gone = q[q["reason"] == "nonexistent_local_time"]
    assert gone["location"].tolist() == [
        "historian[tagname='M2.1.8.0', timestamp='2024-03-31 02:30:00']"
    ]
    assert (
        got.metrics["readings_in"]
        == got.metrics["readings_kept"] + got.metrics["readings_quarantined"]
    )
    # nothing moved in time: M1 import misses both intervals ending at 02:15 local (filled by
    # interpolation, nothing else changed); every other meter-day as in the UTC historian
    filled = q[(q["reason"] == "gap") & (q["meter_id"] == "M1")]
    starts = pd.to_datetime(["2024-10-27 00:00", "2024-10-27 01:00"], utc=True)
    assert sorted(filled["timestamp"]) == list(starts)
    key = ["meter_id", "date"]
    m1_autumn = ("M1", pd.Timestamp("2024-10-27"))
    want = utc_result.profiles.set_index(key)
    have = got.profiles.set_index(key)
    pd.testing.assert_frame_equal(have.drop(index=m1_autumn), want.drop(index=m1_autumn))
    slots = (have.loc[m1_autumn] != want.loc[m1_autumn]).to_numpy().nonzero()[0]
    assert have.columns[slots].tolist() == ["slot_08"]  # wall 02:00-02:15, both occurrences


def test_utc_historian_with_gaps_and_duplicates_at_the_dst_hours_is_not_flagged(
    tmp_path: Path, utc_result
):
    frame = rows(local=False)
    gaps = at(frame, SPRING_HOUR, tags("M1")) | at(frame, ["2024-10-27 02:15:00"], tags("M2"))
    dup = frame[at(frame, AUTUMN_HOUR, tags("M3"))]
    frame = pd.concat([frame[~gaps], dup], ignore_index=True)
    url = write(tmp_path / "h.db", frame)
    got = etl_sql(url, meters=METERS, config=CONFIG)  # no error: 1 of 4 meters is not most
    assert got.metrics["quarantined_duplicate"] == len(dup)


def test_a_store_missing_the_hour_every_night_is_not_naive_local_time(tmp_path: Path):
    frame = rows(local=False)
    hour = frame["timestamp"].dt.hour == 2
    url = write(tmp_path / "h.db", frame[~hour.to_numpy()])
    got = etl_sql(url, meters=METERS, config=CONFIG)  # the control days look the same
    assert got.metrics["readings_in"] > 0


def test_utc_historian_declared_local_fails_in_one_line(tmp_path: Path):
    url = write(tmp_path / "h.db", rows(local=False))
    with pytest.raises(SourceError) as err:
        etl_sql(url, meters=METERS, config=CONFIG, historian_timezone=TZ)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"historian_timezone={TZ} but")
    assert "2024-03-31 02:00-03:00 present in 8 of 8 tags" in msg
    assert "historian_timezone=UTC" in msg


def test_time_bounds_select_the_same_intervals_in_a_local_historian(tmp_path: Path):
    start, end = pd.Timestamp("2024-10-27", tz=TZ), pd.Timestamp("2024-10-28", tz=TZ)
    local = write(tmp_path / "local.db", rows(local=True))
    utc = write(tmp_path / "utc.db", rows(local=False))
    a = etl_sql(local, meters=METERS, config=CONFIG, start=start, end=end, historian_timezone=TZ)
    b = etl_sql(utc, meters=METERS, config=CONFIG, start=start, end=end)
    assert a.metrics["rows_read"] == b.metrics["rows_read"] == 8 * 100
    pd.testing.assert_frame_equal(a.profiles, b.profiles)


@pytest.mark.postgres
def test_postgresql_local_historian_both_reads(postgres_url: str, utc_result):
    url = write(postgres_url, rows(local=True))
    with pytest.raises(SourceError, match="look like naive local time in Europe/Rome"):
        etl_sql(url, meters=METERS, config=CONFIG)
    for use_adbc in (True, False):
        got = etl_sql(url, meters=METERS, config=CONFIG, historian_timezone=TZ, use_adbc=use_adbc)
        pd.testing.assert_frame_equal(got.profiles, utc_result.profiles)


def test_localise_places_the_repeated_hour_by_store_order():
    wall = pd.to_datetime(["2024-10-27 01:45", "2024-10-27 02:15", "2024-10-27 02:15",
                           "2024-10-27 03:00", "2024-03-31 02:30", "2024-10-27 02:30"])  # fmt: skip
    wall_ns = wall.as_unit("ns").asi8
    series = np.array([0, 0, 0, 0, 0, 1])
    utc, status = localise(series, wall_ns, np.array([0, 2, 1, 3, 4, 5]), TZ)
    assert status.tolist() == [LOCAL_OK] * 4 + [NONEXISTENT, AMBIGUOUS]
    got = pd.DatetimeIndex(utc[:4], tz="UTC").strftime("%H:%M").tolist()
    assert got == ["23:45", "01:15", "00:15", "02:00"]  # row order 1 (third) is the first


def test_locations_name_the_stored_wall_clock_key_and_occurrence():
    ends = pd.to_datetime(["2024-10-27 00:15", "2024-10-27 01:15", "2024-01-10 11:00"], utc=True)
    rows_ = pd.DataFrame({"meter_id": "M1", "register": "import",
                          "timestamp": ends - pd.Timedelta(minutes=15)})  # fmt: skip
    got = historian_locator("historian", 15, TZ)(rows_).tolist()
    assert got == [
        "historian[tagname='M1.1.8.0', timestamp='2024-10-27 02:15:00', occurrence=1]",
        "historian[tagname='M1.1.8.0', timestamp='2024-10-27 02:15:00', occurrence=2]",
        "historian[tagname='M1.1.8.0', timestamp='2024-01-10 12:00:00']",
    ]
    assert historian_locator("historian", 15)(rows_).tolist()[0] == (
        "historian[tagname='M1.1.8.0', timestamp='2024-10-27 00:15:00']"
    )


def test_historian_timezone_option_is_validated_and_defaults_to_utc():
    assert EtlSqlOptions().historian_timezone == PipelineOptions().historian_timezone == "UTC"
    assert EtlSqlOptions(historian_timezone=TZ).historian_timezone == TZ
    for options in (EtlSqlOptions, PipelineOptions):
        with pytest.raises(ValidationError, match="unknown timezone 'Mars/Olympus'"):
            options(historian_timezone="Mars/Olympus")
