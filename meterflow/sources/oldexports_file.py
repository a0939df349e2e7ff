"""One old per-meter export file, read line by line so that nothing is lost or misplaced.

The file is split into physical lines first (line 1 is the header; blank lines count), so every
problem is reported with the file, the meter of the file and the line as an editor shows it:

- a file that is empty, or whose header lacks a column, cannot be read (``UnreadableFile``);
- a line with the wrong number of fields, bytes that are not UTF-8, or the last line of a file
  that does not end with a line break (cut off while written) is a bad line;
- a row whose meter or time is blank is a missing key; a row naming another meter than the
  file's is a mismatch (``meter_mismatch``), never moved to that other meter;
- a value that is text: a decimal comma is read (a correction), anything else is malformed.

Blank lines hold no reading and are skipped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow.etl.coerce import ParsedNumbers, parse_numbers
from meterflow.etl.quarantine import Reason
from meterflow.sources.formats import OLD_EXPORT_COLUMNS

VALUE_COLUMNS = ("active_import", "active_export")


class UnreadableFile(Exception):
    """The file as a whole cannot be read as an export; ``line`` is where that shows."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


@dataclass
class OldExportsRows:
    """The parsed rows of one file (one entry per data line that holds a row).

    ``line``: line number in the file; ``meter``/``naive``: the row's meter text and wall-clock
    start; ``values``: parsed active_import/active_export; ``problem``/``problem_detail``: the
    reason a row is refused (empty string when it is usable) and what was found."""

    line: np.ndarray
    meter: np.ndarray
    naive: pd.DatetimeIndex
    values: dict[str, ParsedNumbers]
    problem: np.ndarray
    problem_detail: np.ndarray
    raw_lines: np.ndarray = field(repr=False)
    file_meter: str = ""

    def quarantine_meter(self) -> np.ndarray:
        """Meter of each row's quarantine entries: the row's own, but the file's meter where the
        row names another meter or none (the file is what an operator follows up on)."""
        foreign = (self.problem == "meter_mismatch") | (self.meter == "")
        return np.where(foreign, self.file_meter, self.meter)


def split_lines(data: bytes) -> tuple[list[str], bool]:
    """The file's lines (UTF-8, undecodable bytes marked with U+FFFD) and whether the file ends
    with a line break. ``UnreadableFile`` for an empty file."""
    if not data.strip():
        raise UnreadableFile("file is empty")
    text = data.decode("utf-8-sig", errors="replace")
    lines = text.split("\n")
    ends_clean = lines[-1] == ""
    if ends_clean:
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines], ends_clean


def header_columns(lines: list[str]) -> list[str]:
    """The header's column names; ``UnreadableFile`` when a required one is missing."""
    columns = [c.strip() for c in lines[0].split(",")]
    missing = [c for c in OLD_EXPORT_COLUMNS if c not in columns]
    if missing:
        raise UnreadableFile(f"header lacks column(s) {missing}; found {columns}", line=1)
    return columns


def parse_rows(path: Path) -> OldExportsRows:
    """Split, check and parse every data line of ``path`` (module doc)."""
    data = path.read_bytes()
    return _parse_clean(data, path.stem) or _parse_lines(data, path.stem)


def _parse_clean(data: bytes, file_meter: str) -> OldExportsRows | None:
    """The fast path for a file without any problem (one C-parser pass, as a bare
    ``read_csv``); None as soon as anything is off, and the line-by-line path decides."""
    if not data.endswith(b"\n") or data.startswith(b"\xef\xbb\xbf") or b'"' in data:
        return None
    dtypes = {"meter_id": str, "datetime": str} | {c: np.float64 for c in VALUE_COLUMNS}
    try:
        data.decode("utf-8")
        df = pd.read_csv(
            io.BytesIO(data),
            dtype=dtypes,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if list(df.columns) != list(OLD_EXPORT_COLUMNS) or df.isna().to_numpy().any():
        return None
    meter = df["meter_id"].to_numpy(object)
    naive = pd.to_datetime(df["datetime"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    if (meter != file_meter).any() or naive.isna().any():
        return None
    n = len(df)
    values = {
        c: ParsedNumbers(df[c].to_numpy(), np.zeros(n, bool), np.zeros(n, bool), df[c].to_numpy())
        for c in VALUE_COLUMNS
    }
    empty = np.full(n, "", dtype=object)
    return OldExportsRows(
        np.arange(2, n + 2, dtype=np.int64),
        meter,
        pd.DatetimeIndex(naive),
        values,
        empty,
        empty.copy(),
        empty,
        file_meter,
    )


def _parse_lines(data: bytes, file_meter: str) -> OldExportsRows:
    """Every line checked on its own (module doc)."""
    lines, ends_clean = split_lines(data)
    columns = header_columns(lines)
    body = pd.Series(lines[1:], dtype=object)
    line_no = np.arange(2, len(lines) + 1, dtype=np.int64)
    blank = body.str.strip().eq("").to_numpy(bool)
    body, line_no = body[~blank].reset_index(drop=True), line_no[~blank]
    problem = np.full(len(body), "", dtype=object)
    detail = np.full(len(body), "", dtype=object)
    if not ends_clean and len(body) and line_no[-1] == len(lines):
        cut = np.zeros(len(body), bool)
        cut[-1] = True
        _flag(problem, detail, cut, Reason.TRUNCATED_LINE, "last line has no line end")
    n_fields = _field_counts(body)
    _flag(
        problem,
        detail,
        n_fields != len(columns),
        Reason.MALFORMED_ROW,
        np.char.add(f"expected {len(columns)} fields, found ", n_fields.astype(str)),
    )
    _flag(
        problem,
        detail,
        body.str.contains("\ufffd", regex=False).to_numpy(bool),
        Reason.MALFORMED_ROW,
        "bytes that are not UTF-8",
    )
    fields = _split_fields(body, problem == "", columns)
    return _typed_rows(fields, line_no, problem, detail, body.to_numpy(object), file_meter)


def _field_counts(body: pd.Series) -> np.ndarray:
    """Fields per line: commas + 1, and for the (rare) lines with quotes as ``csv`` reads them
    (a quoted ``"0,25"`` is one field)."""
    counts = body.str.count(",").to_numpy() + 1
    for i in np.flatnonzero(body.str.contains('"', regex=False).to_numpy(bool)):
        counts[i] = len(next(csv.reader([body.iloc[i]])))
    return counts


def _flag(problem, detail, mask, reason: Reason, text) -> None:
    """Mark rows ``mask`` that have no problem yet with ``reason`` and ``text``."""
    hit = mask & (problem == "")
    problem[hit] = str(reason)
    detail[hit] = text[hit] if isinstance(text, np.ndarray) else text


def _split_fields(body: pd.Series, ok: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The fields of every line as text (lines with a problem give empty fields)."""
    text = "\n".join(np.where(ok, body.to_numpy(object), ",".join([""] * len(columns))))
    if not len(body):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.read_csv(
        io.StringIO(text + "\n"),
        header=None,
        names=columns,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
    )


def _typed_rows(fields, line_no, problem, detail, raw_lines, file_meter) -> OldExportsRows:
    """Keys and values of the split rows, with missing keys and mismatches flagged."""
    meter = fields["meter_id"].str.strip().to_numpy(object)
    stamp = fields["datetime"].str.strip()
    naive = pd.to_datetime(stamp, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    values = {
        c: parse_numbers(fields[c].to_numpy(object), text_is_native=True) for c in VALUE_COLUMNS
    }
    _flag(
        problem,
        detail,
        (meter == "") | (stamp == "").to_numpy(),
        Reason.MISSING_KEY,
        "meter_id or datetime is blank",
    )
    _flag(
        problem,
        detail,
        naive.isna().to_numpy(),
        Reason.MALFORMED_ROW,
        np.char.add("datetime is not YYYY-MM-DD hh:mm:ss: ", stamp.to_numpy(str)),
    )
    _flag(
        problem,
        detail,
        meter != file_meter,
        Reason.METER_MISMATCH,
        np.char.add("row names meter ", meter.astype(str)) + f", the file is {file_meter}",
    )
    for col, parsed in values.items():
        _flag(
            problem,
            detail,
            parsed.malformed,
            Reason.MALFORMED_VALUE,
            np.char.add(f"{col} is not a number: ", parsed.raw.astype(str)),
        )
    return OldExportsRows(
        line_no, meter, pd.DatetimeIndex(naive), values, problem, detail, raw_lines, file_meter
    )
