"""One options model per step entry point: the step's parameters, declared once in its pure
package (``meterflow.<package>.params``), plus the fields only the entry point has (its inputs:
run ids, files, the Dask scheduler)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from meterflow import defaults, domain
from meterflow.anomaly.params import AnomalyParams
from meterflow.clustering.params import ClusteringParams
from meterflow.errors import ConfigError
from meterflow.etl.params import CleaningParams
from meterflow.forecasting.params import ForecastingParams
from meterflow.params import OneOf, Timezone, check_date, column_names
from meterflow.profiles.params import HarmonizationParams
from meterflow.settings.shared import (
    DaskScheduler,
    Fingerprint,
    HistorianTimezone,
    Options,
    RunId,
    UtcTime,
)
from meterflow.sources import formats


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


class EtlNewMongoOptions(Options, CleaningParams):
    """Clean the documents of a load_newmongo run into daily profiles."""

    raw_run: str = Field("", description="load_newmongo run id ('' = latest finished)")


class EtlSqlOptions(Options, CleaningParams):
    """Read the SQL historian and clean it into daily profiles."""

    table: str = Field(formats.HISTORIAN_TABLE, description="historian table")
    start: UtcTime = Field("", description="inclusive ISO UTC start ('' = all)")
    end: UtcTime = Field("", description="exclusive ISO UTC end ('' = all)")
    chunk_size: int = Field(500_000, gt=0, description="rows per chunk")
    historian_timezone: HistorianTimezone
    source_fingerprint: Fingerprint


class EtlOldMongoOptions(Options, CleaningParams):
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


def _source_names() -> tuple[str, ...]:
    return tuple(domain.SOURCE_ADAPTERS)


class EtlSourceOptions(Options, CleaningParams):
    """Read any registered source (``domain.SOURCE_ADAPTERS``) and clean it into daily profiles:
    the ETL of a source that has no dedicated entry point."""

    source: Annotated[str, AfterValidator(OneOf(_source_names))] = Field(
        "", description="the registered source to read"
    )
    reference_run: str = Field(
        "", description="ETL run whose profiles anchor the scale detection ('' = none)"
    )
    source_fingerprint: Fingerprint


class HarmonizationOptions(Options, HarmonizationParams):
    """Merge the ETL runs into one profile table and update the cached DTW matrix."""

    etl_runs: str = Field("", description="comma-separated ETL run ids ('' = latest of each)")
    previous_run: str = Field(
        "", description="harmonization run whose meter-days are carried over ('' = none)"
    )
    dtw_cache_dir: str = Field("", description="DTW cache folder ('' = <data dir>/cache/dtw)")
    dask_scheduler: DaskScheduler


class ClusteringOptions(Options, ClusteringParams):
    """Cluster daily load profiles, validate, log a model."""

    profiles_run: RunId
    in_profiles: str = Field("", description="CSV/Parquet profile table instead of a run")
    id_column: str = Field(
        "", description="id column of in_profiles ('' = id, meter_id or the first text column)"
    )
    date_column: str = Field("date", description="date column of in_profiles ('' = none)")
    label_column: str = Field("", description="label column of in_profiles ('' = none)")
    dask_scheduler: DaskScheduler

    @model_validator(mode="after")
    def _check_inputs(self) -> ClusteringOptions:
        if self.in_profiles and self.profiles_run:
            raise ValueError("give either in_profiles or profiles_run, not both")
        if self.in_profiles and self.prosumers != "include":
            raise ValueError(
                "prosumers=exclude/only needs the meter table of a harmonization run, "
                "not in_profiles"
            )
        return self


TestStart = Annotated[
    str,
    AfterValidator(check_date),
    Field("", description="first test day YYYY-MM-DD ('' = the most recent 20 % of days)"),
]


class ForecastingOptions(Options, ForecastingParams):
    """Forecast load day-ahead (each meter, cluster total or fleet total, or any series file);
    compare with baselines on a chronological test split."""

    profiles_run: RunId
    in_series: str = Field(
        "", description="CSV/Parquet series (timestamp, value[, meter_id, inputs...]) instead"
    )
    test_start: TestStart
    clustering_run: str = Field(
        "", description="clustering run of scope=cluster ('' = latest finished)"
    )
    ignore_columns: str = Field(
        "", description="extra columns of in_series that are not model inputs (e.g. label)"
    )
    dask_scheduler: DaskScheduler

    @model_validator(mode="after")
    def _check_inputs(self) -> ForecastingOptions:
        if self.in_series and self.profiles_run:
            raise ValueError("give either in_series or profiles_run, not both")
        if self.in_series and self.scope == "cluster":
            raise ValueError("scope=cluster needs a harmonization run's meters, not in_series")
        if _needs_locations(self.model, column_names(self.candidates)) and (
            self.scope != "meter" or self.in_series
        ):
            raise ValueError(
                f"model {self.model} needs scope=meter on a harmonization run (its meter map)"
            )
        return self


def _needs_locations(model: str, candidates: tuple[str, ...] = ()) -> bool:
    """Whether ``model`` (``auto``: one of ``candidates``) needs the meters' map (registry)."""
    from meterflow.forecasting.registry import needs_locations

    return needs_locations(model, candidates)


class AnomalyOptions(Options, AnomalyParams):
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
    test_start: TestStart
    write_alerts: bool = Field(True, description="write alerts to the SQL and Mongo stores")
    dask_scheduler: DaskScheduler

    @model_validator(mode="after")
    def _check_inputs(self) -> AnomalyOptions:
        if self.in_series and self.profiles_run:
            raise ValueError("give either in_series or profiles_run, not both")
        if self.in_series and _needs_locations(self.forecast_model):
            raise ValueError(
                f"forecast_model={self.forecast_model} needs a harmonization run's meter map"
            )
        return self


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


# The pipeline's children, by entry point.
STEP_OPTIONS: dict[str, type[Options]] = {
    "load_newmongo": LoadNewMongoOptions,
    "etl_newmongo": EtlNewMongoOptions,
    "etl_sql": EtlSqlOptions,
    "etl_oldmongo": EtlOldMongoOptions,
    "harmonization": HarmonizationOptions,
    "clustering": ClusteringOptions,
    "forecasting": ForecastingOptions,
    "anomaly": AnomalyOptions,
}


def source_of_generic_etl(step: str) -> str | None:
    """The source whose ETL step ``step`` is (``etl_<name>``) when it has no dedicated options
    (it runs through :class:`EtlSourceOptions`); None otherwise."""
    name = step.removeprefix("etl_")
    generic = step not in STEP_OPTIONS and step.startswith("etl_")
    return name if generic and name in domain.SOURCE_ADAPTERS else None


def step_options_class(step: str) -> type[Options]:
    """The options of the pipeline's child ``step``."""
    if step in STEP_OPTIONS:
        return STEP_OPTIONS[step]
    if source_of_generic_etl(step):
        return EtlSourceOptions
    raise ConfigError(f"no options for step {step!r}")
