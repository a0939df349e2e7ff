"""The three ETLs on the demo fleet written to real stores: every injected defect of the ground
truth is repaired or quarantined with the right reason, scale errors are found where they were
injected, counts reconcile, and clean days equal the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.demo import DemoSpec, build_fleet
from meterflow.demo.write import write_mongo, write_old_exports, write_sql
from meterflow.domain import LOCAL_TIMEZONE
from meterflow.etl import CleaningConfig
from meterflow.schemas import profile_slot_columns
from meterflow.sources.formats import MONGO_COLLECTION
from meterflow.sources.meters import read_meters
from meterflow.sources.mongo import etl_newmongo, read_mongo_documents
from meterflow.sources.oldexports import etl_oldexports
from meterflow.sources.sql import etl_sql

Q = pd.Timedelta(minutes=15)
DB = "meterflow_demo_etl"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str):
    fleet = build_fleet(DemoSpec(n_meters=24, history_days=80, mongo_days=3, seed=7))
    root = tmp_path_factory.mktemp("demo_etl")
    url = f"sqlite:///{root / 'historian.db'}"
    write_sql(fleet, url)
    write_old_exports(fleet, root / "exports")
    write_mongo(fleet, mongo_uri, DB)
    cfg = CleaningConfig(resolution_min=15)
    meters = read_meters(url)
    sql = etl_sql(url, meters=meters, config=cfg)
    old = etl_oldexports(root / "exports", meters=meters, config=cfg,
                         reference_profiles=sql.profiles)  # fmt: skip
    docs = read_mongo_documents(mongo_uri, DB, MONGO_COLLECTION)
    mongo = etl_newmongo(docs, meters=meters, config=cfg)
    return fleet, {"sql": sql, "oldmongo": old, "newmongo": mongo}


def intervals(defect: pd.Series) -> pd.DatetimeIndex:
    return pd.date_range(defect["start_utc"], defect["end_utc"], freq=Q, inclusive="left")


def local_dates(ts: pd.DatetimeIndex) -> set[pd.Timestamp]:
    return set(ts.tz_convert(LOCAL_TIMEZONE).tz_localize(None).normalize())


def kept_days(result, meter: str) -> set[pd.Timestamp]:
    return set(result.profiles.loc[result.profiles["meter_id"] == meter, "date"])


def entries(result, meter: str, ts: pd.DatetimeIndex | pd.Timestamp) -> pd.DataFrame:
    q = result.quarantine
    stamps = pd.DatetimeIndex([ts] if isinstance(ts, pd.Timestamp) else ts)
    return q[(q["meter_id"] == meter) & q["timestamp"].isin(stamps)]


def test_counts_reconcile_for_every_source(demo):
    _, results = demo
    for source, res in results.items():
        m = res.metrics
        assert m["readings_in"] > 0, source
        assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"], source
        dropped = int((res.quarantine["action"] == "dropped").sum())
        assert dropped == m["readings_quarantined"], source
        q = res.quality
        assert q["readings_in"].sum() == m["readings_in"], source
        assert (q["readings_in"] == q["readings_kept"] + q["readings_quarantined"]).all(), source
        assert set(res.profiles["source"]) == {source}


def test_every_injected_defect_is_repaired_or_quarantined_with_its_reason(demo):
    fleet, results = demo
    reasons = {
        "duplicate_exact": {"duplicate"},
        "duplicate_conflict": {"conflicting_duplicate", "duplicate"},
        "outlier": {"outlier"},
        "bad_quality": {"bad_quality"},
        "counter_reset": {"counter_reset"},
        "rollover": {"counter_rollover"},
    }
    checked: dict[str, int] = {}
    for _, d in fleet.defects.iterrows():
        res, meter, kind = results[d["source"]], d["meter_id"], d["kind"]
        span = intervals(d)
        got = entries(res, meter, span)
        if kind in ("gap_short", "gap_long") and d["source"] != "newmongo":
            # each missing interval is filled, or its local day was not kept
            filled = set(got.loc[got["action"] == "filled", "timestamp"])
            lost = local_dates(span) - kept_days(res, meter)
            for t in span:
                assert t in filled or local_dates(pd.DatetimeIndex([t])) <= lost, (d.to_dict(), t)
        elif kind in ("gap_short", "gap_long"):  # missing documents: one reading spans the gap
            closing = entries(res, meter, span[-1] + Q)
            spread = closing[closing["reason"] == "accumulated_over_gap"]
            long_gap = closing[closing["reason"] == "long_gap"]
            lost = local_dates(span) - kept_days(res, meter)
            assert len(spread) or len(long_gap) or lost, d.to_dict()
        elif kind in reasons:
            assert reasons[kind] <= set(got["reason"]) | ({"duplicate"} & reasons[kind]), (
                d.to_dict()
            )
            if kind in ("duplicate_exact", "bad_quality"):
                assert set(got["register"]) == {"import", "export"}, d.to_dict()
        elif kind == "uncertain_quality":
            assert not (got["action"] == "dropped").any() or not (
                local_dates(span) <= kept_days(res, meter)
            ), d.to_dict()
        elif kind == "scale":
            rep = res.scale_corrections
            hit = rep[(rep["meter_id"] == meter) & (rep["factor"] == d["factor"])]
            assert len(hit) == 1, d.to_dict()
            assert hit.iloc[0]["start"] == d["start_utc"] and hit.iloc[0]["end"] == d["end_utc"]
        elif kind == "dst_fall_back":
            merged = got[got["reason"] == "dst_fallback_merge"]
            assert len(merged) == 16 or not local_dates(span) <= kept_days(res, meter)
        elif kind == "dst_spring_forward":
            spring = entries(res, meter, span)
            assert len(spring[spring["reason"] == "dst_spring_gap"]) == 4 or not (
                local_dates(span) <= kept_days(res, meter)
            )
        else:
            raise AssertionError(f"defect kind without a check: {kind}")
        checked[kind] = checked.get(kind, 0) + 1
    assert {"gap_short", "duplicate_exact", "outlier", "bad_quality", "scale"} <= set(checked)


def test_scale_reports_only_injected_periods(demo):
    fleet, results = demo
    rep = results["oldmongo"].scale_corrections
    truth = fleet.defects[fleet.defects["kind"] == "scale"]
    assert len(rep) == len(truth) > 0
    assert set(rep["meter_id"]) == set(truth["meter_id"])
    assert results["sql"].scale_corrections.empty and results["newmongo"].scale_corrections.empty


def test_conflicting_duplicates_keep_the_true_value_mostly(demo):
    fleet, results = demo
    conflicts = fleet.defects[fleet.defects["kind"] == "duplicate_conflict"]
    scales = fleet.defects[fleet.defects["kind"] == "scale"]
    right = 0
    for _, d in conflicts.iterrows():
        if d["source"] == "newmongo":
            continue
        got = entries(results[d["source"]], d["meter_id"], d["start_utc"])
        dropped = got.loc[(got["reason"] == "conflicting_duplicate"), "original_value"]
        # an old-export file inside a scale period holds (and quarantines) the scaled value
        cover = scales[
            (scales["meter_id"] == d["meter_id"])
            & (scales["start_utc"] <= d["start_utc"])
            & (scales["end_utc"] > d["start_utc"])
        ]
        scale = float(cover["factor"].prod()) if d["source"] == "oldmongo" else 1.0
        expected = d["factor"] * 1000 * scale
        right += bool(len(dropped)) and np.isclose(dropped.iloc[0], expected)
    n = int((conflicts["source"] != "newmongo").sum())
    assert right >= 0.9 * n


def test_profiles_of_untouched_days_equal_the_truth(demo):
    fleet, results = demo
    truth = fleet.clean
    local = truth["timestamp"].dt.tz_convert(LOCAL_TIMEZONE).dt.tz_localize(None)
    truth = truth.assign(date=local.dt.normalize(), net=truth["import_wh"] - truth["export_wh"])
    daily = truth.groupby(["meter_id", "date"], observed=True)["net"].sum()
    for source, res in results.items():
        prof = res.profiles
        touched = res.quarantine[["meter_id", "timestamp"]].assign(
            date=lambda q: q["timestamp"].dt.tz_convert(LOCAL_TIMEZONE).dt.tz_localize(None)
            .dt.normalize()
        )  # fmt: skip
        touched_keys = set(zip(touched["meter_id"], touched["date"], strict=True))
        keys = list(zip(prof["meter_id"], prof["date"], strict=True))
        clean = np.array([k not in touched_keys for k in keys])
        assert clean.sum() > 0.5 * len(prof), source
        ours = prof.loc[clean, profile_slot_columns(prof)].sum(axis=1).to_numpy()
        ref = daily.reindex(
            pd.MultiIndex.from_tuples([k for k, c in zip(keys, clean, strict=True) if c])
        )
        assert np.allclose(ours, ref.to_numpy(), atol=1e-6), source


def test_mongo_reads_count_two_readings_per_document(demo, mongo_uri: str):
    fleet, results = demo
    m = results["newmongo"].metrics
    assert m["documents_in"] == len(fleet.mongo_docs)
    assert m["readings_in"] == 2 * len(fleet.mongo_docs)
    assert m["quarantined_counter_baseline"] == 2 * len(fleet.meters)


def test_profiles_are_written_as_parquet_without_loss(demo, tmp_path: Path):
    _, results = demo
    for res in results.values():
        path = tmp_path / "p.parquet"
        res.profiles.to_parquet(path)
        back = pd.read_parquet(path)
        pd.testing.assert_frame_equal(back, res.profiles, check_dtype=False)
        res.quarantine.to_parquet(tmp_path / "q.parquet")
