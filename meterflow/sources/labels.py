"""Labelled anomalies a user brings as a CSV file: ``meter_id, kind, start_utc, end_utc``
(exclusive end), optionally ``magnitude``.

The file is UTF-8 text (a byte-order mark is accepted) with a header line. Times are ISO 8601:
a naive time is UTC, a time with an offset is converted to UTC. Every fault in the file is one
:class:`SourceError` naming the file and, where a line is at fault, its 1-based line number in
the file (``row=``; the header is line 1) and its meter.

:func:`label_coverage` then says which labels can be scored against a series and why the others
cannot (as warnings for the log).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow.errors import SourceError
from meterflow.etl.plausible import MAX_ABS

SOURCE = "labels"
LABEL_COLUMNS = ("meter_id", "kind", "start_utc", "end_utc")
OPTIONAL_COLUMNS = ("magnitude",)
TIME_COLUMNS = ("start_utc", "end_utc")
TIME_HINT = "use ISO 8601, e.g. 2024-01-31 13:00 (UTC) or 2024-01-31T14:00+01:00"
BOM = b"\xef\xbb\xbf"
LISTED_IDS = 5  # ids named in a warning before "…"


def read_labels(path: Path) -> pd.DataFrame:
    """The labels in ``path``, one row per label in file order: ``meter_id`` and ``kind``
    (text), ``start_utc`` and ``end_utc`` (tz-aware UTC, end after start), ``magnitude`` (float,
    NaN where blank) when the file has it, and any other named column as text.

    SourceError (source=labels, the file, and the line and meter where one is at fault) for a
    missing, empty, header-only, non-UTF-8 or non-CSV file, missing or repeated columns, a
    line with too many or too few fields, an empty meter_id or kind, a time that is not ISO
    8601, an end_utc not after its start_utc, a magnitude that is not a finite, plausible number
    (``meterflow.etl.plausible.MAX_ABS``), or a label given twice (both lines named)."""
    text = _read_text(path)
    names, rows = _parse_csv(text, path)
    return _labels_frame(names, rows, path)


@dataclass(frozen=True, eq=False)
class LabelCoverage:
    """What a series can make of its labels (see :func:`label_coverage`)."""

    usable: pd.DataFrame  # labels naming a series meter and overlapping the series span
    unknown_meters: list[str]  # meter ids the labels name but the series lacks, sorted
    outside: int  # labels of series meters entirely outside the series span
    unknown_labels: int = 0  # labels naming a meter in ``unknown_meters``
    first: pd.Timestamp | None = None  # the series span (UTC), for the messages
    last: pd.Timestamp | None = None

    def warnings(self) -> list[str]:
        """One sentence per reason some labels cannot be scored (empty when all can)."""
        out = []
        if self.unknown_meters:
            ids = ", ".join(self.unknown_meters[:LISTED_IDS])
            if len(self.unknown_meters) > LISTED_IDS:
                ids += ", …"
            out.append(
                f"labels: {self.unknown_labels} label(s) name {len(self.unknown_meters)} "
                f"meter(s) not in the series ({ids}): they are ignored"
            )
        if self.outside:
            span = _span_text(self.first, self.last)
            out.append(
                f"labels: {self.outside} label(s) fall outside the series{span}: they are ignored"
            )
        if self.usable.empty:
            out.append(
                "labels: no label matches the series, so F1 and the other label metrics are absent"
            )
        return out


def label_coverage(
    labels: pd.DataFrame, meters: Iterable[str], first: pd.Timestamp, last: pd.Timestamp
) -> LabelCoverage:
    """Split ``labels`` (as :func:`read_labels` returns them) against a series holding
    ``meters`` from ``first`` to ``last`` (its first and last timestamps in UTC; a naive one is
    taken as UTC). A label is usable when its meter is in the series and its ``[start_utc,
    end_utc)`` overlaps ``[first, last]``; ``usable`` keeps the label columns, renumbered."""
    first, last = _utc(first), _utc(last)
    known_ids = {str(m) for m in meters}
    meter = labels["meter_id"].astype(str)
    known = meter.isin(known_ids).to_numpy(bool)
    start = _utc_column(labels["start_utc"])
    end = _utc_column(labels["end_utc"])
    overlaps = ((start <= last) & (end > first)).to_numpy(bool)
    unknown = sorted(set(meter[~known]), key=_natural_key)
    return LabelCoverage(
        usable=labels.loc[known & overlaps].reset_index(drop=True),
        unknown_meters=unknown,
        outside=int(np.count_nonzero(known & ~overlaps)),
        unknown_labels=int(np.count_nonzero(~known)),
        first=first,
        last=last,
    )


# --- reading ------------------------------------------------------------------------------


def _fail(
    message: str, path: Path, row: int | None = None, meter: str | None = None
) -> SourceError:
    return SourceError(message, source=SOURCE, file=str(path), row=row, meter=meter or None)


def _read_text(path: Path) -> str:
    """The file as text (UTF-8, a byte-order mark dropped); SourceError if it cannot be."""
    if path.is_dir():
        raise _fail("the label file is a folder, not a file", path)
    if not path.is_file():
        raise _fail("label file does not exist", path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _fail(f"cannot read the label file: {e.strerror or e}", path) from None
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise _fail(
            f"the label file is not UTF-8 text (byte 0x{data[e.start]:02x}){_binary_hint(data)}"
            "; save it as UTF-8 CSV",
            path,
            row=line,
        ) from None


def _binary_hint(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ": it looks like UTF-16"
    if data.startswith(b"PK\x03\x04"):
        return ": it looks like a spreadsheet or zip file, not CSV"
    if data.startswith(b"PAR1"):
        return ": it looks like a Parquet file, not CSV"
    return ""


def _parse_csv(text: str, path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header's column names and the data rows (first line, fields); blank lines (also
    lines of empty fields only) are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    done = 0  # lines read so far
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                records.append((done + 1, fields))
            done = reader.line_num
    except csv.Error as e:
        why = str(e)
        if why == "unexpected end of data":
            why = "a quoted field that starts on this line is never closed"
        elif why.endswith("expected after '\"'"):
            why = 'text follows a closing quote (inside a quoted field, write a quote as "")'
        raise _fail(f"the label file is not readable CSV: {why}", path, row=done + 1) from None
    if not records:
        raise _fail(
            "the label file is empty: it needs the header line "
            f"{','.join(LABEL_COLUMNS)} and one line per label",
            path,
        )
    (header_line, names), rows = records[0], records[1:]
    names = [n.strip() for n in names]
    _check_header(names, header_line, path)
    if not rows:
        raise _fail(
            "the label file has a header but no labels (a label file given must hold at least "
            "one label)",
            path,
        )
    return names, rows


def _check_header(names: list[str], line: int, path: Path) -> None:
    seen = [n for n in names if n]
    repeated = sorted({n for n in seen if seen.count(n) > 1})
    if repeated:
        raise _fail(f"the header names column(s) {', '.join(repeated)} twice", path, row=line)
    missing = [c for c in LABEL_COLUMNS if c not in names]
    if missing:
        found = ", ".join(repr(n) for n in names[:8]) + (", …" if len(names) > 8 else "")
        hint = ""
        if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
            hint = "; the file looks separated by ';' or tabs, but label files need commas"
        raise _fail(
            f"the label file lacks column(s) {', '.join(missing)} (its header has {found}; it "
            f"needs {','.join(LABEL_COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}]){hint}",
            path,
            row=line,
        )


def _labels_frame(names: list[str], rows: list[tuple[int, list[str]]], path: Path) -> pd.DataFrame:
    """The checked labels; SourceError at the first line at fault."""
    width = len(names)
    index = {n: i for i, n in enumerate(names) if n}
    required = max(index[c] for c in LABEL_COLUMNS)
    for line, fields in rows:
        if len(fields) > width:
            raise _fail(
                f"the line has {len(fields)} fields but the header has {width}",
                path,
                row=line,
                meter=_field(fields, index["meter_id"]),
            )
        if len(fields) <= required:
            absent = [c for c in LABEL_COLUMNS if index[c] >= len(fields)]
            raise _fail(
                f"the line has {len(fields)} field(s) but the header has {width}: "
                f"{', '.join(absent)} missing",
                path,
                row=line,
                meter=_field(fields, index["meter_id"]),
            )
    columns = {n: [_field(f, i) for _, f in rows] for n, i in index.items()}
    lines = [line for line, _ in rows]
    times = {
        c: pd.to_datetime(pd.Series(columns[c]), utc=True, format="ISO8601", errors="coerce")
        for c in TIME_COLUMNS
    }
    magnitude = None
    if "magnitude" in index:
        raw = pd.Series(columns["magnitude"], dtype=object).replace("", np.nan)
        magnitude = pd.to_numeric(raw, errors="coerce")
    for k, line in enumerate(lines):
        _check_line(k, line, columns, times, magnitude, path)
    out = pd.DataFrame(
        {n: columns[n] for n in index if n not in TIME_COLUMNS and n != "magnitude"}
        | {c: times[c] for c in TIME_COLUMNS}
        | ({"magnitude": magnitude.astype(np.float64)} if magnitude is not None else {})
    )
    _check_unique(out, lines, path)
    return out[list(index)]


def _check_line(
    k: int,
    line: int,
    columns: dict[str, list[str]],
    times: dict[str, pd.Series],
    magnitude: pd.Series | None,
    path: Path,
) -> None:
    """SourceError naming ``line`` when label ``k`` is at fault (empty key, time that is not
    ISO 8601, end not after start, magnitude that is not a plausible number)."""
    meter = columns["meter_id"][k]
    for c in ("meter_id", "kind"):
        if not columns[c][k]:
            raise _fail(f"{c} is empty", path, row=line, meter=meter)
    for c in TIME_COLUMNS:
        if pd.isna(times[c].iloc[k]):
            value = columns[c][k]
            what = f"{c} is empty" if not value else f"{c} {value!r} is not a time"
            raise _fail(f"{what} ({TIME_HINT})", path, row=line, meter=meter)
    start, end = times["start_utc"].iloc[k], times["end_utc"].iloc[k]
    if end <= start:
        raise _fail(
            f"end_utc {_iso(end)} is not after start_utc {_iso(start)} (times in UTC; the "
            "end is exclusive)",
            path,
            row=line,
            meter=meter,
        )
    if magnitude is None or not columns["magnitude"][k]:
        return
    value, number = columns["magnitude"][k], magnitude.iloc[k]
    if pd.isna(number):
        raise _fail(f"magnitude {value!r} is not a number", path, row=line, meter=meter)
    if not np.isfinite(number) or abs(number) > MAX_ABS:
        raise _fail(
            f"magnitude {value!r} is not finite or absurdly large (at most {MAX_ABS:g})",
            path,
            row=line,
            meter=meter,
        )


def _check_unique(labels: pd.DataFrame, lines: list[int], path: Path) -> None:
    """SourceError when a label (meter, kind, start and end) is given twice, naming both
    lines: it would count twice when the detector is scored."""
    key = ["meter_id", "kind", *TIME_COLUMNS]
    dup = np.flatnonzero(labels.duplicated(key, keep="first").to_numpy())
    if not len(dup):
        return
    k = int(dup[0])
    first = int(np.flatnonzero((labels[key] == labels[key].iloc[k]).all(axis=1).to_numpy())[0])
    raise _fail(
        f"the label {labels['kind'].iloc[k]!r} from {_iso(labels['start_utc'].iloc[k])} to "
        f"{_iso(labels['end_utc'].iloc[k])} (UTC) is given twice, on lines {lines[first]} and "
        f"{lines[k]}: give each label once",
        path,
        row=lines[k],
        meter=labels["meter_id"].iloc[k],
    )


def _field(fields: list[str], i: int) -> str:
    return fields[i].strip() if i < len(fields) else ""


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00")


# --- coverage -----------------------------------------------------------------------------


def _utc(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _utc_column(values: pd.Series) -> pd.Series:
    ts = pd.to_datetime(values)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert("UTC")
    return ts.dt.tz_localize("UTC")


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    """Sort key under which M9 comes before M10."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p]


def _span_text(first: pd.Timestamp | None, last: pd.Timestamp | None) -> str:
    if first is None or last is None:
        return ""
    midnight = all(t == t.normalize() for t in (first, last))
    fmt = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"
    return f" ({first.strftime(fmt)} .. {last.strftime(fmt)} UTC)"
