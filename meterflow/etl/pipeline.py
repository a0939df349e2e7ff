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

import numpy as np
import pandas as pd

from meterflow.errors import MeterflowError
from meterflow.etl import gaps, outliers
from meterflow.etl.calendar import LocalCalendar
from meterflow.etl.config import CleaningConfig
from meterflow.etl.duplicates import resolve_duplicates
from meterflow.etl.interval import aggregate_fine_readings, coarse_series
from meterflow.etl.profiles import (
    empty_profiles,
    pivot_profiles,
    resample_matrix,
    wall_clock_matrix,
)
from meterflow.etl.quality import quality_table
from meterflow.etl.quarantine import Reason, concat_quarantine, quarantine_frame
from meterflow.etl.readings import REGISTERS, Locator, codes_in, row_locator
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
        parts = [e[0] for e in self.entries if e[1] == Action.DROPPED]
        return np.concatenate(parts) if parts else np.array([], dtype=np.int64)


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
    readings, interval_q = aggregate_fine_readings(
        readings, config.raw_interval_min, source, locate, end_stamped
    )
    if interval_q is not None:
        adapter_quarantine = concat_quarantine(
            [q for q in (adapter_quarantine, interval_q) if q is not None]
        )
    cal = LocalCalendar(config.timezone, config.raw_interval_min)
    raw_ns = cal.raw_ns
    n = len(readings)
    qlog = _Log()

    mids = pd.Index(pd.unique(meters["meter_id"].astype(str)))
    mcode = codes_in(readings["meter_id"], mids)
    ts = readings["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    reg = codes_in(readings["register"], list(REGISTERS))
    e0 = readings["energy_wh"].to_numpy(dtype=np.float64)
    span0 = readings["span"].to_numpy(np.int64) if "span" in readings else np.ones(n, np.int64)
    ctx = readings["context"].to_numpy(bool) if "context" in readings else np.zeros(n, bool)
    cap_kw = meters.drop_duplicates("meter_id").set_index("meter_id")
    imp_kw = cap_kw["contractual_power_kw"].reindex(mids).to_numpy(float)
    exp_kw = cap_kw["production_kw"].reindex(mids).to_numpy(float)

    # 1. edge checks
    tol = config.outlier_abs_tolerance_wh
    k_all, off_grid = np.divmod(ts, raw_ns)  # one pass for the interval index and the check
    checks = [
        (mcode < 0, Reason.UNKNOWN_METER, "meter not in the meters table"),
        (reg < 0, Reason.MALFORMED_ROW, "register is neither import nor export"),
        (~np.isfinite(e0), Reason.MISSING_VALUE, "energy is missing or not finite"),
        (off_grid != 0, Reason.OFF_GRID, f"not on the {config.raw_interval_min}-min grid"),
        (span0 < 1, Reason.MALFORMED_ROW, "span below one interval"),
        (((reg == 0) & (e0 < -tol)) | ((reg == 1) & (e0 > tol)), Reason.NEGATIVE_ENERGY,
         "import below zero or export above zero"),
    ]  # fmt: skip
    bad = np.zeros(n, dtype=bool)
    for mask, reason, detail in checks:
        hit = mask & ~bad
        qlog.add(np.flatnonzero(hit), Action.DROPPED, reason, detail)
        bad |= hit
    del off_grid
    series_all = mcode * 2 + reg
    if bad.any():
        k_all[bad] = 0
        pos = np.flatnonzero(~bad)
        pos, s, k = _series_order(pos, series_all[pos], k_all[pos], 2 * len(mids))
    else:
        pos, s, k = _series_order(None, series_all, k_all, 2 * len(mids))
    e, span = e0[pos], span0[pos]
    n_series = 2 * len(mids)
    # registers each meter has readings of (after the edge checks)
    present_regs = (np.bincount(s, minlength=n_series) > 0).reshape(-1, 2)
    coarse = coarse_series(s, k, span, n_series)[s]
    if coarse.any():
        step_min = (coarse[coarse > 0] * config.raw_interval_min).astype(str)
        qlog.add(
            pos[coarse > 0], Action.DROPPED, Reason.COARSE_INTERVAL,
            np.char.add(np.char.add("readings every ", step_min),
                        f" min, coarser than the {config.raw_interval_min}-min raw interval"
                        ).astype(object),
        )  # fmt: skip
        keep = coarse == 0
        pos, s, k, e, span = pos[keep], s[keep], k[keep], e[keep], span[keep]
    log.info("%s: %d readings, %d pass the edge checks", source, n, len(pos))

    # 2. duplicates
    exact, conflicting, chosen = resolve_duplicates(s, k, e)
    qlog.add(pos[exact], Action.DROPPED, Reason.DUPLICATE, "exact copy of another reading")
    qlog.add(
        pos[conflicting], Action.DROPPED, Reason.CONFLICTING_DUPLICATE,
        np.char.add("kept value ", e[chosen].round(3).astype(str)).astype(object),
    )  # fmt: skip
    if len(exact) or len(conflicting):
        keep = np.ones(len(pos), dtype=bool)
        keep[exact] = keep[conflicting] = False
        pos, s, k, e, span = pos[keep], s[keep], k[keep], e[keep], span[keep]

    # 3. scale
    scale_report = empty_scale_report()
    if config.detect_scale and len(pos):
        ref = reference_levels(reference_profiles, mids, config)
        factor, scale_report = detect_scale(s // 2, k, e, span, imp_kw, mids, cal, config, ref)
        fixed = factor != 1.0
        e[fixed] = e[fixed] / factor[fixed]
        scale_pos, scale_new = pos[fixed], e[fixed]
    else:
        scale_pos, scale_new = np.array([], np.int64), np.array([])

    # 4. outliers, accumulated energy over gaps
    raw_h = config.raw_interval_min / 60
    # the bound of each series (import: contractual power, export: production), then gathered
    per_kw = np.column_stack([imp_kw, exp_kw]).ravel()
    bound = (per_kw * raw_h * 1000 * (1 + config.outlier_tolerance))[s]
    out, acc, gap_before = outliers.classify_outliers(s, k, span, e, bound, tol)
    qlog.add(
        pos[out], Action.DROPPED, Reason.OUTLIER,
        np.char.add("beyond bound ", (bound[out] * span[out] + tol).round(1).astype(str)).astype(
            object
        ),
    )  # fmt: skip
    if acc.any():
        k = np.where(acc, k - gap_before, k)
        span = np.where(acc, span + gap_before, span)
    acc_pos = pos[acc]
    if out.any():
        keep = ~out
        pos, s, k, e, span = pos[keep], s[keep], k[keep], e[keep], span[keep]

    # 5. gaps: spread spans, then interpolate short gaps
    multi = np.flatnonzero(span > 1)
    allowed = gaps.gap_allowed(k[multi], span[multi] - 1, config, cal)
    qlog.add(
        pos[multi[~allowed]], Action.DROPPED, Reason.LONG_GAP,
        np.char.add("energy spans intervals: ", span[multi[~allowed]].astype(str)).astype(object),
    )  # fmt: skip
    long_rows = multi[~allowed]
    spread_rows = multi[allowed]
    spread = gaps.spread_spans(s, k, span, e, spread_rows)
    spread_pos, spread_new = pos[spread_rows], e[spread_rows] / span[spread_rows]
    spread_src = pos[spread.parent]
    e = e.copy()
    e[spread_rows] = spread_new
    k = k.copy()
    k[spread_rows] += span[spread_rows] - 1  # the reading keeps the last interval of its span
    spread_stamp = k[spread_rows] * raw_ns
    if len(long_rows):
        keep = np.ones(len(pos), dtype=bool)
        keep[long_rows] = False
        pos, s, k, e = pos[keep], s[keep], k[keep], e[keep]
    # merge readings and spread fills into one sorted sequence
    ekind = np.full(len(s), _KIND_READING, np.int8)
    es, ek, ee, esrc = s, k, e, pos
    if len(spread.k):
        es = np.concatenate([s, spread.series])
        ek = np.concatenate([k, spread.k])
        ee = np.concatenate([e, spread.energy_wh])
        ekind = np.concatenate([ekind, np.full(len(spread.k), _KIND_SPREAD, np.int8)])
        esrc = np.concatenate([pos, spread_src])
        order = np.lexsort((ek, es))
        es, ek, ee, ekind, esrc = es[order], ek[order], ee[order], ekind[order], esrc[order]
    interp, _ = gaps.interpolate_gaps(es, ek, ee, config, cal)
    gap_len = np.bincount(interp.parent, minlength=len(ek))[interp.parent]
    es = np.concatenate([es, interp.series])
    ek = np.concatenate([ek, interp.k])
    ee = np.concatenate([ee, interp.energy_wh])
    ekind = np.concatenate([ekind, np.full(len(interp.k), _KIND_INTERP, np.int8)])
    esrc = np.concatenate([esrc, esrc[interp.parent]])
    einfo = np.concatenate([np.zeros(len(ek) - len(interp.k), np.int64), gap_len])

    # 6. complete local days
    day, wall_slot = cal.day_and_slot(ek)
    sd_uniq, sd_inv, sd_count = _series_days(es, day, n_series)
    sd_series = sd_uniq >> 32
    sd_day = (sd_uniq & ((1 << 32) - 1)) + (day.min() if len(day) else 0)
    sd_complete = sd_count == cal.expected_intervals(sd_day)
    md_key = (sd_series // 2) * (1 << 32) + (sd_uniq & ((1 << 32) - 1))
    md_uniq, md_inv = np.unique(md_key, return_inverse=True)
    md_ok_regs = np.bincount(md_inv, weights=sd_complete, minlength=len(md_uniq))
    md_meter = md_uniq >> 32
    md_complete = md_ok_regs == present_regs[md_meter].sum(axis=1)
    entry_md = md_inv[sd_inv]
    entry_ok = md_complete[entry_md]
    inc = (ekind == _KIND_READING) & ~entry_ok
    inc_detail = np.char.add(
        np.char.add("day has ", sd_count[sd_inv[inc]].astype(str)),
        np.char.add(" of ", cal.expected_intervals(day[inc]).astype(str)),
    ).astype(object)
    qlog.add(esrc[inc], Action.DROPPED, Reason.INCOMPLETE_DAY, inc_detail)

    # 7. profiles
    ok_md = np.flatnonzero(md_complete)
    row_of_md = np.full(len(md_uniq), -1)
    row_of_md[ok_md] = np.arange(len(ok_md))
    if entry_ok.all():  # the usual case: no gather needed (sel None: all entries)
        sel = None
        wall = wall_clock_matrix(
            row_of_md[entry_md], wall_slot, es & 1, ee,
            len(ok_md), config.raw_per_day,
        )  # fmt: skip
    else:
        sel = np.flatnonzero(entry_ok)
        wall = wall_clock_matrix(
            row_of_md[entry_md[sel]], wall_slot[sel], es[sel] % 2,
            ee[sel], len(ok_md), config.raw_per_day,
        )  # fmt: skip
    md_day = (md_uniq & ((1 << 32) - 1)) + (day.min() if len(day) else 0)
    if len(ok_md):
        values = resample_matrix(wall.matrix, config.raw_interval_min, config.resolution_min)
        profiles = pivot_profiles(
            mids[md_meter[ok_md]].to_numpy(object), cal.day_to_date(md_day[ok_md]), source, values
        )
    else:
        profiles = empty_profiles(config.resolution_min)
    validate_profiles(profiles, where=f"{source} ETL output")

    # corrections and fills of the kept readings
    if sel is None:
        kept_reading = np.flatnonzero(ekind == _KIND_READING)
    else:
        kept_reading = sel[ekind[sel] == _KIND_READING]
    kept_pos = esrc[kept_reading]
    is_kept = np.zeros(n, dtype=bool)
    is_kept[kept_pos] = True
    sc = is_kept[scale_pos]
    qlog.add(scale_pos[sc], Action.CORRECTED, Reason.SCALE, "scale factor removed", scale_new[sc])
    sp = is_kept[spread_pos]
    acc_set = np.isin(spread_pos, acc_pos)
    qlog.add(
        spread_pos[sp], Action.CORRECTED, Reason.ACCUMULATED_OVER_GAP,
        np.where(acc_set[sp], "energy accumulated over the preceding gap, spread",
                 "register difference across missing documents, spread").astype(object),
        spread_new[sp], spread_stamp[sp],
    )  # fmt: skip
    merged = wall.merged_entry if sel is None else sel[wall.merged_entry]
    mr = ekind[merged] == _KIND_READING
    qlog.add(
        esrc[merged[mr]], Action.CORRECTED, Reason.DST_FALLBACK_MERGE,
        "mean of the two occurrences of the repeated hour", wall.merged_value[mr],
    )  # fmt: skip

    fills = _fill_rows(sel, ekind, es, ek, ee, einfo, esrc, ctx, mids, cal, source)
    parent = fills.pop("parent").to_numpy()
    fills["location"] = locate(readings.iloc[parent]) if len(parent) else ""
    spring = _spring_rows(wall, md_meter[ok_md], md_day[ok_md], mids, cal, config, source)

    # assemble, leaving out context readings (already accounted for in an earlier run)
    qparts = [] if adapter_quarantine is None else [adapter_quarantine]
    for p, action, reason, detail, new_value, stamp in qlog.entries:
        keep_c = ~ctx[p]
        if not keep_c.any():
            continue
        p2 = p[keep_c]
        det = detail if isinstance(detail, str) else np.asarray(detail, dtype=object)[keep_c]
        qparts.append(
            quarantine_frame(
                meter_id=_mid(readings, p2),
                timestamp=ts[p2] if stamp is None else stamp[keep_c],
                source=source, original_value=e0[p2],
                new_value=new_value[keep_c], action=action, reason=reason, detail=det,
                register=np.asarray(REGISTERS, dtype=object)[np.maximum(reg[p2], 0)],
                location=locate(readings.iloc[p2]),
            )
        )  # fmt: skip
    quarantine = concat_quarantine([*qparts, fills, spring])

    dropped = qlog.dropped()
    dropped = dropped[~ctx[dropped]]
    adapter_dropped = (
        0 if adapter_quarantine is None
        else int((adapter_quarantine["action"] == str(Action.DROPPED)).sum())
    )  # fmt: skip
    n_in = int((~ctx).sum()) + adapter_dropped
    n_kept = int((~ctx[kept_pos]).sum())
    n_quar = len(dropped) + adapter_dropped
    if n_in != n_kept + n_quar or len(np.unique(dropped)) != len(dropped):
        raise MeterflowError(
            f"{source}: counts do not reconcile (in={n_in}, kept={n_kept}, quarantined={n_quar})"
        )
    metrics = _metrics(quarantine, n_in, n_kept, n_quar, profiles, scale_report)
    metrics["readings_context_kept"] = float(ctx[kept_pos].sum())
    quality = quality_table(readings, ctx, is_kept, quarantine, profiles, cal)
    log.info(
        "%s: in=%d kept=%d quarantined=%d filled=%d meter-days=%d",
        source, n_in, n_kept, n_quar, metrics["readings_filled"], len(profiles),
    )  # fmt: skip
    return EtlResult(
        profiles, quarantine, quality, summarize_corrections(quarantine), scale_report, metrics
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
    col = readings["meter_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.categories.to_numpy(object)[col.cat.codes.to_numpy()[p]]
    return col.to_numpy(object)[p]


def _fill_rows(sel, ekind, es, ek, ee, einfo, esrc, ctx, mids, cal, source) -> pd.DataFrame:
    if sel is None:  # all entries
        f = np.flatnonzero(ekind != _KIND_READING)
        f = f[~ctx[esrc[f]]]
    else:
        f = sel[(ekind[sel] != _KIND_READING) & ~ctx[esrc[sel]]]
    spread = ekind[f] == _KIND_SPREAD
    detail = np.where(
        spread,
        "share of a reading spanning several intervals (cumulative energy interpolated)",
        np.char.add("linear interpolation over missing intervals: ", einfo[f].astype(str)),
    ).astype(object)
    return quarantine_frame(
        meter_id=mids.to_numpy(object)[es[f] // 2], timestamp=cal.k_to_utc(ek[f]), source=source,
        original_value=np.nan, new_value=ee[f], action=Action.FILLED, reason=Reason.GAP,
        detail=detail, register=np.asarray(REGISTERS, dtype=object)[es[f] % 2],
    ).assign(parent=esrc[f])  # fmt: skip


def _spring_rows(wall, md_meter, md_day, mids, cal, config, source) -> pd.DataFrame:
    if not len(wall.spring_row):
        return quarantine_frame(
            meter_id=np.array([], object), timestamp=pd.DatetimeIndex([], tz="UTC"),
            source=source, original_value=np.array([]), new_value=np.array([]),
            action=Action.FILLED, reason=Reason.DST_SPRING_GAP, detail=np.array([], object),
            register="net",
        )  # fmt: skip
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
        meter_id=mids.to_numpy(object)[md_meter[rows]], timestamp=stamp, source=source,
        original_value=np.nan, new_value=wall.spring_value, action=Action.FILLED,
        reason=Reason.DST_SPRING_GAP, detail=detail, register="net",
    )  # fmt: skip


def _metrics(quarantine, n_in, n_kept, n_quar, profiles, scale_report) -> dict[str, float]:
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
