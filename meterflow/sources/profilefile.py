"""Profile tables a user brings as a file (CSV or Parquet): one row per profile, an id column,
optional date and label columns, one numeric column per slot, any number of slots.

The id column is ``id_column`` when given, else the first of ``id``/``meter_id``, else the first
non-numeric column, else the row number. A column named like a label (``label``, ``class``,
``target``, ...) is never taken as a slot: it must be named as ``label_column`` (or renamed),
because clustering a 0/1 class as one more slot silently spoils every distance.

Every slot value must be finite and plausible (``meterflow.etl.plausible``: never beyond 1e15,
nor 1e6 times the 99th percentile of the file's non-zero ``|v|``), and a meter has at most one
profile per date; the error names the file, the meter and the row (the file's line for CSV,
the 0-based row for Parquet; both rows for a repeated meter and date).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow.errors import SourceError
from meterflow.etl.plausible import describe, implausible
from meterflow.schemas import slot_columns
from meterflow.sources.userfile import LABEL_LIKE, read_user_table

log = logging.getLogger(__name__)

SOURCE = "in_profiles"
ID_NAMES = ("id", "meter_id")  # taken as the id column, in this order, when none is named


@dataclass(frozen=True)
class ProfileFile:
    """A profile file as a table (``meter_id``, [``date``], [``label``], ``slot_00``..), the
    file's own names of the slot columns, in order, and where the ids came from."""

    table: pd.DataFrame
    slot_names: tuple[str, ...]
    id_source: str  # the id column's name in the file, or "" for row numbers


def read_profile_file(
    path: Path, *, id_column: str = "", date_column: str = "", label_column: str = ""
) -> ProfileFile:
    """Read and check a profile file; SourceError naming the file (and the first bad row) when
    it cannot serve as a profile table."""
    raw = read_user_table(path, source=SOURCE, what="profile file")
    id_column = id_column or _find_id_column(raw, exclude=(date_column, label_column))
    named = {id_column: "meter_id"} if id_column else {}
    if date_column and date_column in raw.columns:
        named[date_column] = "date"
    if label_column:
        named[label_column] = "label"
    missing = [c for c in named if c not in raw.columns]
    if missing:
        raise SourceError(f"missing column(s) {missing}", source=SOURCE, file=str(path))
    values = _slot_values(raw.drop(columns=list(named)), path)
    out = raw[list(named)].rename(columns=named).reset_index(drop=True)
    if not id_column:
        out.insert(0, "meter_id", np.arange(len(raw)))
        log.info("%s: no id column found, profiles are numbered by row", path)
    out["meter_id"] = out["meter_id"].astype(str)
    if "date" in out.columns:
        out["date"] = _dates(out, path)
        _check_unique(out, path)
    matrix = values.to_numpy(dtype=np.float64)
    _check_plausible(matrix, out["meter_id"], values.columns, path)
    slots = pd.DataFrame(matrix, columns=slot_columns(values.shape[1]))
    table = pd.concat([out, slots], axis=1)
    return ProfileFile(table, tuple(str(c) for c in values.columns), id_column)


def _file_row(path: Path, i: int) -> int:
    """How an error names data row ``i``: its line in a CSV file (the header is line 1), its
    0-based row in a Parquet file."""
    return i if path.suffix == ".parquet" else i + 2


def _dates(out: pd.DataFrame, path: Path) -> pd.Series:
    """The date column parsed; SourceError at the first value that is not a date."""
    dates = pd.to_datetime(out["date"], errors="coerce", format="mixed")
    bad = np.flatnonzero((dates.isna() & out["date"].notna()).to_numpy())
    if len(bad):
        i = int(bad[0])
        raise SourceError(
            f"date {out['date'].iloc[i]!r} is not a date",
            source=SOURCE,
            file=str(path),
            meter=str(out["meter_id"].iloc[i]),
            row=_file_row(path, i),
        )
    return dates


def _check_unique(out: pd.DataFrame, path: Path) -> None:
    """SourceError at the first meter and date given twice, naming both rows."""
    key = ["meter_id", "date"]
    dup = np.flatnonzero(out.duplicated(key, keep="first").to_numpy())
    if len(dup):
        i = int(dup[0])
        first = int(np.flatnonzero((out[key] == out[key].iloc[i]).all(axis=1).to_numpy())[0])
        day = out["date"].iloc[i]
        raise SourceError(
            f"two profiles of the meter for date {day.date() if pd.notna(day) else day}, rows "
            f"{_file_row(path, first)} and {_file_row(path, i)} (give each meter-day once)",
            source=SOURCE,
            file=str(path),
            meter=str(out["meter_id"].iloc[i]),
            row=_file_row(path, i),
        )


def _check_plausible(matrix: np.ndarray, ids: pd.Series, names: pd.Index, path: Path) -> None:
    """SourceError at the first slot value that is not finite or is absurdly large for the
    file (``meterflow.etl.plausible``)."""
    bad, reference = implausible(matrix.ravel())
    if bad.any():
        i, j = divmod(int(np.flatnonzero(bad)[0]), matrix.shape[1])
        raise SourceError(
            f"slot {names[j]!r}: {describe(matrix[i, j], reference[0], 'the file')}",
            source=SOURCE,
            file=str(path),
            meter=str(ids.iloc[i]),
            row=_file_row(path, i),
        )


def _find_id_column(raw: pd.DataFrame, exclude: tuple[str, ...]) -> str:
    """``id`` or ``meter_id`` if present, else the first non-numeric column not in ``exclude``
    (the date and label columns), else ""."""
    for name in ID_NAMES:
        if name in raw.columns:
            return name
    text = [
        c for c in raw.columns if c not in exclude and not pd.api.types.is_numeric_dtype(raw[c])
    ]
    return str(text[0]) if text else ""


def _slot_values(values: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The slot columns, checked: none named like a label, numeric, at least two, complete."""
    labels = [c for c in values.columns if str(c).strip().lower() in LABEL_LIKE]
    if labels:
        raise SourceError(
            f"column {labels[0]!r} looks like a label, not a slot: pass label_column="
            f"{labels[0]} to score clusters against it (or rename it to use it as a slot)",
            source=SOURCE,
            file=str(path),
        )
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise SourceError(
            f"non-numeric slot column(s) {bad[:5]} (name id/date/label columns with "
            "id_column/date_column/label_column)",
            source=SOURCE,
            file=str(path),
        )
    if values.shape[1] < 2:
        raise SourceError("need at least 2 slot columns", source=SOURCE, file=str(path))
    nan_rows = np.flatnonzero(values.isna().any(axis=1).to_numpy())
    if len(nan_rows):
        raise SourceError(
            f"missing slot values in {len(nan_rows)} row(s)",
            source=SOURCE,
            file=str(path),
            row=_file_row(path, int(nan_rows[0])),
        )
    return values
