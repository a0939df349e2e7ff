"""ETL throughput: store -> daily profiles, per source, against the bare driver read.

Builds a synthetic fleet (default 1000 meters x 365 days x 15 min, ~35M meter-intervals;
import tags for every meter, export tags for the PV quarter) with a fast vectorised generator,
writes it to a SQLite historian, a per-meter CSV folder and a slice of it to MongoDB (the local
wire-protocol server unless --mongo-uri is given: it inserts only a few thousand documents per
second), then times in a fresh process per case (so that each peak memory is its own):

- sql:         etl_sql (Arrow read through ADBC, translate, clean, profiles) vs the bare read:
               pandas.read_sql in chunks through SQLAlchemy (the plain driver read)
- sql_read:    the ADBC record-batch stream alone (``read_historian_arrow``) vs the same bare read
- sql_sqlalchemy: etl_sql(use_adbc=False), the SQLAlchemy fallback path, vs the same bare read
               (not in the default cases: slow)
- mongo:       read_mongo_documents + etl_newmongo vs a plain pymongo find into a DataFrame
- mongo_read_arrow / mongo_read_pymongo: ``read_mongo_documents`` alone with each method vs
               the same plain pymongo read (picks ``mongo.DEFAULT_METHOD``)
- oldexports:  etl_oldexports vs pandas.read_csv of every file

One line per case: ``case=<name> ours_per_s=<float> bare_per_s=<float> ratio=<float>`` (readings
per second of one process, i.e. per core: one reading = one register value of one interval,
one document for Mongo), then ``peak_rss_mb`` of each side (peak resident memory, VmHWM).
Cases that share a bare read (the SQL ones, the Mongo ones) time it once per run.
Run with --quick for a small fleet.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("etl_throughput")

TZ = "Europe/Rome"
START = pd.Timestamp("2024-01-01", tz=TZ)


def fleet_arrays(n_meters: int, days: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Import/export Wh per (meter, interval), contracts and PV flags (vectorised)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START, START + pd.Timedelta(days=days), freq="15min", inclusive="left")
    local = ts.tz_localize(None)
    hour = (local.hour + local.minute / 60).to_numpy()
    doy = local.dayofyear.to_numpy()
    cap_kw = rng.choice([3.0, 4.5, 6.0, 10.0, 15.0, 30.0], n_meters)
    pv = rng.random(n_meters) < 0.25
    shape = 0.25 + 0.35 * np.exp(-((hour - 8) ** 2) / 3) + 0.6 * np.exp(-((hour - 20) ** 2) / 5)
    season = 1 + 0.2 * np.cos(2 * np.pi * (doy - 15) / 365)
    level = cap_kw[:, None] * 250 * rng.uniform(0.15, 0.4, (n_meters, 1))
    imp = np.round(level * shape * season * rng.lognormal(0, 0.2, (n_meters, len(ts))))
    sun = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None) * (
        1.2 - 0.4 * np.cos(2 * np.pi * doy / 365)
    )
    exp = np.where(pv[:, None], np.round(cap_kw[:, None] * 120 * sun), 0.0)
    imp = np.maximum(imp - exp * 0.5, 0)
    return {"ts": ts.tz_convert("UTC"), "imp": imp, "exp": exp, "cap": cap_kw, "pv": pv,
            "ids": np.array([f"MTR{i:05d}" for i in range(n_meters)])}  # fmt: skip


def meters_frame(f: dict) -> pd.DataFrame:
    return pd.DataFrame(
        {"meter_id": f["ids"], "contractual_power_kw": f["cap"],
         "production_kw": np.where(f["pv"], f["cap"], 0.0), "type": "household",
         "latitude": 42.0, "longitude": 12.0}
    )  # fmt: skip


def write_sqlite(f: dict, path: Path) -> int:
    """Historian table (timestamp END as SQLAlchemy stores it, tagname, energy kWh, quality)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE TABLE historian (timestamp DATETIME NOT NULL, tagname VARCHAR(64) "
                "NOT NULL, energy FLOAT, quality INTEGER)")  # fmt: skip
    ends = (f["ts"] + pd.Timedelta(minutes=15)).tz_localize(None).strftime("%Y-%m-%d %H:%M:%S.%f")
    ends = np.asarray(ends, dtype=object)
    tags_imp = np.char.add(f["ids"], ".1.8.0").astype(object)
    tags_exp = np.char.add(f["ids"], ".2.8.0").astype(object)
    pv = np.flatnonzero(f["pv"])
    n = 0
    for t0 in range(0, len(ends), 96):  # one day at a time, time-ordered like a historian
        sl = slice(t0, t0 + 96)
        e = ends[sl]
        rows = [
            (ts, tag, val, 192)
            for j, ts in enumerate(e)
            for tag, val in zip(tags_imp, (f["imp"][:, t0 + j] / 1000).tolist(), strict=True)
        ]
        rows += [
            (ts, tags_exp[m], float(f["exp"][m, t0 + j] / 1000), 192)
            for j, ts in enumerate(e)
            for m in pv
        ]
        con.executemany("INSERT INTO historian VALUES (?, ?, ?, ?)", rows)
        n += len(rows)
    con.commit()
    meters_frame(f).to_sql("meter_description", con, index=False)
    con.close()
    return n


def write_csvs(f: dict, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    local = f["ts"].tz_convert(TZ).tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
    for i, mid in enumerate(f["ids"]):
        pd.DataFrame(
            {"meter_id": mid, "datetime": local, "active_import": f["imp"][i] / 1000,
             "active_export": f["exp"][i] / 1000}
        ).to_csv(folder / f"{mid}.csv", index=False)  # fmt: skip
    return f["imp"].size


def write_mongo(f: dict, uri: str, n_docs: int) -> int:
    """The first reads of as many meters as needed for about ``n_docs`` documents."""
    import pymongo

    reads = min(len(f["ts"]) + 1, max(96, n_docs // len(f["ids"])))
    n_meters = min(len(f["ids"]), max(1, n_docs // reads))
    ts = pd.date_range(f["ts"][0], periods=reads, freq="15min").tz_localize(None)
    imp = np.cumsum(np.c_[np.zeros(n_meters), f["imp"][:n_meters, : reads - 1]], axis=1) / 1000
    exp = np.cumsum(np.c_[np.zeros(n_meters), f["exp"][:n_meters, : reads - 1]], axis=1) / 1000
    with pymongo.MongoClient(uri) as client:
        coll = client["meterflow_bench"]["readings"]
        coll.drop()
        pyts = ts.to_pydatetime()
        for m in range(n_meters):
            coll.insert_many(
                [{"meter_id": str(f["ids"][m]), "ts": pyts[j], "import_kwh": float(imp[m, j]),
                  "export_kwh": float(exp[m, j]), "voltage_v": 230.0, "current_a": 1.0,
                  "power_w": 100.0} for j in range(reads)],
                ordered=False,
            )  # fmt: skip
    return n_meters * reads


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would include the parent's
    footprint inherited at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: str, side: str, work: Path, mongo_uri: str | None) -> dict:
    """Run one side of one case in this process; return counts, seconds and peak memory."""
    import pymongo
    import sqlalchemy as sa

    from meterflow.etl import CleaningConfig
    from meterflow.sources.mongo import etl_newmongo, read_mongo_documents
    from meterflow.sources.oldexports import etl_oldexports
    from meterflow.sources.sql import etl_sql
    from meterflow.sources.sql_historian import read_historian_arrow

    cfg = CleaningConfig(resolution_min=15)
    meters = pd.read_parquet(work / "meters.parquet")
    url = f"sqlite:///{work / 'historian.db'}"
    t0 = time.perf_counter()
    if case in ("sql", "sql_sqlalchemy") and side == "ours":
        res = etl_sql(url, meters=meters, config=cfg, use_adbc=case == "sql")
        n = res.metrics["readings_in"]
        extra = {"meter_days": len(res.profiles), "read_s": res.metrics["read_seconds"],
                 "clean_s": res.metrics["clean_seconds"],
                 "adbc": bool(res.metrics["read_arrow"])}  # fmt: skip
    elif case == "sql_read" and side == "ours":
        n = sum(b.num_rows for b in read_historian_arrow(url))
        extra = {}
    elif case.startswith("sql"):
        n = 0
        engine = sa.create_engine(url)
        q = "SELECT timestamp, tagname, energy, quality FROM historian"
        for chunk in pd.read_sql(q, engine, chunksize=200_000):
            n += len(chunk)
        extra = {}
    elif case == "oldexports" and side == "ours":
        res = etl_oldexports(work / "exports", meters=meters, config=cfg)
        n = res.metrics["readings_in"] / 2  # rows (two readings each)
        extra = {"meter_days": len(res.profiles)}
    elif case == "oldexports":
        n = sum(len(pd.read_csv(p)) for p in sorted((work / "exports").glob("*.csv")))
        extra = {}
    elif case.startswith("mongo_read_") and side == "ours":
        method = case.removeprefix("mongo_read_")
        n = len(read_mongo_documents(mongo_uri, "meterflow_bench", "readings", method=method))
        extra = {}
    elif case.startswith("mongo") and side == "bare":
        with pymongo.MongoClient(mongo_uri, connectTimeoutMS=60_000) as client:
            cur = client["meterflow_bench"]["readings"].find({}, {"_id": 0}, batch_size=10_000)
            n = len(pd.DataFrame.from_records(list(cur)))
        extra = {}
    else:
        docs = read_mongo_documents(mongo_uri, "meterflow_bench", "readings")
        n = len(docs)
        extra = {"read_s": time.perf_counter() - t0}
        res = etl_newmongo(docs, meters=meters, config=cfg)
        extra["meter_days"] = len(res.profiles)
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    return {"n": n, "seconds": seconds, "peak_rss_mb": peak, **extra}


def _arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 meters x 30 days, 20k documents")
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--mongo-docs", type=int, default=300_000)
    ap.add_argument("--mongo-uri", default=None, help="default: a local nx-27017 server")
    ap.add_argument(
        "--cases", default="sql,sql_read,mongo,mongo_read_arrow,mongo_read_pymongo,oldexports"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="keep the generated stores here")
    ap.add_argument("--run-case", nargs=4, metavar=("CASE", "SIDE", "WORK", "URI"),
                    help=argparse.SUPPRESS)  # fmt: skip
    args = ap.parse_args()
    if args.quick:
        args.meters, args.days, args.mongo_docs = 50, 30, 20_000
    return args


def _write_stores(args: argparse.Namespace, cases: list[str], work: Path) -> tuple[str | None, Any]:
    """Generate the fleet and write the stores the cases read; the MongoDB URI (a local server
    started here unless ``--mongo-uri``) and that server (None if none was started)."""
    t = time.perf_counter()
    f = fleet_arrays(args.meters, args.days)
    meters_frame(f).to_parquet(work / "meters.parquet")
    log.info("fleet: %d meters x %d intervals (%.0fs)", args.meters, len(f["ts"]),
             time.perf_counter() - t)  # fmt: skip
    if any(c.startswith("sql") for c in cases) and not (work / "historian.db").exists():
        t = time.perf_counter()
        rows = write_sqlite(f, work / "historian.db")
        log.info("sqlite historian: %d rows (%.0fs)", rows, time.perf_counter() - t)
    if "oldexports" in cases and not (work / "exports").exists():
        write_csvs(f, work / "exports")
    server, uri = None, args.mongo_uri
    if any(c.startswith("mongo") for c in cases):
        if uri is None:
            from meterflow.sources.mongo_server import LocalMongoServer

            server = LocalMongoServer(work / "mongo" / "nx.db")
            uri = server.start()
        t = time.perf_counter()
        docs = write_mongo(f, uri, args.mongo_docs)
        log.info("mongo: %d documents inserted (%.0fs)", docs, time.perf_counter() - t)
    return uri, server


def _run_side(case: str, side: str, work: Path, uri: str | None) -> dict:
    """One case's side (``ours`` or ``bare``) in a fresh process (its own peak memory)."""
    cmd = [sys.executable, __file__, "--run-case", case, side, str(work), uri or "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{case}/{side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _compare(cases: list[str], work: Path, uri: str | None) -> None:
    """Print each case's throughput, ours against the bare read (one per store, shared)."""
    bare_runs: dict[str, dict] = {}
    for case in cases:
        store = next((s for s in ("sql", "mongo") if case.startswith(s)), case)
        if store not in bare_runs:
            bare_runs[store] = _run_side(case, "bare", work, uri)
        o, b = _run_side(case, "ours", work, uri), bare_runs[store]
        ours, bare = o["n"] / o["seconds"], b["n"] / b["seconds"]
        print(f"case={case} ours_per_s={ours:.1f} bare_per_s={bare:.1f} ratio={ours / bare:.3f}")
        detail = {k: v for k, v in o.items() if k not in ("n", "seconds", "peak_rss_mb")}
        print(
            f"  n={o['n']:.0f} ours_s={o['seconds']:.1f} bare_s={b['seconds']:.1f} "
            f"peak_rss_mb ours={o['peak_rss_mb']:.0f} bare={b['peak_rss_mb']:.0f} "
            f"detail={json.dumps(detail)}"
        )
        sys.stdout.flush()


def main() -> None:
    args = _arguments()
    if args.run_case:
        case, side, work, uri = args.run_case
        print(json.dumps(run_case(case, side, Path(work), None if uri == "-" else uri)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="meterflow-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    uri, server = _write_stores(args, cases, work)
    try:
        _compare(cases, work, uri)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
