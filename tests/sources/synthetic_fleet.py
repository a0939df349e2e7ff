"""A synthetic fleet in the three stores' raw formats, quick to write at any size (the blocks
tests and the ETL memory benchmark): daily load shapes with noise, and defects every cleaning
rule has work with (gaps, exact and conflicting duplicates, outliers, bad OPC quality, a unit
error in the old exports, a meter missing from the meter table, DST days)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

TZ = "Europe/Rome"
Q = pd.Timedelta(minutes=15)


@dataclass(frozen=True)
class Fleet:
    """Meters (the meter table plus ``GHOST``, which has readings but no row), interval
    starts (UTC) and energy per interval (kWh; import, export)."""

    meters: pd.DataFrame
    starts: pd.DatetimeIndex
    imp: np.ndarray  # (meters + 1, intervals)
    exp: np.ndarray

    @property
    def ids(self) -> list[str]:
        return [*self.meters["meter_id"], "GHOST"]


def build(n_meters: int, days: int, start: str = "2024-03-28", seed: int = 0) -> Fleet:
    """``n_meters`` meters over ``days`` local days from ``start`` (the spring DST change
    falls in the default window)."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start).tz_localize(TZ)
    t1 = (pd.Timestamp(start) + pd.Timedelta(days=days)).tz_localize(TZ)
    starts = pd.date_range(t0, t1, freq=Q, inclusive="left").tz_convert("UTC").as_unit("ns")
    hour = starts.tz_convert(TZ).hour.to_numpy() + starts.tz_convert(TZ).minute.to_numpy() / 60
    n = n_meters + 1
    level = rng.uniform(0.05, 0.4, (n, 1))
    shape = 1 + 0.6 * np.sin((hour - 8) / 24 * 2 * np.pi)[None, :]
    imp = np.round(level * shape * rng.uniform(0.8, 1.2, (n, len(starts))), 4)
    pv = rng.random((n, 1)) < 0.2
    sun = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)[None, :]
    exp = np.round(np.where(pv, 0.3 * sun * rng.uniform(0.7, 1, (n, len(starts))), 0.0), 4)
    meters = pd.DataFrame(
        {
            "meter_id": [f"M{i:05d}" for i in range(1, n_meters + 1)],
            "contractual_power_kw": 6.0,
            "production_kw": np.where(pv[:-1, 0], 3.0, 0.0),
            "type": "household",
            "latitude": 42.0,
            "longitude": 12.0,
        }
    )
    return Fleet(meters, starts, imp, exp)


def _defects(fleet: Fleet, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(keep mask, value copy) of the import series: every 7th meter misses a short gap and a
    long one, every 5th has an outlier."""
    keep = np.ones(fleet.imp.shape, dtype=bool)
    imp = fleet.imp.copy()
    for m in range(0, len(imp), 7):
        g = int(rng.integers(100, imp.shape[1] - 200))
        keep[m, g : g + 2] = False
        keep[m, g + 50 : g + 90] = False
    imp[::5, 30] = 99.0
    return keep, imp


def historian_rows(fleet: Fleet, seed: int = 1) -> pd.DataFrame:
    """Historian rows (END stamps, naive UTC) with gaps, an outlier, bad quality, exact and
    conflicting duplicates and an unknown tag."""
    rng = np.random.default_rng(seed)
    keep, imp = _defects(fleet, rng)
    ends = (fleet.starts + Q).tz_localize(None)
    parts = []
    for m, mid in enumerate(fleet.ids):
        every = np.ones_like(keep[m])
        for obis, values, mask in (("1.8.0", imp[m], keep[m]), ("2.8.0", fleet.exp[m], every)):
            parts.append(pd.DataFrame({"timestamp": ends[mask], "tagname": f"{mid}.{obis}",
                                       "energy": values[mask], "quality": 192}))  # fmt: skip
    rows = pd.concat(parts, ignore_index=True)
    n = len(rows)
    rows.loc[rng.choice(n, max(1, n // 5000), replace=False), "quality"] = 0
    dup = rows.iloc[rng.choice(n, max(2, n // 10000), replace=False)]
    conflict = dup.iloc[: len(dup) // 2].assign(energy=lambda d: d["energy"] + 0.5)
    extra = rows.iloc[:3].assign(tagname=lambda d: d["tagname"].str.replace("1.8.0", "3.8.0"))
    return pd.concat([rows, dup, conflict, extra], ignore_index=True)


def write_historian(url: str, fleet: Fleet, *, index: bool = True) -> int:
    """The ``historian`` and ``meter_description`` tables (SQLite: fast executemany); the
    (tagname, timestamp) index as the demo creates it. Returns the historian rows written."""
    rows = historian_rows(fleet)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS historian")
        conn.exec_driver_sql(
            "CREATE TABLE historian (timestamp DATETIME NOT NULL, tagname VARCHAR(64) NOT NULL, "
            "energy FLOAT, quality INTEGER)"
        )
        stamps = rows["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S.%f").to_numpy(object)
        values = zip(stamps, rows["tagname"], rows["energy"], rows["quality"], strict=True)
        conn.exec_driver_sql("INSERT INTO historian VALUES (?, ?, ?, ?)", list(values))
        if index:
            conn.exec_driver_sql("CREATE INDEX ix_tag_ts ON historian (tagname, timestamp)")
    fleet.meters.to_sql("meter_description", engine, if_exists="replace", index=False)
    engine.dispose()
    return len(rows)


def write_exports(folder: Path, fleet: Fleet, seed: int = 2) -> int:
    """One ``<meter_id>.csv`` per meter in local wall-clock time (interval starts), every 9th
    meter exported in Wh instead of kWh for four days, with gaps and outliers. Returns files."""
    rng = np.random.default_rng(seed)
    keep, imp = _defects(fleet, rng)
    exp = fleet.exp.copy()
    days = slice(96 * 3, 96 * 7)
    imp[::9, days] *= 1000
    exp[::9, days] *= 1000
    local = fleet.starts.tz_convert(TZ).tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
    folder.mkdir(parents=True, exist_ok=True)
    for m, mid in enumerate(fleet.ids):
        frame = pd.DataFrame({"meter_id": mid, "datetime": local, "active_import": imp[m],
                              "active_export": exp[m]})  # fmt: skip
        frame[keep[m]].to_csv(folder / f"{mid}.csv", index=False)
    return len(fleet.ids)


def documents(fleet: Fleet, seed: int = 3) -> pd.DataFrame:
    """MongoDB reading documents (cumulative registers at interval ends), raw as stored but
    with ``_id`` as text: missing reads, a duplicate, a counter reset and a document without
    a meter id."""
    rng = np.random.default_rng(seed)
    keep, _ = _defects(fleet, rng)
    imp_reg = 1000 + np.cumsum(fleet.imp, axis=1)
    exp_reg = 10 + np.cumsum(fleet.exp, axis=1)
    imp_reg[1, 200:] -= imp_reg[1, 199] - 0.05  # meter replaced
    ends = fleet.starts + Q
    parts = []
    for m, mid in enumerate(fleet.ids):
        k = keep[m]
        parts.append(pd.DataFrame({"meter_id": mid, "ts": ends[k], "import_kwh": imp_reg[m, k],
                                   "export_kwh": exp_reg[m, k]}))  # fmt: skip
    docs = pd.concat(parts, ignore_index=True)
    docs = pd.concat([docs, docs.iloc[[5]], docs.iloc[[7]].assign(meter_id=None)])
    docs = docs.reset_index(drop=True)
    docs.insert(0, "_id", [f"{i:024x}" for i in range(len(docs))])
    for col in ("voltage_v", "current_a", "power_w"):
        docs[col] = 230.0
    return docs
