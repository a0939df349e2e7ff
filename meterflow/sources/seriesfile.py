"""Load series a user brings as a file (CSV or Parquet): ``timestamp``, ``value``, an optional
series id (``meter_id`` or ``series_id``; one series when absent) and any extra numeric columns
(inputs of the forecaster), at any regular resolution that divides a day (detected).

An extra column named like a label (``label``, ``class``, ``target``, ...) is never taken as an
input: it must be named among the ignored columns (or renamed). A value or input that is not
finite, or absurdly far from the rest of its series (``meterflow.etl.plausible``: 1e6 times its
99th percentile of non-zero ``|v|``, and never beyond 1e15), is an error naming the file,
series and row; so is a timestamp given twice for a series (both rows named).

Timestamps are taken as given when naive (the series' own clock) and converted to naive UTC when
they carry an offset, so that a regular grid stays regular across daylight-saving changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow.domain import MINUTES_PER_DAY
from meterflow.errors import SourceError
from meterflow.etl.plausible import describe, implausible
from meterflow.sources.userfile import LABEL_LIKE, read_user_table

SOURCE = "in_series"
ID_COLUMNS = ("meter_id", "series_id")
DEFAULT_ID = "series"


@dataclass(frozen=True)
class SeriesFile:
    """A checked series file: long table ``meter_id, timestamp, value, <exog...>``."""

    series: pd.DataFrame
    resolution_min: int
    exog: tuple[str, ...]


def read_series_file(
    path: Path, *, inputs: bool = True, ignore: tuple[str, ...] = ()
) -> SeriesFile:
    """The file as a checked long table; SourceError naming the file, series and row when it
    cannot serve (missing columns, unparsable or duplicate timestamps, non-numeric, non-finite
    or absurd values, timestamps off the detected grid, a label-like input column). Extra
    columns are inputs when ``inputs`` (all but ``ignore``), else left out."""
    raw = read_user_table(path, source=SOURCE, what="series file")
    missing = [c for c in ("timestamp", "value", *ignore) if c not in raw.columns]
    if missing:
        raise SourceError(f"missing column(s) {missing}", source=SOURCE, file=str(path))
    id_col = next((c for c in ID_COLUMNS if c in raw.columns), None)
    ids = raw[id_col].astype(str) if id_col else pd.Series(DEFAULT_ID, index=raw.index)
    exog = _input_columns(raw, {"timestamp", "value", id_col, *ignore}, path) if inputs else ()
    table = pd.DataFrame({"meter_id": ids, "timestamp": _timestamps(raw["timestamp"], path)})
    for col in ("value", *exog):
        table[col] = _numeric(raw, col, path)
    table = table.loc[table["value"].notna()]  # a missing reading is a gap
    for col in ("value", *exog):
        _check_values(table, col, path)
    _check_unique(table, path)
    resolution = detect_resolution(table, path)
    return SeriesFile(table.reset_index(drop=True), resolution, exog)


def _input_columns(raw: pd.DataFrame, taken: set, path: Path) -> tuple[str, ...]:
    """The extra columns, none of them named like a label."""
    extra = tuple(c for c in raw.columns if c not in taken)
    labels = [c for c in extra if str(c).strip().lower() in LABEL_LIKE]
    if labels:
        raise SourceError(
            f"column {labels[0]!r} looks like a label, not a model input: pass "
            f"ignore_columns={labels[0]} to leave it out (or rename it to use it as an input)",
            source=SOURCE,
            file=str(path),
        )
    return extra


def _check_values(table: pd.DataFrame, col: str, path: Path) -> None:
    """SourceError at the first non-finite or absurd value of ``col`` (see the module
    docstring)."""
    values = table[col].to_numpy(dtype=np.float64)
    bad, reference = implausible(values, table["meter_id"].to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        prefix = "" if col == "value" else f"column {col!r}: "
        raise SourceError(
            prefix + describe(values[i], reference[i], "its series"),
            source=SOURCE,
            file=str(path),
            meter=str(table["meter_id"].iloc[i]),
            row=int(table.index[i]),
        )


def _timestamps(column: pd.Series, path: Path) -> pd.Series:
    stamps = pd.to_datetime(column, errors="coerce", utc=False, format="mixed")
    bad = stamps.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise SourceError(
            f"unparsable timestamp {column.iloc[row]!r}", source=SOURCE, file=str(path), row=row
        )
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[ns]")


def _numeric(raw: pd.DataFrame, col: str, path: Path) -> pd.Series:
    values = pd.to_numeric(raw[col], errors="coerce")
    bad = values.isna() & raw[col].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise SourceError(
            f"column {col!r} is not numeric: {raw[col].iloc[row]!r}",
            source=SOURCE,
            file=str(path),
            row=row,
        )
    return values.astype(np.float64)


def _check_unique(table: pd.DataFrame, path: Path) -> None:
    """SourceError at the first timestamp given twice for a series, naming both rows."""
    key = ["meter_id", "timestamp"]
    dup = table.duplicated(key, keep="first").to_numpy()
    if dup.any():
        row = int(dup.nonzero()[0][0])
        same = (table[key] == table[key].iloc[row]).all(axis=1).to_numpy()
        first = int(table.index[int(same.nonzero()[0][0])])
        raise SourceError(
            f"duplicate timestamp {table['timestamp'].iloc[row]}, also at row {first} (give "
            "each reading once; a repeated local hour at a daylight-saving change needs an "
            "offset)",
            source=SOURCE,
            file=str(path),
            meter=str(table["meter_id"].iloc[row]),
            row=int(table.index[row]),
        )


def detect_resolution(table: pd.DataFrame, path: Path) -> int:
    """The series' step in minutes: the most common difference between consecutive
    timestamps; every timestamp must lie on that grid, and the step must divide a day."""
    ordered = table.sort_values(["meter_id", "timestamp"], kind="stable")
    stamps = ordered["timestamp"].to_numpy(dtype="datetime64[ns]")
    same = ordered["meter_id"].to_numpy()[1:] == ordered["meter_id"].to_numpy()[:-1]
    minutes = (np.diff(stamps) / np.timedelta64(1, "m"))[same]
    if len(minutes) == 0:
        raise SourceError("need at least two readings per series", source=SOURCE, file=str(path))
    step = float(pd.Series(minutes).mode().iloc[0])
    if step <= 0 or step != int(step) or MINUTES_PER_DAY % int(step):
        raise SourceError(
            f"detected step of {step:g} min does not divide a day", source=SOURCE, file=str(path)
        )
    off = (stamps - stamps.astype("datetime64[D]")) % np.timedelta64(int(step), "m") != 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise SourceError(
            f"timestamp {ordered['timestamp'].iloc[i]} is off the {int(step)}-min grid",
            source=SOURCE,
            file=str(path),
            meter=str(ordered["meter_id"].iloc[i]),
            row=int(ordered.index[i]),
        )
    return int(step)
