"""Labelled anomalies (in the truth) and raw-data defects (in the sources), with ground truth.

Anomalies are behavioural and stay within contractual power, so a correct ETL keeps them; they
change the clean truth. Defects damage only the raw data of one source; each is logged with
``meter_id, source, kind, start_utc, end_utc, factor, detail``. All spans follow the readings
convention: UTC interval starts, end exclusive. For a defect on a SQL row or a Mongo document
(stamped at the END of its interval) the span is the interval that the stamp closes.

Defects of one source never overlap on a meter (one interval of margin between them), except
old-export scale periods and DST days, which may contain other defects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from meterflow.demo.fleet import INTERVAL, STREAM_ANOMALY, CleanFleet, rng_for
from meterflow.domain import RAW_INTERVAL_MIN, REGISTER_ROLLOVER_KWH, SOURCE_SQL
from meterflow.sources.formats import OPC_BAD, OPC_UNCERTAIN

log = logging.getLogger(__name__)

DAY = 24 * 60 // RAW_INTERVAL_MIN  # intervals per (ordinary) day
ANOMALY_SHARE = 0.2  # of meters with one or more labelled anomalies
ANOMALY_KINDS = ("spike", "flat_line", "level_shift", "theft")
ANOMALY_WEIGHTS = (0.3, 0.25, 0.25, 0.2)
SCALE_FACTORS = (1000.0, 0.001, 10.0, 4.0, 60.0)
SCALE_WEIGHTS = (0.3, 0.15, 0.15, 0.25, 0.15)

# Mean number of events per meter and 30 days of a source's window.
HISTORIAN_RATES = {
    "gap_short": 1.5,
    "gap_long": 0.25,
    "duplicate_exact": 1.0,
    "duplicate_conflict": 0.6,
    "outlier": 0.4,
    "bad_quality": 1.5,
    "uncertain_quality": 0.5,
}
OLD_RATES = {k: HISTORIAN_RATES[k] for k in list(HISTORIAN_RATES)[:5]}
MONGO_RATES = {"gap_short": 2.0, "gap_long": 0.3, "duplicate_exact": 1.0, "duplicate_conflict": 0.5}
SCALE_SHARE, RESET_SHARE, ROLLOVER_SHARE = 0.15, 0.1, 0.05

LENGTHS: dict[str, Callable[[np.random.Generator], int]] = {
    "gap_short": lambda r: int(r.integers(1, 4)),
    "gap_long": lambda r: int(r.integers(8, 2 * DAY + 1)),  # 2 h .. 2 days
    "bad_quality": lambda r: int(r.integers(1, 5)),
    "uncertain_quality": lambda r: int(r.integers(1, 9)),
}


@dataclass
class DefectLog:
    """Ground-truth rows, with spans as global interval indices until ``frame``."""

    rows: list[tuple] = field(default_factory=list)

    def add(
        self, meter: int, source: str, kind: str, first: int, stop: int, factor: float, detail: str
    ) -> None:
        self.rows.append((meter, source, kind, first, stop, factor, detail))

    def frame(self, clean: CleanFleet) -> pd.DataFrame:
        cols = ["meter", "source", "kind", "first", "stop", "factor", "detail"]
        df = pd.DataFrame(self.rows, columns=cols)
        t0 = clean.timeline.times[0]
        out = pd.DataFrame(
            {
                "meter_id": clean.meters["meter_id"].to_numpy()[df["meter"].to_numpy(int)],
                "source": df["source"].astype(str),
                "kind": df["kind"].astype(str),
                "start_utc": t0 + INTERVAL * df["first"].to_numpy(int),
                "end_utc": t0 + INTERVAL * df["stop"].to_numpy(int),
                "factor": df["factor"].astype(float),
                "detail": df["detail"].astype(str),
            }
        )
        return out.sort_values(["source", "meter_id", "start_utc", "kind"], ignore_index=True)


class Placer:
    """Places non-overlapping events on one source's (meter, position) grid."""

    def __init__(self, rng: np.random.Generator, busy: np.ndarray, days: float):
        self.rng, self.busy, self.days = rng, busy, days

    def place(self, rate: float, length: Callable[[np.random.Generator], int]) -> list[tuple]:
        """``(meter, first, stop)`` of Poisson(rate per 30 days) events per meter; at least one
        event overall when the grid has room."""
        n_meters = self.busy.shape[0]
        counts = self.rng.poisson(rate * self.days / 30, n_meters)
        if counts.sum() == 0:
            counts[self.rng.integers(n_meters)] = 1
        events = []
        for m in np.repeat(np.arange(n_meters), counts):
            span = self.find(int(m), length(self.rng))
            if span is not None:
                events.append((int(m), *span))
        return events

    def find(self, m: int, size: int, lo: int = 0, hi: int | None = None) -> tuple | None:
        """A free span of ``size`` positions in [lo, hi) of meter ``m``, marked busy."""
        hi = self.busy.shape[1] if hi is None else hi
        size = min(size, hi - lo)
        for _ in range(30):
            j = int(self.rng.integers(lo, hi - size + 1))
            if not self.busy[m, max(j - 1, 0) : j + size + 1].any():
                self.busy[m, j : j + size] = True
                return j, j + size
        return None


@dataclass(frozen=True)
class Truth:
    """Clean truth with labelled anomalies (Wh per interval, rows = meters)."""

    import_wh: np.ndarray
    export_wh: np.ndarray
    anomaly: np.ndarray  # bool, inside a labelled anomaly
    anomalies: pd.DataFrame


def inject_anomalies(clean: CleanFleet) -> Truth:
    """Spikes, flat-lines, level shifts and theft-like under-reading on about 20 % of meters,
    mainly in the SQL and Mongo periods, always below contractual power."""
    spec, tl = clean.spec, clean.timeline
    rng = rng_for(spec.seed, STREAM_ANOMALY)
    imp, exp = clean.import_wh.copy(), clean.export_wh.copy()
    mask = np.zeros(imp.shape, dtype=bool)
    n_meters, n = imp.shape
    cap = 0.95 * clean.contract_wh
    sql0, hist_end = tl.windows[SOURCE_SQL]
    periods = [(0, sql0), (sql0, hist_end), (hist_end, n)]
    durations = {
        "spike": (1, 5),
        "flat_line": (24, 193),
        "level_shift": (2 * DAY, 14 * DAY + 1),
        "theft": (7 * DAY, 28 * DAY + 1),
    }
    busy = np.zeros(imp.shape, dtype=bool)
    placer = Placer(rng, busy, 0)
    rows = []
    chosen = rng.choice(n_meters, max(1, round(ANOMALY_SHARE * n_meters)), replace=False)
    for m in sorted(int(x) for x in chosen):
        for _ in range(int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))):
            kind = str(rng.choice(ANOMALY_KINDS, p=ANOMALY_WEIGHTS))
            size = int(rng.integers(*durations[kind]))
            for _attempt in range(10):
                lo, hi = periods[int(rng.choice(3, p=[0.2, 0.45, 0.35]))]
                # up to a day of normal load on each side (less in short periods)
                margin = min(DAY, max(0, (hi - lo - size) // 2))
                span = placer.find(m, size + 2 * margin, lo, hi)
                if span is None:
                    continue
                a, b = span[0] + margin, span[1] - margin
                if b > a and (mag := _apply(kind, rng, imp, exp, m, a, b, cap[m])) is not None:
                    mask[m, a:b] = True
                    rows.append((m, kind, a, b, mag))
                    break
    ids = clean.meters["meter_id"].to_numpy()
    t0 = tl.times[0]
    table = pd.DataFrame(
        {
            "meter_id": [ids[r[0]] for r in rows],
            "kind": [r[1] for r in rows],
            "start_utc": pd.DatetimeIndex([t0 + INTERVAL * r[2] for r in rows], tz="UTC"),
            "end_utc": pd.DatetimeIndex([t0 + INTERVAL * r[3] for r in rows], tz="UTC"),
            "magnitude": [float(r[4]) for r in rows],
        }
    ).sort_values(["meter_id", "start_utc"], ignore_index=True)
    log.info("demo fleet: %d labelled anomalies on %d meters", len(table), table.meter_id.nunique())
    return Truth(imp, exp, mask, table)


def _apply(
    kind: str,
    rng: np.random.Generator,
    imp: np.ndarray,
    exp: np.ndarray,
    m: int,
    a: int,
    b: int,
    cap: float,
) -> float | None:
    """Apply one anomaly to meter ``m`` on [a, b); its magnitude, or None if it cannot fit."""
    typical = max(float(imp[m, max(a - DAY, 0) : a + 1].mean()), 1.0)
    seg = imp[m, a:b]
    if kind == "spike":
        factor = round(float(rng.uniform(3, 6)), 3)
        new = np.round(factor * np.maximum(seg, typical))
        if new.max() > cap:
            return None
        imp[m, a:b] = new
        return factor
    if kind == "flat_line":
        level = float(seg[0]) if seg[0] > 0 else round(typical)
        imp[m, a:b] = level
        exp[m, a:b] = exp[m, a]
        return level
    if kind == "level_shift":
        factor = float(rng.uniform(1.6, 2.5) if rng.random() < 0.5 else rng.uniform(0.4, 0.6))
    else:  # theft
        factor = float(rng.uniform(0.2, 0.5))
    factor = round(factor, 3)
    imp[m, a:b] = np.round(np.minimum(seg * factor, cap))
    return factor


@dataclass(frozen=True)
class Window:
    """One source's window on the timeline (global interval indices)."""

    source: str
    first: int
    stop: int

    @property
    def days(self) -> float:
        return (self.stop - self.first) / DAY


def damage_historian(
    rng: np.random.Generator,
    win: Window,
    energy: np.ndarray,
    quality: np.ndarray,
    keep: np.ndarray,
    contract_kwh: np.ndarray,
    dlog: DefectLog,
) -> dict[str, np.ndarray]:
    """Damage the historian grid in place (``(meter, interval, tag)``: kWh, OPC code, row kept)
    and return the late duplicate rows to append (meter, pos, tag, energy, quality)."""
    placer = Placer(rng, np.zeros(energy.shape[:2], dtype=bool), win.days)
    extra: list[tuple] = []
    for kind, rate in HISTORIAN_RATES.items():
        for m, j0, j1 in placer.place(rate, LENGTHS.get(kind, lambda r: 1)):
            factor, detail = np.nan, ""
            if kind.startswith("gap"):
                keep[m, j0:j1] = False
                detail = f"{j1 - j0} intervals missing (both tags)"
            elif kind == "duplicate_exact":
                extra += [(m, j0, t, energy[m, j0, t], quality[m, j0, t]) for t in (0, 1)]
                detail = "both tags repeated with the same value"
            elif kind == "duplicate_conflict":
                true = energy[m, j0, 0]
                wrong = _conflicting(rng, true)
                extra += [(m, j0, 0, wrong, quality[m, j0, 0])]
                extra += [(m, j0, 1, energy[m, j0, 1], quality[m, j0, 1])]
                factor, detail = wrong, f"import repeated as {wrong:g} kWh (true {true:g})"
            elif kind == "outlier":
                factor = round(float(contract_kwh[m] * rng.uniform(3, 30)), 3)
                energy[m, j0, 0] = factor
                detail = f"import {factor:g} kWh > contract {contract_kwh[m]:g} kWh/interval"
            elif kind == "bad_quality":
                energy[m, j0:j1] = rng.choice([-999.0, 0.0, 65535.0, -1.0e6, 1.0e9], (j1 - j0, 2))
                quality[m, j0:j1] = OPC_BAD
                detail = f"OPC {OPC_BAD} with garbage values (both tags)"
            else:
                quality[m, j0:j1] = OPC_UNCERTAIN
                detail = f"OPC {OPC_UNCERTAIN}, values correct"
            dlog.add(m, win.source, kind, win.first + j0, win.first + j1, factor, detail)
    cols = ["meter", "pos", "tag", "energy", "quality"]
    arr = list(zip(*extra, strict=True)) if extra else [[] for _ in cols]
    return {c: np.asarray(v) for c, v in zip(cols, arr, strict=True)}


def _conflicting(rng: np.random.Generator, true: float) -> float:
    """A repeated reading with a different value (kWh, Wh resolution)."""
    wrong = true * rng.uniform(0.5, 1.5) if true > 0 else rng.uniform(0.01, 0.3)
    wrong = round(float(wrong), 3)
    return wrong if wrong != true else round(true + 0.001, 3)


def damage_old_exports(
    rng: np.random.Generator,
    win: Window,
    imp: np.ndarray,
    exp: np.ndarray,
    count: np.ndarray,
    dup_imp: np.ndarray,
    factor: np.ndarray,
    dst_days: list[tuple[int, int]],
    contract_kwh: np.ndarray,
    dlog: DefectLog,
) -> None:
    """Damage the old-export grid in place (``(meter, interval)``): values in kWh, row count
    (0 = gap, 2 = duplicated), import of the repeated row, scale factor per row."""
    n_meters, n = imp.shape
    busy = np.zeros((n_meters, n), dtype=bool)
    for a, b in dst_days:  # keep DST days readable: repeats must stay in time order
        busy[:, a:b] = True
    placer = Placer(rng, busy, win.days)
    for kind, rate in OLD_RATES.items():
        for m, j0, j1 in placer.place(rate, LENGTHS.get(kind, lambda r: 1)):
            fac, detail = np.nan, ""
            if kind.startswith("gap"):
                count[m, j0:j1] = 0
                detail = f"{j1 - j0} rows missing"
            elif kind == "duplicate_exact":
                count[m, j0] = 2
                detail = "row repeated with the same values"
            elif kind == "duplicate_conflict":
                count[m, j0] = 2
                dup_imp[m, j0] = fac = _conflicting(rng, float(imp[m, j0]))
                detail = f"row repeated with active_import {fac:g} (true {imp[m, j0]:g}, in kWh)"
            else:
                fac = round(float(contract_kwh[m] * rng.uniform(3, 30)), 3)
                imp[m, j0] = dup_imp[m, j0] = fac
                detail = f"import {fac:g} kWh > contract {contract_kwh[m]:g} kWh/interval"
            dlog.add(m, win.source, kind, win.first + j0, win.first + j1, fac, detail)
    for m in rng.choice(n_meters, max(1, round(SCALE_SHARE * n_meters)), replace=False):
        fac = float(rng.choice(SCALE_FACTORS, p=SCALE_WEIGHTS))
        if rng.random() < 0.3:
            j0, j1 = 0, n
        else:
            size = min(int(rng.integers(7, 61)) * DAY, n)
            j0 = int(rng.integers(0, n - size + 1))
            j1 = j0 + size
        factor[m, j0:j1] = fac
        detail = f"both columns x{fac:g} (unit {_UNIT_NAMES[fac]})"
        dlog.add(int(m), win.source, "scale", win.first + j0, win.first + j1, fac, detail)
    for a, b in dst_days:
        kind = "dst_fall_back" if b - a > DAY else "dst_spring_forward"
        detail = f"{b - a} rows: local 02:00-02:45 " + ("twice" if b - a > DAY else "missing")
        for m in range(n_meters):
            dlog.add(m, win.source, kind, win.first + a, win.first + b, float(b - a), detail)


_UNIT_NAMES = {1000.0: "Wh", 0.001: "MWh", 10.0: "daWh", 4.0: "kW average", 60.0: "kWmin"}


def choose_rollovers(
    rng: np.random.Generator, window_kwh: np.ndarray, start_kwh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Put some meters' import register just below the rollover so that it wraps inside the
    window; return the new starting registers (kWh) and those meters."""
    out = start_kwh.copy()
    n = len(out)
    chosen = rng.choice(n, max(1, round(ROLLOVER_SHARE * n)), replace=False)
    for m in chosen:
        used = max(float(window_kwh[m]), 0.01)
        out[m] = round(REGISTER_ROLLOVER_KWH - used * rng.uniform(0.2, 0.8), 3)
    return out, np.sort(chosen)


def damage_mongo(
    rng: np.random.Generator,
    win: Window,
    reg_imp_wh: np.ndarray,
    reg_exp_wh: np.ndarray,
    keep: np.ndarray,
    no_reset: np.ndarray,
    dlog: DefectLog,
) -> dict[str, np.ndarray]:
    """Damage the Mongo read grid in place (``(meter, read)``; read k at window start + k
    intervals, registers in whole Wh): counter resets (not on ``no_reset`` meters), rollovers
    (logged), missing documents; return duplicate documents to append (meter, read, import
    delta kWh)."""
    n_meters, n_reads = keep.shape
    busy = np.zeros((n_meters, n_reads), dtype=bool)
    busy[:, 0] = True  # read 0 closes the interval before the window
    placer = Placer(rng, busy, win.days)
    rollover_wh = round(REGISTER_ROLLOVER_KWH * 1000)
    candidates = np.setdiff1d(np.arange(n_meters), no_reset)
    n_resets = min(len(candidates), max(1, round(RESET_SHARE * n_meters)))
    for m in rng.choice(candidates, n_resets, replace=False):
        span = placer.find(int(m), 1, 1, n_reads)
        if span is None:
            continue
        k = span[0]
        old = reg_imp_wh[m, k - 1] / 1000
        for reg in (reg_imp_wh, reg_exp_wh):
            reg[m, k:] = (reg[m, k:] - reg[m, k - 1]) % rollover_wh
        detail = f"meter replaced: registers restart at 0 (import was {old:g} kWh)"
        dlog.add(int(m), win.source, "counter_reset", win.first + k - 1, win.first + k, old, detail)
    for m, k in zip(*np.nonzero(np.diff(reg_imp_wh, axis=1) < 0), strict=True):
        if busy[m, k + 1]:
            continue  # a reset, logged above
        busy[m, k + 1] = True
        detail = f"import register wraps at {REGISTER_ROLLOVER_KWH:g} kWh"
        first = win.first + int(k)
        dlog.add(int(m), win.source, "rollover", first, first + 1, REGISTER_ROLLOVER_KWH, detail)
    dups: list[tuple] = []
    for kind, rate in MONGO_RATES.items():
        for m, k0, k1 in placer.place(rate, LENGTHS.get(kind, lambda r: 1)):
            fac, detail = np.nan, ""
            if kind.startswith("gap"):
                keep[m, k0:k1] = False
                detail = f"{k1 - k0} documents missing"
            elif kind == "duplicate_exact":
                dups.append((m, k0, 0.0))
                detail = "document repeated"
            else:
                fac = round(float(rng.uniform(0.01, 0.5)), 3)
                dups.append((m, k0, fac))
                detail = f"document repeated with import_kwh +{fac:g}"
            dlog.add(m, win.source, kind, win.first + k0 - 1, win.first + k1 - 1, fac, detail)
    cols = ["meter", "read", "delta_kwh"]
    arr = list(zip(*dups, strict=True)) if dups else [[] for _ in cols]
    return {c: np.asarray(v) for c, v in zip(cols, arr, strict=True)}
