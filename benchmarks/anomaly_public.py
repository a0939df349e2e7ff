"""Benchmark: the anomaly step on public load series with planted, labelled anomalies.

Real measured series nobody here generated (``benchmarks/public_series.py``; fetch the wheels
once with ``python benchmarks/public_series.py fetch``), split into two fixed sets:

- DEVELOPMENT (engineers may choose defaults on it): ``fontana_home_1``, ``fontana_home_2``
  (CityLearn Fontana CA homes, 60 min), ``portugal_321_clients_2014`` (mean of 321 Portuguese
  clients, 60 min), ``household_sceaux`` (UCI household, Sceaux FR, 30 min),
  ``warehouse_2010`` (pycity warehouse DE, 15 min).
- HELD-BACK (only reported, never used to choose anything): ``fontana_home_3``,
  ``fontana_home_4`` (60 min), ``caiso_sdge_2018`` (CAISO SDG&E area, 60 min),
  ``elecdemand_vic_2014`` (Victoria AU demand, 30 min), ``metal_company_2010`` (pycity metal
  company DE, 15 min).

Each series: a pinned 25-week window from a Monday 00:00 (``SERIES``), NaN-free, at its own
resolution, in Wh per slot (``watts``: W per source unit), ``meter_id`` = the series name. The
window is moved by a whole number of weeks onto a common calendar from Monday ``ANCHOR`` (slot
of day and weekday kept), so that a set shares one chronological split: weeks 0-19 train and
validation (the package's ``val_frac`` of them), weeks 20-24 test (``test_start``). The naive
clock is read as UTC (``timezone="UTC"``; labels ``meter_id, kind, start_utc, end_utc
(exclusive), magnitude``).

Planting (this benchmark's own, seeded by ``--seed`` and the series name), in the TEST weeks
only, 8 anomalies per series, at least ``MIN_GAP_HOURS`` apart, in random order and at random
slots: 3 ``spike``, 1 ``flat_line``, 1 ``stuck_zero`` and 3 of the 4 long kinds (the i-th series
of a set skips ``LONG_KINDS[i % 4]``, so a set holds every kind). Ranges (``PLANTS``):

- ``spike``: one slot x U(2.5, 3);
- ``flat_line``: the first reading held for U(24, 36) h;
- ``stuck_zero``: 0 for U(12, 36) h;
- ``level_shift_up``: x U(1.3, 1.5) for U(3, 5) days;
- ``level_shift_down``: x U(0.65, 0.75) for U(3, 5) days;
- ``theft``: x 0.5 for U(7, 10) days;
- ``time_shift``: readings delayed by k = 1, 2 or 3 h (``value[t] = clean[t - k]``) for
  U(3, 7) days.

Durations are drawn on the slot grid; ``magnitude`` is the factor (0 for ``stuck_zero``, NaN
for ``flat_line``) or, for ``time_shift``, the delay in hours.

Running: a set's series run as one fleet per resolution (60, 30 and 15 min), each through
``detect_anomalies`` with every detector (the reference ``robust_z`` first, the others as
baselines; with ``detector="auto"`` when the package accepts it, whose pick is printed). One
table per set pools the groups: precision, recall and F1 from the counts (exact), event recall
per kind weighted by the planted events, false alarms per meter-month by meters, seconds
summed, AUC-PR the mean weighted by labelled readings (approximate across groups). Ratios: F1
and seconds against ``robust_z`` run in the same process::

    python benchmarks/anomaly_public.py [--set dev|held|both] [--detectors a,b] [--epochs N]
        [--threads N] [--seed N] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import public_grid_series as grid  # noqa: E402
import public_site_series as site  # noqa: E402
from public_series import call_loader  # noqa: E402
from public_sources import DEFAULT_CACHE  # noqa: E402

log = logging.getLogger("anomaly_public")

REFERENCE = "robust_z"
AUTO = "auto"  # the row of the detector auto chose in each fleet
ANCHOR = pd.Timestamp("2018-01-01")  # a Monday: every window is moved to start here
WEEKS = 25
TEST_WEEK = 20  # first test week (0-based)
MAX_NAN_RUN_HOURS = 2.0  # a window with a longer NaN stretch is refused
MIN_GAP_HOURS = 24  # between two planted anomalies of a series


# ---------------------------------------------------------------------------------------------
# Series


@dataclasses.dataclass(frozen=True)
class Series:
    """One public series and its pinned 25-week window."""

    name: str
    loader: Callable[..., pd.DataFrame]
    resolution_min: int
    start: str  # Monday 00:00 on the series' own clock
    category: str  # household / commercial / aggregate
    watts: float  # W per source unit (kW, MW, GW: 1e3, 1e6, 1e9); kWh per hour counts as kW

    @property
    def offset(self) -> pd.Timedelta:
        """Whole weeks that move the window onto ``ANCHOR``."""
        delta = ANCHOR - pd.Timestamp(self.start)
        if delta % pd.Timedelta(weeks=1) != pd.Timedelta(0):
            raise ValueError(f"{self.name}: window start {self.start} is not a Monday")
        return delta

    @property
    def window(self) -> str:
        """The window on the series' own clock, both ends inclusive (days)."""
        start = pd.Timestamp(self.start)
        last = start + pd.Timedelta(weeks=WEEKS) - pd.Timedelta(days=1)
        return f"{start:%Y-%m-%d} .. {last:%Y-%m-%d}"


DEVELOPMENT = (
    Series("fontana_home_1", site.load_fontana_home_1, 60, "2017-01-02", "household", 1e3),
    Series("fontana_home_2", site.load_fontana_home_2, 60, "2017-01-02", "household", 1e3),
    Series(
        "portugal_321_clients_2014",
        grid.load_portugal_321_clients_2014,
        60,
        "2014-01-06",
        "aggregate",
        1e3,
    ),
    Series(
        "household_sceaux", site.load_household_sceaux_benchmark, 30, "2008-01-07", "household", 1e3
    ),
    Series("warehouse_2010", site.load_warehouse_2010, 15, "2010-01-04", "commercial", 1.0),
)
HELD_BACK = (
    Series("fontana_home_3", site.load_fontana_home_3, 60, "2017-01-02", "household", 1e3),
    Series("fontana_home_4", site.load_fontana_home_4, 60, "2017-01-02", "household", 1e3),
    Series("caiso_sdge_2018", grid.load_caiso_sdge_2018, 60, "2018-01-01", "aggregate", 1e6),
    Series(
        "elecdemand_vic_2014", grid.load_elecdemand_vic_2014, 30, "2014-01-06", "aggregate", 1e9
    ),
    Series("metal_company_2010", site.load_metal_company_2010, 15, "2010-01-04", "commercial", 1.0),
)
SETS: dict[str, tuple[Series, ...]] = {"dev": DEVELOPMENT, "held": HELD_BACK}
SET_TITLES = {"dev": "Development set", "held": "Held-back set"}


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in ``mask``."""
    best = run = 0
    for x in mask:
        run = run + 1 if x else 0
        best = max(best, run)
    return best


def load_window(spec: Series, cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """``meter_id, timestamp, value``: the pinned window in Wh per slot, moved onto ``ANCHOR``.

    Raises ``ValueError`` unless the window is a complete regular grid without a NaN stretch
    longer than ``MAX_NAN_RUN_HOURS``."""
    df = call_loader(spec.loader, cache)
    start = pd.Timestamp(spec.start)
    end = start + pd.Timedelta(weeks=WEEKS)
    window = df.loc[(df["timestamp"] >= start) & (df["timestamp"] < end)]
    expected = pd.date_range(start, end, freq=f"{spec.resolution_min}min", inclusive="left")
    stamps = pd.DatetimeIndex(window["timestamp"])
    if len(stamps) != len(expected) or not (stamps == expected).all():
        raise ValueError(f"{spec.name}: {spec.window} is not a complete regular window")
    values = window["value"].to_numpy(dtype=float) * spec.watts * spec.resolution_min / 60
    longest = _longest_run(np.isnan(values)) * spec.resolution_min / 60
    if longest > MAX_NAN_RUN_HOURS:
        raise ValueError(f"{spec.name}: {spec.window} holds a {longest:g} h NaN stretch")
    return pd.DataFrame(
        {
            "meter_id": spec.name,
            "timestamp": (expected + spec.offset).astype("datetime64[ns]"),
            "value": values,
        }
    )


# ---------------------------------------------------------------------------------------------
# Planting


@dataclasses.dataclass(frozen=True)
class Plant:
    """How one kind of anomaly is planted: duration range (hours; None: one slot) and the
    range of its factor (or of its delay in hours for ``time_shift``)."""

    hours: tuple[int, int] | None
    low: float
    high: float


PLANTS: dict[str, Plant] = {
    "spike": Plant(None, 2.5, 3.0),
    "flat_line": Plant((24, 36), np.nan, np.nan),
    "stuck_zero": Plant((12, 36), 0.0, 0.0),
    "level_shift_up": Plant((72, 120), 1.3, 1.5),
    "level_shift_down": Plant((72, 120), 0.65, 0.75),
    "theft": Plant((168, 240), 0.5, 0.5),
    "time_shift": Plant((72, 168), 1, 3),  # delay: 1, 2 or 3 whole hours
}
SHORT_KINDS = ("spike", "spike", "spike", "flat_line", "stuck_zero")
LONG_KINDS = ("level_shift_up", "level_shift_down", "theft", "time_shift")


def kinds_of(position: int) -> tuple[str, ...]:
    """The 8 kinds planted in the ``position``-th series of a set (one long kind skipped)."""
    skipped = LONG_KINDS[position % len(LONG_KINDS)]
    return SHORT_KINDS + tuple(k for k in LONG_KINDS if k != skipped)


def _draw(kind: str, slots_per_hour: int, rng: np.random.Generator) -> tuple[int, float]:
    """Length in slots and magnitude (factor, or delay in hours) of one anomaly."""
    plant = PLANTS[kind]
    length = 1
    if plant.hours is not None:
        lo, hi = plant.hours
        length = int(rng.integers(lo * slots_per_hour, hi * slots_per_hour + 1))
    if kind == "time_shift":
        return length, float(rng.integers(int(plant.low), int(plant.high) + 1))
    if plant.low == plant.high or np.isnan(plant.low):
        return length, plant.low
    return length, float(rng.uniform(plant.low, plant.high))


def plan(
    kinds: Sequence[str], n_slots: int, slots_per_hour: int, rng: np.random.Generator
) -> list[tuple[str, int, int, float]]:
    """``(kind, first slot, length, magnitude)`` of non-overlapping anomalies inside
    ``n_slots`` slots, in random order, at least ``MIN_GAP_HOURS`` apart."""
    order = [kinds[i] for i in rng.permutation(len(kinds))]
    drawn = [_draw(k, slots_per_hour, rng) for k in order]
    gap = MIN_GAP_HOURS * slots_per_hour
    free = n_slots - sum(n for n, _ in drawn) - gap * (len(drawn) - 1)
    if free < 0:
        raise ValueError(f"{len(kinds)} anomalies do not fit in {n_slots} slots")
    cuts = np.sort(rng.integers(0, free + 1, size=len(drawn)))
    out, used = [], 0
    for i, (kind, (length, magnitude)) in enumerate(zip(order, drawn, strict=True)):
        start = int(cuts[i]) + used + gap * i
        out.append((kind, start, length, magnitude))
        used += length
    return out


def _apply_kind(
    clean: np.ndarray, out: np.ndarray, kind: str, a: int, b: int, mag: float, per_hour: int
) -> None:
    """Plant one anomaly on slots ``[a, b)`` of ``out`` from the ``clean`` readings."""
    if kind == "flat_line":
        out[a:b] = clean[a]
    elif kind == "time_shift":
        k = round(mag * per_hour)
        out[a:b] = clean[a - k : b - k]
    else:
        out[a:b] = clean[a:b] * mag


def plant(
    window: pd.DataFrame,
    resolution_min: int,
    test_start: pd.Timestamp,
    kinds: Sequence[str],
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One series' window with ``kinds`` planted in its test part (from ``test_start``) and
    the labels ``meter_id, kind, start_utc, end_utc, magnitude`` (naive clock read as UTC).

    Seeded by ``seed`` and the meter id, so a series gets the same anomalies in any set."""
    meter = str(window["meter_id"].iloc[0])
    rng = np.random.default_rng([seed, zlib.crc32(meter.encode())])
    stamps = pd.DatetimeIndex(window["timestamp"])
    first = int(np.searchsorted(stamps, test_start))
    per_hour = 60 // resolution_min
    clean = window["value"].to_numpy(dtype=float)
    values = clean.copy()
    slot = pd.Timedelta(minutes=resolution_min)
    labels = []
    for kind, start, length, mag in plan(kinds, len(stamps) - first, per_hour, rng):
        a, b = first + start, first + start + length
        _apply_kind(clean, values, kind, a, b, mag, per_hour)
        begin = stamps[a]
        labels.append((meter, kind, begin, begin + length * slot, mag))
    out = window.copy()
    out["value"] = values
    columns = ["meter_id", "kind", "start_utc", "end_utc", "magnitude"]
    table = pd.DataFrame(labels, columns=columns)
    for col in ("start_utc", "end_utc"):
        table[col] = pd.DatetimeIndex(table[col]).tz_localize("UTC")
    return out, table.sort_values("start_utc", ignore_index=True)


def prepare_set(
    specs: Sequence[Series], seed: int, cache: Path = DEFAULT_CACHE
) -> dict[int, tuple[pd.DataFrame, pd.DataFrame]]:
    """Planted series and labels of a set, one fleet per resolution (finest last)."""
    test_start = ANCHOR + pd.Timedelta(weeks=TEST_WEEK)
    groups: dict[int, tuple[list[pd.DataFrame], list[pd.DataFrame]]] = {}
    for i, spec in enumerate(specs):
        window = load_window(spec, cache)
        planted, labels = plant(window, spec.resolution_min, test_start, kinds_of(i), seed)
        log.info(
            "%s: %s, %d min, %d readings, planted %s",
            spec.name,
            spec.window,
            spec.resolution_min,
            len(window),
            ", ".join(labels["kind"]),
        )
        frames, tables = groups.setdefault(spec.resolution_min, ([], []))
        frames.append(planted)
        tables.append(labels)
    return {
        res: (pd.concat(frames, ignore_index=True), pd.concat(tables, ignore_index=True))
        for res, (frames, tables) in sorted(groups.items(), reverse=True)
    }


# ---------------------------------------------------------------------------------------------
# Running


@dataclasses.dataclass
class GroupRun:
    """One fleet (a set's series at one resolution) through ``detect_anomalies``."""

    resolution_min: int
    meters: int
    n_test: int  # test readings
    n_pos: int  # labelled test readings
    events: dict[str, int]  # planted anomalies per kind
    comparison: pd.DataFrame
    auto_choice: str | None
    chosen: str  # the detector auto chose
    labels: pd.DataFrame


def detector_names(arg: str | None) -> list[str]:
    """The detectors to run, the reference first (always run, for the ratios)."""
    from meterflow.anomaly.registry import DETECTORS

    names = [n.strip() for n in arg.split(",") if n.strip()] if arg else list(DETECTORS)
    unknown = sorted(set(names) - set(DETECTORS))
    if unknown:
        raise SystemExit(f"unknown detector(s) {unknown}; known: {', '.join(DETECTORS)}")
    return [REFERENCE, *(n for n in dict.fromkeys(names) if n != REFERENCE)]


def make_settings(names: Sequence[str], args: argparse.Namespace) -> Any:
    """``AnomalySettings`` that run ``names`` with ``detector="auto"``, with the package's
    defaults except the options given."""
    from meterflow.anomaly.base import DetectorSettings
    from meterflow.anomaly.detection import AnomalySettings

    given = {"epochs": args.epochs, "threads": args.threads}
    budget = {"alarm_budget": args.alarm_budget} if args.alarm_budget else {}
    return AnomalySettings(
        detector="auto",
        detectors=tuple(names),
        training=DetectorSettings(**{k: v for k, v in given.items() if v is not None}),
        test_start=ANCHOR + pd.Timedelta(weeks=TEST_WEEK),
        timezone="UTC",
        **budget,
    )


def warm_up(names: Sequence[str], threads: int | None) -> None:
    """Import the detectors' modules (and set TensorFlow up once) before anything is timed,
    so that no detector's seconds include the imports."""
    from meterflow.anomaly.base import DetectorSettings
    from meterflow.anomaly.registry import DETECTORS

    t0 = time.perf_counter()
    for name in names:
        import_module(DETECTORS[name].split(":")[0])
    if "keras" in sys.modules:
        from meterflow.nets.keras_setup import configure_keras

        configure_keras(threads if threads is not None else DetectorSettings().threads)
    log.info("imports and set-up: %.1f s (not in any detector's seconds)", time.perf_counter() - t0)


def run_group(
    series: pd.DataFrame,
    labels: pd.DataFrame,
    resolution_min: int,
    names: Sequence[str],
    args: argparse.Namespace,
) -> GroupRun:
    """Every detector on one fleet; the counts that pooling needs."""
    from meterflow.anomaly.detection import detect_anomalies

    cfg = make_settings(names, args)
    meters = series["meter_id"].nunique()
    log.info("fleet of %d meter(s) at %d min, detector=%s", meters, resolution_min, cfg.detector)
    t0 = time.perf_counter()
    result = detect_anomalies(series, resolution_min, labels, cfg)
    log.info("fleet at %d min done in %.0f s", resolution_min, time.perf_counter() - t0)
    slot = pd.Timedelta(minutes=resolution_min)
    auto = f"{result.chosen} ({resolution_min} min; {result.reason.removeprefix('auto: ')})"
    return GroupRun(
        resolution_min=resolution_min,
        meters=meters,
        n_test=int((series["timestamp"] >= cfg.test_start).sum()),
        n_pos=int(((labels["end_utc"] - labels["start_utc"]) / slot).sum()),
        events=labels["kind"].value_counts().to_dict(),
        comparison=result.comparison,
        auto_choice=auto,
        chosen=result.chosen,
        labels=labels,
    )


# ---------------------------------------------------------------------------------------------
# Pooling and tables


def _pooled_row(name: str, groups: Sequence[GroupRun]) -> dict[str, float | str]:
    """One detector's metrics over the groups of a set (module docstring)."""
    tp = flagged = pos = auc = alarms = meters = seconds = 0.0
    hits = dict.fromkeys(PLANTS, 0.0)
    events = dict.fromkeys(PLANTS, 0)
    for g in groups:
        found = g.comparison.loc[g.comparison["detector"] == (g.chosen if name == AUTO else name)]
        if found.empty:
            continue
        m = found.iloc[0]
        if name == AUTO:  # auto runs every detector to choose one
            m = m.copy()
            m["seconds"] = g.comparison["seconds"].sum()
        tp += m.get("recall", np.nan) * g.n_pos
        flagged += m.get("flagged_share", np.nan) * g.n_test
        pos += g.n_pos
        auc += m.get("auc_pr", np.nan) * g.n_pos
        alarms += m.get("false_alarms_per_meter_month", np.nan) * g.meters
        meters += g.meters
        seconds += m.get("seconds", np.nan)
        for kind, n in g.events.items():
            hits[kind] += m.get(f"event_recall_{kind}", np.nan) * n
            events[kind] += n
    precision, recall = tp / flagged if flagged else 0.0, tp / pos
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    row: dict[str, float | str] = {
        "detector": name,
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "auc_pr": auc / pos,
        "event_recall": sum(hits.values()) / sum(events.values()),
    }
    row.update({f"event_recall_{k}": hits[k] / events[k] for k in PLANTS if events[k]})
    row["false_alarms_per_meter_month"] = alarms / meters
    row["seconds"] = seconds
    return row


def pool(groups: Sequence[GroupRun], order: Sequence[str] = ()) -> pd.DataFrame:
    """One row per detector over a set's groups (``order`` first), with F1 and seconds
    against ``REFERENCE``."""
    names = list(dict.fromkeys([*order, *(n for g in groups for n in g.comparison["detector"])]))
    names = [n for n in names if any((g.comparison["detector"] == n).any() for g in groups)]
    rows = [_pooled_row(n, groups) for n in [AUTO, *names]]
    table = pd.DataFrame(rows).set_index("detector")
    ref = table.loc[REFERENCE] if REFERENCE in table.index else None
    table["f1_vs_ref"] = table["f1"] / ref["f1"] if ref is not None else np.nan
    table["seconds_vs_ref"] = table["seconds"] / ref["seconds"] if ref is not None else np.nan
    return table


def markdown(table: pd.DataFrame) -> str:
    """The pooled table as markdown (event recall per kind in one column per kind)."""
    kinds = [k for k in PLANTS if f"event_recall_{k}" in table.columns]
    columns = [
        ("F1", "f1", 3),
        (f"F1 / {REFERENCE}", "f1_vs_ref", 2),
        ("precision", "precision", 3),
        ("recall", "recall", 3),
        ("AUC-PR", "auc_pr", 3),
        ("event recall", "event_recall", 3),
        *((f"ER {k}", f"event_recall_{k}", 2) for k in kinds),
        ("false alarms / meter-month", "false_alarms_per_meter_month", 2),
        ("seconds", "seconds", 1),
        (f"seconds / {REFERENCE}", "seconds_vs_ref", 2),
    ]
    lines = [
        "| detector | " + " | ".join(c[0] for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, row in table.iterrows():
        cells = [_fmt(row[key], digits) for _, key, digits in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float, digits: int) -> str:
    return "-" if not np.isfinite(value) else f"{value:.{digits}f}"


def series_lines(specs: Sequence[Series], groups: Sequence[GroupRun]) -> str:
    """One line per series of a set, and the planted anomalies per kind."""
    lines = [f"- {s.name} ({s.category}, {s.resolution_min} min, {s.window})" for s in specs]
    counts = pd.concat([g.labels for g in groups])["kind"].value_counts()
    planted = ", ".join(f"{k} {counts.get(k, 0)}" for k in PLANTS)
    lines.append(f"- planted in the test weeks: {counts.sum()} ({planted})")
    pos, total = sum(g.n_pos for g in groups), sum(g.n_test for g in groups)
    lines.append(f"- labelled test readings: {pos} of {total} ({pos / total:.0%})")
    lines += [f"- detector=auto chose {g.auto_choice}" for g in groups if g.auto_choice]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


def run_set(key: str, names: Sequence[str], args: argparse.Namespace) -> str:
    """Plant, run and pool one set; its markdown section (and CSV files under ``--out``)."""
    specs = SETS[key]
    log.info("%s: %d series", SET_TITLES[key], len(specs))
    groups = [
        run_group(series, labels, res, names, args)
        for res, (series, labels) in prepare_set(specs, args.seed, args.cache).items()
    ]
    table = pool(groups, names)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / f"anomaly_public_{key}.csv")
        pd.concat([g.labels for g in groups]).to_csv(
            args.out / f"anomaly_public_{key}_labels.csv", index=False
        )
        for g in groups:
            path = args.out / f"anomaly_public_{key}_{g.resolution_min}min_comparison.csv"
            g.comparison.to_csv(path, index=False)
    title = f"### {SET_TITLES[key]} ({len(specs)} series, seed {args.seed})"
    note = (
        "Pooled over the fleets at 60, 30 and 15 min; ER = event recall; AUC-PR is their mean "
        "weighted by labelled readings."
    )
    return f"{title}\n\n{series_lines(specs, groups)}\n\n{markdown(table)}\n\n{note}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="both", choices=("dev", "held", "both"))
    parser.add_argument("--detectors", help="comma-separated (default: every detector)")
    parser.add_argument("--epochs", type=int, help="LSTM epochs (default: the package's)")
    parser.add_argument("--threads", type=int, help="TensorFlow threads (default: the package's)")
    parser.add_argument("--seed", type=int, default=0, help="of the planted anomalies")
    parser.add_argument("--alarm-budget", type=float, help="default: the package's")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="data wheels")
    parser.add_argument("--out", type=Path, help="write the tables as CSV here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.perf_counter()
    names = detector_names(args.detectors)
    warm_up(names, args.threads)
    keys = ("dev", "held") if args.set == "both" else (args.set,)
    sections = [run_set(key, names, args) for key in keys]
    print("\n".join(sections))
    print(f"wall time: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
