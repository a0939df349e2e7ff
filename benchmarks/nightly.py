"""The nightly path: a cold ``retrain``, a night with no new data, a night with one new day.

Builds a demo fleet (``--meters`` x ``--days``) into a temporary data folder with its own local
MongoDB server and SQLite tracking store, then times, each in a fresh process like a scheduler
would start it:

- cold:       the first ``retrain`` (every step runs, first champions registered);
- no_change:  the same again (every step reused, nothing registered);
- one_day:    after one more day of documents is inserted into MongoDB (a copy of the last day,
              one day later, registers continued): the load, the changed ETL, harmonization
              and the models run again, the other ETLs are reused.

Prints ``case=<name> seconds=<float> ratio_to_cold=<float> steps_run=<n>``. Not a timed test:
``python benchmarks/nightly.py [--meters 50 --days 60]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pymongo

REPO = Path(__file__).resolve().parents[1]


def retrain(env: dict[str, str], *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "retrain.py", *extra], cwd=REPO, env=env, check=True)
    return time.perf_counter() - started


def add_one_day(uri: str, database: str) -> int:
    """Copy the last local day of every meter's documents one day later, registers continued."""
    with pymongo.MongoClient(uri) as client:
        readings = client[database]["readings"]
        docs = pd.DataFrame(list(readings.find({}, {"_id": 0})))
    docs["ts"] = pd.to_datetime(docs["ts"])
    last = docs[docs["ts"] > docs["ts"].max() - pd.Timedelta(days=1)].copy()
    for register in ("import_kwh", "export_kwh"):
        start = last.groupby("meter_id")[register].transform("min")
        end = last.groupby("meter_id")[register].transform("max")
        last[register] = last[register] + (end - start)
    last["ts"] = last["ts"] + pd.Timedelta(days=1)
    with pymongo.MongoClient(uri) as client:
        client[database]["readings"].insert_many(last.to_dict("records"))
    return len(last)


def steps_run(tracking_uri: str) -> int:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(
        experiment_names=["nightly"],
        filter_string="tags.`mlflow.project.entryPoint` = 'retrain'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return int(runs[0].data.metrics["steps_run"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=50)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    from meterflow.sources.mongo_server import LocalMongoServer

    with tempfile.TemporaryDirectory() as tmp, LocalMongoServer(Path(tmp) / "mongo.db") as uri:
        tracking = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "METERFLOW_DATA_DIR": tmp, "MONGODB_URI": uri}
        env |= {"MLFLOW_TRACKING_URI": tracking, "MLFLOW_EXPERIMENT_NAME": "nightly"}
        # the fleet is built once, below
        demo = ["--demo", "false", "--anomaly_epochs", "2", "--forecast_epochs", "2"]
        subprocess.run(  # the benchmark times the nights, not the build
            [sys.executable, "-c", "import sys; from meterflow.demo import DemoSpec, ensure_demo;"
             f"ensure_demo(DemoSpec(n_meters={args.meters}, history_days={args.days}), "
             f"data_dir={tmp!r}, sql_url='sqlite:///{tmp}/historian.db', mongo_uri={uri!r},"
             " mongo_database='meterflow')"], cwd=REPO, env=env, check=True,
        )  # fmt: skip
        cold = retrain(env, *demo)
        print(f"case=cold seconds={cold:.1f} ratio_to_cold=1.000 steps_run={steps_run(tracking)}")
        seconds = retrain(env, *demo)
        ratio = seconds / cold
        print(f"case=no_change seconds={seconds:.1f} ratio_to_cold={ratio:.3f} "
              f"steps_run={steps_run(tracking)}")  # fmt: skip
        added = add_one_day(uri, "meterflow")
        seconds = retrain(env, *demo)
        ratio = seconds / cold
        print(f"case=one_day seconds={seconds:.1f} ratio_to_cold={ratio:.3f} "
              f"steps_run={steps_run(tracking)} documents_added={added}")  # fmt: skip


if __name__ == "__main__":
    main()
