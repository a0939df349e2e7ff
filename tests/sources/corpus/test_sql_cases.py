"""Damaged SQL historians: each case's exact quarantine, and clean neighbours unchanged.

The historian table is created without column types (SQLite keeps every value as written:
text in the energy column, NULLs, timestamps with offsets), read through both paths (ADBC and
SQLAlchemy), which must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from meterflow.etl import CleaningConfig
from meterflow.sources.sql import etl_sql
from tests.sources.corpus.common import (
    CLEAN,
    DAMAGED,
    METERS,
    PV,
    assert_outcome,
    export_kwh,
    import_kwh,
    interval_starts,
)

Rows = list[list]  # [timestamp text, tagname, energy, quality]
IMP, EXP = f"{DAMAGED}.1.8.0", f"{DAMAGED}.2.8.0"


def clean_rows() -> Rows:
    """Every interval of the two days for the three meters, END stamps as naive UTC text."""
    ends = (interval_starts() + pd.Timedelta(minutes=15)).strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for meter in (CLEAN, DAMAGED, PV):
        imp, exp = import_kwh(meter, len(ends)), export_kwh(meter, len(ends))
        rows += [[t, f"{meter}.1.8.0", float(v), 192] for t, v in zip(ends, imp, strict=True)]
        rows += [[t, f"{meter}.2.8.0", float(v), 192] for t, v in zip(ends, exp, strict=True)]
    return rows


def write(url: str, rows: Rows) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE historian (timestamp, tagname, energy, quality)")
        conn.exec_driver_sql("INSERT INTO historian VALUES (?, ?, ?, ?)", [tuple(r) for r in rows])
    engine.dispose()


def find(rows: Rows, tag: str, n: int = 40) -> list:
    """The n-th row of a tag."""
    return [r for r in rows if r[1] == tag][n]


def set_field(tag: str, col: int, value: object, n: int = 40) -> Callable[[Rows], Rows]:
    def damage(rows: Rows) -> Rows:
        find(rows, tag, n)[col] = value
        return rows

    return damage


def add_row(row: list) -> Callable[[Rows], Rows]:
    return lambda rows: [*rows, row]


def retime(tag: str, minutes: int, scale: float) -> Callable[[Rows], Rows]:
    """The tag's rows at another resolution (energy scaled to the new interval)."""

    def damage(rows: Rows) -> Rows:
        kept = [r for r in rows if r[1] != tag]
        starts = interval_starts()
        fine = pd.date_range(starts[0], starts[-1] + pd.Timedelta(minutes=15), freq=f"{minutes}min",
                             inclusive="left")  # fmt: skip
        energy = np.repeat(import_kwh(DAMAGED, len(starts)), 15)  # per minute of each interval
        per = energy.reshape(-1, minutes).sum(axis=1) / 15 if minutes <= 15 else None
        if per is None:
            per = np.full(len(fine), 0.4 * scale)
        ends = (fine + pd.Timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")
        return kept + [[t, tag, float(v), 192] for t, v in zip(ends, per, strict=True)]

    return damage


def with_offsets(rows: Rows) -> Rows:
    """The damaged meter's stamps written in local time with their UTC offset (+01:00) or Z."""
    for i, r in enumerate(rows):
        if r[1].startswith(DAMAGED):
            ts = pd.Timestamp(r[0], tz="UTC")
            r[0] = ts.tz_convert("Europe/Rome").isoformat() if i % 2 else ts.isoformat()
    return rows


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Rows], Rows]
    expected: dict[tuple[str, str], int]
    same_damaged_profile: bool = False  # a change of representation only
    others: dict[tuple[str, str], int] = field(default_factory=dict)  # rows of no/other meter


D, C, F = "dropped", "corrected", "filled"
CASES = [
    Case("null_tagname", set_field(IMP, 1, None), {(F, "gap"): 1}, others={(D, "missing_key"): 1}),
    Case("null_timestamp", set_field(IMP, 0, None), {(D, "missing_key"): 1, (F, "gap"): 1}),
    Case(
        "null_tag_and_time",
        lambda r: set_field(IMP, 1, None)(set_field(IMP, 0, None)(r)),
        {(F, "gap"): 1},
        others={(D, "missing_key"): 1},
    ),
    Case("blank_tagname", set_field(IMP, 1, "  "), {(F, "gap"): 1}, others={(D, "missing_key"): 1}),
    Case("mixed_utc_offsets", with_offsets, {}, same_damaged_profile=True),
    Case(
        "fractional_seconds",
        lambda r: [[x[0] + ".000", *x[1:]] if x[1] == IMP else x for x in r],
        {},
        same_damaged_profile=True,
    ),
    Case(
        "unparseable_timestamp",
        set_field(IMP, 0, "yesterday"),
        {(D, "malformed_row"): 1, (F, "gap"): 1},
    ),
    Case("number_as_text", set_field(IMP, 2, "0.25"), {(C, "coerced_value"): 1}),
    Case("decimal_comma", set_field(IMP, 2, "0,25"), {(C, "coerced_value"): 1}),
    Case("text_value", set_field(IMP, 2, "n/a"), {(D, "malformed_value"): 1, (F, "gap"): 1}),
    Case("null_energy", set_field(IMP, 2, None), {(D, "missing_value"): 1, (F, "gap"): 1}),
    Case("null_quality", set_field(IMP, 3, None), {(D, "bad_quality"): 1, (F, "gap"): 1}),
    Case("bad_quality", set_field(IMP, 3, 0), {(D, "bad_quality"): 1, (F, "gap"): 1}),
    Case("negative_energy", set_field(IMP, 2, -0.3), {(D, "negative_energy"): 1, (F, "gap"): 1}),
    Case("outlier", set_field(IMP, 2, 500.0), {(D, "outlier"): 1, (F, "gap"): 1}),
    Case(
        "unknown_tag",
        lambda r: add_row([find(r, IMP)[0], f"{DAMAGED}.3.8.0", 1.0, 192])(r),
        {(D, "unknown_tag"): 1},
    ),
    Case(
        "unknown_meter",
        lambda r: add_row([find(r, IMP)[0], "GHOST.1.8.0", 1.0, 192])(r),
        {},
        others={(D, "unknown_meter"): 1},
    ),
    Case("exact_duplicate", lambda r: add_row(list(find(r, IMP)))(r), {(D, "duplicate"): 1}),
    Case(
        "conflicting_duplicate",
        lambda r: add_row([*find(r, IMP)[:2], find(r, IMP)[2] + 0.5, 192])(r),
        {(D, "conflicting_duplicate"): 1},
    ),
    Case(
        "off_grid_stray_row",
        lambda r: add_row([find(r, IMP)[0][:-5] + "07:00", IMP, 0.1, 192])(r),
        {(D, "off_grid_timestamp"): 1},
    ),
    Case(
        "five_minute_import",
        retime(IMP, 5, 1.0),
        {(C, "aggregated_interval"): 576},
        same_damaged_profile=True,
    ),
    Case(
        "thirty_minute_import",
        retime(IMP, 30, 2.0),
        {(D, "coarse_interval"): 96, (D, "incomplete_day"): 192},
    ),
]


@pytest.fixture(scope="module")
def clean_result(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('clean') / 'h.db'}"
    write(url, clean_rows())
    result = etl_sql(url, meters=METERS, config=CleaningConfig(resolution_min=15))
    assert len(result.quarantine) == 0 and result.metrics["meter_days_out"] == 6
    return result


@pytest.mark.parametrize("use_adbc", [True, False], ids=["adbc", "sqlalchemy"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_historian(case: Case, use_adbc: bool, tmp_path: Path, clean_result) -> None:
    url = f"sqlite:///{tmp_path / 'historian.db'}"
    write(url, case.damage(clean_rows()))
    result = etl_sql(
        url, meters=METERS, config=CleaningConfig(resolution_min=15), use_adbc=use_adbc
    )
    assert_outcome(result, case.expected, clean=clean_result)
    q = result.quarantine
    other = q.loc[q["meter_id"].astype(str) != DAMAGED]
    assert other.groupby(["action", "reason"]).size().to_dict() == case.others
    if case.same_damaged_profile:
        got = result.profiles.loc[result.profiles["meter_id"] == DAMAGED]
        want = clean_result.profiles.loc[clean_result.profiles["meter_id"] == DAMAGED]
        np.testing.assert_allclose(got.filter(like="slot_"), want.filter(like="slot_"))
    assert not q["location"].str.contains("tagname=None, timestamp=None").any()
