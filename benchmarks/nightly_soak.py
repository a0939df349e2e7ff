"""A week of nights on a busy machine: new and late documents, a tracking-server restart and a
kill, each night started as the scheduler starts it
(``python -m meterflow.orchestration.launch -e retrain``).

Builds a demo fleet (``--meters`` x ``--days``) into a temporary data folder with its own local
MongoDB server and a real MLflow tracking server (SQLite backend), withholds the documents of a
few old hours of one meter per night, and keeps ``--busy`` processes spinning on the CPUs. Then:

- night 0:  the first retrain (every step runs, first champions);
- night k:  one more day of documents (the last day copied one day later, registers continued)
            and the withheld documents of an old day (late, older than the look-back);
- night 3:  the tracking server is down at the start: the night must fail in one line within
            30 s; the server is started again and the night retried (as the scheduler does);
- night 5:  the night is killed (SIGKILL of its process group) while a step runs, then retried.

After each night it checks and prints: the exit code and seconds, the error lines (at most one,
no traceback), runs left RUNNING once a night has finished (none), the documents the loads
loaded against those stored (equal), the late documents found, and each champion version with
whether it won its promotion. Not a timed test: ``python benchmarks/nightly_soak.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pymongo

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from nightly import add_one_day  # noqa: E402

EXPERIMENT = PREFIX = "soak"
FAST = ["-P", "anomaly_epochs=2", "-P", "forecast_epochs=2", "-P", "dtw_max_profiles=400"]
OUTAGE_NIGHT, KILL_NIGHT = 3, 5
KILL_AFTER_S = 25  # after the night has recorded its run in the lock: a step is running


@contextmanager
def busy(n: int) -> Iterator[None]:
    """``n`` processes spinning on the CPUs for the duration."""
    spin = [sys.executable, "-c", "while True: pass"]
    procs = [subprocess.Popen(spin) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()


class TrackingServer:
    """``mlflow server`` on a SQLite store and a local artifact folder, stoppable and
    restartable on the same port."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port, self.proc = root, port, None
        self.uri = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        import urllib.request

        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
               "--artifacts-destination", str(self.root / "artifacts")]  # fmt: skip
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the tracking server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


def withhold_late(uri: str, hours: int) -> list[list[dict]]:
    """Delete one meter's documents of ``hours`` old hours (6 h apart, from the first day in
    MongoDB: older than any look-back), one hour per night; return them without ``_id`` (a
    late upload stores them anew)."""
    groups = []
    with pymongo.MongoClient(uri) as client:
        readings = client["meterflow"]["readings"]
        first = readings.find_one({}, sort=[("ts", 1)])
        for h in range(hours):
            start = first["ts"] + timedelta(hours=6 * (h + 1))
            flt = {
                "meter_id": first["meter_id"],
                "ts": {"$gt": start, "$lte": start + timedelta(hours=1)},
            }
            groups.append(list(readings.find(flt, {"_id": 0})))
            readings.delete_many(flt)
    return groups


def night(env: dict[str, str], *, kill_after: float | None = None) -> dict:
    """One night as the scheduler starts it; its exit code, seconds and error lines."""
    command = [sys.executable, "-m", "meterflow.orchestration.launch", "-e", "retrain", *FAST]
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    if kill_after is not None:
        lock = Path(env["METERFLOW_DATA_DIR"]) / "meterflow.lock"
        while proc.poll() is None and "mlflow_run_id" not in _read(lock):
            time.sleep(0.5)
        time.sleep(kill_after)
        os.killpg(proc.pid, signal.SIGKILL)
    stderr = proc.communicate()[1]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    return {
        "rc": proc.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "errors": errors,
        "traceback": "Traceback" in stderr,
    }


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def audit(tracking_uri: str, mongo_uri: str) -> dict:
    """Runs left RUNNING, documents loaded against stored, late found, champions."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(EXPERIMENT).experiment_id
    running = client.search_runs([exp], "attributes.status = 'RUNNING'")
    loads = client.search_runs(
        [exp],
        "tags.`mlflow.project.entryPoint` = 'load_newmongo' and attributes.status = 'FINISHED'",
        max_results=1000,
    )
    loaded = sum(int(r.data.metrics.get("documents", 0)) for r in loads)
    late = sum(int(r.data.metrics.get("late_before_lookback_documents", 0)) for r in loads)
    with pymongo.MongoClient(mongo_uri) as mongo:
        stored = mongo["meterflow"]["readings"].estimated_document_count()
    champions = {}
    for step in ("clustering", "forecasting", "anomaly"):
        try:
            v = client.get_model_version_by_alias(f"{PREFIX}-{step}", "champion")
            champions[step] = f"v{v.version}:{v.tags.get('became_champion', '?')}"
        except Exception:  # no champion yet
            champions[step] = "-"
    return {"running": len(running), "loaded": loaded, "stored": stored, "late_found": late,
            "champions": champions}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=12)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--nights", type=int, default=7)
    parser.add_argument("--busy", type=int, default=4, help="CPU-spinning processes")
    args = parser.parse_args()
    from meterflow.sources.mongo_server import LocalMongoServer, free_port

    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalMongoServer(Path(tmp) / "mongo.db") as mongo_uri,
    ):
        root = Path(tmp)
        server = TrackingServer(root, free_port())
        server.start()
        env = {
            **os.environ,
            "METERFLOW_DATA_DIR": str(root / "data"),
            "MONGODB_URI": mongo_uri,
            "MLFLOW_TRACKING_URI": server.uri,
            "MLFLOW_EXPERIMENT_NAME": EXPERIMENT,
            "METERFLOW_REGISTRY_PREFIX": PREFIX,
            "METERFLOW_TRACKING_TIMEOUT_S": "20",
        }
        build = (
            "from meterflow.demo import DemoSpec, ensure_demo;"
            f"ensure_demo(DemoSpec(n_meters={args.meters}, history_days={args.days}), "
            f"data_dir={str(root / 'data')!r}, sql_url='sqlite:///{root}/data/historian.db', "
            f"mongo_uri={mongo_uri!r}, mongo_database='meterflow')"
        )
        subprocess.run([sys.executable, "-c", build], cwd=REPO, env=env, check=True)
        late = withhold_late(mongo_uri, args.nights)
        with busy(args.busy):
            for k in range(args.nights + 1):
                if k:
                    add_one_day(mongo_uri, "meterflow")
                    with pymongo.MongoClient(mongo_uri) as client:
                        client["meterflow"]["readings"].insert_many(late[k - 1])
                tries = []
                if k == OUTAGE_NIGHT:
                    server.stop()
                    tries.append(("tracking down", night(env)))
                    server.start()
                if k == KILL_NIGHT:
                    tries.append(("killed", night(env, kill_after=KILL_AFTER_S)))
                tries.append(("night", night(env)))
                report = {"night": k, "tries": tries, **audit(server.uri, mongo_uri)}
                print(json.dumps(report), flush=True)
        server.stop()


if __name__ == "__main__":
    main()
