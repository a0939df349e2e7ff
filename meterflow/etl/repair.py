"""Rules 1-5 of the shared cleaning (``etl.pipeline``): edge checks, coarse series, duplicates,
scale errors, outliers and gap filling, on readings sorted by (series, interval).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from meterflow.etl import gaps, outliers
from meterflow.etl.calendar import LocalCalendar
from meterflow.etl.cleaning_state import (
    KIND_INTERP,
    KIND_READING,
    KIND_SPREAD,
    CleanInput,
    Corrections,
    Entries,
    LiveReadings,
    QuarantineLog,
    SpreadFills,
)
from meterflow.etl.config import CleaningConfig
from meterflow.etl.duplicates import resolve_duplicates
from meterflow.etl.interval import coarse_series
from meterflow.etl.quarantine import Reason
from meterflow.etl.scale import detect_scale, empty_scale_report, reference_levels
from meterflow.schemas import Action

log = logging.getLogger(__name__)


def repair_readings(
    inp: CleanInput,
    config: CleaningConfig,
    cal: LocalCalendar,
    qlog: QuarantineLog,
    reference_profiles: pd.DataFrame | None,
) -> tuple[Entries, np.ndarray, Corrections]:
    """Rules 1-5: the kept readings with their gap fills, the registers each meter has readings
    of (after the edge checks), and the corrections made on the way."""
    live = _drop_failed_edge_checks(inp, config, cal, qlog)
    present_regs = (np.bincount(live.series, minlength=inp.n_series) > 0).reshape(-1, 2)
    _drop_coarse_series(live, inp.n_series, config, qlog)
    log.info("%s: %d readings, %d pass the edge checks", inp.source, len(inp.ts), len(live.pos))
    _drop_duplicates(live, qlog)
    scale_pos, scale_value, scale_report = _remove_scale_errors(
        live, inp, config, cal, reference_profiles
    )
    accumulated_pos = _drop_outliers(live, inp, config, qlog)
    spread = _spread_spans(live, config, cal, qlog)
    entries = _interpolate_short_gaps(_merge_spread_fills(live, spread), config, cal)
    corrections = Corrections(scale_pos, scale_value, scale_report, accumulated_pos, spread)
    return entries, present_regs, corrections


def _edge_checks(
    inp: CleanInput, off_grid: np.ndarray, config: CleaningConfig
) -> list[tuple[np.ndarray, Reason, str]]:
    """(failed mask, reason, detail) of each edge check, in the order they are applied."""
    tol = config.outlier_abs_tolerance_wh
    reg, e = inp.register, inp.energy
    return [
        (inp.meter < 0, Reason.UNKNOWN_METER, "meter not in the meters table"),
        (reg < 0, Reason.MALFORMED_ROW, "register is neither import nor export"),
        (~np.isfinite(e), Reason.MISSING_VALUE, "energy is missing or not finite"),
        (off_grid != 0, Reason.OFF_GRID, f"not on the {config.raw_interval_min}-min grid"),
        (inp.span < 1, Reason.MALFORMED_ROW, "span below one interval"),
        (
            ((reg == 0) & (e < -tol)) | ((reg == 1) & (e > tol)),
            Reason.NEGATIVE_ENERGY,
            "import below zero or export above zero",
        ),
    ]


def _drop_failed_edge_checks(
    inp: CleanInput, config: CleaningConfig, cal: LocalCalendar, qlog: QuarantineLog
) -> LiveReadings:
    """Rule 1: drop readings failing an edge check (the first one failed is the reason); the
    others sorted by (series, k)."""
    k_all, off_grid = np.divmod(inp.ts, cal.raw_ns)  # interval index and the grid check
    bad = np.zeros(len(inp.ts), dtype=bool)
    for mask, reason, detail in _edge_checks(inp, off_grid, config):
        hit = mask & ~bad
        qlog.add(np.flatnonzero(hit), Action.DROPPED, reason, detail)
        bad |= hit
    del off_grid
    series_all = inp.meter * 2 + inp.register
    if bad.any():
        pos = np.flatnonzero(~bad)
        pos, s, k = _series_order(pos, series_all[pos], k_all[pos], inp.n_series)
    else:
        pos, s, k = _series_order(None, series_all, k_all, inp.n_series)
    return LiveReadings(pos, s, k, inp.energy[pos], inp.span[pos])


def _drop_coarse_series(
    live: LiveReadings, n_series: int, config: CleaningConfig, qlog: QuarantineLog
) -> None:
    """Drop the readings of series stepping coarser than the raw interval."""
    coarse = coarse_series(live.series, live.k, live.span, n_series)[live.series]
    if not coarse.any():
        return
    step_min = (coarse[coarse > 0] * config.raw_interval_min).astype(str)
    detail = np.char.add(
        np.char.add("readings every ", step_min),
        f" min, coarser than the {config.raw_interval_min}-min raw interval",
    ).astype(object)
    qlog.add(live.pos[coarse > 0], Action.DROPPED, Reason.COARSE_INTERVAL, detail)
    live.keep(coarse == 0)


def _drop_duplicates(live: LiveReadings, qlog: QuarantineLog) -> None:
    """Rule 2: drop exact copies and the losers of conflicting duplicates."""
    exact, conflicting, chosen = resolve_duplicates(live.series, live.k, live.energy)
    qlog.add(live.pos[exact], Action.DROPPED, Reason.DUPLICATE, "exact copy of another reading")
    kept_value = np.char.add("kept value ", live.energy[chosen].round(3).astype(str))
    qlog.add(
        live.pos[conflicting],
        Action.DROPPED,
        Reason.CONFLICTING_DUPLICATE,
        kept_value.astype(object),
    )
    if len(exact) or len(conflicting):
        keep = np.ones(len(live.pos), dtype=bool)
        keep[exact] = keep[conflicting] = False
        live.keep(keep)


def _remove_scale_errors(
    live: LiveReadings,
    inp: CleanInput,
    config: CleaningConfig,
    cal: LocalCalendar,
    reference_profiles: pd.DataFrame | None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Rule 3 (optional): divide values by their detected error factor; return the corrected
    input rows, their new values and the scale report."""
    if not (config.detect_scale and len(live.pos)):
        return np.array([], np.int64), np.array([]), empty_scale_report()
    ref = reference_levels(reference_profiles, inp.meter_ids, config)
    factor, report = detect_scale(
        live.series // 2,
        live.k,
        live.energy,
        live.span,
        inp.import_kw,
        inp.meter_ids,
        cal,
        config,
        ref,
    )
    fixed = factor != 1.0
    live.energy[fixed] = live.energy[fixed] / factor[fixed]
    return live.pos[fixed], live.energy[fixed], report


def _drop_outliers(
    live: LiveReadings, inp: CleanInput, config: CleaningConfig, qlog: QuarantineLog
) -> np.ndarray:
    """Rule 4: drop readings beyond their series' bound; readings whose energy accumulated over
    the preceding gap take the gap into their span. Returns those readings' input rows."""
    tol = config.outlier_abs_tolerance_wh
    raw_h = config.raw_interval_min / 60
    # the bound of each series (import: contractual power, export: production), then gathered
    per_kw = np.column_stack([inp.import_kw, inp.export_kw]).ravel()
    bound = (per_kw * raw_h * 1000 * (1 + config.outlier_tolerance))[live.series]
    out, acc, gap_before = outliers.classify_outliers(
        live.series, live.k, live.span, live.energy, bound, tol
    )
    beyond = (bound[out] * live.span[out] + tol).round(1).astype(str)
    detail = np.char.add("beyond bound ", beyond).astype(object)
    qlog.add(live.pos[out], Action.DROPPED, Reason.OUTLIER, detail)
    if acc.any():
        live.k = np.where(acc, live.k - gap_before, live.k)
        live.span = np.where(acc, live.span + gap_before, live.span)
    accumulated_pos = live.pos[acc]
    if out.any():
        live.keep(~out)
    return accumulated_pos


def _spread_spans(
    live: LiveReadings, config: CleaningConfig, cal: LocalCalendar, qlog: QuarantineLog
) -> SpreadFills:
    """Rule 5a: spread readings spanning an allowed gap over its intervals (the reading keeps
    the last one); drop those spanning a longer gap."""
    multi = np.flatnonzero(live.span > 1)
    allowed = gaps.gap_allowed(live.k[multi], live.span[multi] - 1, config, cal)
    long_rows = multi[~allowed]
    detail = np.char.add("energy spans intervals: ", live.span[long_rows].astype(str))
    qlog.add(live.pos[long_rows], Action.DROPPED, Reason.LONG_GAP, detail.astype(object))
    rows = multi[allowed]
    fills = gaps.spread_spans(live.series, live.k, live.span, live.energy, rows)
    new_value = live.energy[rows] / live.span[rows]
    spread_pos, fill_pos = live.pos[rows], live.pos[fills.parent]
    live.energy = live.energy.copy()
    live.energy[rows] = new_value
    live.k = live.k.copy()
    live.k[rows] += live.span[rows] - 1  # the reading keeps the last interval of its span
    stamp_ns = live.k[rows] * cal.raw_ns
    if len(long_rows):
        keep = np.ones(len(live.pos), dtype=bool)
        keep[long_rows] = False
        live.keep(keep)
    return SpreadFills(fills, fill_pos, spread_pos, new_value, stamp_ns)


def _merge_spread_fills(live: LiveReadings, spread: SpreadFills) -> Entries:
    """The kept readings and the spread fills as one sequence sorted by (series, k)."""
    kind = np.full(len(live.series), KIND_READING, np.int8)
    s, k, e, pos = live.series, live.k, live.energy, live.pos
    fills = spread.fills
    if len(fills.k):
        s = np.concatenate([s, fills.series])
        k = np.concatenate([k, fills.k])
        e = np.concatenate([e, fills.energy_wh])
        kind = np.concatenate([kind, np.full(len(fills.k), KIND_SPREAD, np.int8)])
        pos = np.concatenate([pos, spread.fill_pos])
        order = np.lexsort((k, s))
        s, k, e, kind, pos = s[order], k[order], e[order], kind[order], pos[order]
    return Entries(s, k, e, kind, pos, np.zeros(len(k), np.int64))


def _interpolate_short_gaps(
    entries: Entries, config: CleaningConfig, cal: LocalCalendar
) -> Entries:
    """Rule 5b: append linear interpolations over the short gaps between entries."""
    interp, _ = gaps.interpolate_gaps(entries.series, entries.k, entries.energy, config, cal)
    gap_len = np.bincount(interp.parent, minlength=len(entries.k))[interp.parent]
    return Entries(
        series=np.concatenate([entries.series, interp.series]),
        k=np.concatenate([entries.k, interp.k]),
        energy=np.concatenate([entries.energy, interp.energy_wh]),
        kind=np.concatenate([entries.kind, np.full(len(interp.k), KIND_INTERP, np.int8)]),
        pos=np.concatenate([entries.pos, entries.pos[interp.parent]]),
        gap_len=np.concatenate([entries.gap_len, gap_len]),
    )


def _series_order(
    pos: np.ndarray | None, series: np.ndarray, k: np.ndarray, n_series: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pos, series, k)`` ordered by (series, k), ties in input order (a stable sort of that
    key); ``pos`` None stands for ``arange(len(series))``.

    Readings usually arrive in time order per series (only interleaved across series): a stable
    sort by series alone, an O(n) radix sort on 16-bit codes, then gives the same permutation;
    otherwise the full key is sorted.
    """
    n = len(series)
    if n < 2:
        return (np.arange(n) if pos is None else pos), series, k
    if n_series <= 1 << 16:
        if (series[1:] >= series[:-1]).all():
            order, ss, ks = None, series, k
        else:
            order = np.argsort(series.astype(np.uint16), kind="stable")
            ss, ks = series[order], k[order]
        if ((ss[1:] != ss[:-1]) | (ks[1:] >= ks[:-1])).all():
            if order is None:
                return (np.arange(n) if pos is None else pos), ss, ks
            return (order if pos is None else pos[order]), ss, ks
    order = np.argsort(series * (1 << 34) + (k - k.min()), kind="stable")
    return (order if pos is None else pos[order]), series[order], k[order]
