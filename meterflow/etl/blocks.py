"""One source cleaned meters in blocks: a bounded working set, the outputs of one pass.

Every cleaning rule looks at one meter only: edge checks at each reading, duplicates and
interval detection per series (one register of one meter), scale detection per meter against
its contract and its own reference profiles, outliers against the meter's contractual power or
production, gap filling per series, complete days and the DST slots per meter-day. A source can
therefore be read and cleaned a block of meters at a time (``defaults.BLOCK_METERS``, passed in
by the adapters), each block's raw rows freed before the next is read, and the block outputs
combined (:func:`~meterflow.etl.result.merge_results`) equal those of one pass over every meter.

What is not per meter is decided over all blocks by the adapters: the historian time-zone check
(most tags of the fleet, ``etl.localtime.combine_evidence``), the required fields of a documents
read (a field with a value in no document of any block), and the watermark (the newest read).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.errors import InputError
from meterflow.etl.config import CleaningConfig
from meterflow.etl.pipeline import clean_readings
from meterflow.etl.readings import Locator
from meterflow.etl.result import EtlResult, merge_results

log = logging.getLogger(__name__)


def cut_blocks(meter_ids: Iterable[str], block_meters: int) -> list[list[str]]:
    """The distinct ``meter_ids`` in sorted order, cut into consecutive blocks of at most
    ``block_meters``."""
    if block_meters < 1:
        raise InputError(f"block_meters must be >= 1, got {block_meters}")
    ids = sorted(set(meter_ids))
    return [ids[i : i + block_meters] for i in range(0, len(ids), block_meters)]


class BlockResults:
    """Collects the cleaned blocks of one source, logs one progress line per block and merges
    them (blocks must come in sorted meter order, as :func:`cut_blocks` gives them)."""

    def __init__(self, label: str, n_meters: int) -> None:
        self.label, self.n_meters = label, n_meters
        self.parts: list[EtlResult] = []
        self.done = 0
        self.started = time.perf_counter()

    def add(self, result: EtlResult, n_meters: int) -> None:
        """Keep one block's outputs (its raw rows are the caller's to free)."""
        self.parts.append(result)
        first, self.done = self.done + 1, self.done + n_meters
        log.info(
            "%s: meters %d-%d of %d cleaned, %.0f s",
            self.label,
            first,
            self.done,
            self.n_meters,
            time.perf_counter() - self.started,
        )

    def merged(self) -> EtlResult:
        """The combined outputs (see :func:`~meterflow.etl.result.merge_results`)."""
        return merge_results(self.parts)


class RowsByMeter:
    """The rows of a table (e.g. reference profiles) for one block of meters at a time: sorted
    by meter once, then each block's rows are a slice (blocks are ranges of sorted ids)."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table.sort_values("meter_id", kind="stable", ignore_index=True)
        self.ids = self.table["meter_id"].to_numpy(object)

    def rows(self, meter_ids: list[str]) -> pd.DataFrame:
        """The rows of ``meter_ids`` (a block of :func:`cut_blocks`, sorted)."""
        if not meter_ids:
            return self.table.iloc[:0]
        lo = np.searchsorted(self.ids, meter_ids[0], side="left")
        hi = np.searchsorted(self.ids, meter_ids[-1], side="right")
        part = self.table.iloc[lo:hi]
        return part[part["meter_id"].isin(meter_ids).to_numpy()]


@dataclass(frozen=True)
class BlockReadings:
    """What a source adapter read for one block of meters: the readings table
    (``etl.readings.make_readings``), the rows it quarantined itself at the edge (None: none),
    the store location of each reading (``locate``) and whether the store stamps interval ends
    (``end_stamped``, see :func:`~meterflow.etl.pipeline.clean_readings`)."""

    readings: pd.DataFrame
    quarantine: pd.DataFrame | None
    locate: Locator
    end_stamped: bool = False


ReadBlock = Callable[[int, list[str], pd.DataFrame], BlockReadings]
"""``(block index, meter ids, their rows of the meters table) -> BlockReadings``."""


def clean_in_blocks(
    blocks: Sequence[list[str]],
    read_block: ReadBlock,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    source: str,
    reference_profiles: pd.DataFrame | None = None,
) -> EtlResult:
    """Read -> clean -> accumulate, one block of meters at a time (``blocks`` in sorted meter
    order, as :func:`cut_blocks` gives them): each block is read by ``read_block``, cleaned
    against its own rows of ``meters`` (and of ``reference_profiles``, which anchor the scale
    detection) and released before the next; the merged result does not depend on the blocks."""
    contracts = RowsByMeter(meters)
    reference = None if reference_profiles is None else RowsByMeter(reference_profiles)
    done = BlockResults(f"etl_{source}", sum(len(ids) for ids in blocks))
    for index, ids in enumerate(blocks):
        block_meters = contracts.rows(ids)
        block = read_block(index, ids, block_meters)
        cleaned = clean_readings(
            block.readings,
            block_meters,
            config,
            source=source,
            adapter_quarantine=block.quarantine,
            reference_profiles=None if reference is None else reference.rows(ids),
            locate=block.locate,
            end_stamped=block.end_stamped,
        )
        del block  # the block's readings: freed before the next block is read
        done.add(cleaned, len(ids))
    return done.merged()
