"""Profile tables a user brings as a file (CSV or Parquet): one row per profile, an id column,
optional date and label columns, one numeric column per slot, any number of slots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from meterflow.errors import SourceError
from meterflow.schemas import slot_columns
from meterflow.sources.userfile import read_user_table

SOURCE = "in_profiles"


def read_profile_file(
    path: Path, *, id_column: str, date_column: str = "", label_column: str = ""
) -> pd.DataFrame:
    """The file as meter_id, [date], [label], slot_00.. (float); SourceError naming the file
    (and the first bad row) when it cannot serve as a profile table."""
    raw = read_user_table(path, source=SOURCE, what="profile file")
    named = {id_column: "meter_id"}
    if date_column and date_column in raw.columns:
        named[date_column] = "date"
    if label_column:
        named[label_column] = "label"
    missing = [c for c in named if c not in raw.columns]
    if missing:
        raise SourceError(f"missing column(s) {missing}", source=SOURCE, file=str(path))
    values = _slot_values(raw.drop(columns=list(named)), path)
    out = raw[list(named)].rename(columns=named).reset_index(drop=True)
    out["meter_id"] = out["meter_id"].astype(str)
    if "date" in out.columns:
        out["date"] = pd.to_datetime(out["date"])
    slots = pd.DataFrame(values.to_numpy(dtype=np.float64), columns=slot_columns(values.shape[1]))
    return pd.concat([out, slots], axis=1)


def _slot_values(values: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The slot columns, checked: numeric, at least two, no missing value."""
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
        first = int(nan_rows[0])
        raise SourceError(
            f"missing slot values in {len(nan_rows)} row(s)",
            source=SOURCE,
            file=str(path),
            row=first + 2 if path.suffix != ".parquet" else first,
        )
    return values
