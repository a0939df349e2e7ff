"""Typed settings, validated once at the edge (entry points) and handed down as plain values.

Two kinds of settings:
- ``Environment``: where the stores and the tracking server are; read from environment variables
  only (secrets never travel as parameters, tags or logs).
- one ``*Options`` model per MLflow entry point: the step's parameters, mirrored 1:1 by
  ``MLproject`` (``tests/test_project_files.py`` checks that the two agree).

Each option shared by several entry points is one annotated type below, so the pipeline and its
steps agree on its default (``meterflow.defaults``), its check and its help. Choices that come
from a registry (clustering algorithms, distances, forecasting models, normalisations) are read
from that registry when an option is checked: adding an algorithm changes nothing here.
This module imports no numerical library, so ``--help`` and option errors are instant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from meterflow import defaults, domain
from meterflow.errors import ConfigError
from meterflow.redact import ESCAPE_HINT, ambiguous_credentials, redact_uri
from meterflow.sources import formats

DEFAULT_DATA_DIR = "data"
DEFAULT_EXPERIMENT = "meterflow"
DEFAULT_REGISTRY_PREFIX = "meterflow"
DEFAULT_TRACKING_TIMEOUT_S = 120


class Environment(BaseModel):
    """Store locations, from environment variables (see README "Configuration")."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    sql_url: str
    mongodb_uri: str | None  # None: the pipeline starts a local wire-protocol server
    mongo_database: str
    experiment: str
    tracking_uri: str | None = None  # None: sqlite:///mlflow.db in the working folder
    registry_prefix: str = DEFAULT_REGISTRY_PREFIX  # registered models <prefix>-<step>
    tracking_timeout_s: int = DEFAULT_TRACKING_TIMEOUT_S  # an unreachable server fails a call

    @field_validator("sql_url")
    @classmethod
    def _unambiguous_sql_url(cls, v: str) -> str:
        """Reject a URL whose credentials hold an unescaped ``@`` (a driver would read the host
        from inside the password and echo it). A ConfigError, not a ValueError, so that pydantic
        does not add the value (with the password) to the message."""
        if ambiguous_credentials(v):
            raise ConfigError(
                f"METERFLOW_SQL_URL {redact_uri(v)} is ambiguous: its user name or password "
                f"holds an unescaped '@'; {ESCAPE_HINT}"
            )
        return v

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
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            registry_prefix=env.get("METERFLOW_REGISTRY_PREFIX") or DEFAULT_REGISTRY_PREFIX,
            tracking_timeout_s=env.get("METERFLOW_TRACKING_TIMEOUT_S")
            or DEFAULT_TRACKING_TIMEOUT_S,
        )

    def with_mongodb_uri(self, uri: str) -> Environment:
        """The same environment with a MongoDB server (e.g. the pipeline's local one)."""
        return self.model_copy(update={"mongodb_uri": uri})

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


# --- checks and choices -------------------------------------------------------------------


@dataclass(frozen=True)
class OneOf:
    """Check that a value is one of the names a registry lists (read when checked)."""

    choices: Callable[[], tuple[str, ...]]

    def __call__(self, value: str) -> str:
        names = self.choices()
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}")
        return value


def cluster_models() -> tuple[str, ...]:
    from meterflow.clustering.registry import AUTO_MODEL, algorithm_names

    return (*algorithm_names(), AUTO_MODEL)


def distance_metrics() -> tuple[str, ...]:
    from meterflow.clustering.registry import DISTANCE_METRICS

    return tuple(DISTANCE_METRICS)


def forecast_models() -> tuple[str, ...]:
    from meterflow.forecasting.registry import model_names

    return model_names()


def forecasters() -> tuple[str, ...]:
    from meterflow.forecasting.registry import FORECASTERS

    return tuple(FORECASTERS)


def deep_forecasters() -> tuple[str, ...]:
    from meterflow.forecasting.registry import DEEP

    return DEEP


def anomaly_detectors() -> tuple[str, ...]:
    from meterflow.anomaly.registry import DETECTORS

    return tuple(DETECTORS)


def normalizations() -> tuple[str, ...]:
    from meterflow.profiles.normalize import NORMALIZATIONS

    return tuple(NORMALIZATIONS)


def _check_resolution(v: int) -> int:
    if v <= 0 or domain.MINUTES_PER_DAY % v:
        raise ValueError(f"must divide a day ({domain.MINUTES_PER_DAY} min), got {v}")
    return v


def _check_timezone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown timezone {v!r}") from e
    return v


def _check_dask_address(v: str) -> str:
    if v and not re.fullmatch(r"(tcp|tls|ucx|ws|wss|inproc)://\S+", v):
        raise ValueError(f"expected a Dask scheduler address such as tcp://host:8786, got {v!r}")
    return v


def _check_utc_time(v: str) -> str:
    if v not in ("", "watermark", "all"):
        _parse_utc(v)
    return v


Resolution = Annotated[
    int,
    AfterValidator(_check_resolution),
    Field(defaults.RESOLUTION_MIN, description="profile resolution in minutes (divides a day)"),
]
Timezone = Annotated[
    str,
    AfterValidator(_check_timezone),
    Field(domain.LOCAL_TIMEZONE, description="local timezone of the meter-days"),
]
HistorianTimezone = Annotated[
    str,
    AfterValidator(_check_timezone),
    Field(
        "UTC",
        description="time zone of the SQL historian's naive timestamps (UTC unless the historian "
        "writes local wall-clock time, e.g. Europe/Rome: converted across DST, the repeated "
        "autumn hour placed by row order)",
    ),
]
UtcTime = Annotated[str, AfterValidator(_check_utc_time)]
Normalization = Annotated[
    str,
    AfterValidator(OneOf(normalizations)),
    Field(defaults.NORMALIZATION, description="per-profile normalisation"),
]
DtwWindow = Annotated[
    int, Field(defaults.DTW_WINDOW, ge=0, description="DTW band (dtaidistance 'window'; 0 = none)")
]
DaskScheduler = Annotated[
    str,
    AfterValidator(_check_dask_address),
    Field(
        "",
        description="Dask scheduler for per-meter work and DTW rows (tcp://host:8786; '' = here)",
    ),
]
DtwMaxProfiles = Annotated[
    int,
    Field(
        defaults.DTW_MAX_PROFILES,
        gt=1,
        description="DTW matrix rows: a fixed sample of meters x recent days, at most this many",
    ),
]
ClusterModel = Annotated[
    str,
    AfterValidator(OneOf(cluster_models)),
    Field(defaults.CLUSTER_MODEL, description="clustering algorithm"),
]
DistanceMetric = Annotated[
    str,
    AfterValidator(OneOf(distance_metrics)),
    Field(defaults.DISTANCE_METRIC, description="distance between profiles"),
]
NumberOfClusters = Annotated[int, Field(0, ge=0, description="k; 0 = choose by silhouette")]
Prosumers = Annotated[
    Literal["include", "exclude", "only"],
    Field("include", description="meters with PV production (production_kw > 0)"),
]
ForecastModel = Annotated[
    str,
    AfterValidator(OneOf(forecast_models)),
    Field(
        defaults.FORECAST_MODEL,
        description="forecaster, or auto: the best candidate or combination on validation",
    ),
]
ResidualForecaster = Annotated[
    str,
    AfterValidator(OneOf(deep_forecasters)),
    Field(defaults.RESIDUAL_FORECASTER, description="forecaster whose residuals are evidence"),
]
Epochs = Annotated[
    int, Field(defaults.EPOCHS, gt=0, description="training epochs (early stopping on validation)")
]
ForecastEpochs = Annotated[
    int,
    Field(
        defaults.FORECAST_EPOCHS,
        gt=0,
        description="forecaster training epochs (early stopping on validation)",
    ),
]
SeqLength = Annotated[
    int, Field(defaults.SEQ_LENGTH, gt=1, description="input window length (slots)")
]


def _check_units(v: str) -> str:
    parts = [p.strip() for p in v.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError("must be positive integers separated by commas, e.g. 50,25,10")
    return ",".join(parts)


def lstm_units(value: str) -> tuple[int, ...]:
    """An option ``units`` (``"50,25,10"``) as the tuple the models take."""
    return tuple(int(p) for p in value.split(","))


def _units_option(default: tuple[int, ...]) -> object:
    """An option ``units`` with ``default`` (a string such as ``"50,25,10"``)."""
    return Annotated[
        str,
        AfterValidator(_check_units),
        Field(
            ",".join(map(str, default)),
            description="units of the stacked LSTM layers, first layer first (e.g. 50,25,10)",
        ),
    ]


Units = _units_option(defaults.LSTM_UNITS)
ForecastUnits = _units_option(defaults.FORECAST_UNITS)
Threads = Annotated[
    int, Field(defaults.THREADS, gt=0, description="TensorFlow CPU threads of this step")
]
MaxTrainWindows = Annotated[
    int, Field(defaults.MAX_TRAIN_WINDOWS, gt=0, description="cap on sampled training windows")
]
ForecastMaxTrainWindows = Annotated[
    int,
    Field(defaults.FORECAST_MAX_TRAIN_WINDOWS, gt=0, description="cap on sampled training windows"),
]
Seed = Annotated[int, Field(defaults.SEED, description="random seed")]
AnomalyDetector = Annotated[
    str,
    AfterValidator(OneOf(lambda: ("auto", *anomaly_detectors()))),
    Field(
        defaults.ANOMALY_DETECTOR,
        description="anomaly detector, or auto: the one that finds planted anomalies best",
    ),
]
RunId = Annotated[str, Field("", description="harmonization run id ('' = latest finished)")]
Fingerprint = Annotated[str, Field("", description="set by the pipeline to detect new data")]


# --- the entry points' options ------------------------------------------------------------


class CleaningOptions(Options):
    """Cleaning rules shared by every ETL entry point."""

    resolution: Resolution
    timezone: Timezone
    max_gap_min: int = Field(
        defaults.MAX_GAP_MIN, ge=0, description="longest gap filled by interpolation (min)"
    )
    night_max_gap_min: int = Field(
        defaults.NIGHT_MAX_GAP_MIN, ge=0, description="longest gap filled at night (min)"
    )


class LoadNewMongoOptions(Options):
    """Load the MongoDB documents that arrived since the last load."""

    collection: str = Field(formats.MONGO_COLLECTION, description="MongoDB collection")
    since: UtcTime = Field(
        "watermark",
        description="'watermark' (after the last successful load), 'all', or an ISO UTC time",
    )
    until: UtcTime = Field("", description="exclusive ISO UTC upper bound ('' = none)")
    batch_size: int = Field(50_000, gt=0, description="documents per batch")
    timezone: Timezone = Field(
        domain.LOCAL_TIMEZONE,
        description="local timezone: the watermark ends on a local midnight",
    )
    lookback_days: int = Field(
        2,
        ge=0,
        description="days before the watermark re-read on each incremental load so late "
        "documents are merged (0 = off)",
    )
    source_fingerprint: Fingerprint


class EtlNewMongoOptions(CleaningOptions):
    """Clean the documents of a load_newmongo run into daily profiles."""

    raw_run: str = Field("", description="load_newmongo run id ('' = latest finished)")


class EtlSqlOptions(CleaningOptions):
    """Read the SQL historian and clean it into daily profiles."""

    table: str = Field(formats.HISTORIAN_TABLE, description="historian table")
    start: UtcTime = Field("", description="inclusive ISO UTC start ('' = all)")
    end: UtcTime = Field("", description="exclusive ISO UTC end ('' = all)")
    chunk_size: int = Field(500_000, gt=0, description="rows per chunk")
    historian_timezone: HistorianTimezone
    source_fingerprint: Fingerprint


class EtlOldMongoOptions(CleaningOptions):
    """Read the old per-meter exports and clean them into daily profiles."""

    exports_dir: str = Field("", description="folder of per-meter CSV exports ('' = data dir)")
    reference_run: str = Field(
        "", description="etl_sql run whose profiles anchor the scale detection ('' = none)"
    )
    on_bad_file: Literal["raise", "quarantine"] = Field(
        "quarantine",
        description="quarantine: bad lines and unreadable files are quarantined with their reason "
        "and the other files read; raise: the first one stops the run (file, meter, line named)",
    )
    source_fingerprint: Fingerprint


class HarmonizationOptions(Options):
    """Merge the ETL runs into one profile table and update the cached DTW matrix."""

    etl_runs: str = Field("", description="comma-separated ETL run ids ('' = latest of each)")
    previous_run: str = Field(
        "", description="harmonization run whose meter-days are carried over ('' = none)"
    )
    resolution: Resolution
    normalization: Normalization
    priority: str = Field(
        ",".join(domain.SOURCES), description="source priority for overlapping meter-days"
    )
    compute_dtw: bool = Field(True, description="update the cached DTW distance matrix")
    dtw_window: DtwWindow
    dtw_max_profiles: DtwMaxProfiles
    dtw_cache_dir: str = Field("", description="DTW cache folder ('' = <data dir>/cache/dtw)")
    dask_scheduler: DaskScheduler

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: str) -> str:
        names = [s.strip() for s in v.split(",") if s.strip()]
        unknown = sorted(set(names) - set(domain.SOURCES))
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"must list distinct sources of {domain.SOURCES}, got {v!r}")
        return ",".join(names)


class ClusteringOptions(Options):
    """Cluster daily load profiles, validate, log a model."""

    profiles_run: RunId
    in_profiles: str = Field("", description="CSV/Parquet profile table instead of a run")
    id_column: str = Field(
        "", description="id column of in_profiles ('' = id, meter_id or the first text column)"
    )
    date_column: str = Field("date", description="date column of in_profiles ('' = none)")
    label_column: str = Field("", description="label column of in_profiles ('' = none)")
    model: ClusterModel
    distance_metric: DistanceMetric
    number_of_clusters: NumberOfClusters
    k_min: int = Field(2, ge=2, description="smallest k tried when number_of_clusters=0")
    k_max: int = Field(12, ge=2, description="largest k tried when number_of_clusters=0")
    k_criterion: Literal["silhouette", "davies_bouldin", "stability"] = Field(
        "silhouette", description="how number_of_clusters=0 chooses k (no labels used)"
    )
    representation: Literal["profile", "diff", "shape"] = Field(
        "profile",
        description="what Euclidean methods compare: the profile, its slopes or shape features",
    )
    linkage: Literal["", "ward", "average", "complete"] = Field(
        "", description="agglomerative linkage ('' = ward for euclidean, complete for dtw)"
    )
    assignment: Literal["", "neighbour", "medoid"] = Field(
        "",
        description="agglomerative assignment: the nearest fitted profile's cluster (neighbour, "
        "keeps the linkage cut) or the nearest medoid's ('' = neighbour for ward, else medoid)",
    )
    dtw_window: int = Field(
        -1,
        ge=-1,
        description="DTW band (-1 = the harmonization run's window; for in_profiles "
        f"{defaults.DTW_WINDOW})",
    )
    max_profiles: int = Field(
        10_000, gt=1, description="profiles the model is fitted on (all are assigned)"
    )
    dask_scheduler: DaskScheduler
    som_grid: str = Field("", description="SOM grid 'MxN' ('' = k x 1)")
    prosumers: Prosumers
    epochs: int = Field(defaults.AUTOENCODER_EPOCHS, gt=0, description="LSTM-autoencoder epochs")
    threads: Threads
    seed: Seed

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


def _check_quantiles(v: str) -> str:
    if not v.strip():
        return ""
    try:
        q = [float(p) for p in v.split(",")]
    except ValueError:
        raise ValueError("must be numbers separated by commas, e.g. 0.1,0.5,0.9") from None
    if 0.5 not in q or q != sorted(set(q)) or not all(0 < x < 1 for x in q):
        raise ValueError("must be increasing, in (0, 1) and include 0.5, e.g. 0.1,0.5,0.9")
    return ",".join(f"{x:g}" for x in q)


def _check_names(choices: Callable[[], tuple[str, ...]]) -> Callable[[str], str]:
    """A check of comma-separated names, each one of ``choices()`` (``''`` = none)."""

    def check(v: str) -> str:
        names = column_names(v)
        for name in names:
            OneOf(choices)(name)
        return ",".join(names)

    return check


def column_names(value: str) -> tuple[str, ...]:
    """The names of a comma-separated list option (``''`` = none)."""
    return tuple(x.strip() for x in value.split(",") if x.strip())


def forecast_quantiles(value: str) -> tuple[float, ...]:
    """An option ``quantiles`` (``"0.1,0.5,0.9"``, ``""`` = point forecast) as a tuple."""
    return tuple(float(p) for p in value.split(",")) if value else ()


def _check_date(v: str) -> str:
    if v:
        try:
            return date.fromisoformat(v.strip()).isoformat()
        except ValueError:
            raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}") from None
    return v


class ForecastingOptions(Options):
    """Forecast load day-ahead (each meter, cluster total or fleet total, or any series file);
    compare with baselines on a chronological test split."""

    profiles_run: RunId
    in_series: str = Field(
        "", description="CSV/Parquet series (timestamp, value[, meter_id, inputs...]) instead"
    )
    test_start: Annotated[str, AfterValidator(_check_date)] = Field(
        "", description="first test day YYYY-MM-DD ('' = the most recent 20 % of days)"
    )
    scope: Literal["meter", "cluster", "fleet"] = Field(
        defaults.FORECAST_SCOPE, description="forecast each meter, cluster total or fleet total"
    )
    clustering_run: str = Field(
        "", description="clustering run of scope=cluster ('' = latest finished)"
    )
    ignore_columns: str = Field(
        "", description="extra columns of in_series that are not model inputs (e.g. label)"
    )
    model: ForecastModel
    candidates: Annotated[str, AfterValidator(_check_names(forecasters))] = Field(
        ",".join(defaults.AUTO_CANDIDATES),
        description="forecasters model=auto tries beside every baseline (e.g. lstm,hybrid)",
    )
    seq_length: SeqLength
    horizon: int = Field(
        defaults.DAY_AHEAD, ge=0, description="slots ahead (0 = one day at the series' resolution)"
    )
    output: Literal["all", "last"] = Field(
        defaults.FORECAST_OUTPUT, description="predict every slot 1..horizon, or only the last"
    )
    quantiles: Annotated[str, AfterValidator(_check_quantiles)] = Field(
        ",".join(f"{q:g}" for q in defaults.QUANTILES),
        description="forecast quantiles with 0.5 ('' = point forecast on the MSE)",
    )
    origin_hour: int = Field(
        -1, ge=-1, le=23, description="evaluate forecasts made at this hour (-1 = every slot)"
    )
    padding: Literal["history", "zeros"] = Field(
        "history", description="start of the test stream: real history or zero pre-padding"
    )
    epochs: ForecastEpochs
    units: ForecastUnits
    max_train_windows: ForecastMaxTrainWindows
    threads: Threads
    seed: Seed
    dask_scheduler: DaskScheduler

    @model_validator(mode="after")
    def _check(self) -> ForecastingOptions:
        if self.in_series and self.profiles_run:
            raise ValueError("give either in_series or profiles_run, not both")
        if self.in_series and self.scope == "cluster":
            raise ValueError("scope=cluster needs a harmonization run's meters, not in_series")
        hybrid = self.model == "hybrid" or (self.model == "auto" and "hybrid" in self.candidates)
        if hybrid and (self.scope != "meter" or self.in_series):
            raise ValueError("the hybrid needs scope=meter on a harmonization run (meter map)")
        if not self.candidates:
            raise ValueError("candidates must name at least one forecaster")
        return self


class AnomalyOptions(Options):
    """Detect anomalies in each meter's load or any series file with every detector (forecast
    residuals, reconstructions, baselines) and the windowed evidence; thresholds and the
    choice learned from anomalies planted into the validation days; evaluate on labelled
    anomalies when given; write alerts, one per anomaly across runs, to the SQL and Mongo
    stores."""

    profiles_run: RunId
    in_series: str = Field(
        "", description="CSV/Parquet series (timestamp, value[, meter_id]) instead"
    )
    labels: str = Field("", description="CSV of labelled anomalies ('' = none)")
    test_start: Annotated[str, AfterValidator(_check_date)] = Field(
        "", description="first test day YYYY-MM-DD ('' = the most recent 20 % of days)"
    )
    detector: AnomalyDetector
    detectors: Annotated[str, AfterValidator(_check_names(anomaly_detectors))] = Field(
        ",".join(defaults.ANOMALY_DETECTORS),
        description="detectors run and compared (auto chooses among them)",
    )
    alarm_budget: float = Field(
        defaults.ALARM_BUDGET,
        gt=0,
        description="false alarms per meter-month the thresholds may spend (on validation)",
    )
    windowed: bool = Field(True, description="add daily-energy and flat-line evidence")
    write_alerts: bool = Field(True, description="write alerts to the SQL and Mongo stores")
    forecast_model: ResidualForecaster
    seq_length: SeqLength
    horizon: int = Field(
        defaults.ANOMALY_HORIZON,
        gt=0,
        description="slots ahead of the residual forecaster (24 = a day at 60 min)",
    )
    epochs: Epochs
    units: Units
    max_train_windows: MaxTrainWindows
    threads: Threads
    seed: Seed
    dask_scheduler: DaskScheduler

    @model_validator(mode="after")
    def _check(self) -> AnomalyOptions:
        if self.in_series and self.profiles_run:
            raise ValueError("give either in_series or profiles_run, not both")
        if self.forecast_model == "hybrid" and self.in_series:
            raise ValueError("forecast_model=hybrid needs a harmonization run's meter map")
        if self.detector == "auto" and not self.detectors:
            raise ValueError("detector=auto needs detectors to choose from")
        return self


class PipelineOptions(Options):
    """Every step, chained as child runs of one parent run."""

    demo: bool = Field(True, description="build the demo fleet into the local stores if missing")
    demo_meters: int = Field(200, gt=0, description="meters in the demo fleet")
    demo_days: int = Field(365, gt=20, description="days of history in the demo fleet")
    demo_seed: int = Field(defaults.SEED, description="seed of the demo fleet")
    reuse: bool = Field(True, description="reuse finished runs whose inputs did not change")
    resolution: Resolution
    historian_timezone: HistorianTimezone
    normalization: Normalization
    dtw_window: DtwWindow
    dtw_max_profiles: DtwMaxProfiles
    dask_scheduler: DaskScheduler
    model: ClusterModel
    distance_metric: DistanceMetric
    number_of_clusters: NumberOfClusters
    prosumers: Prosumers
    forecast_model: ForecastModel
    forecast_epochs: ForecastEpochs
    epochs: Epochs
    promote: bool = Field(
        True, description="register new models; champion only when better on held-out rows"
    )
    promotion_margin: float = Field(
        0.01, ge=0, description="relative improvement a new model needs to become champion"
    )
    start_over: bool = Field(
        False,
        description="run even when the tracking store does not know the data folder's last run "
        "(an empty or replaced store): start over from what the store holds",
    )


class RetrainOptions(PipelineOptions):
    """The nightly run: load new data, rerun what changed, promote only better models."""

    demo: bool = Field(False, description="build the demo fleet into the local stores if missing")


class ScoreOptions(Options):
    """Score every meter of a Parquet dataset with a registered model, in meter blocks (here or
    on a Dask cluster); write one Parquet file per block."""

    model_uri: str = Field(
        "",
        description="model, e.g. models:/meterflow-forecasting@champion ('' = the forecasting "
        "champion)",
    )
    readings: str = Field(
        "",
        description="Parquet file or folder with meter_id: long readings (meter_id, timestamp, "
        "value) or the profiles table",
    )
    out: str = Field("", description="new or empty output folder ('' = <data dir>/scores/<run>)")
    block_meters: int = Field(
        defaults.BLOCK_METERS, gt=0, description="meters per predict call (memory follows it)"
    )
    dask_scheduler: DaskScheduler = Field(
        "", description="Dask scheduler scoring the blocks (tcp://host:8786; '' = here)"
    )

    @field_validator("readings")
    @classmethod
    def _readings(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("give the Parquet file or folder to score")
        return v.strip()


def choices(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """The allowed values of an option with a fixed set of choices (empty tuple otherwise)."""
    from typing import get_args, get_origin

    field = model.model_fields[name]
    for meta in field.metadata:
        if isinstance(getattr(meta, "func", None), OneOf):
            return meta.func.choices()
    if get_origin(field.annotation) is Literal:
        return tuple(str(v) for v in get_args(field.annotation))
    return ()


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
