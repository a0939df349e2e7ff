"""SQL historian ETL adapter: blocks of meters read, translated and cleaned by the shared cleaning.

The historian's distinct tags are grouped by meter into blocks (:func:`tag_blocks`); each block
is read (``sql_historian``: ADBC or SQLAlchemy, in chunks), translated (``sql_translate``) and
cleaned (``etl.blocks.clean_in_blocks``). What is decided over all blocks: the row count (an
empty selection is an error) and the historian time-zone check (:func:`check_historian_timezone`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from meterflow.defaults import BLOCK_METERS
from meterflow.domain import SOURCE_SQL
from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig, EtlResult
from meterflow.etl.blocks import BlockReadings, cut_blocks
from meterflow.etl.localtime import (
    Evidence,
    combine_evidence,
    describe_changes,
    dst_evidence,
    naive_local_changes,
    transitions,
    utc_changes,
    windows,
)
from meterflow.etl.memory import reuse_freed_memory
from meterflow.sources.contract import StoreLocations, etl_source
from meterflow.sources.fingerprint import sql_fingerprint
from meterflow.sources.formats import HISTORIAN_TABLE
from meterflow.sources.sql_engine import redact_url
from meterflow.sources.sql_historian import (
    ArrowReadError,
    Tags,
    adbc_target,
    historian_tags,
    read_historian,
    read_historian_arrow,
)
from meterflow.sources.sql_translate import HistorianTranslator, historian_locator
from meterflow.sources.times import TimeLike, utc_naive

log = logging.getLogger(__name__)


class HistorianSource:
    """The SQL historian at ``url`` as a :class:`~meterflow.sources.contract.Source`: intervals
    starting in [start, end) (UTC; None = unbounded), read through ADBC or SQLAlchemy
    (:func:`_translate_historian`) a block of tags at a time, as :func:`etl_sql` describes."""

    name = SOURCE_SQL
    title = "SQL historian"
    reference_source = None
    load_step = None

    def __init__(
        self,
        url: str | sa.URL,
        config: CleaningConfig,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        chunk_size: int = 200_000,
        table: str = HISTORIAN_TABLE,
        use_adbc: bool = True,
        historian_timezone: str = "UTC",
    ) -> None:
        self.url, self.config, self.table = url, config, table
        self.bounds = (start, end)
        self.use_adbc, self.zone = use_adbc, historian_timezone
        self.selection = {
            "start": _stored_time(start, historian_timezone),
            "end": _stored_time(end, historian_timezone),
            "chunk_size": chunk_size,
            "table": table,
            "raw_interval_min": config.raw_interval_min,
        }
        self.locate = historian_locator(table, config.raw_interval_min, historian_timezone)
        self.blocks: list[tuple[list[str], list[Tags]]] = []
        self.read = _ReadTotals()

    @classmethod
    def from_stores(cls, stores: StoreLocations, config: CleaningConfig) -> HistorianSource:
        return cls(stores.sql_url, config)

    @classmethod
    def fingerprint(cls, stores: StoreLocations) -> str:
        return sql_fingerprint(stores.sql_url)

    def meter_blocks(self, block_meters: int) -> list[list[str]]:
        self.blocks = tag_blocks(historian_tags(self.url, self.table), block_meters)
        self.read = _ReadTotals()
        return [ids for ids, _ in self.blocks]

    def read_block(self, index: int, meter_ids: list[str], meters: pd.DataFrame) -> BlockReadings:
        t0 = time.perf_counter()
        tr, arrow = _translate_historian(
            self.url, self.blocks[index][1], self.selection, use_adbc=self.use_adbc, zone=self.zone
        )
        evidence = historian_evidence(tr, self.config.timezone)
        self.read.add(tr, arrow, evidence, time.perf_counter() - t0)
        readings, quarantine = tr.readings()
        return BlockReadings(readings, quarantine, self.locate, end_stamped=True)

    def finish(self, result: EtlResult) -> EtlResult:
        if self.read.rows == 0:
            raise _empty_selection(self.url, self.table, *self.bounds)
        evidence = combine_evidence(self.read.evidence)
        check_historian_timezone(evidence, self.zone, self.config.timezone)
        return self.read.finish(result)


@reuse_freed_memory()  # hundreds of large temporary arrays: no page fault storm
def etl_sql(
    url: str | sa.URL,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    start: TimeLike = None,
    end: TimeLike = None,
    chunk_size: int = 200_000,
    block_meters: int = BLOCK_METERS,
    table: str = HISTORIAN_TABLE,
    use_adbc: bool = True,
    historian_timezone: str = "UTC",
) -> EtlResult:
    """ETL of the SQL historian at ``url`` for intervals starting in [start, end) (UTC; None =
    unbounded), ``block_meters`` meters at a time (``etl.blocks``): the historian's distinct
    tags are listed (:func:`historian_tags`), grouped by meter, and each block of meters is
    read (``tagname IN (...)``, in chunks), translated, cleaned and freed before the next;
    rows without a tag (or with a blank one) go with the first block. The merged result is the
    same for any ``block_meters``.

    SQLite and PostgreSQL are read through ADBC (Arrow) unless ``use_adbc`` is False or ADBC
    cannot serve them; every other URL through SQLAlchemy (same rows, same result).
    ``historian_timezone``: the zone of the historian's naive timestamps (see
    :func:`check_historian_timezone`, decided on the tags of every block; a local zone is
    converted to UTC with ``etl.localtime.localise``, the bounds are compared with the stored
    wall-clock times). Raises SourceError for an unreachable database, a missing table/column,
    an empty selection, or timestamps that contradict ``historian_timezone``.
    """
    source = HistorianSource(
        url, config, start=start, end=end, chunk_size=chunk_size, table=table,
        use_adbc=use_adbc, historian_timezone=historian_timezone,
    )  # fmt: skip
    return etl_source(source, meters=meters, block_meters=block_meters)


def _empty_selection(url: str | sa.URL, table: str, start: TimeLike, end: TimeLike) -> SourceError:
    """The error of a historian read that found no rows."""
    return SourceError(
        f"historian table {table!r} has no rows for intervals in [{start}, {end}) "
        f"[{redact_url(url)}]",
        source=SOURCE_SQL,
    )


def tag_blocks(tags: Sequence[str | None], block_meters: int) -> list[tuple[list[str], list[Tags]]]:
    """Blocks of ``block_meters`` meters (``etl.blocks.cut_blocks``; a tag's meter is the text
    before its first dot, as the translation reads it): per block its meter ids and the tag
    selections to read, in order. The first block first reads the rows of no meter: NULL and
    blank tags (so their row numbers do not depend on the blocks); at least one block."""
    by_meter: dict[str, list[str]] = {}
    keyless: list[str | None] = []
    for tag in tags:
        if tag is not None and str(tag).strip():
            by_meter.setdefault(str(tag).partition(".")[0], []).append(tag)
        else:
            keyless.append(tag)
    blocks = cut_blocks(by_meter, block_meters) or [[]]
    out = [(ids, [[t for m in ids for t in by_meter[m]]]) for ids in blocks]
    if keyless:
        out[0][1].insert(0, keyless)
    return out


@dataclass
class _ReadTotals:
    """What the block reads add up to: rows, uncertain rows, whether every block was read
    through ADBC, the time-zone evidence of each block and the seconds spent reading."""

    rows: int = 0
    uncertain: int = 0
    arrow: bool = True
    evidence: list[list[Evidence]] = field(default_factory=list)
    seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def add(self, tr: HistorianTranslator, arrow: bool, ev: list[Evidence], sec: float) -> None:
        self.rows += tr.rows
        self.uncertain += tr.uncertain
        self.arrow &= arrow
        self.evidence.append(ev)
        self.seconds += sec

    def finish(self, result: EtlResult) -> EtlResult:
        """``result`` with the read metrics (cleaning seconds summed over the blocks)."""
        result.metrics.update(
            rows_read=float(self.rows),
            readings_uncertain=float(self.uncertain),
            read_arrow=float(self.arrow),
            read_seconds=self.seconds,
            clean_seconds=time.perf_counter() - self.started - self.seconds,
        )
        return result


def _stored_time(value: TimeLike, zone: str) -> pd.Timestamp | None:
    """A UTC bound as the historian stores times: naive wall-clock time in ``zone`` (a bound in
    the repeated autumn hour selects both occurrences of the wall-clock times after it)."""
    ts = utc_naive(value)
    if ts is None or zone == "UTC":
        return ts
    return ts.tz_localize("UTC").tz_convert(zone).tz_localize(None)


def historian_evidence(tr: HistorianTranslator, local_zone: str) -> list[Evidence]:
    """The DST signature (``etl.localtime.dst_evidence``) of the rows ``tr`` translated, at the
    changes of the zone to check: ``local_zone`` when the historian is declared UTC, else the
    declared zone."""
    zone = local_zone if tr.timezone == "UTC" else tr.timezone
    span = tr.stamp_range()
    trans = transitions(zone, *span) if span is not None and zone != "UTC" else []
    return dst_evidence(*tr.stamps_in(windows(trans)), trans) if trans else []


def check_historian_timezone(evidence: list[Evidence], declared: str, local_zone: str) -> None:
    """SourceError (one line) when the stored stamps contradict the historian's ``declared``
    zone (``evidence``: :func:`historian_evidence` of every tag): declared UTC but most tags
    repeat the autumn hour and skip the spring hour of ``local_zone`` on its change days (naive
    local time), or declared local but most tags have rows at the wall-clock times that zone
    skips or single rows in the hour it repeats (UTC). A change day counts only where the days
    around it do not look the same (``etl.localtime``)."""
    zone = local_zone if declared == "UTC" else declared
    if declared == "UTC" and (changes := naive_local_changes(evidence)):
        raise SourceError(
            f"the historian timestamps look like naive local time in {zone}, not UTC: the DST "
            f"hour is {describe_changes(changes, local=True, unit='tags')}; declare it with "
            f"historian_timezone={zone} (etl_sql and main entry points)",
            source=SOURCE_SQL,
        )
    if declared != "UTC" and (changes := utc_changes(evidence)):
        raise SourceError(
            f"historian_timezone={zone} but the historian timestamps do not look like local "
            f"time there: the DST hour is {describe_changes(changes, local=False, unit='tags')}; "
            "are they UTC (historian_timezone=UTC)?",
            source=SOURCE_SQL,
        )


def _translate_historian(
    url: str | sa.URL,
    selections: list[Tags],
    selection: dict[str, Any],
    *,
    use_adbc: bool,
    zone: str = "UTC",
) -> tuple[HistorianTranslator, bool]:
    """The tag ``selections`` (each with the keyword arguments of the two reads,
    ``selection``) translated into one translator, and whether through ADBC: SQLite and
    PostgreSQL through ADBC unless ``use_adbc`` is False; a failed ADBC read starts over
    through SQLAlchemy, as does every other URL."""
    new_translator = functools.partial(
        HistorianTranslator, selection["raw_interval_min"], selection["table"], zone
    )
    tr = new_translator()
    arrow = use_adbc and adbc_target(url) is not None
    if arrow:
        try:
            for tags in selections:
                for batch in read_historian_arrow(url, **selection, tags=tags):
                    tr.add_arrow(batch)
        except ArrowReadError as exc:
            log.warning("sql: the Arrow read (ADBC) failed (%s); reading through SQLAlchemy", exc)
            arrow, tr = False, new_translator()
    if not arrow:
        for tags in selections:
            for rows in read_historian(url, **selection, tags=tags):
                tr.add(rows)
    log.debug("sql: %d historian rows read (%s)", tr.rows, "ADBC" if arrow else "SQLAlchemy")
    return tr, arrow
