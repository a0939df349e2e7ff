"""Render the truth of a block of demo meters into the three raw formats of
``meterflow.sources.formats``, damaged by ``meterflow.demo.defects``, and the clean truth as a
readings-like table. ``iter_blocks`` yields a fleet block by block (what ``ensure_demo`` writes,
one block in memory at a time); ``build_fleet`` joins the blocks in memory (small fleets)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from meterflow.demo.defects import (
    DefectLog,
    FleetPlan,
    HistorianGrid,
    MongoGrid,
    OldGrid,
    Truth,
    Window,
    damage_historian,
    damage_mongo,
    damage_old_exports,
    fleet_plan,
    inject_anomalies,
    rollover_start,
)
from meterflow.demo.fleet import (
    BLOCK_METERS,
    INTERVAL,
    INTERVAL_H,
    STREAM_MONGO,
    CleanBlock,
    DemoSpec,
    FleetContext,
    Timeline,
    build_clean,
    fleet_context,
    normals,
    rng_for,
)
from meterflow.domain import REGISTER_ROLLOVER_KWH, SOURCE_NEWMONGO, SOURCE_OLDMONGO, SOURCE_SQL
from meterflow.errors import ConfigError
from meterflow.schemas import MeterType
from meterflow.sources.formats import OLD_EXPORT_COLUMNS, OPC_GOOD, TAG_EXPORT, TAG_IMPORT, tagname

log = logging.getLogger(__name__)

MONGO_COLUMNS = ("meter_id", "ts", "import_kwh", "export_kwh", "voltage_v", "current_a", "power_w")


def _window(clean: CleanBlock, source: str) -> Window:
    return Window(source, *clean.timeline.windows[source])


def _columns(rows: list[tuple], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Tuples as one array per name (empty arrays for no rows)."""
    arr = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    return {c: np.asarray(v) for c, v in zip(names, arr, strict=True)}


def historian_rows(
    clean: CleanBlock, truth: Truth, plan: FleetPlan, dlog: DefectLog
) -> pd.DataFrame:
    """Rows of the ``historian`` table: timestamp (naive UTC, interval END), tagname
    (categorical), energy (kWh), quality (OPC); in time order, late duplicates at the end."""
    win = _window(clean, SOURCE_SQL)
    sl = slice(win.first, win.stop)
    energy = np.stack([truth.import_wh[:, sl], truth.export_wh[:, sl]], axis=2) / 1000
    quality = np.full(energy.shape, OPC_GOOD, dtype=np.int16)
    grid = HistorianGrid(energy, quality, np.ones(energy.shape, dtype=bool))
    damage_historian(clean, plan, win, grid, dlog)
    extra = _columns(grid.extra, ("meter", "pos", "tag", "energy", "quality"))
    n_meters, n_pos, _ = energy.shape
    # kept cells in (time, meter, tag) order, as indices into the (meter, time, tag) grid
    order = np.flatnonzero(grid.keep.transpose(1, 0, 2).ravel())
    pos, rest = np.divmod(order, 2 * n_meters)
    meter, tag = np.divmod(rest, 2)
    cell = (meter * n_pos + pos) * 2 + tag
    del order, rest
    ends = (clean.timeline.times[sl] + INTERVAL).tz_localize(None).to_numpy()
    tags = [tagname(m, obis) for m in clean.meters["meter_id"] for obis in (TAG_IMPORT, TAG_EXPORT)]
    codes = np.concatenate([meter * 2 + tag, extra["meter"] * 2 + extra["tag"]])
    return pd.DataFrame(
        {
            "timestamp": ends[np.concatenate([pos, extra["pos"]]).astype(np.int64)],
            "tagname": pd.Categorical.from_codes(codes.astype(np.int64), categories=tags),
            "energy": np.concatenate([energy.ravel()[cell], extra["energy"]]).astype(np.float64),
            "quality": np.concatenate([quality.ravel()[cell], extra["quality"]]).astype(np.int64),
        },
        copy=False,
    )


def old_exports(
    clean: CleanBlock, truth: Truth, plan: FleetPlan, dlog: DefectLog
) -> dict[str, pd.DataFrame]:
    """Per meter, the rows of ``<meter_id>.csv``: meter_id, datetime (naive local wall-clock,
    interval START), active_import, active_export (kWh per interval, or scaled)."""
    tl = clean.timeline
    win = _window(clean, SOURCE_OLDMONGO)
    sl = slice(win.first, win.stop)
    imp, exp = truth.import_wh[:, sl] / 1000, truth.export_wh[:, sl] / 1000
    grid = OldGrid(imp, exp, np.ones(imp.shape, dtype=np.int64), imp.copy(), np.ones(imp.shape))
    dst = [(a - win.first, b - win.first) for a, b in tl.dst_days(win.first, win.stop)]
    damage_old_exports(clean, plan, win, grid, dst, dlog)
    n_pos = imp.shape[1]
    flat = np.repeat(np.arange(imp.size), grid.count.ravel())  # (meter, time) order
    second = np.r_[False, flat[1:] == flat[:-1]]
    scale = grid.factor.ravel()[flat]
    values_imp = np.where(second, grid.dup_imp.ravel()[flat], imp.ravel()[flat]) * scale
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
    bounds = np.r_[0, np.cumsum(grid.count.sum(axis=1))]
    out = {}
    for i, meter_id in enumerate(ids):
        part = rows.iloc[bounds[i] : bounds[i + 1]].reset_index(drop=True)
        part["meter_id"] = part["meter_id"].astype(str)
        out[str(meter_id)] = part[list(OLD_EXPORT_COLUMNS)]
    return out


def mongo_documents(
    clean: CleanBlock, truth: Truth, plan: FleetPlan, dlog: DefectLog
) -> pd.DataFrame:
    """Documents of the Mongo ``readings`` collection, one per meter and quarter-hour read from
    the window start to its end (inclusive), so consecutive reads span every window interval:
    cumulative registers in kWh, instantaneous voltage, current and power at ``ts`` (UTC); in
    time order, duplicates at the end."""
    win = _window(clean, SOURCE_NEWMONGO)
    sl = slice(win.first, win.stop)
    imp = truth.import_wh[:, sl].astype(np.int64)
    exp = truth.export_wh[:, sl].astype(np.int64)
    rngs = [rng_for(clean.spec.seed, STREAM_MONGO, int(g)) for g in clean.meter_index]
    start_imp, start_exp = _start_registers(clean, plan, rngs, imp.sum(axis=1) / 1000)
    keep = np.ones((imp.shape[0], imp.shape[1] + 1), dtype=bool)
    grid = MongoGrid(_register(start_imp, imp), _register(start_exp, exp), keep)
    damage_mongo(rngs, clean, plan, win, grid, dlog)
    return _documents(clean, win, grid, _instantaneous(clean, truth, rngs, win))


def _start_registers(
    clean: CleanBlock, plan: FleetPlan, rngs: list[np.random.Generator], window_kwh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Import and export registers (kWh) at the window start; the plan's rollover meters'
    import just below the rollover value."""
    pv = clean.meters["production_kw"].to_numpy() > 0
    start_imp, start_exp = np.empty(len(rngs)), np.zeros(len(rngs))
    for m, (rng, g) in enumerate(zip(rngs, clean.meter_index, strict=True)):
        start_imp[m] = round(rng.uniform(100, 60_000), 3)
        if pv[m]:
            start_exp[m] = round(rng.uniform(50, 20_000), 3)
        if int(g) in plan.rolled:
            start_imp[m] = rollover_start(rng, float(window_kwh[m]))
    return start_imp, start_exp


def _register(start_kwh: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Cumulative register (whole Wh, modulo the rollover) at each read."""
    cum = np.concatenate([np.zeros((len(energy), 1), np.int64), np.cumsum(energy, axis=1)], 1)
    rollover_wh = round(REGISTER_ROLLOVER_KWH * 1000)
    return (np.round(start_kwh * 1000).astype(np.int64)[:, None] + cum) % rollover_wh


def _instantaneous(
    clean: CleanBlock, truth: Truth, rngs: list[np.random.Generator], win: Window
) -> dict[str, np.ndarray]:
    """Power, voltage and current at each read: the closing interval's mean power, with noise."""
    sl = slice(win.first - 1, win.stop)
    net_w = (truth.import_wh[:, sl] - truth.export_wh[:, sl]) / INTERVAL_H
    power = np.round(net_w * (1 + 0.05 * normals(rngs, net_w.shape[1])))
    voltage = np.round(np.clip(230 + 2.5 * normals(rngs, net_w.shape[1]), 207, 253), 1)
    household = clean.meters["type"].to_numpy() == str(MeterType.HOUSEHOLD)
    phases = np.where(household, 1, 3)[:, None]
    current = np.round(np.abs(power) / (voltage * phases), 2)
    return {"voltage_v": voltage, "current_a": current, "power_w": power}


def _documents(
    clean: CleanBlock, win: Window, grid: MongoGrid, instant: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The kept reads in (read, meter) order, then the duplicates, as documents."""
    n_meters, n_reads = grid.keep.shape
    dups = _columns(grid.dups, ("meter", "read", "delta_kwh"))
    flat = np.flatnonzero(grid.keep.T.ravel())  # (read, meter) order
    read = np.concatenate([flat // n_meters, dups["read"]]).astype(np.int64)
    meter = np.concatenate([flat % n_meters, dups["meter"]]).astype(np.int64)
    delta = np.concatenate([np.zeros(len(flat)), dups["delta_kwh"]])
    ids = clean.meters["meter_id"].to_numpy()
    ts = clean.timeline.times[win.first] + INTERVAL * np.arange(n_reads)
    docs = pd.DataFrame(
        {
            "meter_id": ids[meter].astype(str),
            "ts": ts[read],
            "import_kwh": np.round(grid.reg_imp_wh[meter, read] / 1000 + delta, 3),
            "export_kwh": grid.reg_exp_wh[meter, read] / 1000,
            **{name: values[meter, read] for name, values in instant.items()},
        }
    )
    return docs[list(MONGO_COLUMNS)]


def clean_readings(clean: CleanBlock, truth: Truth) -> pd.DataFrame:
    """The truth a perfect ETL should output (before defects, with labelled anomalies): one row
    per meter and interval with UTC interval start, import/export Wh and the anomaly flag, plus
    the physical consumption and PV production (Wh, before anomalies)."""
    n_meters, n = truth.import_wh.shape
    ids = clean.meters["meter_id"].to_numpy()
    stamps = np.tile(clean.timeline.times.tz_localize(None).to_numpy(), n_meters)
    return pd.DataFrame(
        {
            "meter_id": pd.Categorical.from_codes(np.repeat(np.arange(n_meters), n), ids),
            "timestamp": pd.DatetimeIndex(stamps).tz_localize("UTC"),
            "import_wh": truth.import_wh.ravel(),
            "export_wh": truth.export_wh.ravel(),
            "anomaly": truth.anomaly.ravel(),
            "consumption_wh": clean.consumption_wh.ravel(),
            "pv_wh": clean.pv_wh.ravel(),
        },
        copy=False,  # the block's arrays, not copies of them
    )


@dataclass(frozen=True)
class FleetBlock:
    """A block of meters of a fleet: raw data per source (with defects) and ground truth.

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

    Tables are in meter order, except the historian rows and Mongo documents: in time order
    within the block, its late duplicates after them.
    """

    meters: pd.DataFrame
    meters_truth: pd.DataFrame
    clean: pd.DataFrame
    historian: pd.DataFrame
    mongo_docs: pd.DataFrame
    old_exports: dict[str, pd.DataFrame]
    defects: pd.DataFrame
    anomalies: pd.DataFrame


@dataclass(frozen=True)
class DemoFleet(FleetBlock):
    """A whole fleet as one block, with its ``spec`` and ``windows``: source -> (start_utc,
    end_utc) of the intervals that source covers."""

    spec: DemoSpec
    windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]]


def fleet_windows(tl: Timeline) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Source -> (start_utc, end_utc) of the intervals that source covers."""
    t0 = tl.times[0]
    return {src: (t0 + a * INTERVAL, t0 + b * INTERVAL) for src, (a, b) in tl.windows.items()}


def build_block(ctx: FleetContext, plan: FleetPlan, lo: int, hi: int) -> FleetBlock:
    """Meters [lo, hi) of the fleet of ``ctx``: the same whatever other blocks are built."""
    clean = build_clean(ctx, lo, hi)
    truth = inject_anomalies(clean, plan)
    dlog = DefectLog()
    return FleetBlock(
        meters=clean.meters,
        meters_truth=clean.meters_truth,
        clean=clean_readings(clean, truth),
        historian=historian_rows(clean, truth, plan, dlog),
        mongo_docs=mongo_documents(clean, truth, plan, dlog),
        old_exports=old_exports(clean, truth, plan, dlog),
        defects=dlog.frame(clean),
        anomalies=truth.anomalies,
    )


def iter_blocks(spec: DemoSpec, block_meters: int | None = None) -> Iterator[FleetBlock]:
    """The fleet of ``spec`` in blocks of ``block_meters`` (default ``BLOCK_METERS``) meters,
    each built when asked for: memory holds one block, whatever the fleet's size."""
    size = BLOCK_METERS if block_meters is None else block_meters
    if size < 1:
        raise ConfigError(f"demo block_meters must be >= 1, got {size}")
    ctx, plan = fleet_context(spec), fleet_plan(spec)
    for lo in range(0, spec.n_meters, size):
        yield build_block(ctx, plan, lo, min(lo + size, spec.n_meters))


def build_fleet(spec: DemoSpec | None = None, block_meters: int | None = None) -> DemoFleet:
    """The fleet of ``spec`` (default ``DemoSpec()``) in memory; same spec, same fleet, in any
    ``block_meters`` (row order of the historian and the Mongo documents aside)."""
    spec = spec or DemoSpec()
    t0 = time.perf_counter()
    blocks = list(iter_blocks(spec, block_meters))

    def joined(name: str, categorical: str | None = None) -> pd.DataFrame:
        frames = [getattr(b, name) for b in blocks]
        out = pd.concat(frames, ignore_index=True)
        if categorical is not None and len(frames) > 1:
            out[categorical] = union_categoricals([f[categorical] for f in frames])
        return out

    fleet = DemoFleet(
        meters=joined("meters"),
        meters_truth=joined("meters_truth"),
        clean=joined("clean", "meter_id"),
        historian=joined("historian", "tagname"),
        mongo_docs=joined("mongo_docs"),
        old_exports={k: v for b in blocks for k, v in b.old_exports.items()},
        defects=joined("defects"),
        anomalies=joined("anomalies"),
        spec=spec,
        windows=fleet_windows(Timeline(spec)),
    )
    log.info(
        "demo fleet built in %.1fs: %d meters, %d defects, %d anomalies",
        time.perf_counter() - t0,
        len(fleet.meters),
        len(fleet.defects),
        len(fleet.anomalies),
    )
    return fleet
