"""Write a demo fleet into real stores (SQL, MongoDB, a CSV folder) plus its ground truth, and
rebuild it only when the manifest says the stores are stale."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymongo
import sqlalchemy as sa
from pymongo.errors import PyMongoError

from meterflow.demo.fleet import DemoSpec
from meterflow.demo.raw import DemoFleet, build_fleet
from meterflow.domain import SOURCE_NEWMONGO, SOURCE_OLDMONGO, SOURCE_SQL
from meterflow.errors import SourceError
from meterflow.sources.formats import HISTORIAN_TABLE, METERS_TABLE, MONGO_COLLECTION
from meterflow.sources.mongo_client import mongo_client

log = logging.getLogger(__name__)

DEMO_FORMAT_VERSION = 1  # bump when the generated data change for the same spec
MANIFEST_NAME = "demo_manifest.json"
# default folders under ensure_demo's data_dir (as meterflow.config's Environment expects)
EXPORTS_SUBDIR = "oldmongo"
TRUTH_SUBDIR = "ground_truth"
TRUTH_FILES = ("anomalies.csv", "defects.csv", "meters_truth.csv", "clean_readings.parquet")
SQL_CHUNK_ROWS = 50_000
MONGO_BATCH_DOCS = 5_000
CSV_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# for the load connection only (WAL persists in the file, which suits the readers too)
SQLITE_LOAD_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=OFF",
    "cache_size=-262144",  # 256 MiB page cache: sorting for the index stays in memory
    "temp_store=MEMORY",
)
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite


@dataclass(frozen=True)
class WriteSummary:
    """Rows written per store and seconds spent per store."""

    historian_rows: int
    meter_rows: int
    mongo_documents: int
    csv_files: int
    csv_rows: int
    seconds: dict[str, float] = field(default_factory=dict)


def _tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    historian = sa.Table(
        HISTORIAN_TABLE,
        metadata,
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("tagname", sa.String(64), nullable=False),
        sa.Column("energy", sa.Float),
        sa.Column("quality", sa.Integer),
    )
    meters = sa.Table(
        METERS_TABLE,
        metadata,
        sa.Column("meter_id", sa.String(32), primary_key=True),
        sa.Column("contractual_power_kw", sa.Float, nullable=False),
        sa.Column("production_kw", sa.Float, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("latitude", sa.Float, nullable=False),
        sa.Column("longitude", sa.Float, nullable=False),
    )
    return historian, meters


def _engine(sql_url: str) -> sa.Engine:
    url = sa.make_url(sql_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url)


def write_sql(fleet: DemoFleet, sql_url: str) -> tuple[int, int]:
    """Replace the ``historian`` and ``meter_description`` tables; return their row counts."""
    engine = _engine(sql_url)
    metadata = sa.MetaData()
    historian, meters = _tables(metadata)
    rows = fleet.historian
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                for pragma in SQLITE_LOAD_PRAGMAS:
                    conn.exec_driver_sql(f"PRAGMA {pragma}")
            metadata.drop_all(conn, checkfirst=True)
            metadata.create_all(conn)
            conn.execute(meters.insert(), fleet.meters.to_dict("records"))
            conn.commit()
            _load_historian(conn, historian, rows)
            sa.Index("ix_historian_tagname_timestamp", historian.c.tagname, historian.c.timestamp)
            for index in historian.indexes:
                index.create(conn)
            conn.commit()
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(f"cannot write the demo historian: {exc}", source=SOURCE_SQL) from exc
    finally:
        engine.dispose()
    return len(rows), len(fleet.meters)


def _load_historian(conn: sa.Connection, historian: sa.Table, rows: pd.DataFrame) -> None:
    """Insert the historian rows in chunks, committing each.

    On SQLite the compiled core INSERT runs through the driver's ``executemany`` with
    timestamps pre-formatted as SQLAlchemy stores them (about 5x faster than per-row bind
    processing); other dialects get datetime objects through the core insert.
    """
    sqlite = conn.dialect.name == "sqlite"
    ts_codes, ts_unique = pd.factorize(rows["timestamp"])
    if sqlite:
        ts_values = np.asarray(ts_unique.strftime(SQLITE_DATETIME_FORMAT), dtype=object)
        statement = str(historian.insert().compile(dialect=conn.dialect))
    else:
        ts_values = np.asarray(ts_unique.to_pydatetime(), dtype=object)
    tag_values = np.asarray(rows["tagname"].cat.categories, dtype=object)
    tag_codes = rows["tagname"].cat.codes.to_numpy()
    energy, quality = rows["energy"].to_numpy(), rows["quality"].to_numpy()
    names = [c.name for c in historian.columns]
    for start in range(0, len(rows), SQL_CHUNK_ROWS):
        sl = slice(start, start + SQL_CHUNK_ROWS)
        chunk = zip(
            ts_values[ts_codes[sl]].tolist(),
            tag_values[tag_codes[sl]].tolist(),
            energy[sl].tolist(),
            quality[sl].tolist(),
            strict=True,
        )
        if sqlite:
            conn.exec_driver_sql(statement, list(chunk))
        else:
            conn.execute(historian.insert(), [dict(zip(names, r, strict=True)) for r in chunk])
        conn.commit()
        if (start // SQL_CHUNK_ROWS) % 40 == 39:
            log.info("historian: %d / %d rows", min(start + SQL_CHUNK_ROWS, len(rows)), len(rows))


def write_mongo(fleet: DemoFleet, mongo_uri: str, database: str) -> int:
    """Replace the readings collection with the fleet's documents; return their number."""
    docs = fleet.mongo_docs
    ts_codes, ts_unique = pd.factorize(docs["ts"])
    ts_objects = np.asarray(ts_unique.to_pydatetime(), dtype=object)
    columns = {c: docs[c].to_numpy() for c in docs.columns if c not in ("ts",)}
    try:
        with mongo_client(mongo_uri, source=SOURCE_NEWMONGO) as client:
            collection = client[database][MONGO_COLLECTION]
            collection.drop()
            for start in range(0, len(docs), MONGO_BATCH_DOCS):
                sl = slice(start, start + MONGO_BATCH_DOCS)
                values = {c: v[sl].tolist() for c, v in columns.items()}
                values["ts"] = ts_objects[ts_codes[sl]].tolist()
                names = list(values)
                rows = zip(*values.values(), strict=True)
                batch = [dict(zip(names, row, strict=True)) for row in rows]
                collection.insert_many(batch, ordered=False)
                if (start // MONGO_BATCH_DOCS) % 10 == 9:
                    log.info("mongo: %d / %d documents", start + len(batch), len(docs))
            collection.create_index("ts")
            collection.create_index([("meter_id", pymongo.ASCENDING), ("ts", pymongo.ASCENDING)])
    except PyMongoError as exc:
        raise SourceError(
            f"cannot write the demo documents to database {database!r}: {exc}",
            source=SOURCE_NEWMONGO,
        ) from exc
    return len(docs)


def write_old_exports(fleet: DemoFleet, exports_dir: Path) -> tuple[int, int]:
    """Replace the ``*.csv`` files of ``exports_dir`` with one file per meter; return the number
    of files and rows."""
    exports_dir = Path(exports_dir)
    try:
        exports_dir.mkdir(parents=True, exist_ok=True)
        for old in exports_dir.glob("*.csv"):
            old.unlink()
        n_rows = 0
        for meter_id, frame in fleet.old_exports.items():
            frame.to_csv(
                exports_dir / f"{meter_id}.csv", index=False, date_format=CSV_DATETIME_FORMAT
            )
            n_rows += len(frame)
    except OSError as exc:
        raise SourceError(
            f"cannot write the demo exports: {exc}", source=SOURCE_OLDMONGO, file=str(exports_dir)
        ) from exc
    return len(fleet.old_exports), n_rows


def write_truth(fleet: DemoFleet, truth_dir: Path) -> None:
    """Ground truth: anomalies.csv, defects.csv, meters_truth.csv, clean_readings.parquet."""
    truth_dir = Path(truth_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    fleet.anomalies.to_csv(truth_dir / "anomalies.csv", index=False)
    fleet.defects.to_csv(truth_dir / "defects.csv", index=False)
    fleet.meters_truth.to_csv(truth_dir / "meters_truth.csv", index=False)
    fleet.clean.to_parquet(truth_dir / "clean_readings.parquet", index=False)


def write_fleet(
    fleet: DemoFleet,
    *,
    sql_url: str,
    mongo_uri: str,
    mongo_database: str,
    exports_dir: Path,
    truth_dir: Path,
) -> WriteSummary:
    """Replace the previous demo content of every store with ``fleet`` and save its truth.

    MongoDB is written in a background thread while the other stores load: the local
    wire-protocol server does its work in its own process, so the two overlap.
    """
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args)
        seconds[name] = round(time.perf_counter() - t0, 2)
        return out

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-mongo") as pool:
        mongo = pool.submit(timed, "mongo", write_mongo, fleet, mongo_uri, mongo_database)
        try:
            n_hist, n_meters = timed("sql", write_sql, fleet, sql_url)
            log.info("demo SQL: %d historian rows, %d meters", n_hist, n_meters)
            n_files, n_rows = timed("csv", write_old_exports, fleet, exports_dir)
            log.info("demo exports: %d rows in %d CSV files", n_rows, n_files)
            timed("truth", write_truth, fleet, truth_dir)
        except BaseException:
            mongo.exception()  # let the Mongo load end before this error propagates
            raise
        n_docs = mongo.result()
    log.info("demo stores written: %d Mongo documents; seconds per store %s", n_docs, seconds)
    return WriteSummary(n_hist, n_meters, n_docs, n_files, n_rows, seconds)


def _manifest_key(spec: DemoSpec) -> dict[str, Any]:
    return {"format_version": DEMO_FORMAT_VERSION, "spec": asdict(spec)}


def _stores_hold(
    counts: dict[str, Any],
    *,
    exports_dir: Path,
    truth_dir: Path,
    sql_url: str,
    mongo_uri: str,
    mongo_database: str,
) -> bool:
    """Whether every store still holds what the manifest says was written."""
    if len(list(exports_dir.glob("*.csv"))) != counts.get("csv_files"):
        return False
    if not all((truth_dir / name).is_file() for name in TRUTH_FILES):
        return False
    engine = _engine(sql_url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not all(inspector.has_table(t) for t in (HISTORIAN_TABLE, METERS_TABLE)):
                return False
            for table, key in ((HISTORIAN_TABLE, "historian_rows"), (METERS_TABLE, "meter_rows")):
                n = conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar()
                if n != counts.get(key):
                    return False
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(f"cannot check the demo historian: {exc}", source=SOURCE_SQL) from exc
    finally:
        engine.dispose()
    try:
        with mongo_client(mongo_uri, source=SOURCE_NEWMONGO) as client:
            n_docs = client[mongo_database][MONGO_COLLECTION].estimated_document_count()
    except PyMongoError as exc:
        raise SourceError(
            f"cannot check the demo documents: {exc}", source=SOURCE_NEWMONGO
        ) from exc
    return n_docs == counts.get("mongo_documents")


def ensure_demo(
    spec: DemoSpec,
    *,
    data_dir: Path,
    sql_url: str,
    mongo_uri: str,
    mongo_database: str,
    exports_dir: Path | None = None,
    truth_dir: Path | None = None,
) -> bool:
    """Build and write the demo fleet unless ``data_dir/demo_manifest.json`` matches ``spec``
    and the format version and every store holds the recorded counts; True when it (re)built.

    Old exports go to ``exports_dir`` (default ``data_dir/oldmongo``), ground truth to
    ``truth_dir`` (default ``data_dir/ground_truth``).
    """
    data_dir = Path(data_dir)
    exports_dir = Path(exports_dir) if exports_dir is not None else data_dir / EXPORTS_SUBDIR
    truth_dir = Path(truth_dir) if truth_dir is not None else data_dir / TRUTH_SUBDIR
    stores = {"sql_url": sql_url, "mongo_uri": mongo_uri, "mongo_database": mongo_database}
    manifest_path = data_dir / MANIFEST_NAME
    key = _manifest_key(spec)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = None
    if manifest is not None and {k: manifest.get(k) for k in key} == key:
        counts = manifest.get("counts", {})
        if _stores_hold(counts, exports_dir=exports_dir, truth_dir=truth_dir, **stores):
            log.info("demo fleet up to date (%s)", manifest_path)
            return False
        log.info("demo stores lack the recorded data: rebuilding")
    t0 = time.perf_counter()
    fleet = build_fleet(spec)
    seconds_build = round(time.perf_counter() - t0, 2)
    manifest_path.unlink(missing_ok=True)
    summary = write_fleet(fleet, exports_dir=exports_dir, truth_dir=truth_dir, **stores)
    counts = {k: v for k, v in asdict(summary).items() if k != "seconds"}
    manifest = {
        **key,
        "counts": counts,
        "seconds": {"build": seconds_build, **summary.seconds},
        "windows": {s: [a.isoformat(), b.isoformat()] for s, (a, b) in fleet.windows.items()},
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("demo fleet written in %.1fs (manifest %s)", time.perf_counter() - t0, manifest_path)
    return True
