"""Each series' reading interval is detected from its timestamps, never assumed.

A series (one register of one meter) whose readings come finer than the raw interval (5 min
instead of 15) is summed into raw intervals: every raw interval whose fine readings are all
there becomes one reading (each fine reading listed as ``aggregated_interval``, corrected, with
the interval's sum), the others are dropped (``incomplete_interval``). A series whose interval
does not divide the raw interval (7 or 10 min) is dropped whole (``irregular_interval``), and so
is one whose readings come coarser than the raw interval (30 or 60 min, ``coarse_interval``):
its energy per raw slot is unknown, and reading it as raw intervals would put every value in
one slot and let gap filling invent the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.etl.quarantine import Reason, concat_quarantine, quarantine_frame
from meterflow.etl.readings import REGISTERS, Locator, codes_in
from meterflow.schemas import Action

_NS_PER_MIN = 60 * 10**9


@dataclass(frozen=True)
class FineSeries:
    """Outcome of :func:`aggregate_fine_series` on the readings (positions into the input).

    ``keep``: readings passed on unchanged; ``new_pos``/``new_k``/``new_energy``: one reading
    per complete raw interval (``new_pos`` is its first fine reading, ``new_k`` its raw interval
    index); ``merged``/``merged_value``: the fine readings summed (and the sum);
    ``dropped_reason``: the fine readings dropped, as (positions, reason, detail)."""

    keep: np.ndarray
    new_pos: np.ndarray
    new_k: np.ndarray
    new_energy: np.ndarray
    merged: np.ndarray
    merged_value: np.ndarray
    dropped_reason: list[tuple[np.ndarray, Reason, np.ndarray]]


def modal_step(series: np.ndarray, ts: np.ndarray) -> dict[int, int]:
    """Most common positive step between consecutive distinct timestamps of each series."""
    order = np.lexsort((ts, series))
    s, t = series[order], ts[order]
    same = s[1:] == s[:-1]
    step = np.diff(t)
    ok = same & (step > 0)
    if not ok.any():
        return {}
    pairs = pd.DataFrame({"s": s[1:][ok], "step": step[ok]})
    counts = pairs.groupby(["s", "step"]).size().reset_index(name="n")
    best = counts.sort_values(["s", "n", "step"], ascending=[True, False, True])
    return dict(best.drop_duplicates("s")[["s", "step"]].itertuples(index=False, name=None))


def aggregate_fine_series(
    series: np.ndarray,
    ts: np.ndarray,
    energy: np.ndarray,
    candidates: np.ndarray,
    raw_ns: int,
    end_stamped: bool = False,
) -> FineSeries | None:
    """Sum the readings of series finer than ``raw_ns`` into raw intervals (module doc).

    ``series`` codes, ``ts`` interval starts (ns), ``candidates``: readings that may be
    aggregated (valid keys, single interval, not context). ``end_stamped``: the store stamps
    interval ends and ``ts`` is that end minus the raw interval, so the start of a finer reading
    is ``ts + raw - step``. None when no series is finer than the raw interval (the usual case,
    decided on the off-grid readings alone)."""
    off = candidates & (ts % raw_ns != 0)
    if not off.any():
        return None
    member = candidates & np.isin(series, np.unique(series[off]))
    steps = modal_step(series[member], ts[member])
    finer = [c for c, st in steps.items() if st < raw_ns]  # at the raw step: stray readings
    if not finer:
        return None
    member &= np.isin(series, finer)
    pos = np.flatnonzero(member)
    step = np.array([steps.get(int(c), 0) for c in series[pos]], dtype=np.int64)
    divides = raw_ns % step == 0
    irregular = pos[~divides]
    table = pd.DataFrame(
        {"pos": pos, "s": series[pos], "ts": ts[pos], "e": energy[pos], "step": step}
    )[divides]
    merged, new, incomplete = _sum_complete_intervals(table, raw_ns, end_stamped)
    keep = np.ones(len(series), dtype=bool)
    keep[member] = False
    step_text = (incomplete["step"] // _NS_PER_MIN).astype(str).to_numpy(dtype=object)
    incomplete_detail = "readings of " + step_text + " min do not cover their raw interval"
    irregular_detail = _irregular_detail(series[irregular], steps, raw_ns)
    return FineSeries(
        keep=np.flatnonzero(keep),
        new_pos=new["pos"].to_numpy(),
        new_k=new.index.get_level_values("k").to_numpy(np.int64),
        new_energy=new["total"].to_numpy(float),
        merged=merged["pos"].to_numpy(),
        merged_value=merged["total"].to_numpy(float),
        dropped_reason=[
            (irregular, Reason.IRREGULAR_INTERVAL, irregular_detail),
            (incomplete["pos"].to_numpy(), Reason.INCOMPLETE_INTERVAL, incomplete_detail),
        ],
    )


def _sum_complete_intervals(
    df: pd.DataFrame, raw_ns: int, end_stamped: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fine readings (``pos, s, ts, e, step``) of complete raw intervals with their sum
    (``total``), one row per such interval (``pos``: its first reading), and the others."""
    if end_stamped:
        df["ts"] += raw_ns - df["step"]
    df["k"] = df["ts"] // raw_ns
    df["good"] = (df["ts"] % df["step"] == 0) & np.isfinite(df["e"])
    df["good"] &= ~df.duplicated(["s", "ts"], keep=False)
    groups = df.groupby(["s", "k"], sort=False)
    size = groups["pos"].transform("size")
    ok = (groups["good"].transform("sum") == size) & (size == raw_ns // df["step"])
    merged = df[ok].assign(total=groups["e"].transform("sum")[ok])
    new = merged.groupby(["s", "k"], sort=False).agg(pos=("pos", "min"), total=("total", "first"))
    return merged, new, df[~ok]


def _irregular_detail(series: np.ndarray, steps: dict[int, int], raw_ns: int) -> np.ndarray:
    raw_min = raw_ns // _NS_PER_MIN
    text = [
        f"readings every {steps.get(int(c), 0) / _NS_PER_MIN:g} min: does not divide the "
        f"{raw_min}-min raw interval"
        for c in series
    ]
    return np.asarray(text, dtype=object)


def coarse_series(s: np.ndarray, k: np.ndarray, span: np.ndarray, n_series: int) -> np.ndarray:
    """Per series, the step (in raw intervals) of a series that reads coarser than the raw
    interval, 0 for the others. ``s``, ``k`` sorted by series, then interval; readings that
    span several intervals (register differences across missing reads) are not looked at.

    A series is coarse when fewer than half of its steps between consecutive single-interval
    readings are one interval and its most common step is longer."""
    single = span == 1
    s1, k1 = s[single], k[single]
    d = np.diff(k1)
    live = (s1[1:] == s1[:-1]) & (d > 0)
    total = np.bincount(s1[1:][live], minlength=n_series)
    ones = np.bincount(s1[1:][live & (d == 1)], minlength=n_series)
    out = np.zeros(n_series, dtype=np.int64)
    for series in np.flatnonzero((total > 0) & (2 * ones < total)):  # rare: a loop is fine
        vals, counts = np.unique(d[live & (s1[1:] == series)], return_counts=True)
        out[series] = max(int(vals[np.argmax(counts)]), 1) if len(vals) else 0
    out[out == 1] = 0
    return out


def aggregate_fine_readings(
    readings: pd.DataFrame,
    raw_interval_min: int,
    source: str,
    locate: Locator,
    end_stamped: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Readings with finer-than-raw series summed into raw intervals, and the quarantine rows
    that say so (module doc); the readings unchanged and None in the usual case.
    ``end_stamped``: see :func:`aggregate_fine_series`."""
    raw_ns = raw_interval_min * _NS_PER_MIN
    ts = readings["timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    if not (ts % raw_ns).any():  # the usual case: every reading on the raw grid
        return readings, None
    meter = readings["meter_id"]
    if isinstance(meter.dtype, pd.CategoricalDtype):
        mcode = meter.cat.codes.to_numpy(np.int64)
    else:
        mcode = pd.factorize(meter)[0].astype(np.int64)
    reg = codes_in(readings["register"], list(REGISTERS))
    energy = readings["energy_wh"].to_numpy(float)
    candidates = (mcode >= 0) & (reg >= 0) & (readings["span"].to_numpy() == 1)
    candidates &= ~readings["context"].to_numpy(bool) & ~readings["timestamp"].isna().to_numpy()
    fine = aggregate_fine_series(mcode * 2 + reg, ts, energy, candidates, raw_ns, end_stamped)
    if fine is None:
        return readings, None
    new = readings.iloc[fine.new_pos].copy()
    new["timestamp"] = pd.DatetimeIndex(fine.new_k * raw_ns, tz="UTC").as_unit("ns")
    new["energy_wh"] = fine.new_energy
    out = pd.concat([readings.iloc[fine.keep], new], ignore_index=True)
    parts = [
        _rows(
            readings,
            fine.merged,
            Action.CORRECTED,
            Reason.AGGREGATED_INTERVAL,
            f"summed into its {raw_interval_min}-min interval",
            fine.merged_value,
            source,
            locate,
        )
    ]
    for pos, reason, detail in fine.dropped_reason:
        parts.append(_rows(readings, pos, Action.DROPPED, reason, detail, np.nan, source, locate))
    return out, concat_quarantine(parts)


def _rows(readings, pos, action, reason, detail, new_value, source, locate) -> pd.DataFrame:
    sub = readings.iloc[pos]
    return quarantine_frame(
        meter_id=sub["meter_id"].astype(object).to_numpy(),
        timestamp=sub["timestamp"],
        source=source,
        original_value=sub["energy_wh"].to_numpy(float),
        new_value=new_value,
        action=action,
        reason=reason,
        detail=detail,
        register=sub["register"].astype(object).to_numpy(),
        location=locate(sub),
    )
