"""The demo meter fleet: specification, timeline, meter table and clean 15-minute series.

Consumption follows the BDEW standard load profiles of ``demandlib`` (2025 profiles H25/G25/L25
and the older h0_dyn/g0..g6/l0..l2 series), evaluated on local wall-clock time, then diversified
per meter by a level, a time shift of the daily pattern, day-to-day variation and autocorrelated
multiplicative noise. PV prosumers get a clear-sky PV model times a seeded regional cloudiness.

Everything is drawn from generators seeded by ``DemoSpec.seed``, so a spec always yields the same
fleet: fleet-wide draws (meter table, cloudiness, contract margins) from one generator per
purpose, each meter's series from generators seeded by (seed, purpose, meter index). A meter's
data therefore do not depend on the blocks of ``BLOCK_METERS`` meters the fleet is built in, and
the builder's memory is bounded by one block (``FleetContext`` holds what all blocks share).
"""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from demandlib import bdew
from scipy.signal import lfilter

from meterflow.domain import (
    LOCAL_TIMEZONE,
    RAW_INTERVAL_MIN,
    SOURCE_NEWMONGO,
    SOURCE_OLDMONGO,
    SOURCE_SQL,
)
from meterflow.errors import ConfigError
from meterflow.schemas import METERS, MeterType

INTERVAL = pd.Timedelta(minutes=RAW_INTERVAL_MIN)
INTERVAL_H = RAW_INTERVAL_MIN / 60
CONTRACT_SIZES_KW = (3.0, 4.5, 6.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0, 200.0)
CENTER_LAT, CENTER_LON, LOCATION_SPREAD_DEG = 42.56, 12.64, 0.3
MAX_SHIFT_STEPS = 6  # daily pattern shifted by at most +-6 intervals (+-90 min)
BLOCK_METERS = 250  # meters built (and written) together: bounds the builder's memory
MAX_METERS = 999_999  # ids MTR0001 .. MTR9999, one digit wider per decade beyond

# Random streams: one generator per purpose, so changing one part never reshuffles another.
STREAM_METERS, STREAM_LOAD, STREAM_PV, STREAM_ANOMALY = 1, 2, 3, 4
STREAM_HISTORIAN, STREAM_MONGO, STREAM_OLD = 5, 6, 7
STREAM_CONTRACT = STREAM_METERS + 100


@dataclass(frozen=True)
class TypeModel:
    """How meters of one type are drawn."""

    share: float  # of the fleet
    annual_kwh: tuple[float, float]  # range, drawn log-uniformly
    profiles: tuple[str, ...]  # BDEW profile names (demandlib)
    weights: tuple[float, ...]  # of the profiles
    pv_share: float  # of meters with PV
    noise_sigma: float  # log-sd of the 15-minute noise
    day_sigma: float  # log-sd of the day-to-day variation


TYPE_MODELS = {
    MeterType.HOUSEHOLD: TypeModel(
        share=0.55,
        annual_kwh=(1500, 6000),
        profiles=("H25", "h0_dyn"),
        weights=(0.7, 0.3),
        pv_share=0.25,
        noise_sigma=0.30,
        day_sigma=0.15,
    ),
    MeterType.COMMERCIAL: TypeModel(
        share=0.30,
        annual_kwh=(10_000, 250_000),
        profiles=("G25", "g0", "g1", "g2", "g3", "g4", "g5", "g6"),
        weights=(0.23, 0.11, 0.11, 0.11, 0.11, 0.11, 0.11, 0.11),
        pv_share=0.15,
        noise_sigma=0.10,
        day_sigma=0.08,
    ),
    MeterType.AGRICULTURAL: TypeModel(
        share=0.15,
        annual_kwh=(5_000, 60_000),
        profiles=("L25", "l0", "l1", "l2"),
        weights=(0.4, 0.2, 0.2, 0.2),
        pv_share=0.20,
        noise_sigma=0.18,
        day_sigma=0.12,
    ),
}
NOISE_PHI, DAY_PHI = 0.85, 0.6


def rng_for(seed: int, stream: int, meter: int | None = None) -> np.random.Generator:
    """The generator of one random stream of a fleet, or of meter ``meter`` (0-based index)
    in that stream (a child seed sequence, independent of the fleet's and other meters')."""
    if meter is None:
        return np.random.default_rng([seed, stream])
    return np.random.default_rng(np.random.SeedSequence([seed, stream], spawn_key=(meter,)))


@dataclass(frozen=True)
class DemoSpec:
    """What demo fleet to build; equal specs give identical fleets.

    ``start`` is a local calendar date (midnight in ``timezone``). The history covers
    ``history_days`` days: the old exports hold the first half plus ``overlap_days``, the SQL
    historian the second half; MongoDB holds the ``mongo_days`` days after the history plus the
    historian's last ``overlap_days`` days.
    """

    n_meters: int = 200
    history_days: int = 365
    mongo_days: int = 14
    overlap_days: int = 2
    start: str = "2024-10-01"
    seed: int = 42
    timezone: str = LOCAL_TIMEZONE

    def __post_init__(self) -> None:
        if not 1 <= self.n_meters <= MAX_METERS:
            raise ConfigError(f"demo n_meters must be within 1..{MAX_METERS}, got {self.n_meters}")
        if self.overlap_days < 0:
            raise ConfigError(f"demo overlap_days must be >= 0, got {self.overlap_days}")
        if self.history_days < 2 * self.overlap_days + 2:
            raise ConfigError(
                f"demo history_days={self.history_days} too short for "
                f"overlap_days={self.overlap_days} (need >= {2 * self.overlap_days + 2})"
            )
        if self.mongo_days < 1:
            raise ConfigError(f"demo mongo_days must be >= 1, got {self.mongo_days}")
        try:
            day = pd.Timestamp(self.start)
            pd.Timestamp("2000-01-01").tz_localize(self.timezone)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"demo start/timezone invalid: {exc}") from exc
        if day != day.normalize() or day.tzinfo is not None:
            raise ConfigError(f"demo start must be a plain date like 2024-10-01, got {self.start}")


@dataclass(frozen=True)
class Timeline:
    """The 15-minute UTC grid of a fleet and each source's window on it.

    Windows are ``(first, stop)`` interval indices (stop exclusive) whose bounds are local
    midnights. ``times`` are interval starts in UTC.
    """

    spec: DemoSpec

    @cached_property
    def day_starts(self) -> pd.DatetimeIndex:
        """UTC instants of the local midnights from ``start`` to the end (inclusive)."""
        days = self.spec.history_days + self.spec.mongo_days
        local = pd.date_range(self.spec.start, periods=days + 1, freq="D")
        return local.tz_localize(self.spec.timezone).tz_convert("UTC")

    @cached_property
    def times(self) -> pd.DatetimeIndex:
        starts = self.day_starts
        n = int((starts[-1] - starts[0]) / INTERVAL)
        return pd.date_range(starts[0], periods=n, freq=INTERVAL, tz="UTC")

    @property
    def n_intervals(self) -> int:
        return len(self.times)

    @cached_property
    def local_times(self) -> pd.DatetimeIndex:
        """Interval starts as tz-aware local times."""
        return self.times.tz_convert(self.spec.timezone)

    @cached_property
    def day_index(self) -> np.ndarray:
        """Local day number (0 = ``start``) of every interval."""
        return np.searchsorted(self.day_starts.asi8, self.times.asi8, side="right") - 1

    def day_bound(self, day: int) -> int:
        """Interval index of local midnight ``day`` days after ``start``."""
        return int((self.day_starts[day] - self.day_starts[0]) / INTERVAL)

    @cached_property
    def windows(self) -> dict[str, tuple[int, int]]:
        s = self.spec
        half = s.history_days // 2
        hist_end = s.history_days
        return {
            SOURCE_OLDMONGO: (0, self.day_bound(half + s.overlap_days)),
            SOURCE_SQL: (self.day_bound(half), self.day_bound(hist_end)),
            SOURCE_NEWMONGO: (
                self.day_bound(hist_end - s.overlap_days),
                self.day_bound(hist_end + s.mongo_days),
            ),
        }

    def dst_days(self, first: int, stop: int) -> list[tuple[int, int]]:
        """``(first, stop)`` interval ranges of the local days in [first, stop) that are not
        96 intervals long (DST changes)."""
        bounds = [self.day_bound(d) for d in range(len(self.day_starts))]
        per_day = 24 * 60 // RAW_INTERVAL_MIN
        return [
            (a, b)
            for a, b in itertools.pairwise(bounds)
            if b - a != per_day and a >= first and b <= stop
        ]


@dataclass(frozen=True)
class CleanBlock:
    """Meters ``first`` .. ``first + len(meters) - 1`` (0-based fleet positions) and their true
    series (rows = these meters in table order, columns = intervals).

    ``import_wh``/``export_wh`` are whole Wh per interval (net of PV); ``consumption_wh`` and
    ``pv_wh`` the physical load and PV production behind them.
    """

    spec: DemoSpec
    timeline: Timeline
    first: int
    meters_truth: pd.DataFrame
    meters: pd.DataFrame
    consumption_wh: np.ndarray
    pv_wh: np.ndarray
    import_wh: np.ndarray
    export_wh: np.ndarray

    @property
    def meter_index(self) -> np.ndarray:
        """Fleet positions of the block's meters (they seed the meters' generators)."""
        return np.arange(self.first, self.first + len(self.meters))

    @property
    def contract_wh(self) -> np.ndarray:
        """Energy per interval at contractual power, per meter (Wh)."""
        return self.meters["contractual_power_kw"].to_numpy() * 1000 * INTERVAL_H


@dataclass(frozen=True)
class FleetContext:
    """What every block of a fleet shares: per meter a row, per interval a value (no series)."""

    spec: DemoSpec
    timeline: Timeline
    meters_truth: pd.DataFrame  # every meter, from build_meters
    shares: dict[str, np.ndarray]  # BDEW shares, MAX_SHIFT_STEPS intervals wider on each side
    cloud: np.ndarray  # regional cloudiness per interval (0.02 .. 1)
    margin: np.ndarray  # contractual power over peak power, per meter


def italian_holidays(years: list[int]) -> list[dt.date]:
    """National holidays of Italy (plus Terni's patron saint, 14 February) in ``years``."""
    fixed = [(1, 1), (1, 6), (2, 14), (4, 25), (5, 1), (6, 2), (8, 15), (11, 1), (12, 8)]
    fixed += [(12, 25), (12, 26)]
    days = []
    for y in years:
        days += [dt.date(y, m, d) for m, d in fixed]
        days.append(_easter(y) + dt.timedelta(days=1))  # Pasquetta
    return days


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m + 114) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def bdew_shares(names: set[str], local: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Share of the annual energy falling in each interval, per BDEW profile name.

    ``local`` is a tz-aware 15-minute index; profiles are evaluated on its wall-clock time, so
    repeated DST hours repeat the profile value and skipped ones are absent.
    """
    years = sorted(set(local.year))
    holidays = italian_holidays(years)
    out: dict[str, np.ndarray] = {}
    for name in sorted(n for n in names if n.endswith("25")):
        cls = getattr(bdew, name)  # values in kW for 1 GWh per year
        out[name] = cls(local, holidays=holidays).to_numpy() * INTERVAL_H / 1e6
    old = sorted(n for n in names if not n.endswith("25"))
    if old:
        naive = local.tz_localize(None)
        values = np.empty((len(local), len(old)))
        for year in years:
            with warnings.catch_warnings():  # ElecSlp turns all warnings into errors
                frame = bdew.ElecSlp(year, holidays=holidays).get_profiles(*old)
            sel = naive.year == year
            pos = ((naive[sel] - pd.Timestamp(year, 1, 1)) / INTERVAL).astype(int)
            values[sel] = frame.to_numpy()[pos]
        out.update({n: values[:, j] for j, n in enumerate(old)})
    return out


def ar1(z: np.ndarray, phi: float, sigma: float | np.ndarray) -> np.ndarray:
    """Stationary AR(1) rows (along the last axis) with marginal standard deviation ``sigma``
    (a number or a column per row) from standard normal innovations ``z``."""
    e = z * (sigma * np.sqrt(1 - phi**2))
    e[:, 0] /= np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], e, axis=1)


def normals(rngs: list[np.random.Generator], n: int) -> np.ndarray:
    """``n`` standard normal draws per generator, one row each."""
    out = np.empty((len(rngs), n))
    for row, rng in zip(out, rngs, strict=True):
        rng.standard_normal(out=row)
    return out


def meter_ids(n: int) -> list[str]:
    """``MTR0001`` .. of a fleet of ``n`` meters (wider numbers beyond 9999: same order as text)."""
    width = max(4, len(str(n)))
    return [f"MTR{i + 1:0{width}d}" for i in range(n)]


def build_meters(spec: DemoSpec) -> pd.DataFrame:
    """Meter ids, types, BDEW profiles, annual consumption, shifts, PV size and location."""
    rng = rng_for(spec.seed, STREAM_METERS)
    n = spec.n_meters
    n_h = round(n * TYPE_MODELS[MeterType.HOUSEHOLD].share)
    n_c = round(n * TYPE_MODELS[MeterType.COMMERCIAL].share)
    types = np.array(
        [MeterType.HOUSEHOLD] * n_h
        + [MeterType.COMMERCIAL] * n_c
        + [MeterType.AGRICULTURAL] * (n - n_h - n_c),
        dtype=object,
    )[rng.permutation(n)]
    profile, annual, pv_kwp = [], [], []
    for t in types:
        model = TYPE_MODELS[t]
        profile.append(str(rng.choice(model.profiles, p=model.weights)))
        kwh = float(np.exp(rng.uniform(*np.log(model.annual_kwh))))
        annual.append(round(kwh, -1))
        has_pv = rng.random() < model.pv_share
        if not has_pv:
            pv_kwp.append(0.0)
        elif t == MeterType.HOUSEHOLD:
            pv_kwp.append(float(rng.choice([3.0, 4.0, 4.5, 6.0])))
        else:  # sized to cover 30..90 % of the yearly consumption (about 1300 kWh/kWp)
            kwp = kwh / 1300 * rng.uniform(0.3, 0.9)
            pv_kwp.append(float(np.clip(round(kwp), 6 if t == MeterType.AGRICULTURAL else 10, 200)))
    annual_arr = np.array(annual)
    median = {t: np.median(annual_arr[types == t]) for t in set(types)}
    table = pd.DataFrame(
        {
            "meter_id": meter_ids(n),
            "type": [str(t) for t in types],
            "bdew_profile": profile,
            "annual_kwh": annual_arr,
            "level_factor": np.round(annual_arr / np.array([median[t] for t in types]), 4),
            "time_shift_min": rng.integers(-MAX_SHIFT_STEPS, MAX_SHIFT_STEPS + 1, n)
            * RAW_INTERVAL_MIN,
            "pv": np.array(pv_kwp) > 0,
            "pv_kwp": np.array(pv_kwp),
            "latitude": np.round(CENTER_LAT + rng.uniform(-1, 1, n) * LOCATION_SPREAD_DEG, 5),
            "longitude": np.round(CENTER_LON + rng.uniform(-1, 1, n) * LOCATION_SPREAD_DEG, 5),
        }
    )
    table["time_shift_min"] = table["time_shift_min"].astype("int64")
    return table


def consumption_series(ctx: FleetContext, lo: int, hi: int) -> np.ndarray:
    """Load of meters [lo, hi) per interval (Wh): BDEW share x annual kWh, shifted and noisy."""
    tl, truth = ctx.timeline, ctx.meters_truth.iloc[lo:hi]
    n, m = tl.n_intervals, MAX_SHIFT_STEPS
    out = np.empty((hi - lo, n))
    steps = (truth["time_shift_min"].to_numpy() // RAW_INTERVAL_MIN).astype(int)
    for i, (name, kwh, k) in enumerate(
        zip(truth["bdew_profile"], truth["annual_kwh"], steps, strict=True)
    ):
        out[i] = ctx.shares[name][m - k : m - k + n] * kwh * 1000
    models = [TYPE_MODELS[MeterType(t)] for t in truth["type"]]
    sigma = np.array([[model.noise_sigma] for model in models])
    day_sigma = np.array([[model.day_sigma] for model in models])
    rngs = [rng_for(ctx.spec.seed, STREAM_LOAD, g) for g in range(lo, hi)]
    noise = ar1(normals(rngs, n), NOISE_PHI, sigma) - sigma**2 / 2
    n_days = int(tl.day_index[-1]) + 1
    daily = ar1(normals(rngs, n_days), DAY_PHI, day_sigma) - day_sigma**2 / 2
    noise += daily[:, tl.day_index]
    out *= np.exp(noise, out=noise)
    return out


def clear_sky_ghi(times: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Clear-sky global horizontal irradiance (W/m2, Haurwitz) at ``times`` (UTC) per site."""
    doy = times.dayofyear.to_numpy()
    minutes = (times.hour * 60 + times.minute).to_numpy()
    g = 2 * np.pi / 365 * (doy - 1 + (minutes / 60 - 12) / 24)
    # Spencer's Fourier series (coefficients as published): equation of time, declination
    eot = 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g)
    )  # fmt: skip
    decl = (
        0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g)
    )  # fmt: skip
    solar_min = minutes[None, :] + eot[None, :] + 4 * lon[:, None]
    hour_angle = np.radians(solar_min / 4 - 180)
    phi = np.radians(lat)[:, None]
    cosz = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    cosz = np.clip(cosz, 0, None)
    with np.errstate(divide="ignore"):
        ghi = 1098 * cosz * np.exp(-0.057 / cosz)
    return np.where(cosz > 0, ghi, 0.0)


def regional_cloud(spec: DemoSpec, tl: Timeline) -> np.ndarray:
    """Cloudiness factor per interval shared by the fleet: daily clearness plus intraday noise."""
    rng = rng_for(spec.seed, STREAM_PV)
    doy = tl.day_starts[:-1].tz_convert(spec.timezone).dayofyear.to_numpy()
    mean_k = 0.72 + 0.15 * np.cos(2 * np.pi * (doy - 196) / 365)
    clearness = rng.beta(6 * mean_k, 6 * (1 - mean_k))[tl.day_index]
    intraday = ar1(rng.standard_normal((1, tl.n_intervals)), 0.9, 1.0)[0] * 0.3 * (1 - clearness)
    return np.clip(clearness + intraday, 0.02, 1.0)


def pv_series(ctx: FleetContext, lo: int, hi: int) -> np.ndarray:
    """PV production of meters [lo, hi) per interval (Wh): clear sky x regional cloudiness x
    per-plant losses and local noise."""
    tl, truth = ctx.timeline, ctx.meters_truth.iloc[lo:hi]
    out = np.zeros((hi - lo, tl.n_intervals))
    rows = np.flatnonzero(truth["pv"].to_numpy())
    if rows.size == 0:
        return out
    lat, lon = truth["latitude"].to_numpy()[rows], truth["longitude"].to_numpy()[rows]
    ghi = clear_sky_ghi(tl.times + INTERVAL / 2, lat, lon)
    rngs = [rng_for(ctx.spec.seed, STREAM_PV, lo + int(r)) for r in rows]
    site = np.array([[rng.uniform(0.85, 1.02)] for rng in rngs])  # orientation and losses
    local = np.exp(ar1(normals(rngs, tl.n_intervals), 0.8, 0.05))
    kwp = truth["pv_kwp"].to_numpy()[rows, None]
    # 1.12 tilt gain x 0.82 performance ratio; kW -> Wh per interval
    out[rows] = kwp * ghi / 1000 * 1.12 * 0.82 * site * np.clip(ctx.cloud * local, 0, 1) * 1000
    return out * INTERVAL_H


def contract_size(peak_kw: float, margin: float) -> float:
    """Smallest standard contractual power at least ``peak_kw * margin``, else at least
    ``peak_kw * 1.1``, else a multiple of 50 kW above the largest standard size."""
    for need in (peak_kw * margin, peak_kw * 1.1):
        for size in CONTRACT_SIZES_KW:
            if size >= need:
                return size
    return float(np.ceil(peak_kw * margin / 50) * 50)


def fleet_context(spec: DemoSpec) -> FleetContext:
    """The meter table, BDEW shares, regional cloudiness and contract margins of ``spec``."""
    tl = Timeline(spec)
    truth = build_meters(spec)
    n, m = tl.n_intervals, MAX_SHIFT_STEPS
    ext = pd.date_range(tl.times[0] - m * INTERVAL, periods=n + 2 * m, freq=INTERVAL, tz="UTC")
    shares = bdew_shares(set(truth["bdew_profile"]), ext.tz_convert(spec.timezone))
    margin = rng_for(spec.seed, STREAM_CONTRACT).uniform(1.25, 1.8, spec.n_meters)
    return FleetContext(spec, tl, truth, shares, regional_cloud(spec, tl), margin)


def build_clean(ctx: FleetContext, lo: int, hi: int) -> CleanBlock:
    """Meters [lo, hi) of the fleet and their true series (no anomalies, no defects)."""
    truth = ctx.meters_truth.iloc[lo:hi].reset_index(drop=True)
    cons = np.round(consumption_series(ctx, lo, hi), 1)
    pv = np.round(pv_series(ctx, lo, hi), 1)
    net = cons - pv
    imp = np.round(np.clip(net, 0, None))
    exp = np.round(np.clip(-net, 0, None))
    del net
    peak_kw = np.maximum(imp.max(axis=1), exp.max(axis=1)) / 1000 / INTERVAL_H
    meters = pd.DataFrame(
        {
            "meter_id": truth["meter_id"],
            "contractual_power_kw": [
                contract_size(p, mg) for p, mg in zip(peak_kw, ctx.margin[lo:hi], strict=True)
            ],
            "production_kw": truth["pv_kwp"].astype(float),
            "type": truth["type"],
            "latitude": truth["latitude"],
            "longitude": truth["longitude"],
        }
    )
    METERS.validate(meters, where="demo fleet")
    cols = ["meter_id", "bdew_profile", "type", "pv", "annual_kwh", "time_shift_min"]
    return CleanBlock(
        spec=ctx.spec,
        timeline=ctx.timeline,
        first=lo,
        meters_truth=truth[[*cols, "level_factor", "pv_kwp"]],
        meters=meters,
        consumption_wh=cons,
        pv_wh=pv,
        import_wh=imp,
        export_wh=exp,
    )
