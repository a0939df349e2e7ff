"""Typed settings, validated once at the edge (entry points) and handed down as plain values.

Two kinds of settings:
- ``Environment``: where the stores and the tracking server are; read from environment variables
  only (secrets never travel as parameters, tags or logs).
- one ``*Options`` model per MLflow entry point: the step's parameters, mirrored 1:1 by
  ``MLproject`` (``tests/test_project_files.py`` checks that the two agree).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meterflow import domain
from meterflow.errors import ConfigError
from meterflow.schemas import MINUTES_PER_DAY
from meterflow.sources import formats

DEFAULT_DATA_DIR = "data"
DEFAULT_EXPERIMENT = "meterflow"


class Environment(BaseModel):
    """Store locations, from environment variables (see README "Configuration")."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    sql_url: str
    mongodb_uri: str | None  # None: the pipeline starts a local wire-protocol server
    mongo_database: str
    experiment: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if env is None else env
        data_dir = Path(env.get("METERFLOW_DATA_DIR") or DEFAULT_DATA_DIR)
        sql_url = env.get("METERFLOW_SQL_URL") or f"sqlite:///{data_dir / 'historian.db'}"
        return cls(
            data_dir=data_dir,
            sql_url=sql_url,
            mongodb_uri=env.get("MONGODB_URI") or None,
            mongo_database=env.get("METERFLOW_MONGO_DB") or formats.MONGO_DATABASE,
            experiment=env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
        )

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "oldmongo"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "ground_truth"

    @property
    def local_mongo_path(self) -> Path:
        return self.data_dir / "mongo" / "nx-27017.db"

    @property
    def dtw_cache_dir(self) -> Path:
        return self.data_dir / "cache" / "dtw"

    def require_mongodb_uri(self) -> str:
        if not self.mongodb_uri:
            raise ConfigError(
                "MONGODB_URI is not set: point it at a MongoDB server, or run the pipeline "
                "(main entry point), which starts a local one"
            )
        return self.mongodb_uri


class Options(BaseModel):
    """Base of the entry points' options: unknown names are errors, values are typed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def params(self) -> dict[str, str]:
        """The options as MLflow params (strings; booleans as true/false)."""
        out = {}
        for k, v in self.model_dump().items():
            out[k] = str(v).lower() if isinstance(v, bool) else ("" if v is None else str(v))
        return out


def _check_resolution(v: int) -> int:
    if v <= 0 or MINUTES_PER_DAY % v:
        raise ValueError(f"must divide a day ({MINUTES_PER_DAY} min), got {v}")
    return v


def _check_timezone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown timezone {v!r}") from e
    return v


class CleaningOptions(Options):
    """Cleaning rules shared by every ETL entry point."""

    resolution: int = Field(60, description="profile resolution in minutes (divides a day)")
    timezone: str = Field(domain.LOCAL_TIMEZONE, description="local timezone of the meter-days")
    max_gap_min: int = Field(60, ge=0, description="longest gap filled by interpolation (min)")
    night_max_gap_min: int = Field(180, ge=0, description="longest gap filled at night (min)")

    _resolution = field_validator("resolution")(_check_resolution)
    _timezone = field_validator("timezone")(_check_timezone)


class LoadNewMongoOptions(Options):
    collection: str = Field(formats.MONGO_COLLECTION, description="MongoDB collection")
    since: str = Field(
        "watermark",
        description="'watermark' (after the last successful load), 'all', or an ISO UTC time",
    )
    until: str = Field("", description="exclusive ISO UTC upper bound ('' = none)")
    batch_size: int = Field(50_000, gt=0, description="documents per batch")
    timezone: str = Field(
        domain.LOCAL_TIMEZONE, description="local timezone: the watermark ends on a local midnight"
    )
    source_fingerprint: str = Field("", description="set by the pipeline to detect new data")

    _timezone = field_validator("timezone")(_check_timezone)

    @field_validator("since", "until")
    @classmethod
    def _time(cls, v: str) -> str:
        if v in ("", "watermark", "all"):
            return v
        _parse_utc(v)
        return v


class EtlNewMongoOptions(CleaningOptions):
    raw_run: str = Field("", description="load_newmongo run id ('' = latest finished)")


class EtlSqlOptions(CleaningOptions):
    table: str = Field(formats.HISTORIAN_TABLE, description="historian table")
    start: str = Field("", description="inclusive ISO UTC start ('' = all)")
    end: str = Field("", description="exclusive ISO UTC end ('' = all)")
    chunk_size: int = Field(500_000, gt=0, description="rows per chunk")
    source_fingerprint: str = Field("", description="set by the pipeline to detect new data")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        if v:
            _parse_utc(v)
        return v


class EtlOldMongoOptions(CleaningOptions):
    exports_dir: str = Field("", description="folder of per-meter CSV exports ('' = data dir)")
    reference_run: str = Field(
        "", description="etl_sql run whose profiles anchor the scale detection ('' = none)"
    )
    on_bad_file: Literal["raise", "quarantine"] = Field(
        "quarantine",
        description="quarantine: bad lines and unreadable files are quarantined with their reason "
        "and the other files read; raise: the first one stops the run (file, meter, line named)",
    )
    source_fingerprint: str = Field("", description="set by the pipeline to detect new data")


Normalization = Literal["none", "l2", "zscore", "max"]


class HarmonizationOptions(Options):
    etl_runs: str = Field("", description="comma-separated ETL run ids ('' = latest of each)")
    previous_run: str = Field(
        "", description="harmonization run whose meter-days are carried over ('' = none)"
    )
    resolution: int = Field(60, description="common profile resolution in minutes")
    normalization: Normalization = Field("l2", description="none | l2 | zscore | max")
    priority: str = Field(
        ",".join(domain.SOURCES), description="source priority for overlapping meter-days"
    )
    compute_dtw: bool = Field(True, description="update the cached DTW distance matrix")
    dtw_window: int = Field(3, ge=0, description="DTW band (dtaidistance 'window'; 0 = none)")
    dtw_max_profiles: int = Field(
        4000, gt=1, description="DTW matrix covers the most recent days holding at most this many"
    )
    dtw_cache_dir: str = Field("", description="DTW cache folder ('' = <data dir>/cache/dtw)")

    _resolution = field_validator("resolution")(_check_resolution)

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: str) -> str:
        names = [s.strip() for s in v.split(",") if s.strip()]
        unknown = sorted(set(names) - set(domain.SOURCES))
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"must list distinct sources of {domain.SOURCES}, got {v!r}")
        return ",".join(names)


ClusterModel = Literal["kmeans", "kmedoids", "agglomerative", "som", "kshape", "lstm_autoencoder"]
Prosumers = Literal["include", "exclude", "only"]  # meters with PV production (production_kw > 0)


class ClusteringOptions(Options):
    profiles_run: str = Field("", description="harmonization run id ('' = latest finished)")
    in_profiles: str = Field("", description="CSV/Parquet profile table instead of a run")
    id_column: str = Field("meter_id", description="id column of in_profiles")
    date_column: str = Field("date", description="date column of in_profiles ('' = none)")
    label_column: str = Field("", description="label column of in_profiles ('' = none)")
    model: ClusterModel = Field("kmeans", description="clustering algorithm")
    distance_metric: Literal["euclidean", "dtw"] = Field("euclidean", description="distance")
    number_of_clusters: int = Field(0, ge=0, description="k; 0 = choose by silhouette")
    k_min: int = Field(2, ge=2, description="smallest k tried when number_of_clusters=0")
    k_max: int = Field(12, ge=2, description="largest k tried when number_of_clusters=0")
    linkage: Literal["", "ward", "average", "complete"] = Field(
        "", description="agglomerative linkage ('' = ward for euclidean, complete for dtw)"
    )
    dtw_window: int = Field(3, ge=0, description="DTW band (dtaidistance 'window'; 0 = none)")
    max_profiles: int = Field(
        10_000, gt=1, description="profiles the model is fitted on (all are assigned)"
    )
    som_grid: str = Field("", description="SOM grid 'MxN' ('' = k x 1)")
    prosumers: Prosumers = Field(
        "include", description="meters with PV production: include | exclude | only"
    )
    epochs: int = Field(30, gt=0, description="LSTM-autoencoder epochs")
    seed: int = Field(42, description="random seed")

    @model_validator(mode="after")
    def _check(self) -> ClusteringOptions:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) > k_max ({self.k_max})")
        if self.som_grid and not re.fullmatch(r"\d+x\d+", self.som_grid):
            raise ValueError(f"som_grid must look like 3x4, got {self.som_grid!r}")
        if self.in_profiles and self.profiles_run:
            raise ValueError("give either in_profiles or profiles_run, not both")
        if self.in_profiles and self.prosumers != "include":
            raise ValueError(
                "prosumers=exclude/only needs the meter table of a harmonization run, "
                "not in_profiles"
            )
        return self


class ForecastingOptions(Options):
    profiles_run: str = Field("", description="harmonization run id ('' = latest finished)")
    model: Literal["lstm", "hybrid"] = Field("lstm", description="lstm | hybrid (LSTM+CNN)")
    seq_length: int = Field(30, gt=1, description="input window length (slots)")
    horizon: int = Field(5, gt=0, description="slots ahead of the window end")
    padding: Literal["history", "zeros"] = Field(
        "history", description="start of the test stream: real history or zero pre-padding"
    )
    epochs: int = Field(8, gt=0, description="training epochs (early stopping on validation)")
    hidden_size: int = Field(32, gt=0, description="LSTM units")
    max_train_windows: int = Field(20_000, gt=0, description="cap on sampled training windows")
    seed: int = Field(42, description="random seed")


class AnomalyOptions(Options):
    profiles_run: str = Field("", description="harmonization run id ('' = latest finished)")
    labels: str = Field("", description="CSV of labelled anomalies ('' = none)")
    seq_length: int = Field(30, gt=1, description="input window length (slots)")
    horizon: int = Field(
        24, gt=0, description="slots ahead predicted for the residual (24 = a day at 60 min)"
    )
    epochs: int = Field(8, gt=0, description="training epochs")
    hidden_size: int = Field(32, gt=0, description="LSTM units")
    max_train_windows: int = Field(20_000, gt=0, description="cap on sampled training windows")
    threshold_quantile: float = Field(
        0.995, gt=0.5, lt=1.0, description="validation-residual quantile used as threshold"
    )
    seed: int = Field(42, description="random seed")


class PipelineOptions(Options):
    demo: bool = Field(True, description="build the demo fleet into the local stores if missing")
    demo_meters: int = Field(200, gt=0, description="meters in the demo fleet")
    demo_days: int = Field(365, gt=20, description="days of history in the demo fleet")
    demo_seed: int = Field(42, description="seed of the demo fleet")
    reuse: bool = Field(True, description="reuse finished runs whose inputs did not change")
    resolution: int = Field(60, description="profile resolution in minutes")
    normalization: Normalization = Field("l2", description="profile normalisation")
    dtw_window: int = Field(3, ge=0, description="DTW band (dtaidistance 'window')")
    dtw_max_profiles: int = Field(4000, gt=1, description="profiles in the DTW matrix")
    model: ClusterModel = Field("kmeans", description="clustering algorithm")
    distance_metric: Literal["euclidean", "dtw"] = Field("euclidean", description="distance")
    number_of_clusters: int = Field(0, ge=0, description="k; 0 = choose by silhouette")
    prosumers: Prosumers = Field("include", description="PV meters clustered: include|exclude|only")
    forecast_model: Literal["lstm", "hybrid"] = Field("lstm", description="forecasting model")
    epochs: int = Field(8, gt=0, description="epochs of the forecasting/anomaly LSTMs")

    _resolution = field_validator("resolution")(_check_resolution)


def _parse_utc(value: str):
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"not an ISO time: {value!r}") from e
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_utc(value: str):
    """An ISO time string as a UTC ``pd.Timestamp`` (naive input is taken as UTC)."""
    try:
        return _parse_utc(value)
    except ValueError as e:
        raise ConfigError(str(e)) from e
