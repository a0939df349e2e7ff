"""Render the truth of a demo fleet into the three raw formats of ``meterflow.sources.formats``,
damaged by ``meterflow.demo.defects``, and the clean truth as a readings-like table;
``build_fleet`` does all of it for one ``DemoSpec``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.demo.defects import (
    DefectLog,
    Truth,
    Window,
    choose_rollovers,
    damage_historian,
    damage_mongo,
    damage_old_exports,
    inject_anomalies,
)
from meterflow.demo.fleet import (
    INTERVAL,
    INTERVAL_H,
    STREAM_HISTORIAN,
    STREAM_MONGO,
    STREAM_OLD,
    CleanFleet,
    DemoSpec,
    build_clean,
    rng_for,
)
from meterflow.domain import REGISTER_ROLLOVER_KWH, SOURCE_NEWMONGO, SOURCE_OLDMONGO, SOURCE_SQL
from meterflow.schemas import MeterType
from meterflow.sources.formats import OLD_EXPORT_COLUMNS, OPC_GOOD, TAG_EXPORT, TAG_IMPORT, tagname

log = logging.getLogger(__name__)

MONGO_COLUMNS = ("meter_id", "ts", "import_kwh", "export_kwh", "voltage_v", "current_a", "power_w")


def _window(clean: CleanFleet, source: str) -> Window:
    return Window(source, *clean.timeline.windows[source])


def historian_rows(clean: CleanFleet, truth: Truth, dlog: DefectLog) -> pd.DataFrame:
    """Rows of the ``historian`` table: timestamp (naive UTC, interval END), tagname
    (categorical), energy (kWh), quality (OPC); in time order, late duplicates at the end."""
    win = _window(clean, SOURCE_SQL)
    rng = rng_for(clean.spec.seed, STREAM_HISTORIAN)
    sl = slice(win.first, win.stop)
    energy = np.stack([truth.import_wh[:, sl], truth.export_wh[:, sl]], axis=2) / 1000
    quality = np.full(energy.shape, OPC_GOOD, dtype=np.int64)
    keep = np.ones(energy.shape, dtype=bool)
    extra = damage_historian(rng, win, energy, quality, keep, clean.contract_wh / 1000, dlog)
    n_meters = energy.shape[0]
    flat = np.flatnonzero(keep.transpose(1, 0, 2).ravel())  # (time, meter, tag) order
    pos = np.concatenate([flat // (2 * n_meters), extra["pos"]]).astype(np.int64)
    meter = np.concatenate([(flat // 2) % n_meters, extra["meter"]]).astype(np.int64)
    tag = np.concatenate([flat % 2, extra["tag"]]).astype(np.int64)
    values = np.concatenate([energy.transpose(1, 0, 2).ravel()[flat], extra["energy"]])
    qual = np.concatenate([quality.transpose(1, 0, 2).ravel()[flat], extra["quality"]])
    ends = (clean.timeline.times[sl] + INTERVAL).tz_localize(None).to_numpy()
    tags = [tagname(m, obis) for m in clean.meters["meter_id"] for obis in (TAG_IMPORT, TAG_EXPORT)]
    rows = pd.DataFrame(
        {
            "timestamp": ends[pos],
            "tagname": pd.Categorical.from_codes(meter * 2 + tag, categories=tags),
            "energy": values.astype(np.float64),
            "quality": qual.astype(np.int64),
        }
    )
    log.info("demo fleet: %d historian rows", len(rows))
    return rows


def old_exports(clean: CleanFleet, truth: Truth, dlog: DefectLog) -> dict[str, pd.DataFrame]:
    """Per meter, the rows of ``<meter_id>.csv``: meter_id, datetime (naive local wall-clock,
    interval START), active_import, active_export (kWh per interval, or scaled)."""
    tl = clean.timeline
    win = _window(clean, SOURCE_OLDMONGO)
    rng = rng_for(clean.spec.seed, STREAM_OLD)
    sl = slice(win.first, win.stop)
    imp, exp = truth.import_wh[:, sl] / 1000, truth.export_wh[:, sl] / 1000
    count = np.ones(imp.shape, dtype=np.int64)
    dup_imp, factor = imp.copy(), np.ones(imp.shape)
    dst = [(a - win.first, b - win.first) for a, b in tl.dst_days(win.first, win.stop)]
    contract_kwh = clean.contract_wh / 1000
    damage_old_exports(rng, win, imp, exp, count, dup_imp, factor, dst, contract_kwh, dlog)
    n_pos = imp.shape[1]
    flat = np.repeat(np.arange(imp.size), count.ravel())  # (meter, time) order
    second = np.r_[False, flat[1:] == flat[:-1]]
    scale = factor.ravel()[flat]
    values_imp = np.where(second, dup_imp.ravel()[flat], imp.ravel()[flat]) * scale
    local = tl.local_times[sl].tz_localize(None).to_numpy()
    ids = clean.meters["meter_id"].to_numpy()
    rows = pd.DataFrame(
        {
            "meter_id": pd.Categorical.from_codes(flat // n_pos, categories=ids),
            "datetime": local[flat % n_pos],
            "active_import": np.round(values_imp, 9),
            "active_export": np.round(exp.ravel()[flat] * scale, 9),
        }
    )
    bounds = np.r_[0, np.cumsum(count.sum(axis=1))]
    out = {}
    for i, meter_id in enumerate(ids):
        part = rows.iloc[bounds[i] : bounds[i + 1]].reset_index(drop=True)
        part["meter_id"] = part["meter_id"].astype(str)
        out[str(meter_id)] = part[list(OLD_EXPORT_COLUMNS)]
    log.info("demo fleet: %d old-export rows in %d files", len(rows), len(out))
    return out


def mongo_documents(clean: CleanFleet, truth: Truth, dlog: DefectLog) -> pd.DataFrame:
    """Documents of the Mongo ``readings`` collection, one per meter and quarter-hour read from
    the window start to its end (inclusive), so consecutive reads span every window interval:
    cumulative registers in kWh, instantaneous voltage, current and power at ``ts`` (UTC)."""
    win = _window(clean, SOURCE_NEWMONGO)
    rng = rng_for(clean.spec.seed, STREAM_MONGO)
    sl = slice(win.first, win.stop)
    imp = truth.import_wh[:, sl].astype(np.int64)
    exp = truth.export_wh[:, sl].astype(np.int64)
    n_meters, n_reads = imp.shape[0], imp.shape[1] + 1
    pv = clean.meters["production_kw"].to_numpy() > 0
    start_imp = np.round(rng.uniform(100, 60_000, n_meters), 3)
    start_exp = np.where(pv, np.round(rng.uniform(50, 20_000, n_meters), 3), 0.0)
    start_imp, rolled = choose_rollovers(rng, imp.sum(axis=1) / 1000, start_imp)
    rollover_wh = round(REGISTER_ROLLOVER_KWH * 1000)

    def register(start_kwh: np.ndarray, energy: np.ndarray) -> np.ndarray:
        cum = np.concatenate([np.zeros((n_meters, 1), np.int64), np.cumsum(energy, axis=1)], 1)
        return (np.round(start_kwh * 1000).astype(np.int64)[:, None] + cum) % rollover_wh

    reg_imp, reg_exp = register(start_imp, imp), register(start_exp, exp)
    keep = np.ones((n_meters, n_reads), dtype=bool)
    dups = damage_mongo(rng, win, reg_imp, reg_exp, keep, rolled, dlog)

    # instantaneous values at each read: the closing interval's mean power, with noise
    net_w = (truth.import_wh - truth.export_wh)[:, win.first - 1 : win.stop] / INTERVAL_H
    power = np.round(net_w * (1 + 0.05 * rng.standard_normal(net_w.shape)))
    voltage = np.round(np.clip(230 + 2.5 * rng.standard_normal(net_w.shape), 207, 253), 1)
    household = clean.meters["type"].to_numpy() == str(MeterType.HOUSEHOLD)
    phases = np.where(household, 1, 3)[:, None]
    current = np.round(np.abs(power) / (voltage * phases), 2)

    flat = np.flatnonzero(keep.T.ravel())  # (read, meter) order
    read = np.concatenate([flat // n_meters, dups["read"]]).astype(np.int64)
    meter = np.concatenate([flat % n_meters, dups["meter"]]).astype(np.int64)
    delta = np.concatenate([np.zeros(len(flat)), dups["delta_kwh"]])
    ids = clean.meters["meter_id"].to_numpy()
    ts = clean.timeline.times[win.first] + INTERVAL * np.arange(n_reads)
    docs = pd.DataFrame(
        {
            "meter_id": ids[meter].astype(str),
            "ts": ts[read],
            "import_kwh": np.round(reg_imp[meter, read] / 1000 + delta, 3),
            "export_kwh": reg_exp[meter, read] / 1000,
            "voltage_v": voltage[meter, read],
            "current_a": current[meter, read],
            "power_w": power[meter, read],
        }
    )
    log.info("demo fleet: %d Mongo documents", len(docs))
    return docs[list(MONGO_COLUMNS)]


def clean_readings(clean: CleanFleet, truth: Truth) -> pd.DataFrame:
    """The truth a perfect ETL should output (before defects, with labelled anomalies): one row
    per meter and interval with UTC interval start, import/export Wh and the anomaly flag, plus
    the physical consumption and PV production (Wh, before anomalies)."""
    n_meters, n = truth.import_wh.shape
    ids = clean.meters["meter_id"].to_numpy()
    times = clean.timeline.times
    return pd.DataFrame(
        {
            "meter_id": pd.Categorical.from_codes(np.repeat(np.arange(n_meters), n), ids),
            "timestamp": pd.DatetimeIndex(
                np.tile(times.tz_localize(None).to_numpy(), n_meters)
            ).tz_localize("UTC"),
            "import_wh": truth.import_wh.ravel(),
            "export_wh": truth.export_wh.ravel(),
            "anomaly": truth.anomaly.ravel(),
            "consumption_wh": clean.consumption_wh.ravel(),
            "pv_wh": clean.pv_wh.ravel(),
        }
    )


@dataclass(frozen=True)
class DemoFleet:
    """A built fleet: raw data per source (with defects) and ground truth.

    - ``meters``: the meters contract (contractual_power_kw, production_kw in kW).
    - ``meters_truth``: meter_id, bdew_profile, type, pv, annual_kwh (expected yearly
      consumption before PV), time_shift_min (of the daily pattern), level_factor (annual_kwh
      over the median of the meter's type), pv_kwp.
    - ``clean``: meter_id, timestamp (UTC interval start), import_wh, export_wh, anomaly,
      consumption_wh, pv_wh: what a perfect ETL outputs (anomalies kept, no defects); the
      last two are the physical load and PV behind import/export, before anomalies.
    - ``historian``: rows of the SQL ``historian`` table; ``mongo_docs``: the Mongo documents;
      ``old_exports``: meter_id -> rows of ``<meter_id>.csv``.
    - ``defects``: meter_id, source, kind, start_utc, end_utc (exclusive), factor, detail.
    - ``anomalies``: meter_id, kind, start_utc, end_utc (exclusive), magnitude.
    - ``windows``: source -> (start_utc, end_utc) of the intervals that source covers.
    """

    spec: DemoSpec
    meters: pd.DataFrame
    meters_truth: pd.DataFrame
    clean: pd.DataFrame
    historian: pd.DataFrame
    mongo_docs: pd.DataFrame
    old_exports: dict[str, pd.DataFrame]
    defects: pd.DataFrame
    anomalies: pd.DataFrame
    windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]]


def build_fleet(spec: DemoSpec | None = None) -> DemoFleet:
    """Build the fleet of ``spec`` (default ``DemoSpec()``) in memory; same spec, same fleet."""
    spec = spec or DemoSpec()
    t0 = time.perf_counter()
    clean = build_clean(spec)
    truth = inject_anomalies(clean)
    dlog = DefectLog()
    historian = historian_rows(clean, truth, dlog)
    mongo = mongo_documents(clean, truth, dlog)
    old = old_exports(clean, truth, dlog)
    times = clean.timeline.times
    fleet = DemoFleet(
        spec=spec,
        meters=clean.meters,
        meters_truth=clean.meters_truth,
        clean=clean_readings(clean, truth),
        historian=historian,
        mongo_docs=mongo,
        old_exports=old,
        defects=dlog.frame(clean),
        anomalies=truth.anomalies,
        windows={
            src: (times[0] + a * INTERVAL, times[0] + b * INTERVAL)
            for src, (a, b) in clean.timeline.windows.items()
        },
    )
    log.info(
        "demo fleet built in %.1fs: %d meters, %d defects, %d anomalies",
        time.perf_counter() - t0,
        len(fleet.meters),
        len(fleet.defects),
        len(fleet.anomalies),
    )
    return fleet
