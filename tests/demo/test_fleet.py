"""The demo fleet: determinism, raw formats, ground truth of defects and anomalies, stores."""

from __future__ import annotations

import gc
import json
import logging
import os
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pymongo
import pytest
import sqlalchemy as sa

from meterflow.demo import DemoFleet, DemoSpec, FleetBlock, build_fleet, iter_blocks
from meterflow.demo import raw as demo_raw
from meterflow.demo import write as demo_write
from meterflow.demo.fleet import meter_ids
from meterflow.demo.write import (
    EXPORTS_SUBDIR,
    MANIFEST_NAME,
    TRUTH_SUBDIR,
    ensure_demo,
    write_fleet,
)
from meterflow.domain import (
    LOCAL_TIMEZONE,
    REGISTER_ROLLOVER_KWH,
    SOURCE_NEWMONGO,
    SOURCE_OLDMONGO,
    SOURCE_SQL,
)
from meterflow.errors import ConfigError
from meterflow.schemas import METERS
from meterflow.sources.formats import (
    HISTORIAN_TABLE,
    METERS_TABLE,
    MONGO_COLLECTION,
    MONGO_FIELDS,
    OLD_EXPORT_COLUMNS,
)
from meterflow.sources.mongo_server import LocalMongoServer

Q = pd.Timedelta(minutes=15)
# 40 days from 2025-03-10: old exports to 2025-04-01 (spring DST 2025-03-30), SQL to 04-19,
# Mongo 04-17 .. 04-22
SPRING = DemoSpec(n_meters=12, history_days=40, mongo_days=3, start="2025-03-10", seed=7)
TINY = DemoSpec(n_meters=4, history_days=10, mongo_days=1, seed=3)
# a whole year: old exports hold both DST days, summer lies in the SQL period
YEAR = DemoSpec(n_meters=12, history_days=365, mongo_days=1, start="2024-10-01", seed=7)


@pytest.fixture(scope="module")
def spring() -> DemoFleet:
    return build_fleet(SPRING)


@pytest.fixture(scope="module")
def year() -> DemoFleet:
    return build_fleet(YEAR)


def defect_cells(fleet: DemoFleet, source: str, *kinds: str) -> set[tuple[str, pd.Timestamp]]:
    """(meter, interval start) cells that the ground truth lists for ``kinds`` of ``source``."""
    d = fleet.defects[(fleet.defects.source == source) & fleet.defects.kind.isin(kinds)]
    out = set()
    for row in d.itertuples():
        for t in pd.date_range(row.start_utc, row.end_utc, freq=Q, inclusive="left"):
            out.add((row.meter_id, t))
    return out


def window_clean(fleet: DemoFleet, source: str) -> pd.DataFrame:
    start, end = fleet.windows[source]
    c = fleet.clean
    c = c[(c.timestamp >= start) & (c.timestamp < end)].copy()
    c["meter_id"] = c["meter_id"].astype(str)
    return c.set_index(["meter_id", "timestamp"])


def as_cells(index: pd.Index) -> set[tuple[str, pd.Timestamp]]:
    return set(index.to_list())


# --- spec, determinism ---------------------------------------------------------------------


def test_spec_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="n_meters"):
        DemoSpec(n_meters=0)
    with pytest.raises(ConfigError, match="history_days"):
        DemoSpec(history_days=3, overlap_days=2)
    with pytest.raises(ConfigError, match="start"):
        DemoSpec(start="2024-10-01 12:00")
    with pytest.raises(ConfigError):
        DemoSpec(timezone="Mars/Olympus")


def test_meter_ids_widen_beyond_9999_in_text_order() -> None:
    assert meter_ids(3) == ["MTR0001", "MTR0002", "MTR0003"]
    ids = meter_ids(12_000)
    assert ids[0] == "MTR00001" and ids[-1] == "MTR12000" and ids == sorted(ids)
    assert DemoSpec(n_meters=100_000).n_meters == 100_000


def test_same_seed_same_fleet_other_seed_other_fleet(spring: DemoFleet) -> None:
    again = build_fleet(SPRING)
    for name in ("meters", "meters_truth", "clean", "historian", "mongo_docs", "defects"):
        pd.testing.assert_frame_equal(getattr(spring, name), getattr(again, name))
    pd.testing.assert_frame_equal(spring.anomalies, again.anomalies)
    assert spring.old_exports.keys() == again.old_exports.keys()
    for meter_id, frame in spring.old_exports.items():
        pd.testing.assert_frame_equal(frame, again.old_exports[meter_id])

    other = build_fleet(DemoSpec(**{**SPRING.__dict__, "seed": 8}))
    assert len(other.clean) == len(spring.clean)
    assert not np.array_equal(other.clean.import_wh.to_numpy(), spring.clean.import_wh.to_numpy())
    assert not other.defects[["meter_id", "kind", "start_utc"]].equals(
        spring.defects[["meter_id", "kind", "start_utc"]]
    )


# --- meter table and clean truth -------------------------------------------------------------


def test_meter_table(year: DemoFleet) -> None:
    m, truth = year.meters, year.meters_truth
    METERS.validate(m)
    assert m.meter_id.tolist() == [f"MTR{i:04d}" for i in range(1, 13)]
    assert m.type.value_counts().to_dict() == {"household": 7, "commercial": 4, "agricultural": 1}
    assert m.latitude.between(42.26, 42.86).all() and m.longitude.between(12.34, 12.94).all()
    assert ((m.production_kw > 0) == truth.pv).all()
    ranges = {"household": (1500, 6000), "commercial": 1e4, "agricultural": 5e3}
    for row in truth.itertuples():
        lo = ranges[row.type][0] if row.type == "household" else ranges[row.type]
        assert row.annual_kwh >= lo * 0.99
    assert truth.time_shift_min.between(-90, 90).all()
    assert (truth.time_shift_min % 15 == 0).all()
    # contractual power is a standard size above every interval's import and export
    clean = year.clean.assign(meter_id=year.clean.meter_id.astype(str))
    peak_kw = clean.groupby("meter_id")[["import_wh", "export_wh"]].max().max(axis=1) * 4 / 1000
    contract = m.set_index("meter_id").contractual_power_kw
    assert (contract.loc[peak_kw.index] > peak_kw).all()
    assert contract.isin([3, 4.5, 6, 10, 15, 20, 30, 50, 100, 200]).all()


def test_energy_matches_annual_targets(year: DemoFleet) -> None:
    c = year.clean
    first_year = c.timestamp < pd.Timestamp(YEAR.start, tz=LOCAL_TIMEZONE) + pd.Timedelta(days=365)
    kwh = c[first_year].groupby("meter_id", observed=True).consumption_wh.sum() / 1000
    target = year.meters_truth.set_index("meter_id").annual_kwh
    ratio = kwh / target.loc[kwh.index]
    assert ratio.between(0.92, 1.08).all(), ratio
    # net metering: import - export = consumption - PV (Wh resolution) outside anomalies
    ok = ~c.anomaly
    net = (c.consumption_wh - c.pv_wh)[ok]
    assert np.abs(c.import_wh[ok] - c.export_wh[ok] - net).max() <= 1.0
    assert ((c.import_wh == 0) | (c.export_wh == 0)).all()
    assert (c.import_wh == c.import_wh.round()).all()


def test_pv_exports_at_summer_noon_never_at_night(year: DemoFleet) -> None:
    c = year.clean
    local = c.timestamp.dt.tz_convert(LOCAL_TIMEZONE)
    pv_ids = year.meters_truth.query("pv").meter_id
    households = year.meters_truth.query("pv and type == 'household'").meter_id
    assert len(households) >= 2
    is_pv = c.meter_id.astype(str).isin(pv_ids)
    night = (local.dt.hour >= 22) | (local.dt.hour < 4)
    assert (c.export_wh[night] == 0).all() and (c.pv_wh[night] == 0).all()
    assert (c.export_wh[~is_pv] == 0).all()
    summer_noon = local.dt.month.isin([6, 7]) & (local.dt.hour == 13)
    for meter_id in households:
        rows = c[summer_noon & (c.meter_id == meter_id)]
        daily = rows.groupby(local[rows.index].dt.date).export_wh.max()
        assert (daily > 0).mean() >= 0.7, meter_id
        assert rows.pv_wh.mean() > 250  # > 1 kW average PV output at 13:00 in summer


def test_anomalies_labelled_and_within_contract() -> None:
    fleet = build_fleet(DemoSpec(n_meters=60, history_days=30, mongo_days=2, seed=1))
    a, c = fleet.anomalies, fleet.clean
    assert set(a.kind) == {"spike", "flat_line", "level_shift", "theft"}
    assert 0.15 <= a.meter_id.nunique() / 60 <= 0.25
    assert (a.end_utc > a.start_utc).all()
    contract_wh = fleet.meters.set_index("meter_id").contractual_power_kw * 250
    flagged = np.zeros(len(c), dtype=bool)
    for row in a.itertuples():
        sel = (c.meter_id == row.meter_id) & (c.timestamp >= row.start_utc)
        sel &= c.timestamp < row.end_utc
        assert not flagged[sel.to_numpy()].any()  # a meter's anomalies do not overlap
        flagged |= sel.to_numpy()
        seg = c[sel]
        normal = np.round(np.clip(seg.consumption_wh - seg.pv_wh, 0, None))
        cap = 0.95 * contract_wh[row.meter_id]
        if row.kind == "flat_line":
            assert seg.import_wh.nunique() == 1 and seg.import_wh.iloc[0] == row.magnitude
            assert len(seg) >= 24
        elif row.kind == "spike":
            assert 3 <= row.magnitude <= 6 and 1 <= len(seg) <= 4
            assert (seg.import_wh >= np.round(row.magnitude * normal) - 1).all()
        else:
            lo, hi = {"theft": (0.2, 0.5), "level_shift": (0.4, 2.5)}[row.kind]
            assert lo <= row.magnitude <= hi and not 0.6 < row.magnitude < 1.6
            want = np.round(np.minimum(np.clip(seg.consumption_wh - seg.pv_wh, 0, None)
                                       * row.magnitude, cap))  # fmt: skip
            assert np.abs(seg.import_wh - want).max() <= 0.5 * row.magnitude + 1  # rounding
    assert np.array_equal(c.anomaly.to_numpy(), flagged)
    assert (c.import_wh.to_numpy() <= contract_wh.loc[c.meter_id.astype(str)].to_numpy()).all()


# --- raw formats and defects -----------------------------------------------------------------


def test_historian_format_and_defects(spring: DemoFleet) -> None:
    h = spring.historian
    assert list(h.columns) == ["timestamp", "tagname", "energy", "quality"]
    assert h.timestamp.dtype.kind == "M" and h.timestamp.dt.tz is None
    tags = h.tagname.astype(str)
    assert tags.str.fullmatch(r"MTR\d{4}\.[12]\.8\.0").all()
    assert set(h.quality) == {192, 64, 0}
    rows = pd.DataFrame(
        {
            "meter_id": tags.str[:7],
            "tag": tags.str[8:],
            # timestamps mark the END of the interval
            "timestamp": (h.timestamp - Q).dt.tz_localize("UTC"),
            "energy": h.energy,
            "quality": h.quality,
        }
    )
    truth = window_clean(spring, SOURCE_SQL)
    per_cell = rows.groupby(["meter_id", "timestamp"]).size()
    assert set(per_cell) == {2, 4}  # both tags; duplicated cells hold both tags twice
    found = {"gap": as_cells(truth.index.difference(per_cell.index))}
    dup = rows[rows.duplicated(["meter_id", "timestamp", "tag"], keep=False)]
    same = dup.groupby(["meter_id", "timestamp", "tag"]).energy.nunique() == 1
    exact = same.groupby(level=["meter_id", "timestamp"]).all()
    found["duplicate_exact"] = as_cells(exact.index[exact.to_numpy()])
    found["duplicate_conflict"] = as_cells(exact.index[~exact.to_numpy()])
    cell = ["meter_id", "timestamp"]
    found["bad_quality"] = as_cells(rows[rows.quality == 0].set_index(cell).index)
    found["uncertain_quality"] = as_cells(rows[rows.quality == 64].set_index(cell).index)
    good = rows[(rows.quality == 192) & ~rows.duplicated(["meter_id", "timestamp", "tag"])]
    good = good.pivot(index=["meter_id", "timestamp"], columns="tag", values="energy")
    ref = truth.loc[good.index]
    wrong_import = ~np.isclose(good["1.8.0"] * 1000, ref.import_wh, rtol=0, atol=1e-6)
    found["outlier"] = as_cells(good.index[wrong_import])
    for kind, cells in found.items():
        kinds = ("gap_short", "gap_long") if kind == "gap" else (kind,)
        assert cells == defect_cells(spring, SOURCE_SQL, *kinds), kind
        assert cells, kind  # every kind occurs in the small fleet
    assert np.allclose(good["2.8.0"] * 1000, ref.export_wh, rtol=0, atol=1e-9)
    contract = spring.meters.set_index("meter_id").contractual_power_kw / 4
    outliers = good[wrong_import]
    assert (
        outliers["1.8.0"].to_numpy() > 3 * contract.loc[outliers.index.get_level_values(0)]
    ).all()


def _old_rows(fleet: DemoFleet) -> pd.DataFrame:
    parts = []
    for meter_id, frame in fleet.old_exports.items():
        assert list(frame.columns) == list(OLD_EXPORT_COLUMNS)
        assert (frame.meter_id == meter_id).all()
        utc = pd.DatetimeIndex(frame.datetime).tz_localize(LOCAL_TIMEZONE, ambiguous="infer")
        parts.append(frame.assign(timestamp=utc.tz_convert("UTC")))
    return pd.concat(parts, ignore_index=True)


def test_old_exports_format_and_defects(spring: DemoFleet) -> None:
    rows = _old_rows(spring)
    assert rows.datetime.dtype.kind == "M" and rows.datetime.dt.tz is None
    truth = window_clean(spring, SOURCE_OLDMONGO)
    per_cell = rows.groupby(["meter_id", "timestamp"]).size()
    found = {"gap": as_cells(truth.index.difference(per_cell.index))}
    dup = rows[rows.duplicated(["meter_id", "timestamp"], keep=False)]
    exact = dup.groupby(["meter_id", "timestamp"]).active_import.agg(lambda s: s.nunique() == 1)
    found["duplicate_exact"] = as_cells(exact.index[exact.to_numpy()])
    found["duplicate_conflict"] = as_cells(exact.index[~exact.to_numpy()])
    first = rows.drop_duplicates(["meter_id", "timestamp"]).set_index(["meter_id", "timestamp"])
    factor = pd.Series(1.0, index=first.index)
    for d in spring.defects.query("source == @SOURCE_OLDMONGO and kind == 'scale'").itertuples():
        sel = (first.index.get_level_values(0) == d.meter_id) & (
            (first.index.get_level_values(1) >= d.start_utc)
            & (first.index.get_level_values(1) < d.end_utc)
        )
        assert sel.any()
        factor[sel] = d.factor
    ref = truth.loc[first.index]
    kwh = first.active_import / factor
    wrong = ~np.isclose(kwh * 1000, ref.import_wh, rtol=1e-9, atol=1e-6)
    found["outlier"] = as_cells(first.index[wrong])
    assert np.allclose(first.active_export / factor * 1000, ref.export_wh, rtol=1e-9, atol=1e-6)
    for kind, cells in found.items():
        kinds = ("gap_short", "gap_long") if kind == "gap" else (kind,)
        assert cells == defect_cells(spring, SOURCE_OLDMONGO, *kinds), kind
        assert cells, kind
    # scale periods really are scaled (by a power of ten or a unit mix-up)
    assert set(factor.unique()) - {1.0} <= {1000.0, 0.001, 10.0, 4.0, 60.0}
    assert (factor != 1).any()


def test_old_exports_dst_days(year: DemoFleet) -> None:
    rows = pd.concat(year.old_exports.values(), ignore_index=True)
    per_day = rows.groupby(["meter_id", rows.datetime.dt.date]).size().unstack()
    fall, spring_day = pd.Timestamp("2024-10-27").date(), pd.Timestamp("2025-03-30").date()
    assert (per_day[fall] == 100).all() and (per_day[spring_day] == 92).all()
    dst = year.defects.query("source == @SOURCE_OLDMONGO and kind.str.startswith('dst')")
    assert sorted(dst.kind.unique()) == ["dst_fall_back", "dst_spring_forward"]
    assert len(dst) == 2 * YEAR.n_meters
    assert set(dst.factor) == {92.0, 100.0}
    local_days = dst.start_utc.dt.tz_convert(LOCAL_TIMEZONE).dt.date
    assert set(local_days) == {fall, spring_day}
    # the repeated hour comes twice, in order; the skipped hour never
    one = year.old_exports["MTR0001"]
    fall_rows = one[one.datetime.dt.date == fall].datetime.dt.strftime("%H:%M").tolist()
    assert fall_rows[8:16] == ["02:00", "02:15", "02:30", "02:45"] * 2
    spring_rows = one[one.datetime.dt.date == spring_day].datetime.dt.strftime("%H:%M")
    assert not spring_rows.str.startswith("02:").any()


def test_mongo_format_and_defects(spring: DemoFleet) -> None:
    docs = spring.mongo_docs
    assert tuple(docs.columns) == MONGO_FIELDS
    assert str(docs.ts.dt.tz) == "UTC"
    start, end = spring.windows[SOURCE_NEWMONGO]
    reads = pd.date_range(start, end, freq=Q)  # one read at every quarter-hour incl. both ends
    expected = pd.MultiIndex.from_product([spring.meters.meter_id, reads])
    per_read = docs.groupby(["meter_id", "ts"]).size()
    assert set(per_read) == {1, 2}
    found = {"gap": {(m, t - Q) for m, t in expected.difference(per_read.index)}}
    dup = docs[docs.duplicated(["meter_id", "ts"], keep=False)]
    exact = dup.groupby(["meter_id", "ts"]).import_kwh.agg(lambda s: s.nunique() == 1)
    found["duplicate_exact"] = {(m, t - Q) for m, t in exact.index[exact.to_numpy()]}
    found["duplicate_conflict"] = {(m, t - Q) for m, t in exact.index[~exact.to_numpy()]}
    first = docs.drop_duplicates(["meter_id", "ts"]).sort_values(["meter_id", "ts"])
    step = first.groupby("meter_id").ts.diff() == Q
    diff = first.groupby("meter_id").import_kwh.diff()
    cells = pd.MultiIndex.from_arrays([first.meter_id, first.ts - Q])
    found["counter_reset_or_rollover"] = set(cells[(step & (diff < 0)).to_numpy()])
    resets = defect_cells(spring, SOURCE_NEWMONGO, "counter_reset")
    rollovers = defect_cells(spring, SOURCE_NEWMONGO, "rollover")
    assert resets and rollovers
    assert found.pop("counter_reset_or_rollover") == resets | rollovers
    for kind, got in found.items():
        kinds = ("gap_short", "gap_long") if kind == "gap" else (kind,)
        assert got == defect_cells(spring, SOURCE_NEWMONGO, *kinds), kind
        assert got, kind
    # register differences are the clean import of the interval each read closes
    truth = window_clean(spring, SOURCE_NEWMONGO)
    usable = (step & (diff >= 0)).to_numpy()
    got = diff.to_numpy()[usable] * 1000
    want = truth.import_wh.reindex(cells[usable]).to_numpy()
    assert np.allclose(got, want, atol=1e-6)
    # after a rollover the register continues modulo the rollover value
    prev = first.groupby("meter_id").import_kwh.shift()
    wrapped = pd.MultiIndex.from_arrays([first.meter_id, first.ts - Q]).isin(list(rollovers))
    assert np.allclose(
        (first.import_kwh - prev + REGISTER_ROLLOVER_KWH)[wrapped] * 1000,
        truth.import_wh.reindex(cells[wrapped]).to_numpy(),
        atol=1e-6,
    )
    assert docs.voltage_v.between(207, 253).all() and (docs.current_a >= 0).all()


# --- stores -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nx_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalMongoServer(tmp_path_factory.mktemp("nx") / "nx.db") as uri:
        yield uri


def test_write_and_read_back(spring: DemoFleet, nx_uri: str, tmp_path: Path) -> None:
    sql_url = f"sqlite:///{tmp_path / 'sql' / 'historian.db'}"
    summary = write_fleet(
        spring,
        sql_url=sql_url,
        mongo_uri=nx_uri,
        mongo_database="demo_write",
        exports_dir=tmp_path / "exports",
        truth_dir=tmp_path / "truth",
    )
    assert summary.historian_rows == len(spring.historian)
    assert summary.mongo_documents == len(spring.mongo_docs)
    assert summary.csv_rows == sum(len(f) for f in spring.old_exports.values())
    engine = sa.create_engine(sql_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {HISTORIAN_TABLE}")).scalar() == len(
            spring.historian
        )
        indexes = sa.inspect(conn).get_indexes(HISTORIAN_TABLE)
        assert [i["column_names"] for i in indexes] == [["tagname", "timestamp"]]
        meters = pd.read_sql_table(METERS_TABLE, conn)
        historian = sa.Table(HISTORIAN_TABLE, sa.MetaData(), autoload_with=conn)
        q = sa.select(historian).where(historian.c.tagname == "MTR0002.1.8.0")
        got = pd.DataFrame(conn.execute(q.order_by(historian.c.timestamp)).all())
        # the adapter filters by time with datetime parameters
        t1 = spring.historian.timestamp.iloc[1000].to_pydatetime()
        n_after = conn.execute(
            sa.select(sa.func.count()).where(historian.c.timestamp >= t1)
        ).scalar()
    engine.dispose()
    assert n_after == (spring.historian.timestamp >= t1).sum()
    pd.testing.assert_frame_equal(meters, spring.meters, check_dtype=False)
    want = spring.historian[spring.historian.tagname == "MTR0002.1.8.0"]
    want = want.sort_values("timestamp", kind="stable").reset_index(drop=True)
    assert got.timestamp.tolist() == [t.to_pydatetime() for t in want.timestamp]
    assert np.array_equal(got.energy.to_numpy(), want.energy.to_numpy())

    with pymongo.MongoClient(nx_uri) as client:
        coll = client["demo_write"][MONGO_COLLECTION]
        assert coll.estimated_document_count() == len(spring.mongo_docs)
        one = spring.mongo_docs.iloc[500]
        doc = coll.find_one({"meter_id": one.meter_id, "ts": one.ts.to_pydatetime()}, {"_id": 0})
        assert doc["import_kwh"] == one.import_kwh and doc["power_w"] == one.power_w
        keys = [tuple(i["key"]) for i in coll.index_information().values()]
        assert (("ts", 1),) in keys and (("meter_id", 1), ("ts", 1)) in keys

    files = sorted(p.name for p in (tmp_path / "exports").glob("*.csv"))
    assert files == [f"{m}.csv" for m in spring.meters.meter_id]
    back = pd.read_csv(tmp_path / "exports" / "MTR0003.csv", parse_dates=["datetime"])
    pd.testing.assert_frame_equal(
        back, spring.old_exports["MTR0003"], check_dtype=False, check_exact=True
    )
    clean = pd.read_parquet(tmp_path / "truth" / "clean_readings.parquet")
    pd.testing.assert_frame_equal(clean, spring.clean)
    defects = pd.read_csv(tmp_path / "truth" / "defects.csv")
    assert len(defects) == len(spring.defects)
    assert len(pd.read_csv(tmp_path / "truth" / "anomalies.csv")) == len(spring.anomalies)


def test_ensure_demo_builds_once(nx_uri: str, tmp_path: Path) -> None:
    args = {
        "data_dir": tmp_path,
        "sql_url": f"sqlite:///{tmp_path / 'historian.db'}",
        "mongo_uri": nx_uri,
        "mongo_database": "demo_ensure",
    }
    assert ensure_demo(TINY, **args) is True
    watched = [
        tmp_path / MANIFEST_NAME,
        tmp_path / "historian.db",
        tmp_path / EXPORTS_SUBDIR / "MTR0001.csv",
        tmp_path / TRUTH_SUBDIR / "clean_readings.parquet",
    ]
    stamps = [os.stat(p).st_mtime_ns for p in watched]
    assert ensure_demo(TINY, **args) is False
    assert [os.stat(p).st_mtime_ns for p in watched] == stamps
    with pymongo.MongoClient(nx_uri) as client:  # a store that lost its data is refilled
        client["demo_ensure"][MONGO_COLLECTION].drop()
    assert ensure_demo(TINY, **args) is True
    with pymongo.MongoClient(nx_uri) as client:
        n = client["demo_ensure"][MONGO_COLLECTION].estimated_document_count()
    assert n == len(build_fleet(TINY).mongo_docs)
    assert ensure_demo(TINY, **args) is False


# --- blocks: same fleet in any block size, written block by block, bounded memory ---------


def in_time_order(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Rows sorted by ``key`` (stably: a late duplicate stays after its original), categorical
    columns as text: how readers see the historian and the Mongo documents."""
    out = frame.astype({c: str for c in frame.columns if frame[c].dtype == "category"})
    return out.sort_values(key, kind="stable", ignore_index=True)


def test_block_size_does_not_change_the_fleet(spring: DemoFleet) -> None:
    blocks = build_fleet(SPRING, block_meters=5)  # ``spring``: one block of 12 meters
    for name in ("meters", "meters_truth", "clean", "defects", "anomalies"):
        pd.testing.assert_frame_equal(getattr(blocks, name), getattr(spring, name))
    assert blocks.old_exports.keys() == spring.old_exports.keys()
    for meter_id, frame in spring.old_exports.items():
        pd.testing.assert_frame_equal(blocks.old_exports[meter_id], frame)
    for name, key in (("historian", ["tagname", "timestamp"]), ("mongo_docs", ["meter_id", "ts"])):
        got, want = getattr(blocks, name), getattr(spring, name)
        assert not got.equals(want)  # rows in another order (time order within each block) ...
        pd.testing.assert_frame_equal(in_time_order(got, key), in_time_order(want, key))  # same


def _peak_after_first_block(spec: DemoSpec, block_meters: int) -> int:
    """Peak traced bytes while the blocks after the first are built and dropped (the shared
    fleet context, built with the first block, is not counted)."""
    blocks = iter_blocks(spec, block_meters)
    next(blocks)
    gc.collect()
    tracemalloc.start()
    try:
        for block in blocks:
            assert len(block.meters) <= block_meters
            del block
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_builder_memory_is_bounded_by_the_block_not_the_fleet() -> None:
    spec = DemoSpec(n_meters=12, history_days=30, mongo_days=2, seed=5)
    small = _peak_after_first_block(spec, 4)  # two more blocks
    large = _peak_after_first_block(DemoSpec(**{**spec.__dict__, "n_meters": 48}), 4)  # eleven
    assert large < 1.3 * small, (small, large)
    # a builder that kept what it built would hold ~5x more after eleven blocks than after two
    assert small > 4 * 30 * 96 * 8 * 4  # at least the block's four clean series of 4 meters


def test_ensure_demo_streams_blocks_into_the_stores(
    spring: DemoFleet,
    mongo_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    built: list[weakref.ref[FleetBlock]] = []

    def blocks(spec: DemoSpec) -> Iterator[FleetBlock]:
        for block in iter_blocks(spec):
            gc.collect()
            assert all(ref() is None for ref in built)  # earlier blocks freed before this one
            built.append(weakref.ref(block))
            yield block
            del block

    monkeypatch.setattr(demo_raw, "BLOCK_METERS", 5)
    monkeypatch.setattr(demo_write, "iter_blocks", blocks)
    sql_url = f"sqlite:///{tmp_path / 'historian.db'}"
    with caplog.at_level(logging.INFO, logger="meterflow.demo.write"):
        assert ensure_demo(SPRING, data_dir=tmp_path, sql_url=sql_url, mongo_uri=mongo_uri,
                           mongo_database="demo_blocks") is True  # fmt: skip
    assert len(built) == 3
    progress = [r.getMessage() for r in caplog.records if "written," in r.getMessage()]
    assert [m.split(" written")[0] for m in progress] == [
        f"demo fleet: meters {span} of 12" for span in ("1-5", "6-10", "11-12")
    ]
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["counts"]["mongo_documents"] == len(spring.mongo_docs)
    assert {"build", "sql", "mongo", "csv", "truth"} <= manifest["seconds"].keys()
    # every store holds the fleet built in one block
    truth = tmp_path / TRUTH_SUBDIR
    pd.testing.assert_frame_equal(pd.read_parquet(truth / "clean_readings.parquet"), spring.clean)
    for name in ("anomalies", "defects", "meters_truth"):
        text = (truth / f"{name}.csv").read_text()
        assert text == getattr(spring, name).to_csv(index=False), name
    for meter_id, frame in spring.old_exports.items():
        back = pd.read_csv(tmp_path / EXPORTS_SUBDIR / f"{meter_id}.csv", parse_dates=["datetime"])
        pd.testing.assert_frame_equal(back, frame, check_dtype=False, check_exact=True)
    engine = sa.create_engine(sql_url)
    with engine.connect() as conn:
        historian = pd.read_sql_table(HISTORIAN_TABLE, conn)
        meters = pd.read_sql_table(METERS_TABLE, conn)
    engine.dispose()
    pd.testing.assert_frame_equal(meters, spring.meters, check_dtype=False)
    key = ["tagname", "timestamp"]
    pd.testing.assert_frame_equal(
        in_time_order(historian, key), in_time_order(spring.historian, key), check_dtype=False
    )
    with pymongo.MongoClient(mongo_uri, tz_aware=True) as client:
        docs = pd.DataFrame(client["demo_blocks"][MONGO_COLLECTION].find({}, {"_id": 0}))
    key = ["meter_id", "ts"]
    pd.testing.assert_frame_equal(
        in_time_order(docs[list(MONGO_FIELDS)], key),
        in_time_order(spring.mongo_docs, key),
        check_dtype=False,
    )
