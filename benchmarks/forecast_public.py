"""Benchmark: the forecasting step's model against every baseline on public load series.

Series: ``BENCHMARK_SERIES`` of ``benchmarks/public_series.py`` (national, regional, customer
aggregates, households and a building, at 15, 30 and 60 min; fetch them once with
``python benchmarks/public_series.py fetch``). One protocol for all: 8 weeks of history (the
last eighth of it validation), then 4 test weeks; day-ahead (every slot of the next day) from
every test slot; ``evaluate_forecaster`` exactly as the step runs it (``model=auto``: every
candidate fitted on the training weeks, the model kept on validation, every one scored on
test).

    python benchmarks/forecast_public.py                       # every series, 2 at a time
    python benchmarks/forecast_public.py taylor_ew_2000 --set seq_length=48
    python benchmarks/forecast_public.py --patch meterflow.forecasting.dshw.FIT_HORIZON=0

``--set FIELD=VALUE`` overrides a ``ForecastSettings`` field; ``--patch MODULE.NAME=VALUE`` a
module constant (for trying a choice before it becomes a setting). Prints two tables: the test
results (MAPE, or MAE relative to seasonal naive week where MAPE means nothing) of the kept
model against every baseline, and the validation table that settings are chosen on — each
candidate's validation MAE relative to seasonal naive week, geometric mean over the series.
The test split chooses nothing; it is printed to be read, never to tune.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from public_series import BENCHMARK_SERIES, benchmark_frame  # noqa: E402

REFERENCE = "seasonal_naive_week"
TUPLE_TYPES = {"units": int, "quantiles": float, "exog": str, "candidates": str}


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
        else:
            out[key] = type(default)(raw) if isinstance(default, int | float) else raw
    return out


def apply_patches(items: list[str]) -> None:
    """``module.NAME=VALUE``: set a module constant (a number, or a string)."""
    for item in items:
        target, _, raw = item.partition("=")
        module, _, name = target.rpartition(".")
        value: object = raw
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
        setattr(importlib.import_module(module), name, value)


def run_series(name: str, overrides: dict) -> dict:
    """Evaluate one series as the step would; a JSON-able summary."""
    from meterflow.forecasting.evaluate import evaluate_forecaster
    from meterflow.forecasting.settings import ForecastSettings
    from meterflow.series.fleet import build_panel, split_dates

    spec = BENCHMARK_SERIES[name]
    frame = benchmark_frame(name).dropna(subset=["value"])
    cfg = ForecastSettings(**{"horizon": spec.slots_per_day, "threads": 1, **overrides})
    dates = split_dates(
        frame["timestamp"], cfg.train_frac, cfg.val_frac, spec.test, cfg.min_val_days
    )
    fleet = build_panel(frame, spec.resolution_min, dates)
    started = time.perf_counter()
    result = evaluate_forecaster(fleet, None, cfg)
    scores = result.scores.set_index("candidate")
    return {
        "series": name,
        "kind": spec.kind,
        "mape_ok": spec.mape,
        "days": list(dates.n_days),
        "seconds": time.perf_counter() - started,
        "kept": result.choice.name,
        "reason": result.choice.reason,
        "beaten_by": list(result.beaten_by),
        "best_baseline": result.best_baseline,
        "candidates": {
            c: {k: _num(scores.loc[c, k]) for k in ("val_mae", "test_mae", "test_mape", "weight")}
            for c in scores.index
        },
    }


def _num(value: object) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def spawn(name: str, args: list[str]) -> dict:
    """``run_series`` in a fresh process (its own TensorFlow state, one thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        cmd = [sys.executable, __file__, name, *args, "--json", str(out), "--one"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())[0]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def test_table(runs: list[dict]) -> str:
    """Per series: the kept model's test error beside the best baseline's and a few others'.
    MAPE (%) where it means something, else MAE relative to seasonal naive week."""
    shown = ("dshw", "seasonal_naive_week", "linear", "lstm")
    lines = [
        "| series | kind | kept model | model | best baseline | "
        + " | ".join(shown)
        + " | skill vs best | beats all |",
        "|---|---|---|---:|---|" + "---:|" * len(shown) + "---:|---|",
    ]
    for run in runs:
        c, kept, best = run["candidates"], run["kept"], run["best_baseline"]
        skill = 1 - c[kept]["test_mae"] / c[best]["test_mae"]
        beats = "yes" if not run["beaten_by"] else "no: " + ", ".join(run["beaten_by"])
        cells = [_fmt(_test_error(run, n)) for n in shown]
        lines.append(
            f"| {run['series']} | {run['kind']} | {kept} | **{_fmt(_test_error(run, kept))}** "
            f"| {best} {_fmt(_test_error(run, best))} | {' | '.join(cells)} | {skill:+.3f} "
            f"| {beats} |"
        )
    return "\n".join(lines)


def _test_error(run: dict, name: str) -> float | None:
    """A candidate's test MAPE, or its MAE relative to seasonal naive week where MAPE means
    nothing (a series that crosses zero)."""
    c = run["candidates"]
    if name not in c:
        return None
    if run["mape_ok"]:
        return c[name]["test_mape"]
    return c[name]["test_mae"] / c[REFERENCE]["test_mae"]


def validation_table(runs: list[dict]) -> str:
    """Each candidate's validation MAE relative to seasonal naive week's, geometric mean over
    the series (what settings are chosen on) and its test counterpart (read, never tuned on)."""
    names = sorted({c for run in runs for c in run["candidates"]})
    rows = []
    for name in names:
        val, test = [], []
        for run in runs:
            c = run["candidates"]
            if name in c and c[name]["val_mae"] and c[REFERENCE]["val_mae"]:
                val.append(c[name]["val_mae"] / c[REFERENCE]["val_mae"])
                test.append(c[name]["test_mae"] / c[REFERENCE]["test_mae"])
        if val:
            rows.append((name, float(np.exp(np.mean(np.log(val)))),
                         float(np.exp(np.mean(np.log(test)))), len(val)))  # fmt: skip
    lines = [
        f"| candidate | validation MAE / {REFERENCE} | test MAE / {REFERENCE} | series |",
        "|---|---:|---:|---:|",
    ]
    for name, val, test, n in sorted(rows, key=lambda r: r[1]):
        lines.append(f"| {name} | {val:.3f} | {test:.3f} | {n} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series", nargs="*", help="benchmark series (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--patch", action="append", default=[], metavar="MODULE.NAME=VALUE")
    parser.add_argument("--jobs", type=int, default=2, help="series evaluated at once")
    parser.add_argument("--json", type=Path, help="write the summaries here")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.series or list(BENCHMARK_SERIES)
    unknown = sorted(set(names) - set(BENCHMARK_SERIES))
    if unknown:
        raise SystemExit(f"unknown series {unknown}; choose from {sorted(BENCHMARK_SERIES)}")
    if args.one:  # the child process of ``spawn``
        import logging

        logging.basicConfig(level=logging.WARNING)
        apply_patches(args.patch)
        runs = [run_series(names[0], parse_overrides(args.set))]
    else:
        passed = [a for item in args.set for a in ("--set", item)]
        passed += [a for item in args.patch for a in ("--patch", item)]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            runs = list(pool.map(lambda n: spawn(n, passed), names))
        print(test_table(runs), "\n\n" + validation_table(runs))
        for run in runs:
            print(f"- {run['series']}: {run['reason']} ({run['seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
