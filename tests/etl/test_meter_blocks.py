"""Cleaning in meter blocks: the pieces that combine block outputs (``etl.blocks``, the merge,
the time-zone evidence) and the same outputs from one call per block as from one call."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from meterflow.etl import CleaningConfig, clean_readings, make_readings
from meterflow.etl.blocks import BlockReadings, RowsByMeter, clean_in_blocks, cut_blocks
from meterflow.etl.localtime import (
    combine_evidence,
    dst_evidence,
    in_windows,
    transitions,
    windows,
)
from meterflow.etl.readings import row_locator
from meterflow.etl.result import merge_metrics
from tests.etl.test_cleaning import local_day, meters_table

CFG = CleaningConfig(resolution_min=15)


def test_cut_blocks_sorts_distinct_ids_into_consecutive_blocks():
    assert cut_blocks(["b", "a", "c", "a", "d"], 2) == [["a", "b"], ["c", "d"]]
    assert cut_blocks([], 3) == []
    with pytest.raises(ValueError, match="block_meters"):
        cut_blocks(["a"], 0)


def test_metrics_add_up_and_ratios_are_recomputed():
    a = {"readings_in": 10.0, "readings_quarantined": 1.0, "quarantined_share": 0.1,
         "step_max": 3.0, "step_min": 2.0, "quarantined_outlier": 1.0}  # fmt: skip
    b = {"readings_in": 30.0, "readings_quarantined": 9.0, "quarantined_share": 0.3,
         "step_max": 1.0, "step_min": 0.5}  # fmt: skip
    m = merge_metrics([a, b])
    assert m["readings_in"] == 40 and m["readings_quarantined"] == 10
    assert m["quarantined_share"] == pytest.approx(0.25)  # not 0.1 + 0.3, not their mean
    assert (m["step_max"], m["step_min"], m["quarantined_outlier"]) == (3.0, 0.5, 1.0)


def test_rows_by_meter_slices_a_block():
    table = pd.DataFrame({"meter_id": ["c", "a", "b", "a", "d"], "v": range(5)})
    rows = RowsByMeter(table)
    assert list(rows.rows(["a", "c"])["v"]) == [1, 3, 0]  # b lies between: left out
    assert rows.rows([]).empty and rows.rows(["x"]).empty


def _fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Five meters with every kind of repair: an incomplete day, an outlier, a gap, a
    duplicate, an unknown meter, a DST change day."""
    parts, caps = [], {}
    for i, m in enumerate(["M1", "M2", "M3", "M4", "M5"]):
        caps[m] = (3.0 + i, 1.0)
        ts = local_day("2024-03-30").append(local_day("2024-03-31")).append(local_day("2024-04-01"))
        values = np.full(len(ts), 100.0 + i)
        if m == "M2":
            values[5] = 1e6  # outlier
        if m == "M3":
            ts, values = ts.delete([7, 8]), np.delete(values, [7, 8])  # a short gap
        if m == "M4":
            ts, values = ts[:-10], values[:-10]  # last day incomplete
        parts.append(make_readings(np.full(len(ts), m), ts, values, source="sql",
                                   register="import"))  # fmt: skip
        parts.append(make_readings(np.full(3, m), ts[:3], -values[:3] / 10, source="sql",
                                   register="export"))  # fmt: skip
    parts.append(parts[0].iloc[:4])  # exact duplicates
    ghost = local_day("2024-03-30")
    parts.append(make_readings(np.full(len(ghost), "GHOST"), ghost, 5.0, source="sql",
                               register="import"))  # fmt: skip
    return pd.concat(parts, ignore_index=True), meters_table(**caps)


def _blocked(readings: pd.DataFrame, meters: pd.DataFrame, size: int, seen: list | None = None):
    """``readings`` cleaned by :func:`clean_in_blocks` ``size`` meters at a time; ``seen``
    collects what each block read was handed."""
    ids = readings["meter_id"].astype(str)

    def read_block(index: int, meter_ids: list[str], block_meters: pd.DataFrame) -> BlockReadings:
        if seen is not None:
            seen.append((index, meter_ids, sorted(block_meters["meter_id"])))
        part = readings[ids.isin(meter_ids).to_numpy()].reset_index(drop=True)
        return BlockReadings(part, None, row_locator("sql"))

    blocks = cut_blocks(ids, size)
    return clean_in_blocks(blocks, read_block, meters=meters, config=CFG, source="sql")


def assert_same_result(a, b) -> None:
    """Every output of two results equal (tables row by row, metrics but the timings)."""
    for name in ("profiles", "quarantine", "quality", "corrections_summary", "scale_corrections"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    timed = ("read_seconds", "clean_seconds")
    assert {k: v for k, v in a.metrics.items() if k not in timed} == {
        k: v for k, v in b.metrics.items() if k not in timed
    }
    assert a.watermark == b.watermark


@pytest.mark.parametrize("size", [1, 2, 4])
def test_blocks_give_the_outputs_of_one_pass(size: int, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="meterflow.etl.blocks")
    readings, meters = _fleet()
    one = _blocked(readings, meters, 100)
    caplog.clear()
    assert_same_result(_blocked(readings, meters, size), one)
    lines = [r.getMessage() for r in caplog.records if r.name == "meterflow.etl.blocks"]
    assert len(lines) == -(-6 // size) and f"etl_sql: meters 1-{size} of 6 cleaned" in lines[0]
    whole = clean_readings(readings, meters, CFG, source="sql")  # one call, no merge at all
    pd.testing.assert_frame_equal(one.profiles, whole.profiles)
    key = ["meter_id", "timestamp", "register", "action", "reason", "location"]
    pd.testing.assert_frame_equal(
        one.quarantine.sort_values(key, ignore_index=True),
        whole.quarantine.sort_values(key, ignore_index=True),
    )
    assert one.metrics == whole.metrics
    m = one.metrics
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"]
    assert {"quarantined_outlier", "quarantined_duplicate", "quarantined_unknown_meter"} <= set(m)


def test_each_block_read_gets_its_index_and_only_its_meters_rows():
    readings, meters = _fleet()
    seen: list = []
    _blocked(readings, meters, 2, seen)
    assert seen == [
        (0, ["GHOST", "M1"], ["M1"]),  # GHOST has no row in the meters table
        (1, ["M2", "M3"], ["M2", "M3"]),
        (2, ["M4", "M5"], ["M4", "M5"]),
    ]


def test_evidence_of_disjoint_series_adds_up():
    zone = "Europe/Rome"
    wall = pd.date_range("2024-10-25", "2024-10-30", freq="15min").as_unit("ns").asi8
    repeated = (
        pd.date_range("2024-10-27 02:00", "2024-10-27 02:45", freq="15min").as_unit("ns").asi8
    )
    naive = np.concatenate([wall, repeated])  # naive local time: the autumn hour twice
    series = np.concatenate([np.full(len(naive), s) for s in range(4)])
    stamps = np.tile(naive, 4)
    trans = transitions(zone, int(wall[0]), int(wall[-1]))
    keep = in_windows(stamps, windows(trans))  # what the historian check looks at
    series, stamps = series[keep], stamps[keep]
    whole = dst_evidence(series, stamps, trans)
    parts = [dst_evidence(series[series == s], stamps[series == s], trans) for s in range(4)]
    assert combine_evidence(parts) == whole
    assert whole[0].local == whole[0].observable == 4
