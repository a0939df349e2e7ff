"""The state the shared cleaning (``etl.pipeline``) passes between its stages.

Arrays indexed by the input readings (``pos``), by the readings still in play, by the kept
entries (readings and gap fills) or by meter-day; the quarantine log of index arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.etl import gaps
from meterflow.etl.profiles import WallClockDays
from meterflow.etl.quarantine import Reason
from meterflow.etl.readings import Locator
from meterflow.schemas import Action

KIND_READING, KIND_SPREAD, KIND_INTERP = 0, 1, 2


class QuarantineLog:
    """Collects quarantine entries as index arrays into the input readings."""

    def __init__(self) -> None:
        self.entries: list[tuple] = []

    def add(
        self,
        pos: np.ndarray,
        action: Action,
        reason: Reason,
        detail: np.ndarray | str,
        new_value: np.ndarray | float = np.nan,
        stamp_ns: np.ndarray | None = None,
    ) -> None:
        """Record readings ``pos``; ``stamp_ns`` overrides their timestamps (UTC ns)."""
        if len(pos):
            nv = np.broadcast_to(np.asarray(new_value, dtype=float), len(pos))
            entry = (np.asarray(pos, np.int64), action, reason, detail, nv, stamp_ns)
            self.entries.append(entry)

    def dropped(self) -> np.ndarray:
        """Input rows of every ``dropped`` entry."""
        parts = [e[0] for e in self.entries if e[1] == Action.DROPPED]
        return np.concatenate(parts) if parts else np.array([], dtype=np.int64)


@dataclass(frozen=True)
class CleanInput:
    """The readings of one source as arrays in input row order, and their meters."""

    readings: pd.DataFrame
    source: str
    locate: Locator
    meter_ids: pd.Index  # meter code -> id
    meter: np.ndarray  # meter code (-1: not in the meters table)
    register: np.ndarray  # register code (0 import, 1 export, -1 neither)
    ts: np.ndarray  # UTC ns
    energy: np.ndarray  # Wh as read
    span: np.ndarray  # raw intervals covered
    context: np.ndarray  # re-read for continuity only (not counted)
    import_kw: np.ndarray  # contractual power per meter code
    export_kw: np.ndarray  # production per meter code

    @property
    def n_series(self) -> int:
        """Number of (meter, register) series codes: ``meter * 2 + register``."""
        return 2 * len(self.meter_ids)


@dataclass
class LiveReadings:
    """Readings still in play, sorted by (series, k); arrays indexed alike."""

    pos: np.ndarray  # input row
    series: np.ndarray  # meter code * 2 + register code
    k: np.ndarray  # raw interval index (UTC)
    energy: np.ndarray  # Wh, corrected along the stages
    span: np.ndarray  # raw intervals covered

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the readings where ``mask`` is true."""
        self.pos, self.series, self.k = self.pos[mask], self.series[mask], self.k[mask]
        self.energy, self.span = self.energy[mask], self.span[mask]


@dataclass(frozen=True)
class SpreadFills:
    """Readings spanning several intervals spread over them (allowed gaps only)."""

    fills: gaps.Fills  # the earlier intervals of each span (``parent``: index into LiveReadings)
    fill_pos: np.ndarray  # input row of each fill's reading
    pos: np.ndarray  # input rows of the spread readings
    new_value: np.ndarray  # their share (they keep the last interval of the span)
    stamp_ns: np.ndarray  # UTC start of that last interval


@dataclass(frozen=True)
class Corrections:
    """Corrections of readings, recorded once it is known which readings are kept."""

    scale_pos: np.ndarray
    scale_value: np.ndarray
    scale_report: pd.DataFrame
    accumulated_pos: np.ndarray  # readings whose energy accumulated over the preceding gap
    spread: SpreadFills


@dataclass(frozen=True)
class Entries:
    """Kept readings and gap fills: sorted by (series, k), interpolated fills appended last."""

    series: np.ndarray
    k: np.ndarray
    energy: np.ndarray
    kind: np.ndarray  # KIND_READING, KIND_SPREAD or KIND_INTERP
    pos: np.ndarray  # input row (of the reading for a fill: spread or after the gap)
    gap_len: np.ndarray  # interpolated fills: length of their gap; 0 otherwise


@dataclass(frozen=True)
class MeterDays:
    """Meter-days of the entries and whether they are complete."""

    wall_slot: np.ndarray  # raw wall-clock slot of each entry
    entry_md: np.ndarray  # meter-day of each entry
    entry_ok: np.ndarray  # each entry's meter-day is complete
    md_meter: np.ndarray  # meter code of each meter-day
    md_day: np.ndarray  # local day (since the epoch) of each meter-day
    md_complete: np.ndarray


@dataclass(frozen=True)
class CleanOutput:
    """Profiles of the complete meter-days and what was done to shape them."""

    profiles: pd.DataFrame
    wall: WallClockDays
    sel: np.ndarray | None  # entries in the profiles (None: all of them)
    ok_md: np.ndarray  # meter-days in the profiles, in row order
