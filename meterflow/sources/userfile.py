"""Tables a user brings as a file: CSV, or Parquet by its suffix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meterflow.errors import SourceError

# column names that say "label", never a model input (unless the user names it as such)
LABEL_LIKE = ("label", "labels", "class", "classes", "target", "y", "category", "cluster", "group")


def read_user_table(path: Path, *, source: str, what: str) -> pd.DataFrame:
    """The file as a DataFrame; SourceError naming the ``source`` and file when it is missing
    or unreadable (``what`` names the kind of file in the message)."""
    if not path.is_file():
        raise SourceError(f"{what} does not exist", source=source, file=str(path))
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise SourceError(f"cannot read {what}: {e}", source=source, file=str(path)) from None
