"""Label files a user brings: good files read with UTC times, every bad one is one SourceError
naming the file and, where a line is at fault, its line and meter; label_coverage says which
labels a series can score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly.events import prepare_labels
from meterflow.errors import SourceError
from meterflow.sources.labels import LabelCoverage, label_coverage, read_labels

HEADER = "meter_id,kind,start_utc,end_utc"


def write(tmp_path: Path, text: str | bytes, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def error(path: Path) -> SourceError:
    with pytest.raises(SourceError) as info:
        read_labels(path)
    err = info.value
    assert err.source == "labels"
    assert err.file == str(path)
    assert str(path) in str(err)
    return err


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- good files ---------------------------------------------------------------------------


def test_naive_times_are_utc_and_offsets_are_converted(tmp_path):
    path = write(
        tmp_path,
        f"{HEADER},magnitude\n"
        "M1,theft,2024-01-01 00:00,2024-01-02,1.5\n"
        "\n"  # a blank line is skipped
        "M2,spike,2024-01-01T01:00+01:00,2024-01-01T03:00Z,\n"
        '"007",flat_line,2024-01-01 00:00:00+00:00,2024-01-01 00:15:00-02:00,2\n',
    )
    labels = read_labels(path)
    assert list(labels.columns) == [*HEADER.split(","), "magnitude"]
    assert labels["meter_id"].tolist() == ["M1", "M2", "007"]  # ids stay text: 007 is not 7
    assert labels["kind"].tolist() == ["theft", "spike", "flat_line"]
    assert labels["start_utc"].tolist() == [utc("2024-01-01"), utc("2024-01-01"), utc("2024-01-01")]
    assert labels["end_utc"].tolist() == [
        utc("2024-01-02"),
        utc("2024-01-01 03:00"),
        utc("2024-01-01 02:15"),
    ]
    assert str(labels["start_utc"].dt.tz) == "UTC"
    np.testing.assert_array_equal(labels["magnitude"].to_numpy(), [1.5, np.nan, 2.0])


def test_the_anomaly_step_takes_what_is_read(tmp_path):
    path = write(tmp_path, f"{HEADER}\nM1,theft,2024-01-01T00:00,2024-01-01T02:00+01:00\n")
    prepared = prepare_labels(read_labels(path), "Europe/Berlin")
    assert prepared["start"].tolist() == [pd.Timestamp("2024-01-01 01:00")]
    assert prepared["end"].tolist() == [pd.Timestamp("2024-01-01 02:00")]


def test_a_utf8_bom_and_crlf_lines_are_accepted(tmp_path):
    text = f"{HEADER}\r\nMé,x,2024-01-01,2024-01-02\r\n"
    path = write(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8"))
    labels = read_labels(path)
    assert list(labels.columns) == HEADER.split(",")
    assert labels["meter_id"].tolist() == ["Mé"]


def test_column_order_and_extra_columns_are_kept(tmp_path):
    path = write(tmp_path, "note,end_utc,start_utc,kind,meter_id\nhi,2024-01-02,2024-01-01,x,M1\n")
    labels = read_labels(path)
    assert list(labels.columns) == ["note", "end_utc", "start_utc", "kind", "meter_id"]
    assert labels["note"].tolist() == ["hi"]


# --- bad files ----------------------------------------------------------------------------


def test_a_missing_file_or_a_folder(tmp_path):
    assert "does not exist" in str(error(tmp_path / "nope.csv"))
    assert "folder" in str(error(tmp_path))


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n"])
def test_an_empty_file(tmp_path, text):
    err = error(write(tmp_path, text))
    assert str(err).startswith("the label file is empty")
    assert err.row is None


def test_a_header_without_labels(tmp_path):
    err = error(write(tmp_path, f"{HEADER},magnitude\n\n"))
    assert str(err).startswith("the label file has a header but no labels")


def test_latin1_bytes_name_their_line(tmp_path):
    text = f"{HEADER}\nM1,x,2024-01-01,2024-01-02\nM\xe9,x,2024-01-01,2024-01-02\n"
    err = error(write(tmp_path, text.encode("latin-1")))
    assert str(err).startswith("the label file is not UTF-8 text (byte 0xe9)")
    assert err.row == 3


def test_utf16_and_spreadsheets_are_named(tmp_path):
    err = error(write(tmp_path, f"{HEADER}\n".encode("utf-16")))
    assert "looks like UTF-16" in str(err)
    assert err.row == 1
    err = error(write(tmp_path, b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U", "l.xlsx"))
    assert "spreadsheet" in str(err)


def test_a_missing_column_is_named_with_the_header(tmp_path):
    err = error(write(tmp_path, "meter_id,kind,start\nM1,x,2024-01-01\n"))
    assert str(err).startswith("the label file lacks column(s) start_utc, end_utc")
    assert "'meter_id', 'kind', 'start'" in str(err)
    assert err.row == 1


def test_a_semicolon_file_gets_a_hint(tmp_path):
    err = error(write(tmp_path, "meter_id;kind;start_utc;end_utc\nM1;x;2024-01-01;2024-01-02\n"))
    assert "label files need commas" in str(err)


def test_a_repeated_column(tmp_path):
    err = error(write(tmp_path, f"{HEADER},kind\nM1,x,2024-01-01,2024-01-02,y\n"))
    assert str(err).startswith("the header names column(s) kind twice")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("M2,x,2024-01-01,2024-01-02,9", "the line has 5 fields but the header has 4"),
        ("M2,x,2024-01-01", "the line has 3 field(s) but the header has 4: end_utc missing"),
    ],
)
def test_a_line_with_the_wrong_number_of_fields(tmp_path, line, message):
    err = error(write(tmp_path, f"{HEADER}\nM1,x,2024-01-01,2024-01-02\n{line}\n"))
    assert str(err).startswith(message)
    assert (err.row, err.meter) == (3, "M2")


def test_an_unclosed_quote_names_where_it_opens(tmp_path):
    err = error(write(tmp_path, f'{HEADER}\nM1,x,2024-01-01,2024-01-02\nM2,"x,2024-01-01\n\n'))
    assert "never closed" in str(err)
    assert err.row == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("M2,x,yesterday,2024-01-02", "start_utc 'yesterday' is not a time (use ISO 8601"),
        ("M2,x,2024-01-01,2024-13-01", "end_utc '2024-13-01' is not a time"),
        ("M2,x,,2024-01-02", "start_utc is empty"),
        ("M2,x,2024-01-01,2024-01-02 25:00", "end_utc '2024-01-02 25:00' is not a time"),
    ],
)
def test_a_bad_time_names_its_line_and_meter(tmp_path, row, message):
    # a quoted field over two lines: the line numbers are the file's, not the data row's
    text = f'{HEADER}\nM1,"two\nlines",2024-01-01,2024-01-02\n{row}\n'
    err = error(write(tmp_path, text))
    assert str(err).startswith(message)
    assert (err.row, err.meter) == (4, "M2")
    assert "row=4" in str(err)
    assert "meter=M2" in str(err)


@pytest.mark.parametrize(
    ("start", "end"),
    [("2024-01-02", "2024-01-01T12:00"), ("2024-01-01T01:00+01:00", "2024-01-01T00:00")],
)
def test_an_end_not_after_its_start_names_its_line_and_meter(tmp_path, start, end):
    err = error(write(tmp_path, f"{HEADER}\nM1,x,2024-01-01,2024-01-02\n\nM7,x,{start},{end}\n"))
    assert "is not after start_utc" in str(err)
    assert (err.row, err.meter) == (4, "M7")


def test_the_equal_end_message(tmp_path):
    err = error(write(tmp_path, f"{HEADER}\nM7,x,2024-01-01T01:00+01:00,2024-01-01\n"))
    assert str(err) == (
        "end_utc 2024-01-01 00:00 is not after start_utc 2024-01-01 00:00 (times in UTC; the end "
        f"is exclusive) (source=labels, file={tmp_path / 'labels.csv'}, meter=M7, row=2)"
    )


@pytest.mark.parametrize(("row", "column"), [(",x", "meter_id"), ("M2, ", "kind")])
def test_an_empty_meter_or_kind(tmp_path, row, column):
    err = error(
        write(tmp_path, f"{HEADER}\nM1,x,2024-01-01,2024-01-02\n{row},2024-01-01,2024-01-02\n")
    )
    assert str(err).startswith(f"{column} is empty")
    assert err.row == 3


def test_a_magnitude_that_is_not_a_number(tmp_path):
    err = error(write(tmp_path, f"{HEADER},magnitude\nM1,x,2024-01-01,2024-01-02,big\n"))
    assert str(err).startswith("magnitude 'big' is not a number")
    assert (err.row, err.meter) == (2, "M1")


def test_the_first_bad_line_is_reported(tmp_path):
    text = f"{HEADER}\nM1,x,2024-01-02,2024-01-01\nM2,,2024-01-01,2024-01-02\n"
    assert error(write(tmp_path, text)).row == 2


# --- coverage -----------------------------------------------------------------------------


def labels_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter_id": [r[0] for r in rows],
            "kind": "spike",
            "start_utc": pd.to_datetime([r[1] for r in rows], utc=True, format="ISO8601"),
            "end_utc": pd.to_datetime([r[2] for r in rows], utc=True, format="ISO8601"),
        }
    )


FIRST, LAST = utc("2024-01-01"), utc("2024-05-01")


def test_all_labels_usable():
    labels = labels_frame([("M1", "2024-02-01", "2024-02-02"), ("M2", "2024-04-30", "2024-06-01")])
    cov = label_coverage(labels, ["M1", "M2", "M3"], FIRST, LAST)
    assert isinstance(cov, LabelCoverage)
    pd.testing.assert_frame_equal(cov.usable, labels)
    assert (cov.unknown_meters, cov.outside, cov.unknown_labels) == ([], 0, 0)
    assert cov.warnings() == []


def test_the_span_edges():
    labels = labels_frame(
        [
            ("M1", "2023-12-31", "2024-01-01"),  # ends (exclusive) at the first slot: outside
            ("M1", "2023-12-31", "2024-01-01 00:15"),  # overlaps the first slot
            ("M1", "2024-05-01", "2024-05-02"),  # starts at the last slot
            ("M1", "2024-05-01 00:15", "2024-05-02"),  # after the last slot
        ]
    )
    cov = label_coverage(labels, ["M1"], FIRST, LAST)
    assert cov.usable["start_utc"].tolist() == [utc("2023-12-31"), utc("2024-05-01")]
    assert cov.outside == 2


def test_unknown_meters_and_labels_outside():
    rows = [(f"M{i}", "2024-02-01", "2024-02-02") for i in (9, 10, 11, 12, 13, 14, 9)]
    rows += [("M1", "2023-01-01", "2023-01-02"), ("M1", "2025-01-01", "2025-01-02")]
    rows += [("M1", "2024-03-01", "2024-03-02")]
    cov = label_coverage(labels_frame(rows), iter(["M1", "M2"]), FIRST, LAST)
    assert cov.unknown_meters == ["M9", "M10", "M11", "M12", "M13", "M14"]
    assert (cov.unknown_labels, cov.outside, len(cov.usable)) == (7, 2, 1)
    assert cov.usable.index.tolist() == [0]
    assert cov.warnings() == [
        "labels: 7 label(s) name 6 meter(s) not in the series (M9, M10, M11, M12, M13, …): "
        "they are ignored",
        "labels: 2 label(s) fall outside the series (2024-01-01 .. 2024-05-01 UTC): they are "
        "ignored",
    ]


def test_no_usable_label():
    labels = labels_frame([("M9", "2024-02-01", "2024-02-02"), ("M1", "2020-01-01", "2020-01-02")])
    cov = label_coverage(labels, ["M1"], utc("2024-01-01 06:00"), utc("2024-01-31 23:45"))
    assert cov.usable.empty
    assert cov.warnings() == [
        "labels: 1 label(s) name 1 meter(s) not in the series (M9): they are ignored",
        "labels: 1 label(s) fall outside the series (2024-01-01 06:00 .. 2024-01-31 23:45 UTC): "
        "they are ignored",
        "labels: no label matches the series, so F1 and the other label metrics are absent",
    ]


def test_the_span_may_be_given_in_another_zone_or_naive():
    labels = labels_frame([("M1", "2024-01-01 00:00", "2024-01-01 00:15")])
    local_first = pd.Timestamp("2024-01-01 01:00", tz="Europe/Berlin")  # = 00:00 UTC
    assert len(label_coverage(labels, ["M1"], local_first, LAST).usable) == 1
    naive_first = pd.Timestamp("2024-01-01 00:15")  # taken as UTC: after the label
    assert label_coverage(labels, ["M1"], naive_first, LAST).outside == 1


def test_coverage_of_a_file_read(tmp_path):
    path = write(tmp_path, f"{HEADER}\nM1,x,2024-02-01T00:00+01:00,2024-02-01T01:00+01:00\n")
    cov = label_coverage(read_labels(path), ["M1"], FIRST, LAST)
    assert cov.usable["end_utc"].tolist() == [utc("2024-02-01")]
