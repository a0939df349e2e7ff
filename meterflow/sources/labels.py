"""Labelled anomalies a user brings as a CSV file: ``meter_id, kind, start_utc, end_utc``
(exclusive end), optionally ``magnitude``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meterflow.errors import SourceError

LABEL_COLUMNS = ("meter_id", "kind", "start_utc", "end_utc")


def read_labels(path: Path) -> pd.DataFrame:
    """The label file with UTC times; SourceError naming the file and the first bad row."""
    if not path.is_file():
        raise SourceError("label file does not exist", source="labels", file=str(path))
    labels = pd.read_csv(path)
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise SourceError(f"missing column(s) {missing}", source="labels", file=str(path))
    for col in ("start_utc", "end_utc"):
        parsed = pd.to_datetime(labels[col], utc=True, errors="coerce")
        if parsed.isna().any():
            row = int(parsed.isna().to_numpy().argmax()) + 2
            raise SourceError(f"{col} is not a time", source="labels", file=str(path), row=row)
        labels[col] = parsed
    labels["meter_id"] = labels["meter_id"].astype(str)
    return labels
