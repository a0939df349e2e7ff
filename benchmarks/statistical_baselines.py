"""Benchmark: Taylor's double-seasonal Holt-Winters (ours) against statsmodels baselines.

Fits on the first ``--train-weeks`` weeks, forecasts day-ahead (h = 1..m1) on the next
``--test-weeks``: DSHW from every slot origin (rolling, no refit) and from each test day's
midnight; statsmodels weekly Holt-Winters and MSTL + AR(2) on the deseasonalised series, both
fitted once and then re-filtered with fixed parameters, from each midnight; seasonal naive
day/week on the same origins. Prints method, origins, MAPE (%), MAE, fit s, forecast s.
Run: ``python benchmarks/statistical_baselines.py SERIES.csv --train-weeks 8 --test-weeks 4
--m1 48`` (CSV columns timestamp,value on a regular grid) or ``... --synthetic``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from meterflow.forecasting.dshw import fit_dshw


def synthetic(weeks: int, m1: int, seed: int = 0) -> np.ndarray:
    """Daily shape scaled by day of week, a slow level drift and AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks * 7 * m1)
    dow = np.array([1.0, 1.02, 1.0, 1.0, 0.95, 0.75, 0.65])[(t // m1) % 7]
    phase = 2 * np.pi * (t % m1) / m1
    daily = 30 * np.exp(-(((phase - 4.0) / 0.8) ** 2)) + 15 * np.exp(-(((phase - 2.2) / 0.6) ** 2))
    noise = np.zeros(t.size)
    shocks = rng.normal(0.0, 2.0, t.size)
    for i in range(1, t.size):
        noise[i] = 0.85 * noise[i - 1] + shocks[i]
    return 60 + 5 * np.sin(2 * np.pi * t / t.size) + dow * daily + noise


def load(path: str) -> np.ndarray:
    """Values of a timestamp,value CSV (sorted by timestamp)."""
    import pandas as pd

    frame = pd.read_csv(path, parse_dates=["timestamp"]).sort_values("timestamp")
    return frame["value"].to_numpy(dtype=np.float64)


def filled(y: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN (statsmodels and the naive forecasts need gap-free input)."""
    ok = np.isfinite(y)
    return np.interp(np.arange(y.size), np.flatnonzero(ok), y[ok])


def scores(pred: np.ndarray, y: np.ndarray, origins: np.ndarray) -> tuple[float, float]:
    """(MAPE %, MAE) over all origins and h = 1..H, ignoring missing truth."""
    truth = y[origins[:, None] + np.arange(1, pred.shape[1] + 1)]
    err = np.abs(pred - truth)
    return float(np.nanmean(err / np.abs(truth)) * 100), float(np.nanmean(err))


def holt_winters(yf: np.ndarray, n_train: int, origins: np.ndarray, m1: int, m2: int) -> tuple:
    """Single (weekly) additive Holt-Winters: fit once, re-filter with fixed parameters."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    t0 = time.perf_counter()
    opts = {"trend": None, "seasonal": "add", "seasonal_periods": m2}
    p = ExponentialSmoothing(yf[:n_train], initialization_method="heuristic", **opts).fit().params
    t1 = time.perf_counter()
    known = {"initial_level": p["initial_level"], "initial_seasonal": p["initial_seasons"]}
    fixed = {"smoothing_level": p["smoothing_level"], "smoothing_seasonal": p["smoothing_seasonal"]}
    pred = [
        ExponentialSmoothing(yf[: o + 1], initialization_method="known", **known, **opts)
        .fit(optimized=False, **fixed)
        .forecast(m1)
        for o in origins
    ]
    return np.array(pred), t1 - t0, time.perf_counter() - t1


def mstl_ar(yf: np.ndarray, n_train: int, origins: np.ndarray, m1: int, m2: int) -> tuple:
    """MSTL(m1, m2) on train; seasonal parts repeated; AR(2) on the rest, extended per day."""
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.seasonal import MSTL

    t0 = time.perf_counter()
    seas = MSTL(yf[:n_train], periods=(m1, m2)).fit().seasonal
    k = np.arange(yf.size - n_train)
    future = seas[n_train - m1 + k % m1, 0] + seas[n_train - m2 + k % m2, 1]
    season = np.concatenate([seas.sum(axis=1), future])
    rest = yf - season
    res = ARIMA(rest[:n_train], order=(2, 0, 0), trend="c").fit()
    t1 = time.perf_counter()
    pred, last = [], n_train - 1
    for o in origins:
        res = res.extend(rest[last + 1 : o + 1]) if o > last else res
        pred.append(res.forecast(m1) + season[o + 1 : o + 1 + m1])
        last = o
    return np.array(pred), t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--train-weeks", type=int, default=8)
    ap.add_argument("--test-weeks", type=int, default=4)
    ap.add_argument("--m1", type=int, default=48)
    args = ap.parse_args()
    m1, m2 = args.m1, 7 * args.m1
    weeks = args.train_weeks + args.test_weeks
    y = synthetic(weeks, m1) if args.synthetic or not args.csv else load(args.csv)
    n_train, end = args.train_weeks * m2, min(y.size, weeks * m2)
    y, yf = y[:end], filled(y[:end])
    every = np.arange(n_train - 1, end - m1)
    midnight = every[::m1]
    h = np.arange(1, m1 + 1)
    rows = []

    fit_dshw(y[: m2 + m1], m1, m2)  # warm-up: load the numba kernel from its cache
    t0 = time.perf_counter()
    model = fit_dshw(y[:n_train], m1, m2)
    t1 = time.perf_counter()
    for name, org in (("every slot", every), ("midnight", midnight)):
        t2 = time.perf_counter()
        pred = model.forecasts(y, org, m1)
        rows.append(("DSHW (ours)", name, *scores(pred, y, org), t1 - t0, time.perf_counter() - t2))
    runs: list[tuple[str, Callable]] = [
        ("HW weekly (sm)", holt_winters),
        ("MSTL+AR2 (sm)", mstl_ar),
    ]
    for name, run in runs:
        pred, fit_s, fc_s = run(yf, n_train, midnight, m1, m2)
        rows.append((name, "midnight", *scores(pred, y, midnight), fit_s, fc_s))
    for name, lag in (("naive day", m1), ("naive week", m2)):
        idx = midnight[:, None] + h - lag * ((h + lag - 1) // lag)
        rows.append((name, "midnight", *scores(yf[idx], y, midnight), 0.0, 0.0))
    print(f"# n={end} train={n_train} origins: every={every.size} midnight={midnight.size}")
    print(f"# DSHW alpha={model.alpha:.4f} delta={model.delta:.4f} omega={model.omega:.4f} "
          f"phi={model.phi:.4f}")  # fmt: skip
    print(f"{'method':<16}{'origins':<12}{'MAPE%':>8}{'MAE':>9}{'fit_s':>9}{'fcst_s':>9}")
    for r in rows:
        print(f"{r[0]:<16}{r[1]:<12}{r[2]:>8.3f}{r[3]:>9.3f}{r[4]:>9.3f}{r[5]:>9.3f}")


if __name__ == "__main__":
    main()
