"""The score a clustering model gets on held-out profiles, which promotion compares a new model
and the champion on: the silhouette of the profiles under the labels the model gives them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from meterflow.schemas import profile_slot_columns

SILHOUETTE_SAMPLE = 2000  # profiles the silhouette is computed on, at most


def cluster_labels(output: np.ndarray | pd.DataFrame | pd.Series) -> np.ndarray:
    """The cluster index of each row from a clustering model's ``predict`` output: its
    ``cluster`` column (models that also name the clusters, ``cluster_name``), else the
    output's only column or values (models logged before names existed)."""
    if isinstance(output, pd.DataFrame) and "cluster" in output.columns:
        return output["cluster"].to_numpy()
    return np.asarray(output).reshape(-1)


def holdout_silhouette(holdout: pd.DataFrame, labels: np.ndarray | pd.DataFrame) -> float:
    """Silhouette of the ``holdout`` profiles (their ``slot_*`` columns) under ``labels`` (the
    model's ``predict`` of them, see :func:`cluster_labels`); NaN for a single cluster or one
    cluster per profile."""
    labels = cluster_labels(labels)
    n_clusters = len(np.unique(labels))
    if n_clusters < 2 or n_clusters >= len(labels):
        return math.nan
    values = holdout[profile_slot_columns(holdout)].to_numpy(dtype=float)
    size = min(SILHOUETTE_SAMPLE, len(values))
    return float(silhouette_score(values, labels, sample_size=size, random_state=0))
