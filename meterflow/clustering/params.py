"""The user-facing parameters of the clustering step, declared once (the LSTM autoencoder takes
its default epochs from here)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from meterflow.params import OneOf, Params, Seed, Threads
from meterflow.profiles.params import HarmonizationParams, check_window_fraction, normalizations


def cluster_models() -> tuple[str, ...]:
    from meterflow.clustering.registry import AUTO_MODEL, algorithm_names

    return (*algorithm_names(), AUTO_MODEL)


def distance_metrics() -> tuple[str, ...]:
    from meterflow.clustering.registry import DISTANCE_METRICS

    return tuple(DISTANCE_METRICS)


class ClusteringParams(Params):
    """How daily load profiles are clustered and k chosen."""

    model: Annotated[str, AfterValidator(OneOf(cluster_models))] = Field(
        "kmedoids",
        description="clustering algorithm (default: the best mean ARI on the public development "
        "sets, benchmarks/clustering_defaults.py)",
    )
    distance_metric: Annotated[str, AfterValidator(OneOf(distance_metrics))] = Field(
        "ddtw", description="distance between profiles (ddtw: DTW of the slopes)"
    )
    number_of_clusters: int = Field(0, ge=0, description="k; 0 = choose by silhouette")
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
    dtw_window: float = Field(
        -1.0,
        ge=-1,
        description="DTW window as a fraction of the day (-1 = the harmonization run's; for "
        f"in_profiles {HarmonizationParams.default('dtw_window')}; 0 = unconstrained)",
    )
    normalize: Annotated[str, AfterValidator(OneOf(normalizations))] = Field(
        "none",
        description="per-profile normalisation before clustering (k-Shape always uses zscore)",
    )
    max_profiles: int = Field(
        10_000, gt=1, description="profiles the model is fitted on (all are assigned)"
    )
    som_grid: str = Field("", description="SOM grid 'MxN' ('' = k x 1)")
    prosumers: Literal["include", "exclude", "only"] = Field(
        "include", description="meters with PV production (production_kw > 0)"
    )
    epochs: int = Field(30, gt=0, description="LSTM-autoencoder epochs")
    meter_level: Literal["rhythm", "week", "off"] = Field(
        "rhythm",
        description="also cluster meters on their typical weekday and weekend day: on the "
        "weekday-weekend contrast (rhythm, PV-free), on both days (week), or not (off)",
    )
    threads: Threads
    seed: Seed

    @field_validator("dtw_window", mode="before")
    @classmethod
    def _dtw_window(cls, v: object) -> object:
        return check_window_fraction(v, "dtw_window")

    @model_validator(mode="after")
    def _check_clustering(self) -> ClusteringParams:
        if -1 < self.dtw_window < 0:
            raise ValueError(f"dtw_window must be -1 or in [0, 1], got {self.dtw_window}")
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) > k_max ({self.k_max})")
        if self.som_grid and not re.fullmatch(r"\d+x\d+", self.som_grid):
            raise ValueError(f"som_grid must look like 3x4, got {self.som_grid!r}")
        return self
