"""Batch scoring of a registered model over a whole fleet, meter block by meter block.

Input: a Parquet file or a (hive-partitioned) Parquet folder with a ``meter_id`` column: long
readings for the forecaster and the anomaly detector, the profiles table for the clusterer.
Only the ``meter_id`` column is scanned here (batch by batch) to list the fleet; the sorted ids
are cut into blocks of ``block_meters`` (``meterflow.blocks``). A block is one ``predict`` call
with every row of its meters, so a meter's history is never split; whoever scores the block
reads those rows itself (a ``meter_id`` range filter: a dataset sorted by meter with small row
groups is read only where the block's meters are) and writes the output as
``part-NNNNN.parquet`` (block NNNNN) of the output folder. Memory follows the block, never the
fleet: the caller holds the meter ids and one small result per block.

On a Dask cluster (``scheduler``) each task gets the dataset's path, never the data, and the
model URI fixed here to the model the given URI names now (an alias that moves mid-run changes
nothing); each worker process loads the model once. Readings and output folder must be at the
same path on every worker (a shared file system), the model reachable through ``tracking_uri``.

Output rows: the model's own when they carry ``meter_id`` (the forecaster's day-ahead rows),
else the model's output row by row beside the input's key columns (``KEY_COLUMNS``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from meterflow import tracking
from meterflow.blocks import map_blocks, meter_blocks
from meterflow.defaults import BLOCK_METERS
from meterflow.errors import MeterflowError, SchemaError
from meterflow.settings import Environment

METER = "meter_id"
KEY_COLUMNS = (METER, "forecast_id", "timestamp", "date")  # kept beside row-aligned outputs
PART = "part-{:05d}.parquet"
_CACHED_MODELS = 4  # loaded models kept per process
_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()


@dataclass(frozen=True)
class ScoreJob:
    """What every block task needs (sent once to each worker)."""

    model_uri: str  # fixed: the model itself, not an alias
    tracking_uri: str
    readings: str  # absolute path of the dataset
    columns: tuple[str, ...] | None  # read only these (None: all)
    out: str  # absolute path of the output folder


@dataclass(frozen=True)
class BlockResult:
    """What one block did (its output is on disk)."""

    block: int
    file: str
    meters: int  # meters in its one predict call
    rows_in: int
    rows_out: int
    seconds: float


@dataclass(frozen=True)
class FleetScore:
    """A finished fleet scoring: where the output is and what each block did."""

    model_uri: str  # as given
    fixed_uri: str  # the model every block used
    model_run: str  # the run that logged the model ('' if unknown)
    out: Path
    blocks: list[BlockResult]
    seconds: float

    def metrics(self) -> dict[str, float]:
        meters = sum(b.meters for b in self.blocks)
        return {
            "meters_scored": meters,
            "blocks": len(self.blocks),
            "rows_in": sum(b.rows_in for b in self.blocks),
            "rows_out": sum(b.rows_out for b in self.blocks),
            "max_block_meters": max((b.meters for b in self.blocks), default=0),
            "seconds": self.seconds,
            "meters_per_second": meters / max(self.seconds, 1e-9),
        }

    def listing(self) -> dict[str, Any]:
        """The output folder and its files, one per block (logged as an artifact)."""
        files = [
            {"file": b.file, "meters": b.meters, "rows": b.rows_out, "seconds": round(b.seconds, 3)}
            for b in self.blocks
        ]
        return {"output": str(self.out), "model": self.fixed_uri, "files": files}


def score_fleet(
    model_uri: str,
    readings: str | Path,
    out: str | Path,
    *,
    block_meters: int = BLOCK_METERS,
    scheduler: str = "",
    tracking_uri: str = "",
) -> FleetScore:
    """Score every meter of ``readings`` with the model at ``model_uri``, block by block, here
    or on the Dask cluster at ``scheduler``; write one Parquet file per block into ``out``."""
    started = time.perf_counter()
    tracking_uri = tracking_uri or tracking.tracking_uri()
    dataset, path = open_readings(readings)
    model, fixed = resolve_model(model_uri, tracking_uri)
    columns = input_columns(model, dataset.schema.names, model_uri, path)
    out_dir = prepare_output(Path(out))
    meters = fleet_meters(dataset)
    blocks = [(i, meters[b]) for i, b in enumerate(meter_blocks(len(meters), block_meters))]
    job = ScoreJob(fixed, tracking_uri, str(path), columns, str(out_dir))
    results = list(map_blocks(score_block, blocks, (job,), scheduler=scheduler, label="score"))
    run = str(getattr(model.metadata, "run_id", "") or "")
    return FleetScore(model_uri, fixed, run, out_dir, results, time.perf_counter() - started)


def open_readings(readings: str | Path) -> tuple[ds.Dataset, Path]:
    """The Parquet dataset at ``readings`` (a file or a folder) and its absolute path."""
    path = Path(readings).expanduser().resolve()
    if not path.exists():
        raise MeterflowError(f"readings {path} do not exist: give a Parquet file or folder")
    try:
        dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    except (pa.ArrowInvalid, OSError) as e:
        raise MeterflowError(f"readings {path} are not a Parquet dataset: {e}") from None
    if METER not in dataset.schema.names:
        raise SchemaError(
            f"readings {path} lack column {METER!r} (columns: {', '.join(dataset.schema.names)})"
        )
    return dataset, path


def resolve_model(model_uri: str, tracking_uri: str) -> tuple[Any, str]:
    """The pyfunc model at ``model_uri`` and a URI of that very model (``models:/<model id>``,
    so a moving alias cannot change it mid-run); kept in this process's cache."""
    try:
        model = tracking.load_pyfunc(model_uri)
    except MeterflowError as e:
        raise MeterflowError(_first_line(str(e))) from None
    model_id = getattr(model.metadata, "model_id", None)
    fixed = f"models:/{model_id}" if model_id else model_uri
    with _models_lock:
        _remember((tracking_uri, fixed), model)
    return model, fixed


def input_columns(
    model: Any, available: list[str], model_uri: str, path: Path
) -> tuple[str, ...] | None:
    """The dataset columns to read: those the model's signature names (``meter_id`` always);
    None (all) for a model without a signature. SchemaError when a required one is missing."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    names = schema.input_names()
    required = schema.required_input_names()
    missing = [c for c in required if c not in available]
    if missing:
        raise SchemaError(
            f"readings {path} lack column(s) {missing} that model {model_uri} needs "
            f"(it takes {', '.join(names)})"
        )
    return tuple(dict.fromkeys([METER, *(c for c in names if c in available)]))


def prepare_output(out: Path) -> Path:
    """The output folder, created; refused when it already holds a scored dataset."""
    out = out.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise MeterflowError(f"output {out} is a file, not a folder")
    if out.is_dir() and any(out.glob("part-*.parquet")):
        raise MeterflowError(f"output {out} already holds scores: give an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def fleet_meters(dataset: ds.Dataset) -> np.ndarray:
    """The sorted distinct meter ids of the dataset (its ``meter_id`` column, batch by batch)."""
    seen: set = set()
    for batch in dataset.to_batches(columns=[METER]):
        seen.update(pc.unique(batch.column(0)).to_pylist())
    seen.discard(None)
    if not seen:
        raise MeterflowError("readings hold no meter: nothing to score")
    ids = np.empty(len(seen), dtype=object)
    ids[:] = sorted(seen)
    return ids


def score_block(block: tuple[int, np.ndarray], job: ScoreJob) -> BlockResult:
    """One block: read its meters' rows, one ``predict``, write ``part-<block>.parquet``."""
    started = time.perf_counter()
    index, meters = block
    rows = read_block(job.readings, meters, job.columns)
    model = cached_model(job.model_uri, job.tracking_uri)
    where = f"block {index} (meters {meters[0]}..{meters[-1]})"
    output = output_frame(_predict(model, rows, where), rows, where)
    name = write_part(output, Path(job.out), index)
    seconds = time.perf_counter() - started
    return BlockResult(index, name, int(rows[METER].nunique()), len(rows), len(output), seconds)


def read_block(readings: str, meters: np.ndarray, columns: tuple[str, ...] | None) -> pd.DataFrame:
    """Every row of ``meters`` in the dataset, by meter (each meter's rows in dataset order).

    ``meters`` is a run of the sorted distinct ids, so the range first..last is exactly them;
    a range (unlike a list) lets Parquet skip the row groups of other meters by statistics."""
    dataset = ds.dataset(readings, format="parquet", partitioning="hive")
    kind = dataset.schema.field(METER).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    low, high = pa.scalar(meters[0], type=kind), pa.scalar(meters[-1], type=kind)
    wanted = (pc.field(METER) >= low) & (pc.field(METER) <= high)
    table = dataset.to_table(columns=list(columns) if columns else None, filter=wanted)
    at = table.schema.get_field_index(METER)
    table = table.set_column(at, METER, table.column(at).cast(kind))  # plain, not dictionary
    return table.sort_by([(METER, "ascending")]).to_pandas()  # stable: each meter's row order


def cached_model(model_uri: str, tracking_uri: str) -> Any:
    """The pyfunc model at ``model_uri``, loaded once per process (and tracking store)."""
    key = (tracking_uri, model_uri)
    with _models_lock:
        if key not in _models:
            if tracking_uri and tracking.tracking_uri() != tracking_uri:
                tracking.connect(Environment.from_env({"MLFLOW_TRACKING_URI": tracking_uri}))
            _remember(key, tracking.load_pyfunc(model_uri))
        return _models[key]


def _remember(key: tuple[str, str], model: Any) -> None:
    """Cache ``model`` under ``key``, the oldest one out when full (hold ``_models_lock``)."""
    while len(_models) >= _CACHED_MODELS:
        _models.pop(next(iter(_models)))
    _models[key] = model


def _predict(model: Any, rows: pd.DataFrame, where: str) -> Any:
    """``model.predict(rows)``; a model's refusal as one line naming the block."""
    try:
        return model.predict(rows)
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None
    except MeterflowError as e:
        raise MeterflowError(f"{where}: {e}") from None
    except Exception as e:
        mlflow_errors = sys.modules.get("mlflow.exceptions")
        if mlflow_errors is None or not isinstance(e, mlflow_errors.MlflowException):
            raise
        reason = str(e).rsplit("Error: ", 1)[-1]  # MLflow's schema message, not the rows
        raise SchemaError(f"{where}: {_first_line(reason)}") from None


def output_frame(output: Any, rows: pd.DataFrame, where: str) -> pd.DataFrame:
    """The model's output as a table: as it is when it names the meters, else row by row
    beside the input's key columns."""
    if isinstance(output, pd.DataFrame) and METER in output.columns:
        return output.reset_index(drop=True)
    if isinstance(output, pd.Series):
        output = output.to_frame(output.name if output.name is not None else "prediction")
    if not isinstance(output, pd.DataFrame):
        values = np.asarray(output)
        values = values.reshape(len(values), -1) if values.ndim != 1 else values[:, None]
        names = [f"prediction_{j}" for j in range(values.shape[1])]
        output = pd.DataFrame(values, columns=names if len(names) > 1 else ["prediction"])
    if len(output) != len(rows):
        raise MeterflowError(
            f"{where}: the model returned {len(output)} rows for {len(rows)} input rows and "
            f"no {METER} column: its output cannot be matched to the meters"
        )
    keys = rows[[c for c in KEY_COLUMNS if c in rows.columns]].reset_index(drop=True)
    values = output.reset_index(drop=True).drop(columns=keys.columns, errors="ignore")
    return pd.concat([keys, values], axis=1)


def write_part(output: pd.DataFrame, out: Path, block: int) -> str:
    """Write block ``block``'s output as ``out/part-<block>.parquet`` (whole or not at all)."""
    name = PART.format(block)
    partial = out / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    output.to_parquet(partial, index=False)
    os.replace(partial, out / name)
    return name


def _first_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else text)[:limit]
