"""Profile files a user brings: the id column is found, a label is never a slot, the file's own
slot names are kept for the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SourceError
from meterflow.schemas import slot_columns
from meterflow.sources.profilefile import read_profile_file


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "profiles.csv") -> Path:
    path = tmp_path / name
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def slots(n: int = 3, width: int = 4) -> pd.DataFrame:
    values = np.arange(n * width, dtype=float).reshape(n, width)
    return pd.DataFrame(values, columns=[f"h{i}" for i in range(width)])


@pytest.mark.parametrize(
    ("extra", "expected_source", "expected_ids"),
    [
        ({"id": ["a", "b", "c"]}, "id", ["a", "b", "c"]),
        ({"meter_id": [7, 8, 9]}, "meter_id", ["7", "8", "9"]),  # numeric ids are ids by name
        ({"customer": ["x", "y", "z"]}, "customer", ["x", "y", "z"]),  # first text column
        ({}, "", ["0", "1", "2"]),  # nothing to go by: numbered by row
    ],
)
def test_the_id_column_is_found(tmp_path, extra, expected_source, expected_ids):
    frame = pd.concat([pd.DataFrame(extra), slots()], axis=1)
    read = read_profile_file(write(tmp_path, frame))
    assert read.id_source == expected_source
    assert read.table["meter_id"].tolist() == expected_ids
    assert read.slot_names == ("h0", "h1", "h2", "h3")
    assert list(read.table.columns) == ["meter_id", *slot_columns(4)]


def test_a_named_id_column_wins_over_the_guess(tmp_path):
    path = write(tmp_path, pd.concat([pd.DataFrame({"code": [11, 12, 13]}), slots()], axis=1))
    assert read_profile_file(path).slot_names[0] == "code"  # a numeric column is a slot...
    read = read_profile_file(path, id_column="code")  # ...unless it is named as the id
    assert read.table["meter_id"].tolist() == ["11", "12", "13"]
    assert read.slot_names == ("h0", "h1", "h2", "h3")


@pytest.mark.parametrize("name", ["label", "Class", "target", "y"])
def test_a_label_like_column_is_never_taken_as_a_slot(tmp_path, name):
    frame = pd.concat([pd.DataFrame({"id": ["a", "b", "c"], name: [0, 1, 0]}), slots()], axis=1)
    path = write(tmp_path, frame)
    with pytest.raises(SourceError, match=f"'{name}' looks like a label.*label_column={name}"):
        read_profile_file(path)
    read = read_profile_file(path, label_column=name)
    assert read.table["label"].tolist() == [0, 1, 0]
    assert len(read.slot_names) == 4


def test_a_date_column_is_not_the_id(tmp_path):
    frame = pd.concat(
        [pd.DataFrame({"day": ["2024-01-01"] * 3, "who": list("abc")}), slots()], axis=1
    )
    read = read_profile_file(write(tmp_path, frame, "p.parquet"), date_column="day")
    assert read.id_source == "who" and "date" in read.table.columns
