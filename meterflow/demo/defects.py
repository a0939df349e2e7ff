"""Labelled anomalies (in the truth) and raw-data defects (in the sources), with ground truth.

Anomalies are behavioural and stay within contractual power, so a correct ETL keeps them; they
change the clean truth. Defects damage only the raw data of one source; each is logged with
``meter_id, source, kind, start_utc, end_utc, factor, detail``. All spans follow the readings
convention: UTC interval starts, end exclusive. For a defect on a SQL row or a Mongo document
(stamped at the END of its interval) the span is the interval that the stamp closes.

Defects of one source never overlap on a meter (one interval of margin between them), except
old-export scale periods and DST days, which may contain other defects.

Which meters get anomalies, scale errors, rollovers and counter resets, and one meter per defect
kind that surely gets that kind, is drawn once per fleet (``FleetPlan``); everything else from
each meter's own generators, so a block of meters is damaged alike in any cut of the fleet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from meterflow.demo.fleet import (
    STREAM_ANOMALY,
    STREAM_HISTORIAN,
    STREAM_MONGO,
    STREAM_OLD,
    CleanBlock,
    DemoSpec,
    rng_for,
)
from meterflow.domain import (
    RAW_INTERVAL_MIN,
    REGISTER_ROLLOVER_KWH,
    SOURCE_NEWMONGO,
    SOURCE_OLDMONGO,
    SOURCE_SQL,
)
from meterflow.sources.formats import OPC_BAD, OPC_UNCERTAIN

DAY = 24 * 60 // RAW_INTERVAL_MIN  # intervals per (ordinary) day
ANOMALY_SHARE = 0.2  # of meters with one or more labelled anomalies
ANOMALY_KINDS = ("spike", "flat_line", "level_shift", "theft")
ANOMALY_WEIGHTS = (0.3, 0.25, 0.25, 0.2)
DURATIONS = {  # intervals, [low, high)
    "spike": (1, 5),
    "flat_line": (24, 193),
    "level_shift": (2 * DAY, 14 * DAY + 1),
    "theft": (7 * DAY, 28 * DAY + 1),
}
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
SCALE_MIN_EDGE = 3 * DAY  # fewer unscaled rows at a window edge join the scale period
RATES = {SOURCE_SQL: HISTORIAN_RATES, SOURCE_OLDMONGO: OLD_RATES, SOURCE_NEWMONGO: MONGO_RATES}


def _one(rng: np.random.Generator) -> int:
    """Events of one position (the default length)."""
    return 1


LENGTHS: dict[str, Callable[[np.random.Generator], int]] = {
    "gap_short": lambda r: int(r.integers(1, 4)),
    "gap_long": lambda r: int(r.integers(8, 2 * DAY + 1)),  # 2 h .. 2 days
    "bad_quality": lambda r: int(r.integers(1, 5)),
    "uncertain_quality": lambda r: int(r.integers(1, 9)),
}


@dataclass(frozen=True)
class FleetPlan:
    """Fleet-wide choices of meters (0-based fleet positions)."""

    anomalous: frozenset[int]  # with labelled anomalies
    scaled: frozenset[int]  # with an old-export scale error
    rolled: frozenset[int]  # whose import register rolls over in the Mongo window
    reset: frozenset[int]  # replaced (registers restart) in the Mongo window
    sure: dict[tuple[str, str], int]  # (source, kind) -> a meter that surely gets that kind

    def sure_of(self, source: str, kind: str, meter: int) -> bool:
        """Whether ``meter`` surely gets at least one defect of ``kind`` in ``source``."""
        return self.sure.get((source, kind)) == meter


def fleet_plan(spec: DemoSpec) -> FleetPlan:
    """The fleet-wide choices of ``spec`` (about 20 % anomalous, 15 % scaled, 5 % rolled over
    and 10 % reset meters, never both of the last two)."""
    n = spec.n_meters

    def pick(rng: np.random.Generator, among: np.ndarray, share: float) -> frozenset[int]:
        size = min(len(among), max(1, round(share * n)))
        return frozenset(int(m) for m in rng.choice(among, size, replace=False))

    everyone = np.arange(n)
    rngs = {SOURCE_SQL: rng_for(spec.seed, STREAM_HISTORIAN)}
    rngs[SOURCE_OLDMONGO] = old = rng_for(spec.seed, STREAM_OLD)
    rngs[SOURCE_NEWMONGO] = mongo = rng_for(spec.seed, STREAM_MONGO)
    anomalous = pick(rng_for(spec.seed, STREAM_ANOMALY), everyone, ANOMALY_SHARE)
    scaled = pick(old, everyone, SCALE_SHARE)
    rolled = pick(mongo, everyone, ROLLOVER_SHARE)
    reset = pick(mongo, np.setdiff1d(everyone, sorted(rolled)), RESET_SHARE)
    sure = {(src, k): int(rngs[src].integers(n)) for src, rates in RATES.items() for k in rates}
    return FleetPlan(anomalous, scaled, rolled, reset, sure)


def utc(clean: CleanBlock, positions: np.ndarray) -> pd.DatetimeIndex:
    """UTC instants of interval indices of the timeline (its end included)."""
    minutes = np.asarray(positions, dtype=np.int64) * RAW_INTERVAL_MIN
    return clean.timeline.times[0] + pd.to_timedelta(minutes, unit="min")


def meter_ids(clean: CleanBlock, rows: np.ndarray) -> np.ndarray:
    """Ids of the block's meters at ``rows`` (text, also when empty)."""
    return clean.meters["meter_id"].to_numpy()[np.asarray(rows, dtype=int)].astype(str)


@dataclass
class DefectLog:
    """Ground-truth rows of one block, with meters as block rows and spans as global interval
    indices until ``frame``."""

    rows: list[tuple] = field(default_factory=list)

    def add(
        self, meter: int, source: str, kind: str, first: int, stop: int, factor: float, detail: str
    ) -> None:
        self.rows.append((meter, source, kind, first, stop, factor, detail))

    def frame(self, clean: CleanBlock) -> pd.DataFrame:
        """The rows in meter order (then source, start, kind), as the ground truth lists them."""
        cols = ["meter", "source", "kind", "first", "stop", "factor", "detail"]
        df = pd.DataFrame(self.rows, columns=cols)
        out = pd.DataFrame(
            {
                "meter": df["meter"].to_numpy(int),
                "meter_id": meter_ids(clean, df["meter"]),
                "source": df["source"].astype(str),
                "kind": df["kind"].astype(str),
                "start_utc": utc(clean, df["first"]),
                "end_utc": utc(clean, df["stop"]),
                "factor": df["factor"].astype(float),
                "detail": df["detail"].astype(str),
            }
        )
        out = out.sort_values(["meter", "source", "start_utc", "kind"], ignore_index=True)
        return out.drop(columns="meter")


class Placer:
    """Places non-overlapping events on one meter's positions in one source's window."""

    def __init__(self, rng: np.random.Generator, busy: np.ndarray, days: float):
        self.rng, self.busy, self.days = rng, busy, days

    def place(
        self, rate: float, length: Callable[[np.random.Generator], int], *, sure: bool = False
    ) -> list[tuple[int, int]]:
        """``(first, stop)`` of Poisson(rate per 30 days) events; at least one when ``sure``
        and the row has room."""
        count = max(int(self.rng.poisson(rate * self.days / 30)), int(sure))
        events = []
        for _ in range(count):
            span = self.find(length(self.rng))
            if span is not None:
                events.append(span)
        return events

    def find(self, size: int, lo: int = 0, hi: int | None = None) -> tuple[int, int] | None:
        """A free span of ``size`` positions in [lo, hi), marked busy."""
        hi = len(self.busy) if hi is None else hi
        size = min(size, hi - lo)
        for _ in range(30):
            j = int(self.rng.integers(lo, hi - size + 1))
            if not self.busy[max(j - 1, 0) : j + size + 1].any():
                self.busy[j : j + size] = True
                return j, j + size
        return None


@dataclass(frozen=True)
class Truth:
    """Clean truth with labelled anomalies (Wh per interval, rows = meters)."""

    import_wh: np.ndarray
    export_wh: np.ndarray
    anomaly: np.ndarray  # bool, inside a labelled anomaly
    anomalies: pd.DataFrame


def inject_anomalies(clean: CleanBlock, plan: FleetPlan) -> Truth:
    """Spikes, flat-lines, level shifts and theft-like under-reading on the plan's anomalous
    meters, mainly in the SQL and Mongo periods, always below contractual power."""
    tl = clean.timeline
    imp, exp = clean.import_wh.copy(), clean.export_wh.copy()
    mask = np.zeros(imp.shape, dtype=bool)
    cap = 0.95 * clean.contract_wh
    sql0, hist_end = tl.windows[SOURCE_SQL]
    periods = [(0, sql0), (sql0, hist_end), (hist_end, imp.shape[1])]
    rows = []
    for m, g in enumerate(clean.meter_index):
        if int(g) not in plan.anomalous:
            continue
        rng = rng_for(clean.spec.seed, STREAM_ANOMALY, int(g))
        recent = int(g) == min(plan.anomalous)  # so the most recent days hold one, surely
        for kind, a, b, mag in _meter_anomalies(rng, periods, imp[m], exp[m], cap[m], recent):
            mask[m, a:b] = True
            rows.append((m, kind, a, b, mag))
    df = pd.DataFrame(rows, columns=["meter", "kind", "first", "stop", "magnitude"])
    table = pd.DataFrame(
        {
            "meter_id": meter_ids(clean, df["meter"]),
            "kind": df["kind"].astype(str),
            "start_utc": utc(clean, df["first"]),
            "end_utc": utc(clean, df["stop"]),
            "magnitude": df["magnitude"].astype(float),
        }
    ).sort_values(["meter_id", "start_utc"], ignore_index=True)
    return Truth(imp, exp, mask, table)


def _meter_anomalies(
    rng: np.random.Generator,
    periods: list[tuple[int, int]],
    imp: np.ndarray,
    exp: np.ndarray,
    cap: float,
    recent: bool = False,
) -> list[tuple[str, int, int, float]]:
    """Apply one to three anomalies to one meter's rows (in place): kind, span, magnitude; with
    ``recent`` the first one in the last (MongoDB) period, where the test days of a short demo
    lie."""
    placer = Placer(rng, np.zeros(len(imp), dtype=bool), 0)
    out = []
    for i in range(int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))):
        kind = str(rng.choice(ANOMALY_KINDS, p=ANOMALY_WEIGHTS))
        size = int(rng.integers(*DURATIONS[kind]))
        for _attempt in range(10):
            period = int(rng.choice(3, p=[0.2, 0.45, 0.35]))
            lo, hi = periods[2 if recent and i == 0 else period]
            # up to a day of normal load on each side (less in short periods)
            margin = min(DAY, max(0, (hi - lo - size) // 2))
            span = placer.find(size + 2 * margin, lo, hi)
            if span is None:
                continue
            a, b = span[0] + margin, span[1] - margin
            if b > a and (mag := _apply(kind, rng, imp, exp, a, b, cap)) is not None:
                out.append((kind, a, b, mag))
                break
    return out


def _apply(
    kind: str,
    rng: np.random.Generator,
    imp: np.ndarray,
    exp: np.ndarray,
    a: int,
    b: int,
    cap: float,
) -> float | None:
    """Apply one anomaly to a meter's rows on [a, b); its magnitude, or None if it cannot fit."""
    typical = max(float(imp[max(a - DAY, 0) : a + 1].mean()), 1.0)
    seg = imp[a:b]
    if kind == "spike":
        factor = round(float(rng.uniform(3, 6)), 3)
        new = np.round(factor * np.maximum(seg, typical))
        if new.max() > cap:
            return None
        imp[a:b] = new
        return factor
    if kind == "flat_line":
        level = float(seg[0]) if seg[0] > 0 else round(typical)
        imp[a:b] = level
        exp[a:b] = exp[a]
        return level
    if kind == "level_shift":
        factor = float(rng.uniform(1.6, 2.5) if rng.random() < 0.5 else rng.uniform(0.4, 0.6))
    else:  # theft
        factor = float(rng.uniform(0.2, 0.5))
    factor = round(factor, 3)
    imp[a:b] = np.round(np.minimum(seg * factor, cap))
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


@dataclass
class HistorianGrid:
    """A block's historian cells ``(meter, interval, tag)``: kWh, OPC code, row kept; and the
    late duplicate rows to append ``(meter, pos, tag, energy, quality)``."""

    energy: np.ndarray
    quality: np.ndarray
    keep: np.ndarray
    extra: list[tuple] = field(default_factory=list)


def damage_historian(
    clean: CleanBlock, plan: FleetPlan, win: Window, grid: HistorianGrid, dlog: DefectLog
) -> None:
    """Damage the historian grid in place: gaps, duplicates, outliers, bad/uncertain quality."""
    contract_kwh = clean.contract_wh / 1000
    for m, g in enumerate(int(g) for g in clean.meter_index):
        rng = rng_for(clean.spec.seed, STREAM_HISTORIAN, g)
        placer = Placer(rng, np.zeros(grid.energy.shape[1], dtype=bool), win.days)
        for kind, rate in HISTORIAN_RATES.items():
            sure = plan.sure_of(win.source, kind, g)
            for j0, j1 in placer.place(rate, LENGTHS.get(kind, _one), sure=sure):
                factor, detail = _historian_defect(kind, rng, grid, m, j0, j1, contract_kwh[m])
                dlog.add(m, win.source, kind, win.first + j0, win.first + j1, factor, detail)


def _historian_defect(
    kind: str,
    rng: np.random.Generator,
    grid: HistorianGrid,
    m: int,
    j0: int,
    j1: int,
    contract_kwh: float,
) -> tuple[float, str]:
    """Apply one historian defect of meter ``m`` on [j0, j1); its factor and detail."""
    energy, quality = grid.energy[m], grid.quality[m]
    if kind.startswith("gap"):
        grid.keep[m, j0:j1] = False
        return np.nan, f"{j1 - j0} intervals missing (both tags)"
    if kind == "duplicate_exact":
        grid.extra += [(m, j0, t, energy[j0, t], quality[j0, t]) for t in (0, 1)]
        return np.nan, "both tags repeated with the same value"
    if kind == "duplicate_conflict":
        true = energy[j0, 0]
        wrong = _conflicting(rng, true)
        grid.extra += [(m, j0, 0, wrong, quality[j0, 0]), (m, j0, 1, energy[j0, 1], quality[j0, 1])]
        return wrong, f"import repeated as {wrong:g} kWh (true {true:g})"
    if kind == "outlier":
        factor = round(float(contract_kwh * rng.uniform(3, 30)), 3)
        energy[j0, 0] = factor
        return factor, f"import {factor:g} kWh > contract {contract_kwh:g} kWh/interval"
    if kind == "bad_quality":
        energy[j0:j1] = rng.choice([-999.0, 0.0, 65535.0, -1.0e6, 1.0e9], (j1 - j0, 2))
        quality[j0:j1] = OPC_BAD
        return np.nan, f"OPC {OPC_BAD} with garbage values (both tags)"
    quality[j0:j1] = OPC_UNCERTAIN
    return np.nan, f"OPC {OPC_UNCERTAIN}, values correct"


def _conflicting(rng: np.random.Generator, true: float) -> float:
    """A repeated reading with a different value (kWh, Wh resolution)."""
    wrong = true * rng.uniform(0.5, 1.5) if true > 0 else rng.uniform(0.01, 0.3)
    wrong = round(float(wrong), 3)
    return wrong if wrong != true else round(true + 0.001, 3)


@dataclass(frozen=True)
class OldGrid:
    """A block's old-export cells ``(meter, interval)``: values in kWh, row count (0 = gap,
    2 = duplicated), import of the repeated row, scale factor per row."""

    imp: np.ndarray
    exp: np.ndarray
    count: np.ndarray
    dup_imp: np.ndarray
    factor: np.ndarray


def damage_old_exports(
    clean: CleanBlock,
    plan: FleetPlan,
    win: Window,
    grid: OldGrid,
    dst_days: list[tuple[int, int]],
    dlog: DefectLog,
) -> None:
    """Damage the old-export grid in place: gaps, duplicates, outliers, scale periods; log the
    DST days (``dst_days``: window positions) of every meter."""
    contract_kwh = clean.contract_wh / 1000
    n = grid.imp.shape[1]
    for m, g in enumerate(int(g) for g in clean.meter_index):
        rng = rng_for(clean.spec.seed, STREAM_OLD, g)
        busy = np.zeros(n, dtype=bool)
        for a, b in dst_days:  # keep DST days readable: repeats must stay in time order
            busy[a:b] = True
        placer = Placer(rng, busy, win.days)
        for kind, rate in OLD_RATES.items():
            sure = plan.sure_of(win.source, kind, g)
            for j0, j1 in placer.place(rate, LENGTHS.get(kind, _one), sure=sure):
                fac, detail = _old_defect(kind, rng, grid, m, j0, j1, contract_kwh[m])
                dlog.add(m, win.source, kind, win.first + j0, win.first + j1, fac, detail)
        if g in plan.scaled:
            _scale_period(rng, win, grid, m, dlog)
        for a, b in dst_days:
            kind = "dst_fall_back" if b - a > DAY else "dst_spring_forward"
            detail = f"{b - a} rows: local 02:00-02:45 " + ("twice" if b - a > DAY else "missing")
            dlog.add(m, win.source, kind, win.first + a, win.first + b, float(b - a), detail)


def _old_defect(
    kind: str,
    rng: np.random.Generator,
    grid: OldGrid,
    m: int,
    j0: int,
    j1: int,
    contract_kwh: float,
) -> tuple[float, str]:
    """Apply one old-export defect of meter ``m`` on [j0, j1); its factor and detail."""
    if kind.startswith("gap"):
        grid.count[m, j0:j1] = 0
        return np.nan, f"{j1 - j0} rows missing"
    if kind == "duplicate_exact":
        grid.count[m, j0] = 2
        return np.nan, "row repeated with the same values"
    if kind == "duplicate_conflict":
        grid.count[m, j0] = 2
        true = float(grid.imp[m, j0])
        grid.dup_imp[m, j0] = fac = _conflicting(rng, true)
        return fac, f"row repeated with active_import {fac:g} (true {true:g}, in kWh)"
    fac = round(float(contract_kwh * rng.uniform(3, 30)), 3)
    grid.imp[m, j0] = grid.dup_imp[m, j0] = fac
    return fac, f"import {fac:g} kWh > contract {contract_kwh:g} kWh/interval"


def _scale_period(
    rng: np.random.Generator, win: Window, grid: OldGrid, m: int, dlog: DefectLog
) -> None:
    """Scale meter ``m``'s rows by a unit mix-up for its whole window or 7..60 days of it
    (extended to a window edge less than ``SCALE_MIN_EDGE`` away: too short to tell apart)."""
    n = grid.imp.shape[1]
    fac = float(rng.choice(SCALE_FACTORS, p=SCALE_WEIGHTS))
    j0, j1 = 0, n
    if rng.random() >= 0.3:
        size = min(int(rng.integers(7, 61)) * DAY, n)
        j0 = int(rng.integers(0, n - size + 1))
        j1 = j0 + size
        j0, j1 = (0 if j0 < SCALE_MIN_EDGE else j0), (n if n - j1 < SCALE_MIN_EDGE else j1)
    grid.factor[m, j0:j1] = fac
    detail = f"both columns x{fac:g} (unit {_UNIT_NAMES[fac]})"
    dlog.add(m, win.source, "scale", win.first + j0, win.first + j1, fac, detail)


_UNIT_NAMES = {1000.0: "Wh", 0.001: "MWh", 10.0: "daWh", 4.0: "kW average", 60.0: "kWmin"}


def rollover_start(rng: np.random.Generator, window_kwh: float) -> float:
    """A starting import register (kWh) just below the rollover, so that it wraps inside a
    window that consumes ``window_kwh``."""
    used = max(window_kwh, 0.01)
    return round(REGISTER_ROLLOVER_KWH - used * rng.uniform(0.2, 0.8), 3)


@dataclass
class MongoGrid:
    """A block's Mongo reads ``(meter, read)`` (read k at window start + k intervals):
    cumulative registers in whole Wh, document kept; duplicates to append ``(meter, read,
    import delta kWh)``."""

    reg_imp_wh: np.ndarray
    reg_exp_wh: np.ndarray
    keep: np.ndarray
    dups: list[tuple] = field(default_factory=list)


def damage_mongo(
    rngs: list[np.random.Generator],
    clean: CleanBlock,
    plan: FleetPlan,
    win: Window,
    grid: MongoGrid,
    dlog: DefectLog,
) -> None:
    """Damage the Mongo grid in place with each meter's generator (``rngs``): counter resets
    (plan's meters), rollovers (logged), missing and repeated documents."""
    for m, g in enumerate(int(g) for g in clean.meter_index):
        busy = np.zeros(grid.keep.shape[1], dtype=bool)
        busy[0] = True  # read 0 closes the interval before the window
        placer = Placer(rngs[m], busy, win.days)
        if g in plan.reset:
            _counter_reset(placer, win, grid, m, dlog)
        _log_rollovers(win, grid.reg_imp_wh[m], busy, m, dlog)
        for kind, rate in MONGO_RATES.items():
            sure = plan.sure_of(win.source, kind, g)
            for k0, k1 in placer.place(rate, LENGTHS.get(kind, _one), sure=sure):
                fac, detail = _mongo_defect(kind, rngs[m], grid, m, k0, k1)
                dlog.add(m, win.source, kind, win.first + k0 - 1, win.first + k1 - 1, fac, detail)


def _mongo_defect(
    kind: str, rng: np.random.Generator, grid: MongoGrid, m: int, k0: int, k1: int
) -> tuple[float, str]:
    """Apply one Mongo defect of meter ``m`` on reads [k0, k1); its factor and detail."""
    if kind.startswith("gap"):
        grid.keep[m, k0:k1] = False
        return np.nan, f"{k1 - k0} documents missing"
    if kind == "duplicate_exact":
        grid.dups.append((m, k0, 0.0))
        return np.nan, "document repeated"
    fac = round(float(rng.uniform(0.01, 0.5)), 3)
    grid.dups.append((m, k0, fac))
    return fac, f"document repeated with import_kwh +{fac:g}"


def _counter_reset(placer: Placer, win: Window, grid: MongoGrid, m: int, dlog: DefectLog) -> None:
    """Meter ``m`` replaced at a free read: both registers restart at 0 there."""
    span = placer.find(1, 1, grid.keep.shape[1])
    if span is None:
        return
    k = span[0]
    old = grid.reg_imp_wh[m, k - 1] / 1000
    rollover_wh = round(REGISTER_ROLLOVER_KWH * 1000)
    for reg in (grid.reg_imp_wh, grid.reg_exp_wh):
        reg[m, k:] = (reg[m, k:] - reg[m, k - 1]) % rollover_wh
    detail = f"meter replaced: registers restart at 0 (import was {old:g} kWh)"
    dlog.add(m, win.source, "counter_reset", win.first + k - 1, win.first + k, old, detail)


def _log_rollovers(
    win: Window, reg_imp_wh: np.ndarray, busy: np.ndarray, m: int, dlog: DefectLog
) -> None:
    """Log where meter ``m``'s import register wraps (reads not already busy with a reset)."""
    for k in np.flatnonzero(np.diff(reg_imp_wh) < 0):
        if busy[k + 1]:
            continue  # a reset, logged already
        busy[k + 1] = True
        detail = f"import register wraps at {REGISTER_ROLLOVER_KWH:g} kWh"
        first = win.first + int(k)
        dlog.add(m, win.source, "rollover", first, first + 1, REGISTER_ROLLOVER_KWH, detail)
