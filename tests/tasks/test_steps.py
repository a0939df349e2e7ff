"""The MLflow steps (tasks) on a small demo fleet in real stores, tracked by a real MLflow
server: incremental MongoDB loads, carry-over harmonization, every clustering algorithm with its
reloadable model, a labelled external profile file, the hybrid forecaster and the detector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pymongo
import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from meterflow import tracking
from meterflow.clustering.auto import AUTO_CANDIDATES
from meterflow.demo import DemoSpec
from meterflow.errors import SchemaError, SourceError
from meterflow.orchestration.decision import holdout_score
from meterflow.orchestration.registry import promote_step
from meterflow.settings import (
    AnomalyOptions,
    ClusteringOptions,
    Environment,
    EtlNewMongoOptions,
    EtlOldMongoOptions,
    EtlSqlOptions,
    ForecastingOptions,
    HarmonizationOptions,
    LoadNewMongoOptions,
)
from meterflow.sources.formats import MONGO_COLLECTION
from meterflow.tasks.anomaly import run_anomaly
from meterflow.tasks.clustering import run_clustering
from meterflow.tasks.etl import run_etl_newmongo, run_etl_oldmongo, run_etl_sql
from meterflow.tasks.forecasting import run_forecasting
from meterflow.tasks.harmonization import run_harmonization
from meterflow.tasks.newmongo import run_load_newmongo
from tests.conftest import subprocess_env
from tests.tasks.conftest import demo_environment

pytestmark = pytest.mark.slow  # end to end through MLflow: `pytest -m 'not slow'` skips

SPEC = DemoSpec(n_meters=12, history_days=60, mongo_days=6, seed=11)


@pytest.fixture(scope="module")
def env(tmp_path_factory, mongo_uri, tracking_server) -> Iterator[Environment]:
    root = tmp_path_factory.mktemp("steps")
    with demo_environment(root, mongo_uri, tracking_server, SPEC, "steps") as env:
        yield env


def metrics(run_id: str) -> dict[str, float]:
    return mlflow.get_run(run_id).data.metrics


@pytest.fixture(scope="module")
def chain(env) -> dict[str, str]:
    """load -> the three ETLs -> harmonization, as the pipeline chains them."""
    ids = {"load": run_load_newmongo(LoadNewMongoOptions(since="watermark"), env)}
    ids["etl_newmongo"] = run_etl_newmongo(EtlNewMongoOptions(raw_run=ids["load"]), env)
    ids["etl_sql"] = run_etl_sql(EtlSqlOptions(), env)
    ids["etl_oldmongo"] = run_etl_oldmongo(EtlOldMongoOptions(reference_run=ids["etl_sql"]), env)
    etl = ",".join(ids[k] for k in ("etl_newmongo", "etl_sql", "etl_oldmongo"))
    ids["harmonization"] = run_harmonization(
        HarmonizationOptions(etl_runs=etl, dtw_max_profiles=400, dtw_window=0.2), env
    )
    return ids


def test_etl_steps_log_reconciled_counts_and_the_quarantine(chain):
    for step in ("etl_newmongo", "etl_sql", "etl_oldmongo"):
        m = metrics(chain[step])
        assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"]
        quarantine = tracking.load_table(chain[step], "quarantine")
        dropped = quarantine[quarantine["action"] == "dropped"]
        assert len(dropped) == m["readings_quarantined"] > 0
        assert {"meter_id", "timestamp", "original_value", "action", "reason"} <= set(quarantine)
    scale = tracking.load_table(chain["etl_oldmongo"], "scale_corrections")
    assert len(scale) > 0 and metrics(chain["etl_oldmongo"])["scale_corrections"] == len(scale)


def test_incremental_mongo_load_reads_only_new_documents(env, chain):
    first = mlflow.get_run(chain["load"])
    watermark = pd.Timestamp(first.data.tags["meterflow.watermark"])
    tz = "Europe/Rome"
    new_day = watermark.tz_convert(tz).normalize() + pd.Timedelta(days=1)  # local midnight
    # reads every 15 min up to the end of the next complete local day, registers going on
    reads = pd.date_range(
        watermark + pd.Timedelta(minutes=15),
        (new_day + pd.Timedelta(days=1)).tz_convert("UTC"),
        freq="15min",
    )
    with pymongo.MongoClient(env.mongodb_uri) as client:
        coll = client[env.mongo_database][MONGO_COLLECTION]
        last = pd.DataFrame(list(coll.find({"ts": watermark.tz_localize(None).to_pydatetime()})))
        assert len(last) == SPEC.n_meters
        new = [
            {
                "meter_id": doc["meter_id"],
                "ts": ts.tz_localize(None).to_pydatetime(),
                "import_kwh": doc["import_kwh"] + 0.1 * (k + 1),
                "export_kwh": doc["export_kwh"],
                "voltage_v": 230.0,
                "current_a": 1.0,
                "power_w": 400.0,
            }
            for k, ts in enumerate(reads)
            for _, doc in last.iterrows()
        ]
        coll.insert_many(new)
    second = run_load_newmongo(LoadNewMongoOptions(since="watermark"), env)
    run = mlflow.get_run(second)
    assert pd.Timestamp(run.data.tags["meterflow.since"]) == watermark
    assert run.data.metrics["documents"] == len(new)
    assert pd.Timestamp(run.data.tags["meterflow.watermark"]) == reads[-1]
    etl = run_etl_newmongo(EtlNewMongoOptions(raw_run=second), env)
    m = metrics(etl)
    assert m["readings_in"] == 2 * len(new)  # import and export register of each document
    assert m["readings_quarantined"] == 0
    profiles = tracking.load_table(etl, "profiles")
    day = profiles[profiles["date"] == new_day.tz_localize(None)]
    assert len(day) == SPEC.n_meters
    assert np.allclose(day.filter(like="slot_").sum(axis=1), 100.0 * 96)  # 0.1 kWh per read
    # a third load with nothing new loads nothing
    third = run_load_newmongo(LoadNewMongoOptions(since="watermark"), env)
    assert metrics(third)["documents"] == 0


def test_harmonization_carries_over_previous_meter_days(env, chain):
    previous = tracking.load_table(chain["harmonization"], "profiles")
    only_sql = run_harmonization(
        HarmonizationOptions(
            etl_runs=chain["etl_sql"], previous_run=chain["harmonization"], compute_dtw=False
        ),
        env,
    )
    merged = tracking.load_table(only_sql, "profiles")
    assert len(merged) == len(previous)
    keys = ["meter_id", "date"]
    assert (
        merged.set_index(keys)
        .index.sort_values()
        .equals(previous.set_index(keys).index.sort_values())
    )
    assert metrics(only_sql)["carried_over_meter_days"] > 0


def cache_matrix(folder: Path) -> tuple[bytes, dict]:
    """The one matrix file of a DTW cache and its manifest."""
    (sub,) = [p for p in folder.iterdir() if p.is_dir()]
    manifest = json.loads((sub / "manifest.json").read_text())
    return (sub / manifest["file"]).read_bytes(), manifest


def test_harmonization_on_a_dask_cluster_writes_identical_bytes(env, chain, tmp_path):
    """The DTW rows computed on a Dask cluster (given by address, like a real one) land in the
    same cache, byte for byte what local threads write: a first build and an append."""
    from distributed import LocalCluster

    etl = ",".join(chain[k] for k in ("etl_newmongo", "etl_sql", "etl_oldmongo"))

    def harmonize(folder: Path, max_profiles: int, scheduler: str = "") -> str:
        opts = HarmonizationOptions(
            etl_runs=etl,
            dtw_max_profiles=max_profiles,
            dtw_window=0.2,
            dtw_cache_dir=str(folder),
            dask_scheduler=scheduler,
        )
        return run_harmonization(opts, env)

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        for folder in (tmp_path / "local", tmp_path / "dask"):
            address = cluster.scheduler_address if folder.name == "dask" else ""
            harmonize(folder, 250, address)
            grown = harmonize(folder, 400, address)
            assert metrics(grown)["dtw_pairs_computed"] > 0 < metrics(grown)["dtw_pairs_reused"]
    local, dask = cache_matrix(tmp_path / "local"), cache_matrix(tmp_path / "dask")
    assert local[0] == dask[0] and local[1]["key"] == dask[1]["key"]
    assert mlflow.get_run(grown).data.params["dask_scheduler"].startswith("tcp://")


ALGORITHMS = [
    ("kmeans", "euclidean"),
    ("kmeans", "dtw"),
    ("kmedoids", "euclidean"),
    ("kmedoids", "dtw"),
    ("agglomerative", "euclidean"),
    ("agglomerative", "dtw"),
    ("som", "euclidean"),
    ("kshape", "euclidean"),
    ("lstm_autoencoder", "euclidean"),
]


@pytest.fixture(scope="module")
def clustered(env, chain) -> dict[tuple[str, str], str]:
    runs = {}
    for model, metric in ALGORITHMS:
        runs[(model, metric)] = run_clustering(
            ClusteringOptions(
                profiles_run=chain["harmonization"],
                model=model,
                distance_metric=metric,
                number_of_clusters=3,
                epochs=5,
            ),
            env,
        )
    return runs


@pytest.mark.parametrize(("model", "metric"), ALGORITHMS)
def test_each_algorithm_on_demo_profiles_beats_chance(clustered, model, metric):
    m = metrics(clustered[(model, metric)])
    for name in ("davies_bouldin", "silhouette", "silhouette_dtw", "peak_match", "ari", "nmi"):
        assert np.isfinite(m[name]), name
    assert m["k"] == 3 and len(m) <= tracking.MAX_METRIC_KEYS
    # meter types (household / commercial / agricultural) are recovered better than chance
    assert m["ari"] > 0.02, m["ari"]
    centers = tracking.load_table(clustered[(model, metric)], "centers")
    assert centers["cluster_name"].is_unique and centers["cluster_name"].str.len().gt(0).all()


def test_clustering_uses_the_dtw_window_of_its_harmonization_run(env, chain, clustered):
    """The harmonization run cached its matrix with window 0.2 of the day (band 5 of 24
    slots); clustering reads that window instead of its own default and computes no matrix
    for another window."""
    used = mlflow.get_run(clustered[("kmedoids", "dtw")]).data.params
    harmonized = mlflow.get_run(chain["harmonization"]).data.params
    assert used["dtw_window_used"] == harmonized["dtw_window"] == "0.2"
    assert used["dtw_window_slots_used"] == harmonized["dtw_window_slots"] == "5"
    windows = {p.name.split("-")[1] for p in env.dtw_cache_dir.iterdir() if p.is_dir()}
    assert windows == {"w5"}


@pytest.mark.parametrize(("which", "metric"), [("exclude", "dtw"), ("only", "euclidean")])
def test_prosumer_filter_clusters_only_the_chosen_meters(env, chain, which, metric):
    meters = tracking.load_table(chain["harmonization"], "meters")
    profiles = tracking.load_table(chain["harmonization"], "normalized_profiles")
    pv = set(meters.loc[meters["production_kw"] > 0, "meter_id"])
    expected = profiles["meter_id"].isin(pv) == (which == "only")
    run_id = run_clustering(
        ClusteringOptions(
            profiles_run=chain["harmonization"],
            model="kmedoids",
            distance_metric=metric,
            number_of_clusters=2,
            prosumers=which,
        ),
        env,
    )
    assigned = tracking.load_table(run_id, "assignments")
    assert len(assigned) == expected.sum() > 0
    assert (assigned["meter_id"].isin(pv) == (which == "only")).all()
    m = metrics(run_id)
    assert m["profiles"] == expected.sum()
    assert np.isfinite(m["silhouette_dtw"])


def test_prosumer_filter_needs_a_meter_table(tmp_path):
    with pytest.raises(ValueError, match="prosumers=exclude/only needs the meter table"):
        ClusteringOptions(in_profiles=str(tmp_path / "p.csv"), prosumers="exclude")


def test_every_clustering_model_reloads_in_a_fresh_process(env, chain, clustered):
    profiles = tracking.load_table(chain["harmonization"], "normalized_profiles")
    slots = [c for c in profiles.columns if c.startswith("slot_")]
    sample = profiles[slots].iloc[::7].reset_index(drop=True)
    path = env.data_dir / "sample.parquet"
    sample.to_parquet(path)
    uris = {
        f"{m}/{d}": tracking.logged_model_uri(rid, "clustering")
        for (m, d), rid in clustered.items()
    }
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "x = pd.read_parquet(sys.argv[2])\n"
        "out = {k: mlflow.pyfunc.load_model(u).predict(x).to_dict('list')"
        " for k, u in json.loads(sys.argv[1]).items()}\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, json.dumps(uris), str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=subprocess_env(MLFLOW_TRACKING_URI=mlflow.get_tracking_uri()),
    )
    assert res.returncode == 0, res.stderr[-4000:]
    fresh = json.loads(res.stdout.strip().splitlines()[-1])
    for (model, metric), run_id in clustered.items():
        assigned = tracking.load_table(run_id, "assignments").iloc[::7]
        got = fresh[f"{model}/{metric}"]
        assert got["cluster"] == assigned["cluster"].tolist(), (model, metric)
        assert got["cluster_name"] == assigned["cluster_name"].tolist(), (model, metric)


def test_labelled_96_slot_file_and_automatic_k(env, tmp_path):
    rng = np.random.default_rng(3)
    hours = np.arange(96) / 4
    shapes = {
        "evening": np.exp(-((hours - 19) ** 2) / 4),
        "office": ((hours > 8) & (hours < 18)).astype(float),
        "night": np.exp(-((hours - 2) ** 2) / 6),
    }
    rows = []
    for label, shape in shapes.items():
        for i in range(40):
            shift = rng.integers(-2, 3)
            values = np.roll(shape, shift) + rng.normal(0, 0.05, 96)
            rows.append(
                {"id": f"{label}-{i}", "label": label, **{f"h{j}": v for j, v in enumerate(values)}}
            )
    path = tmp_path / "profiles.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(SourceError, match="'label' looks like a label"):  # forgot label_column
        run_clustering(ClusteringOptions(in_profiles=str(path), date_column=""), env)
    run_id = run_clustering(
        ClusteringOptions(
            in_profiles=str(path),
            date_column="",
            label_column="label",
            model="kmeans",
            distance_metric="euclidean",
            number_of_clusters=0,
            k_max=6,
            max_profiles=60,
        ),
        env,
    )
    m = metrics(run_id)
    assert m["k"] == 3 and m["profiles_fitted"] == 60 and m["profiles"] == 120
    assert m["ari"] > 0.9 and m["nmi"] > 0.9 and m["rand_index"] > 0.9  # every assigned row
    scores = tracking.load_table(run_id, "validation").set_index("metric")
    assert scores.loc["ari_fitted", "value"] > 0.9  # the fitted sample alone
    assert scores.loc["ari_fitted", "rows"] == "fitted" and scores.loc["ari", "rows"] == "all"
    assert "silhouette_dtw" not in m  # no DTW matrix for a Euclidean run on a file
    k_table = tracking.load_table(run_id, "k_selection")
    assert list(k_table["k"]) == [2, 3, 4, 5, 6]
    # each shape is named for what it is, in every table and in the model's output
    centers = tracking.load_table(run_id, "centers")
    assert set(centers["cluster_name"]) == {"evening peak", "daytime plateau", "night load"}
    run = mlflow.get_run(run_id)
    assert run.info.run_name == "clustering kmeans euclidean k=3 (silhouette)"
    assert run.data.tags["mlflow.note.content"].startswith("**3 clusters: ")
    # the logged model takes the very file it was trained on, and slot_NN columns
    uri = tracking.logged_model_uri(run_id, "clustering")
    model = mlflow.pyfunc.load_model(uri)
    inputs = model.metadata.get_input_schema().input_names()
    assert inputs[:2] == ["h0", "h1"] and "slot_95" in inputs
    assert model.metadata.get_output_schema().input_names() == ["cluster", "cluster_name"]
    assigned = tracking.load_table(run_id, "assignments")
    table = pd.read_csv(path)
    out = model.predict(table)
    np.testing.assert_array_equal(out["cluster"], assigned["cluster"])
    np.testing.assert_array_equal(out["cluster_name"], assigned["cluster_name"])
    values = table.drop(columns=["id", "label"]).to_numpy()
    slots = pd.DataFrame(values, columns=[f"slot_{j:02d}" for j in range(96)])
    np.testing.assert_array_equal(model.predict(slots)["cluster"], assigned["cluster"])
    predictor = model.unwrap_python_model().predictor  # plain arrays: the predictor itself
    np.testing.assert_array_equal(predictor.predict(values)["cluster"], assigned["cluster"])


def test_meters_are_clustered_on_their_typical_days_beside_the_days(env, chain):
    run_id = run_clustering(
        ClusteringOptions(profiles_run=chain["harmonization"], number_of_clusters=3), env
    )
    meters = tracking.load_table(chain["harmonization"], "meters")
    clusters = tracking.load_table(run_id, "meter_clusters")
    assert sorted(clusters["meter_id"]) == sorted(meters["meter_id"])  # one row per meter
    assert {"cluster", "cluster_name", "meter_type", "prosumer"} <= set(clusters.columns)
    table = tracking.load_table(run_id, "meter_composition")
    types = sorted(meters["type"].unique())
    assert table["meters"].sum() == len(meters)
    assert (table[types].sum(axis=1) == table["meters"]).all()
    assert table["prosumer_share"].between(0, 1).all()
    m = metrics(run_id)
    assert m["meter_k"] == len(table) and -1 <= m["meter_ari"] <= 1
    assert m["k"] == 3 and len(m) <= tracking.MAX_METRIC_KEYS  # the day level is unchanged
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id, "figures")}
    assert "figures/meter_level_clusters.png" in artifacts
    note = mlflow.get_run(run_id).data.tags["mlflow.note.content"]
    assert f"- **Meters:** {len(meters)} meters clustered on their typical weekday" in note
    off = run_clustering(
        ClusteringOptions(
            profiles_run=chain["harmonization"], number_of_clusters=3, meter_level="off"
        ),
        env,
    )
    assert "meter_k" not in metrics(off)


def test_auto_tries_every_candidate_as_a_child_run(env, chain):
    run_id = run_clustering(
        ClusteringOptions(profiles_run=chain["harmonization"], model="auto", number_of_clusters=3),
        env,
    )
    table = tracking.load_table(run_id, "auto_candidates")
    assert table["candidate"].tolist() == [c.name for c in AUTO_CANDIDATES]  # k given: one each
    assert table["chosen"].sum() == 1 and np.isfinite(table["ari"]).all()  # meter types known
    chosen = table.loc[table["chosen"], "candidate"].item()
    assert table.loc[table["chosen"], "proposed"].item()
    run = mlflow.get_run(run_id)
    assert run.data.tags["clustering.auto_choice"] == chosen
    assert chosen.startswith(run.data.params["algo.model"])
    children = MlflowClient().search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
    )
    assert sorted(c.info.run_name for c in children) == sorted(
        f"candidate {c.name}" for c in AUTO_CANDIDATES
    )
    assert all({"silhouette_gap", "consensus"} <= set(c.data.metrics) for c in children)
    structures = tracking.load_table(run_id, "auto_structures")
    assert structures.loc[0, "configuration"] == chosen
    assert structures["rank"].tolist() == list(range(1, len(structures) + 1))
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id, "figures")}
    assert "figures/auto_structures.png" in artifacts


def test_hybrid_forecaster_against_baselines(env, chain):
    run_id = run_forecasting(
        ForecastingOptions(profiles_run=chain["harmonization"], model="hybrid", epochs=2), env
    )
    m = metrics(run_id)
    for name in ("test_mae", "test_mape", "best_baseline_test_mae", "best_baseline_test_mape"):
        assert np.isfinite(m[name]) and m[name] >= 0, name
    candidates = tracking.load_table(run_id, "candidates").set_index("candidate")
    for name in ("persistence", "seasonal_naive_week", "dshw"):
        assert np.isfinite(candidates.loc[name, ["test_mae", "test_mape"]]).all(), name
    by_step = tracking.load_table(run_id, "error_by_step").query("model == 'hybrid'")
    assert np.isfinite(by_step.loc[by_step["step"] == 24, "mape"]).all()
    predictions = tracking.load_table(run_id, "test_predictions")
    assert sorted(predictions["step"].unique()) == list(range(1, 25))  # day-ahead at 60 min
    assert_keras_network_is_the_models(run_id)


def _reloaded_matches_logged(run_id: str) -> pd.DataFrame:
    """The run's model and candidates, reloaded, forecast held-out rows (raw readings, as
    promotion sends them): every target of each forecast, quantiles in order."""
    holdout = tracking.load_table(run_id, "holdout")
    truth = tracking.load_table(run_id, "holdout_truth")
    ids = holdout["forecast_id"].unique()[:12]
    rows = holdout.loc[holdout["forecast_id"].isin(ids)]
    out = mlflow.pyfunc.load_model(tracking.logged_model_uri(run_id, "forecasting")).predict(rows)
    joined = truth.merge(out, on=["forecast_id", "target_time"])
    assert len(joined) == truth["forecast_id"].isin(ids).sum() == len(out)
    assert np.isfinite(joined[["prediction", "q10", "q90"]]).all().all()
    assert (out["q10"] <= out["prediction"]).all() and (out["prediction"] <= out["q90"]).all()
    candidates = mlflow.pyfunc.load_model(f"runs:/{run_id}/forecaster_candidates").predict(rows)
    assert len(candidates) == len(out) and "seasonal_naive_week" in candidates
    return out


def test_fleet_and_cluster_scopes(env, chain, clustered):
    fleet = run_forecasting(
        ForecastingOptions(profiles_run=chain["harmonization"], scope="fleet", epochs=2), env
    )
    m = metrics(fleet)
    assert m["n_series"] == 1 and m["test_coverage"] > 0
    _reloaded_matches_logged(fleet)
    k_means = clustered[("kmeans", "euclidean")]
    options = ForecastingOptions(
        profiles_run=chain["harmonization"], scope="cluster", clustering_run=k_means, epochs=1
    )
    run_id = run_forecasting(options, env)
    m = metrics(run_id)
    groups = tracking.load_table(run_id, "forecast_groups")
    assignments = tracking.load_table(k_means, "assignments")
    assert len(groups) == assignments["cluster"].nunique() == m["n_series"]  # a model each
    assert np.isfinite(groups["test_mape"]).all() and len(m) <= tracking.MAX_METRIC_KEYS
    _reloaded_matches_logged(run_id)


def test_series_file_with_test_start_and_inputs(env, tmp_path: Path):
    stamps = pd.date_range("2024-01-01", periods=48 * 42, freq="30min")
    slot = np.arange(len(stamps))
    temperature = 10 + 5 * np.sin(2 * np.pi * slot / (48 * 7))
    value = 100 + 30 * np.sin(2 * np.pi * (slot % 48) / 48) - 2 * temperature
    path = tmp_path / "series.csv"
    pd.DataFrame({"timestamp": stamps, "value": value, "temperature": temperature}).to_csv(
        path, index=False
    )
    run_id = run_forecasting(
        ForecastingOptions(in_series=str(path), test_start="2024-02-05", epochs=2), env
    )
    run = mlflow.get_run(run_id)
    assert run.data.tags["forecasting.resolution_min"] == "30"
    assert 48 in set(tracking.load_table(run_id, "error_by_step")["step"])
    predictions = tracking.load_table(run_id, "test_predictions")
    assert predictions["timestamp"].min() >= pd.Timestamp("2024-02-05")
    rows = _reloaded_matches_logged(run_id)
    assert len(rows) % 48 == 0


def test_anomaly_step_scores_labels_and_writes_alerts_back(env, chain):
    labels = env.truth_dir / "anomalies.csv"
    options = AnomalyOptions(
        profiles_run=chain["harmonization"],
        labels=str(labels),
        epochs=2,
        detector="lstm_autoencoder",
        detectors="robust_z",
    )
    run_id = run_anomaly(options, env)
    m = metrics(run_id)
    for name in ("precision", "recall", "f1", "auc_pr", "baseline_f1", "baseline_planted_f1"):
        assert 0 <= m[name] <= 1, name
    splits = tracking.load_table(run_id, "splits").set_index("split")
    assert 0 <= m["planted_f1"] <= 1 and splits.loc["validation copies", "n_label_events"] > 0
    assert splits.loc["labels", "auc_roc"] > 0.5
    scores = tracking.load_table(run_id, "scores")
    assert scores["label"].fillna(False).astype(bool).any()
    assert list(tracking.load_table(run_id, "detectors")["detector"]) == [
        "lstm_autoencoder",
        "robust_z",
    ]
    assert_keras_network_is_the_models(run_id)
    alerts = tracking.load_table(run_id, "alerts")
    assert len(alerts) == m["alerts_raised"] > 0 and (alerts["run_id"] == run_id).all()
    assert_alerts_stored(env, run_id, alerts)
    # the promotion's held-out rows (the planted test copy) score through the reloaded model
    # as in the run: no labels needed
    holdout = tracking.load_table(run_id, "holdout")
    out = mlflow.pyfunc.load_model(tracking.logged_model_uri(run_id, "anomaly")).predict(holdout)
    score = holdout_score("anomaly", holdout, out)
    assert score == pytest.approx(m["planted_f1"], abs=0.02)
    description = mlflow.get_run(run_id).data.tags["mlflow.note.content"]
    assert "lstm_autoencoder" in description and "planted" in description
    # rows of another layout (an older champion's) are a SchemaError, which promotion reports
    other = pd.DataFrame({"meter_id": ["MTR0001"], "window_end": [pd.Timestamp("2024-01-01")]})
    with pytest.raises(SchemaError, match="missing inputs"):
        tracking.predict_with(tracking.logged_model_uri(run_id, "anomaly"), other)


def assert_alerts_stored(env: Environment, run_id: str, alerts: pd.DataFrame) -> None:
    """The run's alerts are in the SQL table and the Mongo collection, once each."""
    engine = sa.create_engine(env.sql_url)
    with engine.connect() as conn:
        stored = pd.read_sql(
            sa.text("SELECT * FROM anomaly_alerts WHERE last_seen_run = :r"),
            conn,
            params={"r": run_id},
        )
    engine.dispose()
    assert set(stored["alert_id"]) <= set(alerts["alert_id"]) | set(stored["alert_id"])
    assert len(stored) == len(alerts) and stored["alert_id"].is_unique
    with pymongo.MongoClient(env.mongodb_uri) as client:
        coll = client[env.mongo_database]["anomaly_alerts"]
        assert coll.count_documents({"last_seen_run": run_id}) == len(alerts)


def test_anomaly_step_runs_on_a_series_file(env, tmp_path: Path):
    stamps = pd.date_range("2024-01-01", periods=24 * 100, freq="h")
    hours = stamps.hour.to_numpy()
    value = (
        500
        + 300 * np.sin(hours / 24 * 2 * np.pi)
        + np.random.default_rng(0).normal(0, 20, len(hours))
    )
    value[24 * 90 : 24 * 95] *= 0.4  # a five-day drop in the test days
    path = tmp_path / "series.csv"
    pd.DataFrame({"timestamp": stamps, "value": value.round(1)}).to_csv(path, index=False)
    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "meter_id": ["series"],
            "kind": ["level_shift"],
            "start_utc": [stamps[24 * 90]],
            "end_utc": [stamps[24 * 95]],
        }
    ).to_csv(labels, index=False)
    options = AnomalyOptions(
        in_series=str(path), labels=str(labels), detector="robust_z", detectors=""
    )
    run_id = run_anomaly(options, env)
    m = metrics(run_id)
    kinds = tracking.load_table(run_id, "kinds").set_index(["split", "kind"])
    assert kinds.loc[("labels", "level_shift"), "event_recall"] == 1.0 and m["precision"] > 0.5
    events = tracking.load_table(run_id, "events")
    assert (events["meter_id"] == "series").all()
    # tomorrow's run over an overlapping window updates the alert instead of adding a copy
    again = run_anomaly(options.model_copy(update={"test_start": "2024-03-28"}), env)
    engine = sa.create_engine(env.sql_url)
    with engine.connect() as conn:
        stored = pd.read_sql(
            sa.text("SELECT * FROM anomaly_alerts WHERE meter_id = 'series'"),
            conn,
            parse_dates=["start", "end"],
        )
    engine.dispose()
    drop = stored.loc[stored["start"] <= stamps[24 * 90 + 12]]
    drop = drop.loc[drop["end"] >= stamps[24 * 90 + 12]]
    assert len(drop) == 1 and stored["alert_id"].is_unique
    assert drop["first_seen_run"].iloc[0] == run_id and drop["last_seen_run"].iloc[0] == again


def assert_keras_network_is_the_models(run_id: str) -> None:
    """The run's ``<family>_network`` is logged with the Keras flavor (plus python_function)
    and, reloaded, predicts what the network inside the step's family pyfunc model predicts."""
    from mlflow.models import Model

    step = mlflow.get_run(run_id).data.tags["mlflow.project.entryPoint"]
    uri = f"runs:/{run_id}/{tracking.model_name(step, 'network')}"
    assert set(Model.load(uri).flavors) == {"keras", "python_function"}
    family = mlflow.pyfunc.load_model(tracking.logged_model_uri(run_id, step))
    predictor = family.unwrap_python_model().predictor
    inputs = predictor.network_example()
    x = inputs[0] if len(inputs) == 1 else inputs
    reloaded = mlflow.keras.load_model(uri).predict_on_batch(x)
    np.testing.assert_allclose(reloaded, predictor.network.predict_on_batch(x), rtol=1e-6)


def test_autoencoder_encoder_is_logged_with_the_keras_flavor(clustered):
    from mlflow.models import Model

    uri = f"runs:/{clustered[('lstm_autoencoder', 'euclidean')]}/clusterer_network"
    assert set(Model.load(uri).flavors) == {"keras", "python_function"}
    encoder = mlflow.keras.load_model(uri)
    assert encoder.output_shape[-1] == 8  # the latent codes k-means clusters


def test_bad_label_file_names_file_and_row(env, chain, tmp_path: Path):
    bad = tmp_path / "labels.csv"
    bad.write_text("meter_id,kind,start_utc,end_utc\nMTR0001,spike,2025-01-01,not-a-time\n")
    with pytest.raises(Exception, match=r"file=.*labels.csv.*row=2"):
        run_anomaly(AnomalyOptions(profiles_run=chain["harmonization"], labels=str(bad)), env)


def test_promotion_champion_then_challenger_and_failed_runs_move_nothing(env, chain):
    """First version: champion. A version that must be far better (margin) stays challenger;
    one that may be worse (negative margin) is promoted. A reused run registers nothing; a run
    that did not finish is refused and leaves the aliases as they were."""
    from meterflow.errors import MeterflowError
    from meterflow.orchestration.registry import promote_models, promote_step

    def forecast(epochs: int) -> str:
        options = ForecastingOptions(profiles_run=chain["harmonization"], epochs=epochs)
        return run_forecasting(options, env)

    first, second, third = forecast(1), forecast(2), forecast(1)
    tracking.configure(env)
    assert promote_step("forecasting", first, 0.0).reason == "first version"
    assert tracking.alias_version("forecasting", tracking.CHAMPION) == "1"
    kept = promote_step("forecasting", second, margin=10.0)
    assert not kept.promote and "does not beat" in kept.reason
    assert tracking.alias_version("forecasting", tracking.CHALLENGER) == "2"
    assert promote_step("forecasting", third, margin=-10.0).promote
    assert tracking.alias_version("forecasting", tracking.CHAMPION) == "3"
    # the champion of the comparison was scored on the challenger's own held-out rows
    assert np.isfinite(kept.champion) and np.isfinite(kept.challenger)
    version = MlflowClient().get_model_version(tracking.registered_name("forecasting"), "2")
    assert version.run_id == second and version.tags["run_id"] == second
    assert mlflow.get_run(second).data.tags["meterflow.promotion"] == "challenger"
    with mlflow.start_run():
        run = tracking.StepRun(mlflow.active_run().info.run_id)
        steps = {s: (third, True) for s in ("clustering", "forecasting", "anomaly")}
        assert promote_models(steps, 0.0, run).empty
    failed = MlflowClient().create_run(mlflow.get_run(first).info.experiment_id)
    MlflowClient().set_terminated(failed.info.run_id, "FAILED")
    with pytest.raises(MeterflowError, match="FAILED"):
        promote_step("forecasting", failed.info.run_id, -10.0)
    assert tracking.alias_version("forecasting", tracking.CHAMPION) == "3"
    champion = mlflow.pyfunc.load_model(tracking.champion_uri("forecasting"))
    holdout = tracking.load_table(third, "holdout")
    one = holdout.loc[holdout["forecast_id"] == holdout["forecast_id"].iloc[0]]
    assert np.isfinite(champion.predict(one)["prediction"]).all()
    registered = MlflowClient().get_model_version(tracking.registered_name("forecasting"), "3")
    assert registered.tags["beats_baselines"] in ("true", "false")
    assert "held-out day-ahead forecasts" in registered.description
    meters, days = holdout["meter_id"].nunique(), holdout["timestamp"].dt.normalize().nunique()
    assert f"of {meters} series" in registered.description and days > 7


def test_the_champion_answers_raw_readings_over_rest(env, chain, tmp_path: Path):
    """``mlflow models serve -m models:/<prefix>-forecasting@champion`` with a payload of raw
    readings (as the README shows it): day-ahead rows back; a bad timestamp is a 400 whose
    message names the meter and row."""
    import json as jsonlib
    import urllib.error
    import urllib.request

    from meterflow.sources.mongo_server import free_port

    run_id = run_forecasting(ForecastingOptions(profiles_run=chain["harmonization"], epochs=1), env)
    tracking.configure(env)
    promote_step("forecasting", run_id, 0.0)
    holdout = tracking.load_table(run_id, "holdout")
    meter = holdout["meter_id"].iloc[0]
    rows = holdout.loc[holdout["forecast_id"] == holdout["forecast_id"].iloc[0]]
    payload = {
        "dataframe_split": {
            "columns": ["meter_id", "timestamp", "value"],
            "data": [
                [meter, str(t), float(v)]
                for t, v in zip(rows["timestamp"], rows["value"], strict=True)
            ],
        }
    }
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                tracking.champion_uri("forecasting"),
                "-p",
                str(port),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=subprocess_env(
                MLFLOW_TRACKING_URI=env.tracking_uri,  # its uvicorn lives beside this python
                PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            ),
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/ping", server, log_path)

        def post(body: dict) -> tuple[int, dict]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations",
                data=jsonlib.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=120) as r:
                    return r.status, jsonlib.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, jsonlib.loads(e.read())

        status, answer = post(payload)
        assert status == 200, answer
        out = pd.DataFrame(answer["predictions"])
        assert len(out) == 24 and set(out["meter_id"]) == {meter}
        assert {"target_time", "prediction", "q10", "q50", "q90"} <= set(out.columns)
        assert pd.to_datetime(out["target_time"]).min() > rows["timestamp"].max()
        payload["dataframe_split"]["data"][5][1] = str(
            rows["timestamp"].iloc[5] + pd.Timedelta(minutes=30)
        )
        status, answer = post(payload)  # MLflow's message is generic; the cause ends the trace
        cause = answer["stack_trace"].strip().splitlines()[-1]
        assert status == 400 and f"row 5 (meter {meter})" in cause and "off the" in cause
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str, proc: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    import time as clock
    import urllib.request

    deadline = clock.monotonic() + seconds
    while clock.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"model server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            clock.sleep(1)
    raise RuntimeError(f"model server did not answer within {seconds} s: {log.read_text()[-3000:]}")


def test_a_champion_whose_files_are_gone_is_replaced_by_the_best_loadable_version(
    env, clustered, tmp_path_factory
):
    """Deleted model files: the champion is reported and the alias moves to the newest version
    that won its promotion and still loads; with none left, the alias is removed."""
    import shutil

    from meterflow.orchestration.registry import repair_champion

    tracking.configure(env)
    first, second, third = list(clustered.values())[:3]
    for run_id, margin in ((first, 0.0), (second, -10.0), (third, 10.0)):
        promote_step("clustering", run_id, margin)
    assert tracking.alias_version("clustering", tracking.CHAMPION) == "2"
    assert repair_champion("clustering") is None  # nothing wrong, nothing done
    artifacts = next(tmp_path_factory.getbasetemp().glob("mlflow*/artifacts"))

    def delete_model_files(version: str) -> None:
        uri = MlflowClient().get_model_version_download_uri(
            tracking.registered_name("clustering"), version
        )
        shutil.rmtree(artifacts / uri.split(":/", 1)[1])

    delete_model_files("2")
    assert "version 1 is champion" in repair_champion("clustering")  # won, unlike version 3
    assert tracking.alias_version("clustering", tracking.CHAMPION) == "1"
    version = MlflowClient().get_model_version(tracking.registered_name("clustering"), "2")
    assert version.tags["unloadable"] == "model files missing"
    for v in ("1", "3"):
        delete_model_files(v)
    assert "alias removed" in repair_champion("clustering")
    assert tracking.alias_version("clustering", tracking.CHAMPION) is None
