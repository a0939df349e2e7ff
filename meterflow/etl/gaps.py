"""Gap filling that conserves energy.

Two cases, both vectorised over all series at once (arrays sorted by series, then interval):

- A reading that covers several intervals (``span`` > 1: a register difference across missing
  documents, or energy accumulated over a gap) holds the exact energy of the whole span. It is
  spread uniformly over the span, i.e. the cumulative register is interpolated linearly and
  differenced: the energy is conserved exactly.
- Plain missing intervals between two readings are filled by linear interpolation between the
  neighbouring readings' interval energies (the estimate of the missing cumulative increase).

Either is done only when the gap is short: at most ``max_gap_min`` minutes, or
``night_max_gap_min`` when the whole gap lies in the local night window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meterflow.etl.calendar import LocalCalendar
from meterflow.etl.config import CleaningConfig


@dataclass(frozen=True)
class Fills:
    """Intervals created by gap filling: positions refer to the readings they came from."""

    series: np.ndarray  # series code of each filled interval
    k: np.ndarray  # interval index
    energy_wh: np.ndarray  # filled value
    parent: np.ndarray  # reading whose span was spread, or the reading after the gap


def gap_allowed(
    gap_start_k: np.ndarray, gap_len: np.ndarray, config: CleaningConfig, cal: LocalCalendar
) -> np.ndarray:
    """Whether gaps of ``gap_len`` intervals starting at ``gap_start_k`` may be filled."""
    minutes = gap_len * config.raw_interval_min
    ok = minutes <= config.max_gap_min
    window = ((config.night_end_hour - config.night_start_hour) % 24) * 60
    if window and config.night_max_gap_min > config.max_gap_min:
        cand = ~ok & (minutes <= config.night_max_gap_min)
        if cand.any():
            _, tod = cal.day_and_minute(gap_start_k[cand])
            shifted = (tod - config.night_start_hour * 60) % 1440
            ok[cand] = (shifted < window) & (shifted + minutes[cand] <= window)
    return ok


def spread_spans(
    series: np.ndarray, k: np.ndarray, span: np.ndarray, energy_wh: np.ndarray, rows: np.ndarray
) -> Fills:
    """Split the readings ``rows`` (span > 1) into equal parts; the last interval of the span
    stays with the reading itself (new value ``energy/span``), the earlier ones are returned as
    fills. The caller moves the reading to ``k + span - 1``."""
    sp = span[rows].astype(np.int64)
    per = energy_wh[rows] / sp
    extra = sp - 1
    parent = np.repeat(rows, extra)
    offset = np.arange(extra.sum()) - np.repeat(np.cumsum(extra) - extra, extra)
    return Fills(series[parent], k[parent] + offset, np.repeat(per, extra), parent)


def interpolate_gaps(
    series: np.ndarray,
    k: np.ndarray,
    energy_wh: np.ndarray,
    config: CleaningConfig,
    cal: LocalCalendar,
) -> tuple[Fills, np.ndarray]:
    """Fill short gaps between consecutive single-interval readings (sorted, one per interval).

    Returns the fills and the readings (positions) that follow a gap too long to fill.
    """
    empty = Fills(*(np.array([], dtype=t) for t in (np.int64, np.int64, float, np.int64)))
    if len(k) < 2:
        return empty, np.array([], dtype=np.int64)
    nxt = np.flatnonzero((series[1:] == series[:-1]) & (k[1:] - k[:-1] > 1)) + 1
    gap_len = k[nxt] - k[nxt - 1] - 1
    ok = gap_allowed(k[nxt - 1] + 1, gap_len, config, cal)
    long_after = nxt[~ok]
    nxt, gap_len = nxt[ok], gap_len[ok]
    if len(nxt) == 0:
        return empty, long_after
    parent = np.repeat(nxt, gap_len)
    j = np.arange(gap_len.sum()) - np.repeat(np.cumsum(gap_len) - gap_len, gap_len) + 1
    a, b = energy_wh[parent - 1], energy_wh[parent]
    frac = j / np.repeat(gap_len + 1, gap_len)
    return Fills(series[parent], k[parent - 1] + j, a + (b - a) * frac, parent), long_after
