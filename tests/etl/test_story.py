"""The descriptions and headline metrics of the data runs (ETL, load, harmonization, score):
built from small tables, checked for the numbers a person reads first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from meterflow.etl.result import EtlResult
from meterflow.etl.story import (
    EtlStory,
    LoadStory,
    etl_description,
    headline_metrics,
    load_description,
)
from meterflow.models.batch import BlockResult, FleetScore
from meterflow.profiles.story import (
    DtwStory,
    HarmonizationStory,
    harmonization_description,
    source_table,
)
from meterflow.schemas import slot_columns
from meterflow.tasks.score import score_description

SLOTS = slot_columns(4)


def profiles(meters: list[str], days: int, source: str = "sql") -> pd.DataFrame:
    dates = pd.date_range("2025-01-01", periods=days, freq="D")
    rows = pd.MultiIndex.from_product([meters, dates], names=["meter_id", "date"]).to_frame()
    frame = rows.reset_index(drop=True).assign(source=source)
    return frame.assign(**dict.fromkeys(SLOTS, 100.0))


def etl_result(metrics: dict[str, float], summary: list[tuple[str, str, int]]) -> EtlResult:
    quality = pd.DataFrame(
        {"meter_id": ["M1", "M2", "M3"], "days_spanned": [10, 10, 0], "days_kept": [10, 9, 0]}
    )
    corrections = pd.DataFrame(summary, columns=["action", "reason", "count"])
    empty = pd.DataFrame()
    return EtlResult(profiles(["M1", "M2"], 10), empty, quality, corrections, empty, metrics)


SQL_METRICS = {
    "readings_in": 6_960_568.0, "readings_kept": 6_889_075.0, "readings_quarantined": 71_493.0,
    "readings_filled": 16_205.0, "readings_corrected": 0.0, "meter_days_out": 19.0,
    "meters_out": 2.0, "scale_corrections": 0.0, "quarantined_share": 0.0103,
    "quarantined_incomplete_day": 58_261.0, "quarantined_bad_quality": 8_844.0,
    "quarantined_duplicate": 4_388.0, "filled_gap": 16_205.0, "rows_read": 6_960_568.0,
    "read_seconds": 18.2,
}  # fmt: skip
SQL_SUMMARY = [
    ("dropped", "incomplete_day", 58_261), ("dropped", "bad_quality", 8_844),
    ("dropped", "duplicate", 4_388), ("filled", "gap", 16_205),
]  # fmt: skip


def test_headline_metrics_leave_the_reason_family_to_the_table():
    result = etl_result(SQL_METRICS, SQL_SUMMARY)
    logged = headline_metrics(result.metrics, result.quality)
    assert not {k for k in logged if k.startswith(("filled_", "corrected_"))}
    assert [k for k in logged if k.startswith("quarantined_")] == ["quarantined_share"]
    assert logged["completeness"] == pytest.approx(19 / 20)  # days kept / days spanned
    assert {"readings_in", "readings_kept", "readings_quarantined", "meter_days_out"} <= set(logged)


def test_the_etl_description_gives_the_verdict_first_with_the_top_reasons():
    result = etl_result(SQL_METRICS, SQL_SUMMARY)
    text = etl_description(result, EtlStory("SQL historian", "sqlite:///h.db, table t", 3))
    first = text.splitlines()[0]
    assert first == (
        "**Kept 99 % of 6,960,568 readings from the SQL historian; 71,493 quarantined "
        "(81.5 % incomplete_day, 12.4 % bad_quality); 19 meter-days out, 95 % of the days "
        "spanned complete.**"
    )
    assert "2 of 3 meters" in text and "2025-01-01 to 2025-01-10 (10 days)" in text
    assert "4,388 duplicate (6.14 %)" in text and "16,205 filled: 16,205 gap" in text
    assert "`previews/quarantine.csv`" in text and "`figures/quarantine_reasons.png`" in text
    assert "None" not in text and "nan" not in text and len(text) <= 1500


def test_an_etl_without_readings_says_so_and_files_not_read_point_to_the_files_table():
    metrics = dict.fromkeys(("readings_in", "readings_kept", "readings_quarantined"), 0.0)
    metrics |= {"meter_days_out": 0.0, "files_in": 3.0, "files_not_read": 3.0}
    text = etl_description(etl_result(metrics, []), EtlStory("old per-meter exports", "/x", 3))
    assert text.startswith("**No readings read from the old per-meter exports")
    assert "3 files, 3 not read" in text and "`previews/files.csv`" in text


def load(**changes) -> LoadStory:
    base = {
        "store": "127.0.0.1:27017/ database demo, collection readings", "documents": 303_239,
        "late": 0, "meters": 200, "context": 0, "with_issue": 0, "since": None,
        "read_since": None, "watermark": pd.Timestamp("2025-10-14 22:00", tz="UTC"),
        "incremental": False,
    }  # fmt: skip
    return LoadStory(**(base | changes))


def test_a_first_load_reads_from_the_start_not_after_none():
    text = load_description(load())
    assert text.startswith(
        "**Loaded 303,239 documents of 200 meters from the start (full read); "
        "watermark now 2025-10-14 22:00 UTC.**"
    )
    assert "None" not in text


def test_an_incremental_load_names_its_window_and_an_empty_one_says_nothing_new():
    since = pd.Timestamp("2025-10-14 22:00", tz="UTC")
    text = load_description(load(documents=960, late=2, since=since, incremental=True))
    assert "960 documents of 200 meters after 2025-10-14 22:00 UTC (incremental" in text
    assert "958 new, 2 late" in text
    empty = load_description(load(documents=0, meters=0, since=since, incremental=True))
    assert empty.startswith("**No new documents after 2025-10-14 22:00 UTC (incremental")


def test_the_source_table_splits_each_input_into_kept_and_lost():
    sql, old = profiles(["M1"], 4, "sql"), profiles(["M1"], 6, "oldmongo")
    losers = pd.DataFrame(
        {"meter_id": "M1", "date": sql["date"], "source": "oldmongo", "winner_source": "sql",
         "reason": ["lower_priority"] * 3 + ["incomplete"], "max_abs_diff_wh": 0.0}
    )  # fmt: skip
    table = source_table([("run_sql", sql), ("run_old", old)], losers)
    assert table.to_dict("records") == [
        {"source": "sql", "etl_run": "run_sql", "meter_days_in": 4, "kept": 4,
         "lost_lower_priority": 0, "lost_incomplete": 0},
        {"source": "oldmongo", "etl_run": "run_old", "meter_days_in": 6, "kept": 2,
         "lost_lower_priority": 3, "lost_incomplete": 1},
    ]  # fmt: skip
    story = HarmonizationStory(
        table, pd.concat([sql, old.iloc[4:]]), 4, 4, 0, 60, "l2", ("newmongo", "sql", "oldmongo"),
        DtwStory(profiles=6, computed=10, reused=5, window=3, location="/cache/dtw"),
    )  # fmt: skip
    text = harmonization_description(story)
    assert text.splitlines()[0] == (
        "**Harmonized 6 meter-days of 1 meters from 2 source(s) (sql 4, oldmongo 2); "
        "4 meter-days covered by several sources resolved, 4 losing candidates listed.**"
    )
    assert "3 lost to a higher-priority source, 1 for being incomplete" in text
    assert "6 profiles, shifts of up to 2 slots: 10 pairs computed, 5 reused" in text
    assert "10 pairs computed, 5 reused from the cache (33.3 %)" in text
    assert "60-min slots" in text and "l2-normalized" in text


def test_the_score_description_names_the_model_and_the_output():
    block = BlockResult(block=0, file="b0.parquet", meters=5, rows_in=500, rows_out=120, seconds=1)
    result = FleetScore("models:/f@champion", "models:/f/3", "abc", Path("/out"), [block], 2.0)
    text = score_description(result, "/data/readings")
    assert text.startswith("**Scored 5 meters with models:/f@champion in 2 s (2.5 meters/s)")
    assert "models:/f/3 (run `abc`), resolved from models:/f@champion" in text
    assert "`score/output.json`" in text


def test_the_store_of_each_source_is_named_without_credentials(tmp_path):
    from meterflow.settings import Environment
    from meterflow.tasks.etl import store_location

    env = Environment(
        data_dir=tmp_path,
        sql_url="postgresql://bob:hunter2@db.example:5432/hist",
        mongodb_uri="mongodb://alice:s3cret@mongo.example:27017/?authSource=admin",
        mongo_database="meters",
        experiment="x",
        tracking_uri=None,
    )
    where = {name: store_location(name, env) for name in ("sql", "newmongo", "oldmongo")}
    assert where["sql"] == "postgresql://***:***@db.example:5432/hist"
    assert where["newmongo"] == "mongo.example:27017 database meters"
    assert where["oldmongo"] == str(tmp_path / "oldmongo")
    assert not any("hunter2" in w or "s3cret" in w or "bob" in w for w in where.values())
