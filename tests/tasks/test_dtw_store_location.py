"""The DTW matrix is found where the harmonization run wrote it: a run with a non-default
``dtw_cache_dir`` records its store, and clustering on that run reopens the same store and
computes no DTW pair (real MLflow tracking server, real on-disk cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow import tracking
from meterflow.domain import SOURCE_SQL
from meterflow.schemas import Table, slot_columns
from meterflow.settings import (
    ClusteringOptions,
    Environment,
    EtlSqlOptions,
    HarmonizationOptions,
)
from meterflow.sources import dtw_cache
from meterflow.sources.dtw_store import TAG_LOCATION, TAG_STORE
from meterflow.tasks.clustering import run_clustering
from meterflow.tasks.harmonization import run_harmonization

METERS, DAYS = 6, 8


def etl_run() -> str:
    """An etl_sql run holding a small fleet's profiles (two shapes of daily load) and meters."""
    rng = np.random.default_rng(5)
    hours = np.arange(24)
    rows = []
    for m in range(METERS):
        peak = 8 if m % 2 else 19
        for d in range(DAYS):
            load = 100 + 400 * np.exp(-((hours - peak) ** 2) / 6) + rng.gamma(2.0, 5.0, 24)
            rows.append([f"M{m}", pd.Timestamp("2024-03-01") + pd.Timedelta(days=d), *load])
    profiles = pd.DataFrame(rows, columns=["meter_id", "date", *slot_columns(24)])
    profiles.insert(2, "source", SOURCE_SQL)
    meters = pd.DataFrame(
        {
            "meter_id": [f"M{m}" for m in range(METERS)],
            "contractual_power_kw": 10.0,
            "production_kw": 0.0,
            "type": ["commercial" if m % 2 else "household" for m in range(METERS)],
            "latitude": 50.0,
            "longitude": 4.0,
        }
    )
    with tracking.step_run("etl_sql", EtlSqlOptions()) as run:
        run.log_table(profiles, Table.PROFILES)
        run.log_table(meters, Table.METERS)
        return run.run_id


@pytest.mark.usefixtures("tracking")
def test_clustering_reuses_the_matrix_of_a_non_default_cache_folder(
    tracking_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    env = Environment(
        data_dir=tmp_path / "data",
        sql_url=f"sqlite:///{tmp_path / 'historian.db'}",
        mongodb_uri=None,
        mongo_database="unused",
        experiment="dtw-store",
        tracking_uri=tracking_server,
    )
    computed: list[int] = []
    compute_rows, recycle = dtw_cache._compute_rows, dtw_cache.recycle_pairs

    def counted(compute, xm, start, stop, *rest):
        computed.append(stop - start)
        return compute_rows(compute, xm, start, stop, *rest)

    def counted_recycle(*args):
        computed.append(-1)
        return recycle(*args)

    monkeypatch.setattr(dtw_cache, "_compute_rows", counted)
    monkeypatch.setattr(dtw_cache, "recycle_pairs", counted_recycle)
    elsewhere = tmp_path / "elsewhere"
    opts = HarmonizationOptions(etl_runs=etl_run(), dtw_cache_dir=str(elsewhere), dtw_window=0.05)
    harmonized = run_harmonization(opts, env)
    assert sum(computed) == METERS * DAYS  # the whole matrix, once
    assert tracking_tags(harmonized) == ("disk", str(elsewhere.resolve()))
    computed.clear()
    clustered = run_clustering(
        ClusteringOptions(
            profiles_run=harmonized,
            model="kmedoids",
            distance_metric="dtw",
            number_of_clusters=2,
            normalize="none",  # the profiles as harmonized: the harmonization's matrix serves
        ),
        env,
    )
    assert computed == []  # no DTW row computed: the matrix was found where it was written
    assert not env.dtw_cache_dir.exists()  # and the environment's default folder never used
    assert tracking.run_metrics(clustered)["k"] == 2


def tracking_tags(run_id: str) -> tuple[str | None, str | None]:
    return tracking.run_tag(run_id, TAG_STORE), tracking.run_tag(run_id, TAG_LOCATION)
