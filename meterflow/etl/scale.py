"""Scale detection: find meters and periods whose values carry a unit error, and the factor.

Per meter, on the gross energy per interval (|import| + |export|):

1. Daily features: log10 of the daily mean, 10th and 90th percentile. A unit error multiplies
   every value of a period, so all three move by log10(factor); a real change of behaviour
   (holidays, weekends, seasons) moves the peak far more than the base load.
2. Absolute anchor: where another source of the same meter overlaps (``reference``), its level
   on the common days fixes the factor there; otherwise the meter's typical daily 90th
   percentile against its contractual power: when most days are impossible (above the
   contract) or implausibly tiny, a base factor is chosen first from the candidates.
3. A Viterbi path over days with states {1} + candidates (absolute factors): emission =
   squared deviation of the corrected features from a rolling median reference of the same
   day class (weekday, Saturday, Sunday) in units of the meter's robust spread, infinite when
   the corrected 90th percentile exceeds the contract; each change of state costs a fixed
   penalty. Run twice: the second reference is built from the first pass's corrected series
   (neighbouring periods).
4. Each change of state is refined to the exact interval by a two-segment least-squares split
   over the two days around it.

Returns a factor per reading (1.0 where nothing was found) and one report row per corrected
period: meter, start, end (UTC, end exclusive), factor, evidence.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.etl.calendar import NS_PER_DAY, LocalCalendar
from meterflow.etl.config import CleaningConfig
from meterflow.schemas import profile_slot_columns

log = logging.getLogger(__name__)

SWITCH_PENALTY = 14.0  # cost of a change of scale (in squared robust deviations)
OFF_PRIOR = 0.5  # cost per day of a state other than 1
MIN_SIGMA = 0.08  # decades
TYPICAL_UTILISATION = 0.2  # daily 90th percentile / contractual power of a typical meter
MIN_UTILISATION = 0.003  # below this the whole series is taken as too small by a factor
REF_HALF_WINDOW = 21  # days each side of the rolling reference
MATCH_TOLERANCE = 0.15  # decades between the observed level jump and the factor of a period
ANCHOR_WEIGHT = 5.0  # weight of the other source's level on overlapping days
MIN_DAY_COVERAGE = 0.5  # days with fewer intervals than this share give no level evidence
MIN_PERIOD_COVERAGE = 0.8  # a period must hold this share of scale_min_days of intervals
NIGHT_ANCHOR_MIN = 240  # the anchor compares wall-clock 00:00-04:00 (no PV export then)
HOLIDAY_MARGIN = 0.1  # decades: a weekday this much closer to Sundays is treated as a holiday

REPORT_COLUMNS = ["meter_id", "start", "end", "factor", "intervals", "evidence"]


def reference_levels(
    profiles: pd.DataFrame | None, mids: pd.Index, config: CleaningConfig
) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """Per meter code: (local days, log10 mean Wh per raw interval over the night hours
    00:00-04:00) of reference profiles. At night a profile's net energy is the import alone,
    so PV meters compare too."""
    if profiles is None or profiles.empty:
        return None
    cols = profile_slot_columns(profiles)
    n_night = max(1, len(cols) * NIGHT_ANCHOR_MIN // 1440)
    per_raw = profiles[cols[:n_night]].to_numpy(float).mean(axis=1) * (
        config.raw_interval_min * len(cols) / 1440
    )
    code = pd.Categorical(profiles["meter_id"].astype(object), categories=mids).codes
    day = profiles["date"].to_numpy("datetime64[ns]").view(np.int64) // NS_PER_DAY
    ok = (code >= 0) & (per_raw > 0)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    frame = pd.DataFrame({"code": code[ok], "day": day[ok], "lv": np.log10(per_raw[ok])})
    for c, g in frame.sort_values(["code", "day"]).groupby("code"):
        out[int(c)] = (g["day"].to_numpy(), g["lv"].to_numpy())
    return out


def _nanmedian(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """NaN-ignoring median (NaN where nothing is finite), much cheaper than numpy's on the
    small arrays used here."""
    a = np.asarray(x, dtype=float)
    if axis is None:
        a = a.ravel()
    elif axis != 0:
        a = np.moveaxis(a, axis, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _median_first_axis(a)


def _median_first_axis(a: np.ndarray) -> np.ndarray | float:
    if a.shape[0] == 0:
        out = np.full(a.shape[1:], np.nan)
        return float(out) if np.ndim(out) == 0 else out
    s = np.sort(a, axis=0)  # NaN last
    n = np.isfinite(s).sum(axis=0)
    lo = np.take_along_axis(s, np.expand_dims(np.maximum((n - 1) // 2, 0), 0), 0)[0]
    hi = np.take_along_axis(s, np.expand_dims(np.maximum(n // 2, 0), 0), 0)[0]
    out = np.where(n > 0, 0.5 * (lo + hi), np.nan)
    return float(out) if np.ndim(out) == 0 else out


def empty_scale_report() -> pd.DataFrame:
    """Scale report without rows."""
    return pd.DataFrame(
        {
            "meter_id": pd.Series(dtype=object),
            "start": pd.Series(dtype="datetime64[ns, UTC]"),
            "end": pd.Series(dtype="datetime64[ns, UTC]"),
            "factor": pd.Series(dtype=float),
            "intervals": pd.Series(dtype="int64"),
            "evidence": pd.Series(dtype=object),
        }
    )


def detect_scale(
    meter: np.ndarray,
    k: np.ndarray,
    energy_wh: np.ndarray,
    span: np.ndarray,
    contractual_kw: np.ndarray,
    meter_ids: pd.Index,
    cal: LocalCalendar,
    config: CleaningConfig,
    reference: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Factor per reading (readings sorted by meter) and the report (see module docstring).

    ``reference`` maps a meter code to (local days, log10 mean Wh per raw interval) of the
    same meter from another source (e.g. the SQL historian's profiles); overlapping days then
    anchor the absolute level.
    """
    factor = np.ones(len(k))
    rows: list[dict[str, object]] = []
    cap_wh = contractual_kw * config.raw_interval_min / 60 * 1000
    bounds = np.flatnonzero(np.r_[True, meter[1:] != meter[:-1], True])
    for a, b in itertools.pairwise(bounds):
        m = int(meter[a])
        if not np.isfinite(cap_wh[m]) or cap_wh[m] <= 0:
            continue
        sl = slice(a, b)
        f_meter, periods = _detect_meter(
            k[sl], energy_wh[sl], span[sl], cap_wh[m], cal, config, (reference or {}).get(m)
        )
        if periods:
            factor[sl] = f_meter
            for p in periods:
                rows.append({"meter_id": meter_ids[m], **p})
    report = empty_scale_report() if not rows else pd.DataFrame(rows)[REPORT_COLUMNS]
    if len(report):
        report["start"] = cal.k_to_utc(report["start"].to_numpy(np.int64))
        report["end"] = cal.k_to_utc(report["end"].to_numpy(np.int64))
        n_meters = report["meter_id"].nunique()
        log.info("scale detection: %d corrections on %d meters", len(report), n_meters)
    return factor, report


@dataclass(frozen=True)
class _MeterDays:
    """One meter's gross energy per interval (single-interval readings) and its daily features."""

    gk: np.ndarray  # interval index of each gross value, ascending
    gross: np.ndarray  # |import| + |export| Wh
    minute: np.ndarray  # local minute of the day of each interval
    days: np.ndarray  # local days (since the epoch), ascending
    d_inv: np.ndarray  # day row of each interval
    feats: np.ndarray  # (days, 3) log10 of the daily mean, p10, p90 (NaN on thin days)
    q90: np.ndarray  # daily 90th percentile, Wh


def _detect_meter(
    k: np.ndarray,
    e: np.ndarray,
    span: np.ndarray,
    cap: float,
    cal: LocalCalendar,
    config: CleaningConfig,
    reference: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Factor per reading of one meter and its corrected periods (k-based)."""
    ones = np.ones(len(k))
    md = _meter_days(k, e, span, cap, cal, config)
    if md is None:
        return ones, []
    cands = np.array([1.0, *config.scale_candidates])
    logc = np.log10(cands)
    tol = 1 + config.outlier_tolerance
    usable = np.isfinite(md.q90) & (md.q90 > 0)
    if usable.sum() < 2:
        return ones, []
    night_log = _night_log(md, config)
    anchor, base = _anchor(md.days, night_log, reference, logc)
    anchored = np.flatnonzero(np.isfinite(anchor)) if base is not None else None
    if base is None:
        base = _base_from_contract(md.q90, usable, cap, tol, cands)
    state = _day_states(md, logc, base, cap * tol, anchor, anchored, night_log)
    day_factor = cands[state]
    if np.all(day_factor == 1.0):
        return ones, []
    g_factor, level = _interval_factors(md, day_factor, base, config)
    if np.all(g_factor == 1.0):
        return ones, []
    per_reading = g_factor[np.clip(np.searchsorted(md.gk, k), 0, len(md.gk) - 1)]
    return per_reading, _corrected_periods(md, g_factor, level, cap, config)


def _meter_days(
    k: np.ndarray,
    e: np.ndarray,
    span: np.ndarray,
    cap: float,
    cal: LocalCalendar,
    config: CleaningConfig,
) -> _MeterDays | None:
    """Gross energy per interval and daily features; None with less than a day of intervals."""
    single = span == 1
    gk, g_inv = np.unique(k[single], return_inverse=True)
    gross = np.bincount(g_inv, weights=np.abs(e[single]), minlength=len(gk))
    if len(gk) < config.raw_per_day:
        return None
    day, minute = cal.day_and_minute(gk)
    days, d_inv = np.unique(day, return_inverse=True)
    feats, q90 = _daily_features(gross, d_inv, len(days), cap)
    thin = np.bincount(d_inv, minlength=len(days)) < MIN_DAY_COVERAGE * config.raw_per_day
    feats[thin] = np.nan
    return _MeterDays(gk, gross, minute, days, d_inv, feats, q90)


def _night_log(md: _MeterDays, config: CleaningConfig) -> np.ndarray:
    """log10 of the mean gross energy per interval over the night hours, per day (NaN where the
    night is less than half covered or zero)."""
    n_days = len(md.days)
    night = md.minute < NIGHT_ANCHOR_MIN
    n_night = np.bincount(md.d_inv[night], minlength=n_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        night_sum = np.bincount(md.d_inv[night], weights=md.gross[night], minlength=n_days)
        night_mean = night_sum / n_night
        night_log = np.where(
            night_mean > 0, np.log10(np.where(night_mean > 0, night_mean, 1)), np.nan
        )
    night_log[n_night < 0.5 * NIGHT_ANCHOR_MIN / config.raw_interval_min] = np.nan
    return night_log


def _day_states(
    md: _MeterDays,
    logc: np.ndarray,
    base: float,
    cap_tol: float,
    anchor: np.ndarray,
    anchored: np.ndarray | None,
    night_log: np.ndarray,
) -> np.ndarray:
    """Candidate index per day: the Viterbi path, first against the global reference (shifted
    by the anchor), then twice against the rolling reference of the corrected series."""
    feats, days = md.feats, md.days
    dclass = _day_class(days)
    path_log = np.full(len(days), np.log10(base))
    for rolling in (False, True, True):
        if rolling:
            dclass = _holidays_as_sundays(feats - path_log[:, None], _day_class(days))
        ref = _reference(feats - path_log[:, None], days, dclass, rolling)
        if not rolling and anchored is not None and len(anchored):
            ref = ref + _anchor_shift(feats, path_log, ref, days, dclass, anchored, logc)
        resid = feats - path_log[:, None] - ref
        sigma = max(MIN_SIGMA, 1.4826 * float(_nanmedian(np.abs(resid - _nanmedian(resid)))))
        emit = _emissions(feats, ref, logc, sigma, md.q90, cap_tol, anchor, night_log)
        state = _viterbi(emit, SWITCH_PENALTY)
        path_log = logc[state]
    return state


def _interval_factors(
    md: _MeterDays, day_factor: np.ndarray, base: float, config: CleaningConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Factor per interval and the time-of-day normalised log level of each interval.

    Short day-level runs (days that mix two scales look like an intermediate factor) are
    dropped, then each change is refined to the interval by a least-squares split over the
    undecided days plus one day on each side; finally the periods are validated.
    """
    runs = _day_runs(day_factor, config.scale_min_days)
    run_start = np.array([r[1] for r in runs])
    g_factor = np.array([r[0] for r in runs])[np.searchsorted(run_start, md.d_inv, "right") - 1]
    lg = np.where(md.gross > 0, np.log10(np.where(md.gross > 0, md.gross, 1)), np.nan)
    tod = md.minute // config.raw_interval_min
    prof = _tod_profile(lg - np.log10(g_factor), tod, config.raw_per_day)
    level = lg - prof[tod]
    for (fa, _, a1), (fb, b0, _) in itertools.pairwise(runs):
        w = np.flatnonzero((md.d_inv >= a1 - 1) & (md.d_inv <= b0))
        j = _best_split(level[w], np.log10(fa), np.log10(fb))
        g_factor[w[:j]] = fa
        g_factor[w[j:]] = fb
    for _ in range(5):  # undoing a period changes its neighbours' evidence
        checked = _validate_periods(
            g_factor, level, base, config.raw_per_day, config.scale_min_days
        )
        if np.array_equal(checked, g_factor):
            break
        g_factor = checked
    return g_factor, level


def _corrected_periods(
    md: _MeterDays, g_factor: np.ndarray, level: np.ndarray, cap: float, config: CleaningConfig
) -> list[dict[str, object]]:
    """Report rows (k-based start, end) of the runs of intervals with a factor other than 1."""
    periods: list[dict[str, object]] = []
    run = np.flatnonzero(np.r_[True, g_factor[1:] != g_factor[:-1]])
    ends = np.r_[run[1:], len(md.gk)]
    for s0, s1 in zip(run, ends, strict=True):
        f = float(g_factor[s0])
        if f == 1.0:
            continue
        seg = slice(s0, s1)
        inside = _nanmedian(level[seg])
        near = 4 * config.raw_per_day
        nb = np.r_[max(0, s0 - near) : s0, s1 : min(len(md.gk), s1 + near)]
        outside = _nanmedian(level[nb] - np.log10(g_factor[nb])) if len(nb) else np.nan
        p90 = np.nanpercentile(md.gross[seg], 90)
        evidence = (
            f"level {10 ** (inside - outside):.4g}x the neighbouring periods"
            if np.isfinite(outside)
            else "whole series"
        )
        evidence += f"; p90 {p90 / cap:.3g}x contractual power before, {p90 / f / cap:.3g}x after"
        periods.append(
            {
                "start": int(md.gk[s0]),
                "end": int(md.gk[s1 - 1]) + 1,
                "factor": f,
                "intervals": int(s1 - s0),
                "evidence": evidence,
            }
        )
    return periods


def _day_runs(day_factor: np.ndarray, min_days: int) -> list[tuple[float, int, int]]:
    """Runs ``(factor, first day, stop day)`` of the day path without runs shorter than
    ``min_days`` (their days are left between the neighbouring runs); adjacent runs of equal
    factor are merged."""
    starts = np.flatnonzero(np.r_[True, day_factor[1:] != day_factor[:-1]])
    stops = np.r_[starts[1:], len(day_factor)]
    runs = [(float(day_factor[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]
    long = [r for r in runs if r[2] - r[1] >= min_days] or [max(runs, key=lambda r: r[2] - r[1])]
    merged: list[tuple[float, int, int]] = []
    for f, a, b in long:
        if merged and merged[-1][0] == f:
            merged[-1] = (f, merged[-1][1], b)
        else:
            merged.append((f, a, b))
    # the first and last runs reach the series' ends
    merged[0] = (merged[0][0], 0, merged[0][2])
    merged[-1] = (merged[-1][0], merged[-1][1], len(day_factor))
    return merged


def _anchor_shift(
    feats: np.ndarray,
    path_log: np.ndarray,
    ref: np.ndarray,
    days: np.ndarray,
    dclass: np.ndarray,
    anchored: np.ndarray,
    logc: np.ndarray,
) -> float:
    """Shift of the global reference ``ref`` when the series' majority carries a factor: the
    anchored days sit a candidate factor away from both the global reference and the rolling
    level around them (a slow seasonal drift moves only the former); 0 otherwise."""
    local = _reference(feats - path_log[:, None], days, dclass, True)
    level = feats[anchored, 0] - path_log[anchored]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s_global = float(_nanmedian(level - ref[anchored, 0]))
        s_local = float(_nanmedian(level - local[anchored, 0]))
    nonzero = logc[logc != 0]
    snapped = []
    for s in (s_global, s_local):
        if not np.isfinite(s):
            return 0.0
        best = nonzero[np.argmin(np.abs(s + nonzero))]
        snapped.append(float(-best) if abs(s + best) <= MATCH_TOLERANCE else 0.0)
    return snapped[0] if snapped[0] == snapped[1] else 0.0


def _best_split(r: np.ndarray, la: float, lb: float) -> int:
    """Split point j of a log-level series: r[:j] at offset ``la``, r[j:] at ``lb`` around one
    common level fitted for every j (least squares, NaN ignored)."""
    ok = np.isfinite(r)
    x = np.where(ok, r - la, 0.0)
    y = np.where(ok, r - lb, 0.0)
    n = max(int(ok.sum()), 1)
    cx, cx2 = np.r_[0, np.cumsum(x)], np.r_[0, np.cumsum(x * x)]
    cy, cy2 = np.r_[0, np.cumsum(y)], np.r_[0, np.cumsum(y * y)]
    s = cx + (cy[-1] - cy)
    s2 = cx2 + (cy2[-1] - cy2)
    return int(np.argmin(s2 - s * s / n))


def _holidays_as_sundays(corrected: np.ndarray, dclass: np.ndarray) -> np.ndarray:
    """Weekdays whose corrected features lie closer to the Sunday median than to the weekday
    median (by HOLIDAY_MARGIN decades) are classed as Sundays (public holidays, closures)."""
    out = dclass.copy()
    if not ((dclass == 0).any() and (dclass == 2).any()):
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days
        wd = _nanmedian(corrected[dclass == 0], axis=0)
        su = _nanmedian(corrected[dclass == 2], axis=0)
        d_wd = np.sqrt(np.nanmean((corrected - wd) ** 2, axis=1))
        d_su = np.sqrt(np.nanmean((corrected - su) ** 2, axis=1))
    out[(dclass == 0) & (d_su + HOLIDAY_MARGIN < d_wd)] = 2
    return out


def _anchor(
    days: np.ndarray,
    log_mean: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray] | None,
    logc: np.ndarray,
) -> tuple[np.ndarray, float | None]:
    """Log mean level per day from another source (NaN where none) and the factor it implies
    for the overlapping days (None when there is no usable overlap or no candidate fits)."""
    anchor = np.full(len(days), np.nan)
    if reference is None:
        return anchor, None
    ref_days, ref_log = reference
    pos = np.searchsorted(ref_days, days)
    hit = (pos < len(ref_days)) & (ref_days[np.minimum(pos, len(ref_days) - 1)] == days)
    anchor[hit] = ref_log[pos[hit]]
    ratio = log_mean - anchor
    if not np.isfinite(ratio).any():
        return anchor, None
    r = float(_nanmedian(ratio))
    best = int(np.argmin(np.abs(logc - r)))
    return anchor, (float(10 ** logc[best]) if abs(logc[best] - r) <= MATCH_TOLERANCE else None)


def _base_from_contract(
    q90: np.ndarray, usable: np.ndarray, cap: float, tol: float, cands: np.ndarray
) -> float:
    """1 unless most days are impossible above the contract (or the whole series is tiny);
    then the candidate that brings the typical day closest to a typical utilisation."""
    util = float(_nanmedian(q90[usable])) / cap
    impossible = float(np.mean(q90[usable] > cap * tol))
    if impossible <= 0.8 and util >= MIN_UTILISATION:
        return 1.0
    ok = (util / cands <= tol) & (util / cands >= MIN_UTILISATION)
    if not ok.any():
        return 1.0
    score = np.abs(np.log10(util / cands) - np.log10(TYPICAL_UTILISATION))
    return float(cands[np.flatnonzero(ok)[np.argmin(score[ok])]])


def _validate_periods(
    g_factor: np.ndarray, level: np.ndarray, base: float, per_day: int, min_days: int
) -> np.ndarray:
    """Undo periods shorter than ``min_days`` or whose level jump against the neighbouring
    intervals (4 days each side, time-of-day normalised) does not match their factor within
    MATCH_TOLERANCE decades: they take their neighbours' factor when both sides agree (a
    holiday inside a period), the base factor otherwise."""
    out = g_factor.copy()
    run = np.flatnonzero(np.r_[True, g_factor[1:] != g_factor[:-1]])
    ends = np.r_[run[1:], len(g_factor)]
    near = 4 * per_day
    for i, (s0, s1) in enumerate(zip(run, ends, strict=True)):
        f = g_factor[s0]
        before = g_factor[run[i - 1]] if i > 0 else None
        after = g_factor[s1] if s1 < len(g_factor) else None
        sides = {x for x in (before, after) if x is not None}
        fallback = sides.pop() if len(sides) == 1 else base
        if f == fallback:
            continue
        if s1 - s0 < min_days * per_day * MIN_PERIOD_COVERAGE:
            out[s0:s1] = fallback
            continue
        nb = np.r_[max(0, s0 - near) : s0, s1 : min(len(level), s1 + near)]
        if len(nb) == 0:
            continue  # whole series: decided by the contractual power / the anchor alone
        inside = _nanmedian(level[s0:s1])
        outside = _nanmedian(level[nb] - np.log10(g_factor[nb]))
        expected = np.log10(f)
        if not np.isfinite(inside - outside) or abs(inside - outside - expected) > MATCH_TOLERANCE:
            out[s0:s1] = fallback
    return out


def _daily_features(
    gross: np.ndarray, d_inv: np.ndarray, n_days: int, cap: float
) -> tuple[np.ndarray, np.ndarray]:
    """log10 of daily mean, 10th and 90th percentile (NaN where ~0) and the raw 90th pct."""
    order = np.lexsort((gross, d_inv))
    sv = gross[order]
    counts = np.bincount(d_inv, minlength=n_days)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    q10 = sv[start + (0.1 * (counts - 1)).astype(np.int64)]
    q90 = sv[start + (0.9 * (counts - 1)).astype(np.int64)]
    mean = np.bincount(d_inv, weights=gross, minlength=n_days) / np.maximum(counts, 1)
    eps = cap * 1e-7
    feats = np.stack([mean, q10, q90], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(feats > eps, np.log10(np.where(feats > eps, feats, 1)), np.nan)
    return logs, q90


def _day_class(days: np.ndarray) -> np.ndarray:
    """0 weekday, 1 Saturday, 2 Sunday (days since the epoch: 1970-01-01 was a Thursday)."""
    dow = (days + 3) % 7  # Monday = 0
    return np.where(dow < 5, 0, dow - 4)


def _reference(
    feats: np.ndarray, days: np.ndarray, dclass: np.ndarray, rolling: bool
) -> np.ndarray:
    """Median of each feature over days of the same class: over the whole series, or rolling
    within +-REF_HALF_WINDOW days."""
    ref = np.full_like(feats, np.nan)
    if not rolling:
        for c in np.unique(dclass):
            sel = dclass == c
            if np.isfinite(feats[sel]).any():
                ref[sel] = _nanmedian(feats[sel], axis=0)
        return np.where(np.isnan(ref), _nanmedian(feats, axis=0), ref)
    span = int(days.max() - days.min()) + 1
    for c in np.unique(dclass):
        sel = np.flatnonzero(dclass == c)
        w = REF_HALF_WINDOW
        grid = np.full((span + 2 * w, feats.shape[1]), np.nan)
        grid[days[sel] - days.min() + w] = feats[sel]
        windows = np.lib.stride_tricks.sliding_window_view(grid, 2 * w + 1, axis=0)
        fallback = _nanmedian(feats[sel], axis=0) if len(sel) else np.nan
        ref[sel] = _nanmedian(windows[days[sel] - days.min()], axis=2)
        ref[sel] = np.where(np.isnan(ref[sel]), fallback, ref[sel])
    overall = _nanmedian(feats, axis=0)
    return np.where(np.isnan(ref), overall, ref)


def _emissions(
    feats: np.ndarray,
    ref: np.ndarray,
    logc: np.ndarray,
    sigma: float,
    q90: np.ndarray,
    cap_tol: float,
    anchor: np.ndarray,
    night_log: np.ndarray,
) -> np.ndarray:
    """(days x states) cost: squared robust deviations from the reference (and from the other
    source's level where there is one), infinite above the contract."""
    dev = feats[:, None, :] - logc[None, :, None] - ref[:, None, :]
    cost = np.nansum((dev / sigma) ** 2, axis=2)
    cost = np.minimum(cost, 400.0)  # one wild day must not force a change of scale
    adev = night_log[:, None] - logc[None, :] - anchor[:, None]
    cost += np.nan_to_num(ANCHOR_WEIGHT * (adev / sigma) ** 2)
    cost[:, 1:] += OFF_PRIOR
    impossible = (q90[:, None] / (10.0**logc)[None, :]) > cap_tol
    cost[impossible] = 1e6
    return cost


def _viterbi(emit: np.ndarray, penalty: float) -> np.ndarray:
    """Cheapest state path with a constant cost per change of state."""
    n, s = emit.shape
    back = np.zeros((n, s), dtype=np.int64)
    acc = emit[0].copy()
    for t in range(1, n):  # loop over days of one meter (<= a few hundred)
        best = int(np.argmin(acc))
        stay = acc
        switch = acc[best] + penalty
        back[t] = np.where(stay <= switch, np.arange(s), best)
        acc = np.minimum(stay, switch) + emit[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmin(acc))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _tod_profile(lg: np.ndarray, tod: np.ndarray, n: int) -> np.ndarray:
    """Median log-level per wall-clock slot, centred (0 where unknown)."""
    frame = pd.DataFrame({"tod": tod, "lg": lg}).dropna()
    prof = frame.groupby("tod")["lg"].median().reindex(range(n)).to_numpy()
    prof = prof - _nanmedian(prof) if np.isfinite(prof).any() else np.zeros(n)
    return np.nan_to_num(prof)
