"""Values in the files a user brings (profiles, series, labels): a non-finite or absurdly large
value, or a meter-day / timestamp / label given twice, is one SourceError naming the file, the
meter and the row(s) (never a crash further down, e.g. in a figure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SourceError
from meterflow.etl.plausible import MAX_ABS, implausible
from meterflow.sources.labels import read_labels
from meterflow.sources.profilefile import read_profile_file
from meterflow.sources.seriesfile import read_series_file


def profiles(n: int = 4, width: int = 6) -> pd.DataFrame:
    values = 100 + np.arange(n * width, dtype=float).reshape(n, width)
    frame = pd.DataFrame(values, columns=[f"h{i}" for i in range(width)])
    frame.insert(0, "id", [f"M{i}" for i in range(n)])
    return frame


def write(tmp_path: Path, frame: pd.DataFrame, suffix: str) -> Path:
    path = tmp_path / f"file{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# --- profile files ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.inf, "value inf is not finite"),
        (-np.inf, "value -inf is not finite"),
        (1e308, "value 1e+308 is absurdly large for the file"),
        (2e15, "value 2e+15 is absurdly large for the file"),
        (5e9, "value 5e+09 is absurdly large for the file"),  # 1e6 x the file's values
    ],
)
def test_profile_value_not_finite_or_absurd_names_file_meter_row_and_slot(
    tmp_path: Path, suffix: str, value: float, message: str
):
    frame = profiles()
    frame.loc[2, "h3"] = value
    path = write(tmp_path, frame, suffix)
    with pytest.raises(SourceError) as err:
        read_profile_file(path)
    text = one_line(err)
    assert text.startswith(f"slot 'h3': {message}")
    row = 2 if suffix == ".parquet" else 4  # CSV: the file's line (header = line 1)
    assert err.value.file == str(path) and err.value.meter == "M2" and err.value.row == row


def test_a_mostly_zero_profile_file_is_plausible(tmp_path: Path):
    frame = profiles()
    frame.iloc[:, 1:] = 0.0
    frame.loc[1, "h2"], frame.loc[3, "h5"] = 0.004, 2500.0
    read = read_profile_file(write(tmp_path, frame, ".csv"))
    assert read.table.filter(like="slot_").to_numpy().max() == 2500.0


@pytest.mark.parametrize(("suffix", "rows"), [(".csv", (3, 5)), (".parquet", (1, 3))])
def test_a_meter_day_given_twice_names_both_rows(tmp_path: Path, suffix: str, rows: tuple):
    frame = profiles()
    frame["id"] = ["M0", "M1", "M2", "M1"]
    frame.insert(1, "day", ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02"])
    path = write(tmp_path, frame, suffix)
    with pytest.raises(SourceError) as err:
        read_profile_file(path, date_column="day")
    text = one_line(err)
    assert text.startswith(
        f"two profiles of the meter for date 2024-01-02, rows {rows[0]} and {rows[1]}"
    )
    assert (err.value.meter, err.value.row) == ("M1", rows[1])
    frame.loc[3, "day"] = "2024-01-03"  # another day of the same meter is fine
    assert len(read_profile_file(write(tmp_path, frame, suffix), date_column="day").table) == 4


def test_a_date_that_is_not_a_date_is_one_line(tmp_path: Path):
    frame = profiles()
    frame.insert(1, "day", ["2024-01-01", "2024-01-02", "someday", "2024-01-04"])
    with pytest.raises(SourceError) as err:
        read_profile_file(write(tmp_path, frame, ".csv"), date_column="day")
    assert one_line(err).startswith("date 'someday' is not a date")
    assert (err.value.meter, err.value.row) == ("M2", 4)


# --- series files -------------------------------------------------------------------------


def series(n: int = 48) -> pd.DataFrame:
    stamps = pd.date_range("2024-01-01", periods=n, freq="h")
    return pd.DataFrame(
        {"meter_id": "S1", "timestamp": stamps, "value": 1.0 + np.arange(n) % 5, "temp": 10.0}
    )


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("value", 1e308, "value 1e+308 is absurdly large for its series"),
        ("value", -np.inf, "value -inf is not finite"),
        ("temp", np.inf, "column 'temp': value inf is not finite"),
        ("temp", 1e300, "column 'temp': value 1e+300 is absurdly large for its series"),
    ],
)
def test_series_value_or_input_not_finite_or_absurd(
    tmp_path: Path, column: str, value: float, message: str
):
    frame = series()
    frame.loc[7, column] = value
    path = write(tmp_path, frame, ".csv")
    with pytest.raises(SourceError) as err:
        read_series_file(path)
    assert one_line(err).startswith(message)
    assert (err.value.meter, err.value.row) == ("S1", 7)


def test_series_timestamp_given_twice_names_both_rows(tmp_path: Path):
    frame = series()
    frame.loc[9, "timestamp"] = frame.loc[4, "timestamp"]
    with pytest.raises(SourceError) as err:
        read_series_file(write(tmp_path, frame, ".csv"))
    assert "duplicate timestamp 2024-01-01 04:00:00, also at row 4" in one_line(err)
    assert (err.value.meter, err.value.row) == ("S1", 9)


def test_a_mostly_zero_series_is_plausible(tmp_path: Path):
    """Rare events in a series of zeros: the reference ignores the zeros."""
    frame = series(400)
    frame["value"] = 0.0
    frame.loc[[50, 300], "value"] = [3.5, 12.0]
    assert read_series_file(write(tmp_path, frame, ".csv")).series["value"].max() == 12.0


def test_implausible_is_per_group_and_ignores_missing_values():
    values = np.array([1.0, 2.0, np.nan, 3e6, 1e3, 2e3, 1.5e9, MAX_ABS * 2, -np.inf])
    groups = np.array(["a", "a", "a", "a", "b", "b", "b", "c", "c"])
    bad, reference = implausible(values, groups)
    assert bad.tolist() == [False, False, False, True, False, False, False, True, True]
    assert reference[0] == reference[3] and reference[4] == reference[6]


# --- label files --------------------------------------------------------------------------


HEADER = "meter_id,kind,start_utc,end_utc,magnitude"


@pytest.mark.parametrize("magnitude", ["inf", "-inf", "1e309", "1e300"])
def test_a_magnitude_not_finite_or_absurd_names_its_line(tmp_path: Path, magnitude: str):
    path = tmp_path / "labels.csv"
    path.write_text(f"{HEADER}\nM1,spike,2024-01-01,2024-01-02,2\nM2,dip,2024-01-01,2024-01-02,"
                    f"{magnitude}\n")  # fmt: skip
    with pytest.raises(SourceError) as err:
        read_labels(path)
    assert one_line(err).startswith(f"magnitude {magnitude!r} is not finite or absurdly large")
    assert (err.value.meter, err.value.row) == ("M2", 3)


def test_a_label_given_twice_names_both_lines(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text(
        f"{HEADER}\nM1,spike,2024-01-01,2024-01-02,2\nM1,dip,2024-01-01,2024-01-02,1\n"
        "M2,spike,2024-01-01,2024-01-02,2\nM1,spike,2024-01-01T01:00+01:00,2024-01-02,3\n"
    )
    with pytest.raises(SourceError) as err:
        read_labels(path)
    assert one_line(err).startswith(
        "the label 'spike' from 2024-01-01 00:00 to 2024-01-02 00:00 (UTC) is given twice, on "
        "lines 2 and 5"
    )
    assert (err.value.meter, err.value.row) == ("M1", 5)
