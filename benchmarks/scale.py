"""Scale: what each step costs as the fleet grows — wall, CPU seconds and peak memory per step.

For each fleet size (``--meters 250 500 1000``, ``--days``) a demo fleet is built into its own
temporary data folder with its own MongoDB server and SQLite tracking store, then, each in a
fresh process as a scheduler would start it:

(the networks train 2 epochs: their training windows are capped, so training does not grow with
the fleet, and the benchmark measures what does)

- build:    the demo fleet generated and written to its three stores;
- cold:     the first ``retrain`` (every step runs);
- one_day:  one more day of documents inserted into MongoDB, then ``retrain`` again (the steps
            whose inputs changed run; the others are reused).

Every step run logs its own ``process_peak_rss_mb`` and ``process_cpu_seconds``
(``meterflow.tracking.process_usage``); the build is measured with ``os.wait4``. Prints one row
per (size, case, step), then per (case, step) the growth exponent ``b`` of ``cost ~ meters**b``
(least squares on log-log over the sizes; ``b`` <= 1 means the step grows at most linearly)
with its cost at the largest size relative to the smallest (the reference run of this
process), and the extrapolation to 100 000 and 1 000 000 meters on one machine. Not a timed
test: ``python benchmarks/scale.py --meters 250 500 1000 --days 60``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pymongo

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "scale"
QUICK = ("--demo", "false", "--anomaly_epochs", "2", "--forecast_epochs", "2")
EXTRAPOLATE = (100_000, 1_000_000)


@dataclass
class Cost:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def timed(args: list[str], env: dict[str, str]) -> Cost:
    """Run ``args`` in a fresh process: its wall time, CPU seconds and peak memory."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:3])} failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return Cost(time.perf_counter() - started, cpu, usage.ru_maxrss / 1024)


def build(meters: int, days: int, tmp: str, uri: str, env: dict[str, str]) -> Cost:
    code = (
        "from meterflow.demo import DemoSpec, ensure_demo; "
        f"ensure_demo(DemoSpec(n_meters={meters}, history_days={days}), data_dir={tmp!r}, "
        f"sql_url='sqlite:///{tmp}/historian.db', mongo_uri={uri!r}, mongo_database='meterflow')"
    )
    return timed([sys.executable, "-c", code], env)


def add_one_day(uri: str, database: str) -> int:
    """Copy the last day of every meter's documents one day later (registers continued),
    reading only that day through the ``ts`` index."""
    with pymongo.MongoClient(uri) as client:
        readings = client[database]["readings"]
        newest = readings.find_one(sort=[("ts", -1)])["ts"]
        since = pd.Timestamp(newest) - pd.Timedelta(days=1)
        docs = pd.DataFrame(list(readings.find({"ts": {"$gt": since}}, {"_id": 0})))
        docs["ts"] = pd.to_datetime(docs["ts"])
        for register in ("import_kwh", "export_kwh"):
            low = docs.groupby("meter_id")[register].transform("min")
            high = docs.groupby("meter_id")[register].transform("max")
            docs[register] = docs[register] + (high - low)
        docs["ts"] = docs["ts"] + pd.Timedelta(days=1)
        readings.insert_many(docs.to_dict("records"), ordered=False)
    return len(docs)


def step_costs(tracking_uri: str) -> list[tuple[str, Cost]]:
    """``(step, cost)`` of the steps the newest retrain ran itself (reused ones have no run)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    parent = client.search_runs(
        [experiment],
        "tags.`mlflow.project.entryPoint` = 'retrain'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    children = client.search_runs(
        [experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", max_results=1000
    )
    out = []
    for run in [parent, *children]:
        m = run.data.metrics
        if "process_peak_rss_mb" not in m:
            continue
        wall = (run.info.end_time - run.info.start_time) / 1000
        step = run.data.tags.get("mlflow.project.entryPoint", run.info.run_name)
        out.append((step, Cost(wall, m["process_cpu_seconds"], m["process_peak_rss_mb"])))
    return out


def measure(meters: int, days: int) -> list[dict]:
    """Every row of one fleet size: the build, the cold run's steps, the new night's steps."""
    from meterflow.sources.mongo_server import LocalMongoServer

    rows = []
    with tempfile.TemporaryDirectory() as tmp, LocalMongoServer(Path(tmp) / "mongo.db") as uri:
        tracking = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "METERFLOW_DATA_DIR": tmp, "MONGODB_URI": uri}
        env |= {"MLFLOW_TRACKING_URI": tracking, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT}
        rows.append(_row(meters, "build", "demo fleet", build(meters, days, tmp, uri, env)))
        retrain = [sys.executable, "retrain.py", *QUICK]
        for case in ("cold", "one_day"):
            if case == "one_day":
                print(f"meters={meters}: {add_one_day(uri, 'meterflow')} documents added")
            rows.append(_row(meters, case, "whole run", timed(retrain, env)))
            rows += [_row(meters, case, step, cost) for step, cost in step_costs(tracking)]
    return rows


def _row(meters: int, case: str, step: str, cost: Cost) -> dict:
    row = {"meters": meters, "case": case, "step": step, **vars(cost)}
    print(
        f"meters={meters} case={case} step={step} wall_s={cost.wall_s:.1f} "
        f"cpu_s={cost.cpu_s:.1f} peak_rss_mb={cost.peak_rss_mb:.0f}",
        flush=True,
    )
    return row


def growth(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (case, step): growth exponents of CPU and peak memory in meters, the largest size's
    cost relative to the smallest's, and the extrapolated cost at ``EXTRAPOLATE`` meters."""
    out = []
    for (case, step), part in rows.groupby(["case", "step"], sort=False):
        part = part.sort_values("meters")
        if part["meters"].nunique() < 2:
            continue
        x = np.log(part["meters"].to_numpy(dtype=float))
        row = {"case": case, "step": step}
        for cost in ("cpu_s", "peak_rss_mb"):
            y = part[cost].to_numpy(dtype=float)
            b = float(np.polyfit(x, np.log(np.maximum(y, 1e-3)), 1)[0])
            row[f"{cost}_exponent"] = round(b, 2)
            row[f"{cost}_ratio_largest_to_smallest"] = round(y[-1] / max(y[0], 1e-3), 2)
            for n in EXTRAPOLATE:
                row[f"{cost}_at_{n}"] = round(y[-1] * (n / part["meters"].iloc[-1]) ** b, 0)
        out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--out", type=Path, help="write every row as CSV here")
    args = parser.parse_args()
    rows = pd.DataFrame([r for n in sorted(args.meters) for r in measure(n, args.days)])
    if args.out:
        rows.to_csv(args.out, index=False)
    table = growth(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    worst = table["peak_rss_mb_exponent"].max() if len(table) else math.nan
    print(f"largest memory growth exponent: {worst:.2f} (1.0 = linear in meters)")


if __name__ == "__main__":
    main()
