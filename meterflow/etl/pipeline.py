"""The shared cleaning: readings of one source to daily profiles, nothing lost.

Order of the rules (each on arrays sorted by meter, register and interval):

1. edge checks: unknown meter, missing value, off-grid timestamp, wrong sign -> dropped
2. duplicates: exact copies dropped; conflicting values resolved against the neighbours
3. scale detection (optional): per meter and period, values divided by the error factor
4. outliers beyond contractual power (import) / production (export) for the interval length,
   accounting for the gap before the reading (energy accumulated over it is spread instead)
5. gap filling: spans spread, short gaps interpolated (night rule); longer ones stay missing
6. complete local days only (every register, every interval); the rest dropped as incomplete
7. DST-aware wall-clock slots, resampling to the output resolution, pivot to meter-days

Counting: a *reading* is one row of the readings table (one register value of one interval)
plus every record the source adapter quarantined. Each reading is either kept (its value is
in a profile, possibly corrected) or dropped with exactly one quarantine row (action
``dropped``), so ``readings_in = readings_kept + readings_quarantined``. Corrections and fills
are listed too but counted separately (``readings_corrected``, ``readings_filled``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.errors import MeterflowError
from meterflow.etl import gaps, outliers
from meterflow.etl.calendar import LocalCalendar
from meterflow.etl.config import CleaningConfig
from meterflow.etl.duplicates import resolve_duplicates
from meterflow.etl.interval import aggregate_fine_readings, coarse_series
from meterflow.etl.profiles import (
    WallClockDays,
    empty_profiles,
    pivot_profiles,
    wall_clock_matrix,
)
from meterflow.etl.quality import quality_table
from meterflow.etl.quarantine import Reason, concat_quarantine, quarantine_frame
from meterflow.etl.readings import REGISTERS, Locator, codes_in, row_locator
from meterflow.etl.resample import resample_values
from meterflow.etl.result import EtlResult, summarize_corrections
from meterflow.etl.scale import detect_scale, empty_scale_report, reference_levels
from meterflow.schemas import (
    METERS,
    READINGS,
    Action,
    validate_profiles,
)

log = logging.getLogger(__name__)

_KIND_READING, _KIND_SPREAD, _KIND_INTERP = 0, 1, 2
_LOW32 = (1 << 32) - 1


class _Log:
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
class _Input:
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
class _Live:
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
class _Spread:
    """Readings spanning several intervals spread over them (allowed gaps only)."""

    fills: gaps.Fills  # the earlier intervals of each span (``parent``: index into _Live)
    fill_pos: np.ndarray  # input row of each fill's reading
    pos: np.ndarray  # input rows of the spread readings
    new_value: np.ndarray  # their share (they keep the last interval of the span)
    stamp_ns: np.ndarray  # UTC start of that last interval


@dataclass(frozen=True)
class _Corrections:
    """Corrections of readings, recorded once it is known which readings are kept."""

    scale_pos: np.ndarray
    scale_value: np.ndarray
    scale_report: pd.DataFrame
    accumulated_pos: np.ndarray  # readings whose energy accumulated over the preceding gap
    spread: _Spread


@dataclass(frozen=True)
class _Entries:
    """Kept readings and gap fills: sorted by (series, k), interpolated fills appended last."""

    series: np.ndarray
    k: np.ndarray
    energy: np.ndarray
    kind: np.ndarray  # _KIND_READING, _KIND_SPREAD or _KIND_INTERP
    pos: np.ndarray  # input row (of the reading for a fill: spread or after the gap)
    gap_len: np.ndarray  # interpolated fills: length of their gap; 0 otherwise


@dataclass(frozen=True)
class _Days:
    """Meter-days of the entries and whether they are complete."""

    wall_slot: np.ndarray  # raw wall-clock slot of each entry
    entry_md: np.ndarray  # meter-day of each entry
    entry_ok: np.ndarray  # each entry's meter-day is complete
    md_meter: np.ndarray  # meter code of each meter-day
    md_day: np.ndarray  # local day (since the epoch) of each meter-day
    md_complete: np.ndarray


@dataclass(frozen=True)
class _Output:
    """Profiles of the complete meter-days and what was done to shape them."""

    profiles: pd.DataFrame
    wall: WallClockDays
    sel: np.ndarray | None  # entries in the profiles (None: all of them)
    ok_md: np.ndarray  # meter-days in the profiles, in row order


def clean_readings(
    readings: pd.DataFrame,
    meters: pd.DataFrame,
    config: CleaningConfig,
    *,
    source: str,
    adapter_quarantine: pd.DataFrame | None = None,
    reference_profiles: pd.DataFrame | None = None,
    locate: Locator | None = None,
    end_stamped: bool = False,
) -> EtlResult:
    """Clean one source's readings (any set of meters) into daily profiles (see module doc).

    ``adapter_quarantine`` holds what the source adapter already quarantined (counted in);
    ``locate`` names the store location of quarantined readings (default ``<source> row N``);
    ``end_stamped``: the store stamps interval ends (timestamps are end - raw interval), which
    places the readings of a finer-than-raw series (``etl.interval``);
    ``reference_profiles`` (profiles of the same meters from another source, e.g. the SQL
    historian for the old exports) anchor the scale detection on overlapping days.
    """
    READINGS.validate(readings, where=f"{source} readings")
    METERS.validate(meters, where="meters table")
    locate = locate or row_locator(source)
    readings, adapter_quarantine = _sum_fine_series(
        readings, config, source, locate, end_stamped, adapter_quarantine
    )
    cal = LocalCalendar(config.timezone, config.raw_interval_min)
    inp = _input_arrays(readings, meters, source, locate)
    qlog = _Log()
    entries, present_regs, corrections = _repair_readings(
        inp, config, cal, qlog, reference_profiles
    )
    days = _complete_days(entries, present_regs, inp.n_series, cal, qlog)
    out = _daily_profiles(entries, days, inp, config, cal)
    kept_pos = _kept_rows(entries, out.sel)
    is_kept = np.zeros(len(readings), dtype=bool)
    is_kept[kept_pos] = True
    _record_corrections(qlog, corrections, is_kept, entries, out)
    quarantine = _quarantine(qlog, inp, entries, days, out, config, cal, adapter_quarantine)
    counts = _reconciled_counts(qlog, inp, kept_pos, adapter_quarantine)
    report = corrections.scale_report
    metrics = _run_metrics(quarantine, counts, inp, kept_pos, out.profiles, report)
    quality = quality_table(readings, inp.context, is_kept, quarantine, out.profiles, cal)
    summary = summarize_corrections(quarantine)
    return EtlResult(out.profiles, quarantine, quality, summary, report, metrics)


def _sum_fine_series(
    readings: pd.DataFrame,
    config: CleaningConfig,
    source: str,
    locate: Locator,
    end_stamped: bool,
    adapter_quarantine: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Readings with finer-than-raw series summed into raw intervals (``etl.interval``), and
    the adapter's quarantine with the rows that says so."""
    readings, interval_q = aggregate_fine_readings(
        readings, config.raw_interval_min, source, locate, end_stamped
    )
    if interval_q is not None:
        adapter_quarantine = concat_quarantine(
            [q for q in (adapter_quarantine, interval_q) if q is not None]
        )
    return readings, adapter_quarantine


def _input_arrays(
    readings: pd.DataFrame, meters: pd.DataFrame, source: str, locate: Locator
) -> _Input:
    """The columns of ``readings`` as arrays, meters as codes into the meters table."""
    n = len(readings)
    mids = pd.Index(pd.unique(meters["meter_id"].astype(str)))
    span = readings["span"].to_numpy(np.int64) if "span" in readings else np.ones(n, np.int64)
    ctx = readings["context"].to_numpy(bool) if "context" in readings else np.zeros(n, bool)
    cap_kw = meters.drop_duplicates("meter_id").set_index("meter_id")
    return _Input(
        readings=readings,
        source=source,
        locate=locate,
        meter_ids=mids,
        meter=codes_in(readings["meter_id"], mids),
        register=codes_in(readings["register"], list(REGISTERS)),
        ts=readings["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64),
        energy=readings["energy_wh"].to_numpy(dtype=np.float64),
        span=span,
        context=ctx,
        import_kw=cap_kw["contractual_power_kw"].reindex(mids).to_numpy(float),
        export_kw=cap_kw["production_kw"].reindex(mids).to_numpy(float),
    )


def _repair_readings(
    inp: _Input,
    config: CleaningConfig,
    cal: LocalCalendar,
    qlog: _Log,
    reference_profiles: pd.DataFrame | None,
) -> tuple[_Entries, np.ndarray, _Corrections]:
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
    corrections = _Corrections(scale_pos, scale_value, scale_report, accumulated_pos, spread)
    return entries, present_regs, corrections


def _edge_checks(
    inp: _Input, off_grid: np.ndarray, config: CleaningConfig
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
    inp: _Input, config: CleaningConfig, cal: LocalCalendar, qlog: _Log
) -> _Live:
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
    return _Live(pos, s, k, inp.energy[pos], inp.span[pos])


def _drop_coarse_series(live: _Live, n_series: int, config: CleaningConfig, qlog: _Log) -> None:
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


def _drop_duplicates(live: _Live, qlog: _Log) -> None:
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
    live: _Live,
    inp: _Input,
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


def _drop_outliers(live: _Live, inp: _Input, config: CleaningConfig, qlog: _Log) -> np.ndarray:
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


def _spread_spans(live: _Live, config: CleaningConfig, cal: LocalCalendar, qlog: _Log) -> _Spread:
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
    return _Spread(fills, fill_pos, spread_pos, new_value, stamp_ns)


def _merge_spread_fills(live: _Live, spread: _Spread) -> _Entries:
    """The kept readings and the spread fills as one sequence sorted by (series, k)."""
    kind = np.full(len(live.series), _KIND_READING, np.int8)
    s, k, e, pos = live.series, live.k, live.energy, live.pos
    fills = spread.fills
    if len(fills.k):
        s = np.concatenate([s, fills.series])
        k = np.concatenate([k, fills.k])
        e = np.concatenate([e, fills.energy_wh])
        kind = np.concatenate([kind, np.full(len(fills.k), _KIND_SPREAD, np.int8)])
        pos = np.concatenate([pos, spread.fill_pos])
        order = np.lexsort((k, s))
        s, k, e, kind, pos = s[order], k[order], e[order], kind[order], pos[order]
    return _Entries(s, k, e, kind, pos, np.zeros(len(k), np.int64))


def _interpolate_short_gaps(
    entries: _Entries, config: CleaningConfig, cal: LocalCalendar
) -> _Entries:
    """Rule 5b: append linear interpolations over the short gaps between entries."""
    interp, _ = gaps.interpolate_gaps(entries.series, entries.k, entries.energy, config, cal)
    gap_len = np.bincount(interp.parent, minlength=len(entries.k))[interp.parent]
    return _Entries(
        series=np.concatenate([entries.series, interp.series]),
        k=np.concatenate([entries.k, interp.k]),
        energy=np.concatenate([entries.energy, interp.energy_wh]),
        kind=np.concatenate([entries.kind, np.full(len(interp.k), _KIND_INTERP, np.int8)]),
        pos=np.concatenate([entries.pos, entries.pos[interp.parent]]),
        gap_len=np.concatenate([entries.gap_len, gap_len]),
    )


def _complete_days(
    entries: _Entries, present_regs: np.ndarray, n_series: int, cal: LocalCalendar, qlog: _Log
) -> _Days:
    """Rule 6: find the complete local meter-days (every present register, every interval);
    drop the readings of the others."""
    day, wall_slot = cal.day_and_slot(entries.k)
    day0 = day.min() if len(day) else 0
    sd_uniq, sd_inv, sd_count = _series_days(entries.series, day, n_series)
    sd_complete = sd_count == cal.expected_intervals((sd_uniq & _LOW32) + day0)
    md_key = ((sd_uniq >> 32) // 2) * (1 << 32) + (sd_uniq & _LOW32)
    md_uniq, md_inv = np.unique(md_key, return_inverse=True)
    md_ok_regs = np.bincount(md_inv, weights=sd_complete, minlength=len(md_uniq))
    md_meter = md_uniq >> 32
    md_complete = md_ok_regs == present_regs[md_meter].sum(axis=1)
    entry_md = md_inv[sd_inv]
    entry_ok = md_complete[entry_md]
    inc = (entries.kind == _KIND_READING) & ~entry_ok
    detail = np.char.add(
        np.char.add("day has ", sd_count[sd_inv[inc]].astype(str)),
        np.char.add(" of ", cal.expected_intervals(day[inc]).astype(str)),
    ).astype(object)
    qlog.add(entries.pos[inc], Action.DROPPED, Reason.INCOMPLETE_DAY, detail)
    md_day = (md_uniq & _LOW32) + day0
    return _Days(wall_slot, entry_md, entry_ok, md_meter, md_day, md_complete)


def _daily_profiles(
    entries: _Entries, days: _Days, inp: _Input, config: CleaningConfig, cal: LocalCalendar
) -> _Output:
    """Rule 7: the complete meter-days on DST-aware wall-clock slots, resampled and pivoted."""
    ok_md = np.flatnonzero(days.md_complete)
    row_of_md = np.full(len(days.md_complete), -1)
    row_of_md[ok_md] = np.arange(len(ok_md))
    sel = None if days.entry_ok.all() else np.flatnonzero(days.entry_ok)
    if sel is None:  # the usual case: no gather needed
        md, slot, reg, energy = days.entry_md, days.wall_slot, entries.series & 1, entries.energy
    else:
        md, slot = days.entry_md[sel], days.wall_slot[sel]
        reg, energy = entries.series[sel] % 2, entries.energy[sel]
    wall = wall_clock_matrix(row_of_md[md], slot, reg, energy, len(ok_md), config.raw_per_day)
    if len(ok_md):
        # split_coarse: a resolution finer than the raw interval spreads each raw interval's
        # energy evenly; one that is not a multiple of it interpolates the cumulative energy
        values = resample_values(
            wall.matrix, config.raw_interval_min, config.resolution_min, split_coarse=True
        )
        meter_id = inp.meter_ids[days.md_meter[ok_md]].to_numpy(object)
        date = cal.day_to_date(days.md_day[ok_md])
        profiles = pivot_profiles(meter_id, date, inp.source, values)
    else:
        profiles = empty_profiles(config.resolution_min)
    validate_profiles(profiles, where=f"{inp.source} ETL output")
    return _Output(profiles, wall, sel, ok_md)


def _kept_rows(entries: _Entries, sel: np.ndarray | None) -> np.ndarray:
    """Input rows of the readings whose value is in a profile."""
    if sel is None:
        kept_reading = np.flatnonzero(entries.kind == _KIND_READING)
    else:
        kept_reading = sel[entries.kind[sel] == _KIND_READING]
    return entries.pos[kept_reading]


def _record_corrections(
    qlog: _Log, corr: _Corrections, is_kept: np.ndarray, entries: _Entries, out: _Output
) -> None:
    """Log the corrections (scale, spread spans, DST merges) of the kept readings."""
    sc = is_kept[corr.scale_pos]
    qlog.add(
        corr.scale_pos[sc],
        Action.CORRECTED,
        Reason.SCALE,
        "scale factor removed",
        new_value=corr.scale_value[sc],
    )
    spread = corr.spread
    sp = is_kept[spread.pos]
    accumulated = np.isin(spread.pos, corr.accumulated_pos)[sp]
    detail = np.where(
        accumulated,
        "energy accumulated over the preceding gap, spread",
        "register difference across missing documents, spread",
    ).astype(object)
    qlog.add(
        spread.pos[sp],
        Action.CORRECTED,
        Reason.ACCUMULATED_OVER_GAP,
        detail,
        new_value=spread.new_value[sp],
        stamp_ns=spread.stamp_ns[sp],
    )
    merged = out.wall.merged_entry if out.sel is None else out.sel[out.wall.merged_entry]
    mr = entries.kind[merged] == _KIND_READING
    qlog.add(
        entries.pos[merged[mr]],
        Action.CORRECTED,
        Reason.DST_FALLBACK_MERGE,
        "mean of the two occurrences of the repeated hour",
        new_value=out.wall.merged_value[mr],
    )


def _quarantine(
    qlog: _Log,
    inp: _Input,
    entries: _Entries,
    days: _Days,
    out: _Output,
    config: CleaningConfig,
    cal: LocalCalendar,
    adapter_quarantine: pd.DataFrame | None,
) -> pd.DataFrame:
    """The quarantine table: the adapter's rows, the logged entries, the fills and the
    skipped-hour fills (context readings, accounted for in an earlier run, left out)."""
    fills = _fill_rows(out.sel, entries, inp, cal)
    parent = fills.pop("parent").to_numpy()
    fills["location"] = inp.locate(inp.readings.iloc[parent]) if len(parent) else ""
    ok_md = out.ok_md
    spring = _spring_rows(
        out.wall, days.md_meter[ok_md], days.md_day[ok_md], inp.meter_ids, cal, config, inp.source
    )
    adapter = [] if adapter_quarantine is None else [adapter_quarantine]
    return concat_quarantine([*adapter, *_logged_rows(qlog, inp), fills, spring])


def _logged_rows(qlog: _Log, inp: _Input) -> list[pd.DataFrame]:
    """Quarantine rows of the logged entries, context readings left out."""
    parts = []
    for p, action, reason, detail, new_value, stamp in qlog.entries:
        keep_c = ~inp.context[p]
        if not keep_c.any():
            continue
        p2 = p[keep_c]
        det = detail if isinstance(detail, str) else np.asarray(detail, dtype=object)[keep_c]
        parts.append(
            quarantine_frame(
                meter_id=_mid(inp.readings, p2),
                timestamp=inp.ts[p2] if stamp is None else stamp[keep_c],
                source=inp.source,
                original_value=inp.energy[p2],
                new_value=new_value[keep_c],
                action=action,
                reason=reason,
                detail=det,
                register=np.asarray(REGISTERS, dtype=object)[np.maximum(inp.register[p2], 0)],
                location=inp.locate(inp.readings.iloc[p2]),
            )
        )
    return parts


def _reconciled_counts(
    qlog: _Log, inp: _Input, kept_pos: np.ndarray, adapter_quarantine: pd.DataFrame | None
) -> tuple[int, int, int]:
    """Readings in, kept and quarantined (context readings not counted); raises unless
    in = kept + quarantined with each reading dropped at most once."""
    ctx = inp.context
    dropped = qlog.dropped()
    dropped = dropped[~ctx[dropped]]
    adapter_dropped = 0
    if adapter_quarantine is not None:
        adapter_dropped = int((adapter_quarantine["action"] == str(Action.DROPPED)).sum())
    n_in = int((~ctx).sum()) + adapter_dropped
    n_kept = int((~ctx[kept_pos]).sum())
    n_quar = len(dropped) + adapter_dropped
    if n_in != n_kept + n_quar or len(np.unique(dropped)) != len(dropped):
        raise MeterflowError(
            f"{inp.source}: counts do not reconcile "
            f"(in={n_in}, kept={n_kept}, quarantined={n_quar})"
        )
    return n_in, n_kept, n_quar


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


def _series_days(
    series: np.ndarray, day: np.ndarray, n_series: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(series << 32 | day - min(day), return_inverse, return_counts)``, counted in a
    dense (series x day) table when that is small (no sort of the entries)."""
    d0 = int(day.min()) if len(day) else 0
    n_days = int(day.max()) - d0 + 1 if len(day) else 0
    size = n_series * n_days
    if len(day) == 0 or size > 4 * len(day) + (1 << 20):
        key = series * (1 << 32) + (day - d0)
        return np.unique(key, return_inverse=True, return_counts=True)
    dense = series * n_days
    dense += day
    dense -= d0
    count = np.bincount(dense, minlength=size)
    present = np.flatnonzero(count)
    rank = np.cumsum(count > 0) - 1
    uniq = (present // n_days) * (1 << 32) + present % n_days
    return uniq, rank[dense], count[present]


def _mid(readings: pd.DataFrame, p: np.ndarray) -> np.ndarray:
    """Meter ids of input rows ``p``."""
    col = readings["meter_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.categories.to_numpy(object)[col.cat.codes.to_numpy()[p]]
    return col.to_numpy(object)[p]


def _fill_rows(
    sel: np.ndarray | None, entries: _Entries, inp: _Input, cal: LocalCalendar
) -> pd.DataFrame:
    """Quarantine rows (``filled``) of the gap fills in the profiles, with a ``parent`` column:
    the input row of the reading they stem from; context fills left out."""
    kind, ctx = entries.kind, inp.context
    if sel is None:  # all entries
        f = np.flatnonzero(kind != _KIND_READING)
        f = f[~ctx[entries.pos[f]]]
    else:
        f = sel[(kind[sel] != _KIND_READING) & ~ctx[entries.pos[sel]]]
    spread = kind[f] == _KIND_SPREAD
    detail = np.where(
        spread,
        "share of a reading spanning several intervals (cumulative energy interpolated)",
        np.char.add(
            "linear interpolation over missing intervals: ", entries.gap_len[f].astype(str)
        ),
    ).astype(object)
    series = entries.series[f]
    rows = quarantine_frame(
        meter_id=inp.meter_ids.to_numpy(object)[series // 2],
        timestamp=cal.k_to_utc(entries.k[f]),
        source=inp.source,
        original_value=np.nan,
        new_value=entries.energy[f],
        action=Action.FILLED,
        reason=Reason.GAP,
        detail=detail,
        register=np.asarray(REGISTERS, dtype=object)[series % 2],
    )
    return rows.assign(parent=entries.pos[f])


def _spring_rows(
    wall: WallClockDays,
    md_meter: np.ndarray,
    md_day: np.ndarray,
    mids: pd.Index,
    cal: LocalCalendar,
    config: CleaningConfig,
    source: str,
) -> pd.DataFrame:
    """Quarantine rows (``filled``, register ``net``) of the interpolated skipped-hour slots of
    spring-forward days; ``md_meter``/``md_day`` are per row of the wall-clock matrix."""
    if not len(wall.spring_row):
        return quarantine_frame(
            meter_id=np.array([], object),
            timestamp=pd.DatetimeIndex([], tz="UTC"),
            source=source,
            original_value=np.array([]),
            new_value=np.array([]),
            action=Action.FILLED,
            reason=Reason.DST_SPRING_GAP,
            detail=np.array([], object),
            register="net",
        )
    rows = wall.spring_row
    day = md_day[rows]
    # the skipped wall-clock hour has no instant: stamp the fill with the UTC instant at which
    # the wall clock jumped (first interval after the gap) and name the wall-clock slot
    wall_min = wall.spring_slot * config.raw_interval_min
    local_ns = day * 86400 * 10**9 + wall_min * 60 * 10**9
    stamp = pd.DatetimeIndex(local_ns).tz_localize(
        config.timezone, nonexistent="shift_forward", ambiguous=True
    )
    detail = np.char.add(
        "skipped wall-clock slot ",
        pd.DatetimeIndex(local_ns).strftime("%H:%M").to_numpy(dtype=str),
    ).astype(object)
    return quarantine_frame(
        meter_id=mids.to_numpy(object)[md_meter[rows]],
        timestamp=stamp,
        source=source,
        original_value=np.nan,
        new_value=wall.spring_value,
        action=Action.FILLED,
        reason=Reason.DST_SPRING_GAP,
        detail=detail,
        register="net",
    )


def _run_metrics(
    quarantine: pd.DataFrame,
    counts: tuple[int, int, int],
    inp: _Input,
    kept_pos: np.ndarray,
    profiles: pd.DataFrame,
    scale_report: pd.DataFrame,
) -> dict[str, float]:
    """The run's metrics (logged in short)."""
    n_in, n_kept, n_quar = counts
    metrics = _metrics(quarantine, n_in, n_kept, n_quar, profiles, scale_report)
    metrics["readings_context_kept"] = float(inp.context[kept_pos].sum())
    log.info(
        "%s: in=%d kept=%d quarantined=%d filled=%d meter-days=%d",
        inp.source,
        n_in,
        n_kept,
        n_quar,
        metrics["readings_filled"],
        len(profiles),
    )
    return metrics


def _metrics(
    quarantine: pd.DataFrame,
    n_in: int,
    n_kept: int,
    n_quar: int,
    profiles: pd.DataFrame,
    scale_report: pd.DataFrame,
) -> dict[str, float]:
    """Run metrics: counts, and one count per (action, reason) of the quarantine."""
    counts = quarantine.groupby(["action", "reason"], observed=True).size()
    m: dict[str, float] = {
        "readings_in": float(n_in),
        "readings_kept": float(n_kept),
        "readings_quarantined": float(n_quar),
        "readings_filled": float(counts.get(str(Action.FILLED), pd.Series(dtype=int)).sum()),
        "readings_corrected": float(
            quarantine.loc[quarantine["action"] == str(Action.CORRECTED)]
            .drop_duplicates(["meter_id", "timestamp", "register"])
            .shape[0]
        ),
        "meter_days_out": float(len(profiles)),
        "meters_out": float(profiles["meter_id"].nunique()),
        "scale_corrections": float(len(scale_report)),
    }
    for (action, reason), c in counts.items():
        prefix = {"dropped": "quarantined", "filled": "filled", "corrected": "corrected"}[action]
        m[f"{prefix}_{reason}"] = float(c)
    m["quarantined_share"] = n_quar / n_in if n_in else 0.0
    return m
