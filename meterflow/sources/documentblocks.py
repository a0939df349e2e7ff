"""A documents table (``load_newmongo``'s ``documents``) handed out a block of meters at a time.

The ETL of MongoDB documents cleans blocks of meters (``etl.blocks``); these sources give it the
documents of one block with their positions in the whole table (a document without ``_id`` is
named by its position): :class:`FrameDocuments` from a table in memory, :class:`ParquetDocuments`
from the Parquet file itself, reading only the row groups that hold the block's documents (one
meter column is read whole; the rest stays on disk). Meters are the normalised meter ids
(``etl.documents``: an integer id is read as text); documents without one go with the first
block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meterflow.etl.documents import meter_ids_of, read_times_of


class FrameDocuments:
    """A documents table in memory (raw or normalised), by blocks of meters."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.attrs = frame, dict(frame.attrs)
        self.meter = meter_ids_of(frame)

    def meter_ids(self) -> list[str]:
        """The distinct (normalised) meter ids."""
        return list(self.meter.dropna().unique())

    def any_read_time(self) -> bool:
        """Whether some document has a read time once normalised."""
        return bool(pd.notna(read_times_of(self.frame)).any())

    def ids_among(self, ids: set[str]) -> set[str]:
        """Which of ``ids`` are the ``_id`` (as text) of a document."""
        if "_id" not in self.frame or not ids:
            return set()
        return set(self.frame["_id"].map(str)) & ids

    def block(self, meter_ids: list[str], keyless: bool) -> tuple[pd.DataFrame, np.ndarray]:
        """The documents of ``meter_ids`` (and with ``keyless`` those without a meter id), as
        stored, and their positions in the table, in table order."""
        mask = self.meter.isin(meter_ids).to_numpy()
        if keyless:
            mask = mask | self.meter.isna().to_numpy()
        pos = np.flatnonzero(mask)
        return self.frame.iloc[pos].reset_index(drop=True), pos


class ParquetDocuments:
    """A documents table written as Parquet (normalised, as
    ``load_newmongo`` logs it): the meter column is read once; a block reads the row groups
    holding its documents (few when the table is sorted by meter) and keeps those rows."""

    def __init__(self, path: str | Path) -> None:
        self.file = pq.ParquetFile(path)
        self.attrs: dict = {}
        self.meter = self.file.read(columns=["meter_id"]).column("meter_id")
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.starts = np.cumsum([0, *sizes])

    def meter_ids(self) -> list[str]:
        return [str(m) for m in pc.unique(self.meter).drop_null().to_pylist()]

    def any_read_time(self) -> bool:
        ts = self.file.read(columns=["ts"]).column("ts")
        return ts.null_count < len(ts)

    def ids_among(self, ids: set[str]) -> set[str]:
        if "_id" not in self.file.schema_arrow.names or not ids:
            return set()
        wanted, found = pa.array(sorted(ids), pa.string()), set()
        for g in range(self.file.num_row_groups):
            col = self.file.read_row_group(g, columns=["_id"]).column("_id").cast(pa.string())
            found.update(col.filter(pc.is_in(col, value_set=wanted)).to_pylist())
        return found

    def block(self, meter_ids: list[str], keyless: bool) -> tuple[pd.DataFrame, np.ndarray]:
        hit = pc.is_in(self.meter, value_set=pa.array(meter_ids, pa.string()))
        if keyless:
            hit = pc.or_(hit, pc.is_null(self.meter))
        pos = np.flatnonzero(pc.fill_null(hit, False).to_numpy(zero_copy_only=False))
        group = np.searchsorted(self.starts, pos, side="right") - 1
        parts = [
            self.file.read_row_group(int(g)).take(pa.array(pos[group == g] - self.starts[g]))
            for g in np.unique(group)
        ]
        table = pa.concat_tables(parts) if parts else self.file.schema_arrow.empty_table()
        return table.to_pandas(), pos


DocumentBlocks = FrameDocuments | ParquetDocuments
