"""Write a demo fleet into real stores (SQL, MongoDB, a CSV folder) plus its ground truth, block
by block, and rebuild it only when the manifest says the stores are stale.

``ensure_demo`` streams the blocks of ``iter_blocks`` through one sink per store: each block is
generated, written and dropped before the next, so memory holds about one block whatever the
fleet's size. MongoDB inserts run in a background thread (the local wire-protocol server works
in its own process), overlapping the next block's generation and the other stores' writes.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pymongo
import sqlalchemy as sa
from pymongo.errors import PyMongoError

from meterflow.demo.fleet import DemoSpec, Timeline
from meterflow.demo.raw import FleetBlock, fleet_windows, iter_blocks
from meterflow.domain import SOURCE_NEWMONGO, SOURCE_OLDMONGO, SOURCE_SQL
from meterflow.errors import SourceError
from meterflow.sources.formats import HISTORIAN_TABLE, METERS_TABLE, MONGO_COLLECTION
from meterflow.sources.mongo_client import mongo_client

log = logging.getLogger(__name__)

DEMO_FORMAT_VERSION = 3  # bump when the generated data change for the same spec
MANIFEST_NAME = "demo_manifest.json"
# default folders under ensure_demo's data_dir (as meterflow.settings' Environment expects)
EXPORTS_SUBDIR = "oldmongo"
TRUTH_SUBDIR = "ground_truth"
TRUTH_CSVS = ("anomalies", "defects", "meters_truth")  # FleetBlock tables, appended per block
CLEAN_FILE = "clean_readings.parquet"  # one Parquet file, row groups appended per block
TRUTH_FILES = (*(f"{name}.csv" for name in TRUTH_CSVS), CLEAN_FILE)
SQL_CHUNK_ROWS = 50_000
MONGO_BATCH_DOCS = 10_000
CSV_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# for the load connection only (WAL persists in the file, which suits the readers too)
SQLITE_LOAD_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=OFF",
    # 64 MiB page cache, also the index sort's memory: it spills to temporary files beyond
    # (bounded memory whatever the fleet; faster than sorting 10 M rows in memory)
    "cache_size=-65536",
)
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite


@dataclass(frozen=True)
class WriteSummary:
    """Rows written per store and seconds spent per store (and building the blocks)."""

    historian_rows: int
    meter_rows: int
    mongo_documents: int
    csv_files: int
    csv_rows: int
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _errors(store: str, source: str, **where: Any) -> Iterator[None]:
    """Store errors (SQLAlchemy, MongoDB, files) as one-line SourceErrors."""
    try:
        yield
    except (sa.exc.SQLAlchemyError, PyMongoError, OSError) as exc:
        raise SourceError(f"cannot write the demo {store}: {exc}", source=source, **where) from exc


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


class SqlSink:
    """The ``historian`` and ``meter_description`` tables: replaced on entry, filled per block,
    the historian's index built by ``finish``."""

    def __init__(self, sql_url: str):
        self.sql_url = sql_url
        self.historian_rows = self.meter_rows = 0

    def __enter__(self) -> SqlSink:
        with _errors("historian", SOURCE_SQL), ExitStack() as stack:
            engine = _engine(self.sql_url)
            stack.callback(engine.dispose)
            self.conn = stack.enter_context(engine.connect())
            if engine.dialect.name == "sqlite":
                for pragma in SQLITE_LOAD_PRAGMAS:
                    self.conn.exec_driver_sql(f"PRAGMA {pragma}")
            metadata = sa.MetaData()
            self.historian, self.meters = _tables(metadata)
            metadata.drop_all(self.conn, checkfirst=True)
            metadata.create_all(self.conn)
            self.conn.commit()
            self._stack = stack.pop_all()
        return self

    def write(self, block: FleetBlock) -> None:
        """Insert the block's meters and historian rows (committed in chunks)."""
        with _errors("historian", SOURCE_SQL):
            self.conn.execute(self.meters.insert(), block.meters.to_dict("records"))
            self.conn.commit()
            _load_historian(self.conn, self.historian, block.historian)
        self.historian_rows += len(block.historian)
        self.meter_rows += len(block.meters)

    def finish(self) -> None:
        """Index the historian by tag and time (once, after the last block)."""
        with _errors("historian", SOURCE_SQL):
            columns = (self.historian.c.tagname, self.historian.c.timestamp)
            sa.Index("ix_historian_tagname_timestamp", *columns).create(self.conn)
            self.conn.commit()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


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


class MongoSink:
    """The readings collection: dropped on entry, each block's documents inserted in a
    background thread (``submit``, ``wait``), indexed by ``finish``."""

    def __init__(self, mongo_uri: str, database: str):
        self.mongo_uri, self.database = mongo_uri, database
        self.documents, self.seconds = 0, 0.0
        self._pending: Future[None] | None = None

    def __enter__(self) -> MongoSink:
        with self._errors(), ExitStack() as stack:
            client = stack.enter_context(mongo_client(self.mongo_uri, source=SOURCE_NEWMONGO))
            self._pool = stack.enter_context(ThreadPoolExecutor(1, "demo-mongo"))
            stack.callback(self._settle)  # runs before the pool and the client close
            self.collection = client[self.database][MONGO_COLLECTION]
            self.collection.drop()
            self._stack = stack.pop_all()
        return self

    def _errors(self) -> Any:
        return _errors(f"documents to database {self.database!r}", SOURCE_NEWMONGO)

    def submit(self, block: FleetBlock) -> None:
        """Insert the block's documents in the background, once the previous block's are in."""
        self.wait()
        self._pending = self._pool.submit(self._insert, block.mongo_docs)

    def wait(self) -> None:
        """Return when the submitted documents are in; raise what their insert raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _settle(self) -> None:
        if self._pending is not None:
            self._pending.exception()  # an error elsewhere: let the insert end first

    def _insert(self, docs: pd.DataFrame) -> None:
        t0 = time.perf_counter()
        ts_codes, ts_unique = pd.factorize(docs["ts"])
        ts_objects = np.asarray(ts_unique.to_pydatetime(), dtype=object)
        columns = {c: docs[c].to_numpy() for c in docs.columns if c != "ts"}
        with self._errors():
            for start in range(0, len(docs), MONGO_BATCH_DOCS):
                sl = slice(start, start + MONGO_BATCH_DOCS)
                values = {c: v[sl].tolist() for c, v in columns.items()}
                values["ts"] = ts_objects[ts_codes[sl]].tolist()
                names = list(values)
                rows = zip(*values.values(), strict=True)
                batch = [dict(zip(names, row, strict=True)) for row in rows]
                self.collection.insert_many(batch, ordered=False)
        self.documents += len(docs)
        self.seconds += time.perf_counter() - t0

    def finish(self) -> None:
        """Index the collection in the background, once the documents are in (``wait``)."""
        self.wait()
        self._pending = self._pool.submit(self._index)

    def _index(self) -> None:
        t0 = time.perf_counter()
        with self._errors():
            self.collection.create_index("ts")
            self.collection.create_index(
                [("meter_id", pymongo.ASCENDING), ("ts", pymongo.ASCENDING)]
            )
        self.seconds += time.perf_counter() - t0

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


class ExportsSink:
    """The ``*.csv`` files of the old exports folder: removed on entry, one file per meter."""

    def __init__(self, exports_dir: Path):
        self.exports_dir = Path(exports_dir)
        self.files = self.rows = 0

    def _errors(self) -> Any:
        return _errors("exports", SOURCE_OLDMONGO, file=str(self.exports_dir))

    def __enter__(self) -> ExportsSink:
        with self._errors():
            self.exports_dir.mkdir(parents=True, exist_ok=True)
            for old in self.exports_dir.glob("*.csv"):
                old.unlink()
        return self

    def write(self, block: FleetBlock) -> None:
        """One ``<meter_id>.csv`` per meter of the block."""
        with self._errors():
            for meter_id, frame in block.old_exports.items():
                path = self.exports_dir / f"{meter_id}.csv"
                frame.to_csv(path, index=False, date_format=CSV_DATETIME_FORMAT)
                self.rows += len(frame)
        self.files += len(block.old_exports)

    def __exit__(self, *exc: object) -> None:
        return None


class TruthSink:
    """Ground truth in ``truth_dir``, replaced on entry and appended per block: anomalies.csv,
    defects.csv, meters_truth.csv and clean_readings.parquet (a row group per block, read back
    whole by ``pd.read_parquet``)."""

    def __init__(self, truth_dir: Path):
        self.truth_dir = Path(truth_dir)
        self._parquet: pq.ParquetWriter | None = None

    def _errors(self) -> Any:
        return _errors("ground truth", "demo", file=str(self.truth_dir))

    def __enter__(self) -> TruthSink:
        with self._errors():
            self.truth_dir.mkdir(parents=True, exist_ok=True)
            for name in TRUTH_FILES:
                (self.truth_dir / name).unlink(missing_ok=True)
        return self

    def write(self, block: FleetBlock) -> None:
        """Append the block's rows (the CSV header with the first block)."""
        first = self._parquet is None
        with self._errors():
            for name in TRUTH_CSVS:
                frame = getattr(block, name)
                frame.to_csv(self.truth_dir / f"{name}.csv", mode="a", header=first, index=False)
            table = pa.Table.from_pandas(block.clean, preserve_index=False)
            if self._parquet is None:
                # meter ids: one index width for every block (each block has its dictionary)
                meter_id = pa.field("meter_id", pa.dictionary(pa.int32(), pa.string()))
                schema = table.schema.set(table.schema.get_field_index("meter_id"), meter_id)
                self._parquet = pq.ParquetWriter(self.truth_dir / CLEAN_FILE, schema)
            self._parquet.write_table(table.cast(self._parquet.schema))

    def __exit__(self, *exc: object) -> None:
        if self._parquet is not None:
            self._parquet.close()


def write_blocks(
    blocks: Iterable[FleetBlock],
    *,
    n_meters: int,
    sql_url: str,
    mongo_uri: str,
    mongo_database: str,
    exports_dir: Path,
    truth_dir: Path,
) -> WriteSummary:
    """Replace the previous demo content of every store with the fleet of ``blocks`` (of
    ``n_meters`` meters in all) and save its truth, one block after the other; log each block
    once all its stores hold it."""
    seconds: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    with (
        SqlSink(sql_url) as sql,
        MongoSink(mongo_uri, mongo_database) as mongo,
        ExportsSink(exports_dir) as csv,
        TruthSink(truth_dir) as truth,
    ):
        done, previous = 0, None
        for block in _timed(blocks, seconds):
            mongo.wait()  # the slowest store: one block in flight while the others write
            _log_written(previous, n_meters, started)
            mongo.submit(block)
            for name, sink in (("sql", sql), ("csv", csv), ("truth", truth)):
                t0 = time.perf_counter()
                sink.write(block)
                seconds[name] += time.perf_counter() - t0
            previous, done = (done + 1, done + len(block.meters)), done + len(block.meters)
            del block  # before the next is built: the Mongo insert holds what it needs
        mongo.wait()
        _log_written(previous, n_meters, started)
        mongo.finish()
        t0 = time.perf_counter()
        sql.finish()  # while MongoDB indexes
        seconds["sql"] += time.perf_counter() - t0
        mongo.wait()
    seconds["mongo"] = mongo.seconds
    summary = WriteSummary(
        sql.historian_rows,
        sql.meter_rows,
        mongo.documents,
        csv.files,
        csv.rows,
        {k: round(v, 2) for k, v in seconds.items()},
    )
    log.info("demo stores written: %s", summary)
    return summary


def _timed(blocks: Iterable[FleetBlock], seconds: dict[str, float]) -> Iterator[FleetBlock]:
    """The blocks, the time spent building them added to ``seconds["build"]``."""
    it = iter(blocks)
    while True:
        t0 = time.perf_counter()
        block = next(it, None)
        seconds["build"] += time.perf_counter() - t0
        if block is None:
            return
        yield block
        del block  # not held while the next one is built


def _log_written(span: tuple[int, int] | None, n_meters: int, started: float) -> None:
    if span is not None:
        elapsed = time.perf_counter() - started
        log.info("demo fleet: meters %d-%d of %d written, %.0f s", *span, n_meters, elapsed)


def write_fleet(
    fleet: FleetBlock,
    *,
    sql_url: str,
    mongo_uri: str,
    mongo_database: str,
    exports_dir: Path,
    truth_dir: Path,
) -> WriteSummary:
    """Replace the previous demo content of every store with ``fleet`` (a ``DemoFleet`` or one
    block) and save its truth."""
    return write_blocks(
        [fleet],
        n_meters=len(fleet.meters),
        sql_url=sql_url,
        mongo_uri=mongo_uri,
        mongo_database=mongo_database,
        exports_dir=exports_dir,
        truth_dir=truth_dir,
    )


def write_sql(fleet: FleetBlock, sql_url: str) -> tuple[int, int]:
    """Replace the ``historian`` and ``meter_description`` tables; return their row counts."""
    with SqlSink(sql_url) as sink:
        sink.write(fleet)
        sink.finish()
    return sink.historian_rows, sink.meter_rows


def write_mongo(fleet: FleetBlock, mongo_uri: str, database: str) -> int:
    """Replace the readings collection with the fleet's documents; return their number."""
    with MongoSink(mongo_uri, database) as sink:
        sink.submit(fleet)
        sink.finish()
        sink.wait()
    return sink.documents


def write_old_exports(fleet: FleetBlock, exports_dir: Path) -> tuple[int, int]:
    """Replace the ``*.csv`` files of ``exports_dir`` with one file per meter; return the number
    of files and rows."""
    with ExportsSink(exports_dir) as sink:
        sink.write(fleet)
    return sink.files, sink.rows


def write_truth(fleet: FleetBlock, truth_dir: Path) -> None:
    """Ground truth: anomalies.csv, defects.csv, meters_truth.csv, clean_readings.parquet."""
    with TruthSink(truth_dir) as sink:
        sink.write(fleet)


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

    The fleet is built and written block by block (``BLOCK_METERS`` meters), so memory stays
    bounded whatever ``spec.n_meters``. Old exports go to ``exports_dir`` (default
    ``data_dir/oldmongo``), ground truth to ``truth_dir`` (default ``data_dir/ground_truth``).
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
    manifest_path.unlink(missing_ok=True)
    summary = write_blocks(
        iter_blocks(spec),
        n_meters=spec.n_meters,
        exports_dir=exports_dir,
        truth_dir=truth_dir,
        **stores,
    )
    windows = fleet_windows(Timeline(spec))
    manifest = {
        **key,
        "counts": {k: v for k, v in asdict(summary).items() if k != "seconds"},
        "seconds": summary.seconds,
        "windows": {s: [a.isoformat(), b.isoformat()] for s, (a, b) in windows.items()},
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("demo fleet written in %.1fs (manifest %s)", time.perf_counter() - t0, manifest_path)
    return True
