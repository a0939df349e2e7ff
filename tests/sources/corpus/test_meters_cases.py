"""Damaged meter description tables: each is refused with one exact line naming the table, the
row, the meter and the column; clean and merely untidy tables are accepted (normalised)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from meterflow.errors import SourceError
from meterflow.sources.meters import read_meters
from tests.sources.corpus.common import METERS

TABLE = "meter_description"
HEAD = f"meter table {TABLE!r} has"
TYPES = "household|commercial|agricultural"
NUMERIC = ("contractual_power_kw", "production_kw", "latitude", "longitude")


def write_meters(path: Path, frame: pd.DataFrame, table: str = TABLE) -> str:
    """A SQLite file holding ``frame`` as ``table`` (REAL numeric columns, TEXT others).

    Values are inserted untyped, as SQLite itself takes them: text stays text in a REAL
    column, None and NaN become NULL."""
    url = f"sqlite:///{path / 'meters.db'}"
    columns = [sa.Column(c, sa.Float if c in NUMERIC else sa.String(32)) for c in frame.columns]
    untyped = sa.table(table, *map(sa.column, frame.columns))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        sa.Table(table, sa.MetaData(), *columns).create(conn)
        if len(frame):
            conn.execute(untyped.insert(), frame.astype(object).to_dict("records"))
    engine.dispose()
    return url


def damaged(*edits: tuple[int, str, object], base: pd.DataFrame = METERS) -> pd.DataFrame:
    """``base`` with ``(row index, column, value)`` edits."""
    out = base.astype(object)
    for row, col, value in edits:
        out.at[row, col] = value
    return out


def fleet(n: int) -> pd.DataFrame:
    """``n`` valid meters M01.. (commercial, 5 kW, no PV)."""
    return pd.DataFrame(
        {"meter_id": [f"M{i + 1:02d}" for i in range(n)], "contractual_power_kw": 5.0,
         "production_kw": 0.0, "type": "commercial", "latitude": 45.0, "longitude": 9.0}
    )  # fmt: skip


def one(row: int, meter: str | None, problem: str) -> str:
    """The message for a single bad row (its meter and row are also in the where-part)."""
    name = f" meter {meter}" if meter else ""
    where = f"meter={meter}, row={row}" if meter else f"row={row}"
    return f"{HEAD} 1 invalid row(s): row {row}{name}: {problem} (source=meters, {where})"


SIX_BAD = damaged(
    (0, "production_kw", None), (1, "production_kw", -2.0), (2, "type", "factory"),
    (4, "latitude", -91.0), (5, "contractual_power_kw", 0.0), (6, "meter_id", "M01"),
    base=fleet(7),
)  # fmt: skip
CASES = [
    pytest.param(damaged((2, "production_kw", None)),
                 one(3, "PV1", "production_kw is NULL"), id="null_production"),
    pytest.param(damaged((1, "production_kw", -1.5)),
                 one(2, "DMG1", "production_kw must be >= 0, got -1.5"), id="negative_production"),
    pytest.param(damaged((1, "contractual_power_kw", np.inf)),
                 one(2, "DMG1", "contractual_power_kw must be finite, got inf"), id="inf_power"),
    pytest.param(damaged((1, "contractual_power_kw", -np.inf)),
                 one(2, "DMG1", "contractual_power_kw must be finite, got -inf"),
                 id="minus_inf_power"),
    pytest.param(damaged((1, "contractual_power_kw", np.nan)),  # SQLite keeps NaN as NULL
                 one(2, "DMG1", "contractual_power_kw is NULL"), id="nan_power_stored_as_null"),
    pytest.param(damaged((0, "contractual_power_kw", 0.0)),
                 one(1, "CLEAN1", "contractual_power_kw must be > 0, got 0.0"), id="zero_power"),
    pytest.param(damaged((1, "contractual_power_kw", -3.0)),
                 one(2, "DMG1", "contractual_power_kw must be > 0, got -3.0"),
                 id="negative_power"),
    pytest.param(damaged((1, "latitude", "north")),
                 one(2, "DMG1", "latitude must be numeric, got 'north'"), id="text_in_numeric"),
    pytest.param(damaged((1, "meter_id", None)), one(2, None, "meter_id is NULL"),
                 id="null_meter_id"),
    pytest.param(damaged((1, "meter_id", "   ")), one(2, None, "meter_id is blank"),
                 id="blank_meter_id"),
    pytest.param(damaged((2, "meter_id", "CLEAN1")),
                 one(3, "CLEAN1", "meter_id 'CLEAN1' duplicates row 1"), id="duplicate_meter_id"),
    pytest.param(damaged((2, "meter_id", " CLEAN1\t")),
                 one(3, "CLEAN1", "meter_id ' CLEAN1\\t' duplicates row 1"),
                 id="duplicate_after_strip"),
    pytest.param(damaged((1, "type", "factory")),
                 one(2, "DMG1", f"type 'factory' not in {TYPES}"), id="unknown_type"),
    pytest.param(damaged((1, "type", None)), one(2, "DMG1", "type is NULL"), id="null_type"),
    pytest.param(damaged((1, "latitude", 95.0)),
                 one(2, "DMG1", "latitude must be in [-90, 90], got 95.0"), id="latitude_95"),
    pytest.param(damaged((0, "longitude", None)),
                 one(1, "CLEAN1", "longitude is NULL"), id="null_longitude"),
    pytest.param(damaged((2, "longitude", -180.5)),
                 one(3, "PV1", "longitude must be in [-180, 180], got -180.5"),
                 id="longitude_out_of_range"),
    pytest.param(damaged((0, "production_kw", None), (0, "latitude", 95.0),
                         (2, "type", "factory")),
                 f"{HEAD} 2 invalid row(s): row 1 meter CLEAN1: production_kw is NULL, latitude "
                 f"must be in [-90, 90], got 95.0; row 3 meter PV1: type 'factory' not in {TYPES}"
                 " (source=meters)", id="two_rows_three_problems"),
    pytest.param(SIX_BAD,
                 f"{HEAD} 6 invalid row(s): row 1 meter M01: production_kw is NULL; row 2 meter "
                 f"M02: production_kw must be >= 0, got -2.0; row 3 meter M03: type 'factory' not "
                 f"in {TYPES}; row 5 meter M05: latitude must be in [-90, 90], got -91.0; row 6 "
                 "meter M06: contractual_power_kw must be > 0, got 0.0; and 1 more (source=meters)",
                 id="six_bad_rows"),
    pytest.param(METERS.drop(columns=["latitude", "type"]),
                 f"table {TABLE!r} lacks column(s) ['type', 'latitude'] (source=meters)",
                 id="missing_columns"),
]  # fmt: skip


@pytest.mark.parametrize(("frame", "expected"), CASES)
def test_damaged_meter_table_is_refused(tmp_path: Path, frame: pd.DataFrame, expected: str):
    url = write_meters(tmp_path, frame)
    with pytest.raises(SourceError) as excinfo:
        read_meters(url)
    assert str(excinfo.value) == expected


def test_missing_table_and_other_table_name(tmp_path: Path):
    url = write_meters(tmp_path, damaged((1, "type", "factory")), table="meters_v2")
    with pytest.raises(SourceError) as excinfo:
        read_meters(url)
    assert str(excinfo.value) == f"table {TABLE!r} not found (source=meters)"
    with pytest.raises(SourceError) as excinfo:
        read_meters(url, table="meters_v2")
    assert str(excinfo.value) == (
        "meter table 'meters_v2' has 1 invalid row(s): row 2 meter DMG1: type 'factory' not in "
        f"{TYPES} (source=meters, meter=DMG1, row=2)"
    )


def test_unreachable_database_hides_the_password():
    with pytest.raises(SourceError) as excinfo:
        read_meters("postgresql+psycopg2://meter:s3cr3t@127.0.0.1:1/meters")
    text = str(excinfo.value)
    assert text.startswith("cannot read the meters table: ") and text.endswith("(source=meters)")
    assert "s3cr3t" not in text and "\n" not in text and "127.0.0.1" in text


def test_clean_table_is_read_as_is(tmp_path: Path):
    got = read_meters(write_meters(tmp_path, METERS))
    pd.testing.assert_frame_equal(got, METERS)


def test_untidy_ids_and_types_are_normalised(tmp_path: Path):
    untidy = damaged(
        (0, "meter_id", "  CLEAN1 "), (0, "type", " Household "), (1, "meter_id", "DMG1\t"),
        (1, "type", "COMMERCIAL"), (2, "type", "household\n"),
    )  # fmt: skip
    got = read_meters(write_meters(tmp_path, untidy))
    pd.testing.assert_frame_equal(got, METERS)


def test_empty_table_gives_an_empty_frame(tmp_path: Path):
    got = read_meters(write_meters(tmp_path, METERS.iloc[:0]))
    assert got.empty and list(got.columns) == list(METERS.columns)
    assert (got.dtypes[list(NUMERIC)] == np.float64).all()
