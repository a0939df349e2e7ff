"""The source contract: what every data source adapter offers the ETL and the pipeline.

A source is read a block of meters at a time (``etl.blocks``): it names its meter blocks, reads
one block into readings with each value's store location (``etl.blocks.BlockReadings``, the
rows it cannot translate already quarantined with their reason and location), and checks or
adds what is decided over all blocks (``finish``). The shared loop
(``etl.blocks.clean_in_blocks``) cleans the blocks; :func:`etl_source` runs the whole ETL of
one source. Its class also says how to fingerprint its store for run reuse, which source's
profiles anchor its scale detection and which step loads it first. ``sources.registry`` lists
the sources, one line each.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol

import pandas as pd

from meterflow.defaults import BLOCK_METERS
from meterflow.etl import CleaningConfig, EtlResult
from meterflow.etl.blocks import BlockReadings, clean_in_blocks


class StoreLocations(Protocol):
    """Where the stores are (``settings.environment.Environment`` has these)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def sql_url(self) -> str: ...

    @property
    def exports_dir(self) -> Path: ...

    @property
    def mongo_database(self) -> str: ...

    def require_mongodb_uri(self) -> str: ...


class Source(Protocol):
    """One data source adapter (an instance: one read of its store)."""

    name: ClassVar[str]  # the readings/profiles ``source`` value, quarantine ``source``, etl_<name>
    title: ClassVar[str]  # the store in words, for messages
    reference_source: ClassVar[str | None]  # whose profiles anchor the scale detection
    load_step: ClassVar[str | None]  # the step that copies the store before the ETL, if any
    config: CleaningConfig  # how this source's readings are cleaned

    @classmethod
    def from_stores(cls, stores: StoreLocations, config: CleaningConfig) -> Source:
        """The source of everything in its store at ``stores``, with default options."""
        ...

    @classmethod
    def fingerprint(cls, stores: StoreLocations) -> str:
        """Cheap marks of the store's content: unchanged marks let a finished run be reused."""
        ...

    def meter_blocks(self, block_meters: int) -> list[list[str]]:
        """The meter ids to read, sorted, in blocks of at most ``block_meters``
        (``etl.blocks.cut_blocks``); values without a meter go with the first block."""
        ...

    def read_block(self, index: int, meter_ids: list[str], meters: pd.DataFrame) -> BlockReadings:
        """The readings of block ``index`` (``meters``: its rows of the meters table)."""
        ...

    def finish(self, result: EtlResult) -> EtlResult:
        """The merged result with what is decided over all blocks (checks, metrics)."""
        ...


def etl_source(
    source: Source,
    *,
    meters: pd.DataFrame,
    reference_profiles: pd.DataFrame | None = None,
    block_meters: int = BLOCK_METERS,
) -> EtlResult:
    """The ETL of one source: its blocks read and cleaned with its ``config``
    (``etl.blocks.clean_in_blocks``), then finished by the source; the result is the same for
    any ``block_meters``."""
    result = clean_in_blocks(
        source.meter_blocks(block_meters),
        source.read_block,
        meters=meters,
        config=source.config,
        source=source.name,
        reference_profiles=reference_profiles,
    )
    return source.finish(result)
