"""Fleet batch scoring with a registered champion: every meter once, in blocks of at most
``block_meters`` meters per ``predict``, the same files here and on a Dask cluster, the same
forecasts as one call over the whole fleet; one clear line for every bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from meterflow import tracking
from meterflow.cli import run_entry
from meterflow.clustering.assign import CentroidAssigner
from meterflow.errors import MeterflowError, SchemaError
from meterflow.forecasting.inputs import trained_series
from meterflow.forecasting.registry import make_forecaster
from meterflow.forecasting.serving import ForecastService
from meterflow.forecasting.settings import ForecastSettings
from meterflow.models import batch
from meterflow.models.pyfunc import PredictorModel
from meterflow.schemas import slot_columns
from meterflow.series.fleet import build_panel, split_dates
from meterflow.settings import Environment

SPD, DAYS, METERS, BLOCK = 24, 21, 11, 4


def readings(n_meters: int = METERS, days: int = DAYS) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2024-03-01", periods=days * SPD, freq="h")
    shape = 1.2 + np.sin(2 * np.pi * (np.arange(len(stamps)) % SPD) / SPD)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "meter_id": f"M{m:03d}",
                    "timestamp": stamps,
                    "value": (80 + 30 * m) * shape + rng.normal(0, 4, len(stamps)),
                    "source": "sql",
                }
            )
            for m in range(n_meters)
        ],
        ignore_index=True,
    )


def seasonal_champion(rows: pd.DataFrame) -> ForecastService:
    """A day-ahead seasonal-naive forecaster (with residual quantiles), served from raw rows."""
    fleet = build_panel(rows, 60, split_dates(rows["timestamp"], 0.7, 0.1, None, 7))
    cfg = ForecastSettings(model="seasonal_naive_day", horizon=SPD)
    fitted = make_forecaster("seasonal_naive_day", cfg).fit(fleet)
    known = tuple(fleet.series_meters[trained_series(fleet)].astype(str))
    example = rows.loc[rows["meter_id"] == "M000", ["meter_id", "timestamp", "value"]]
    example = example.tail(8 * SPD).reset_index(drop=True)
    return ForecastService(
        {"seasonal_naive_day": fitted}, "seasonal_naive_day", cfg, 60, known, None, example
    )


def write_dataset(rows: pd.DataFrame, folder: Path, parts: int = 3) -> Path:
    """``rows`` as a Parquet folder cut by time: every file holds every meter."""
    folder.mkdir(parents=True)
    days = rows["timestamp"].dt.normalize()
    for i, chunk in enumerate(np.array_split(np.sort(days.unique()), parts)):
        rows.loc[days.isin(chunk)].to_parquet(folder / f"chunk-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def env(tracking_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    stamp = time.time_ns()
    root = tmp_path_factory.mktemp("score")
    env = Environment(
        data_dir=root,
        sql_url=f"sqlite:///{root / 'historian.db'}",
        mongodb_uri=None,
        mongo_database="score",
        experiment=f"score-{stamp}",
        tracking_uri=tracking_server,
        registry_prefix=f"score{stamp}",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", tracking_server)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        tracking.configure(env)
        yield env


@pytest.fixture(scope="module")
def champion(env: Environment) -> ForecastService:
    """A forecaster logged and registered as ``<prefix>-forecasting@champion``."""
    service = seasonal_champion(readings())
    with mlflow.start_run() as run:
        tracking.StepRun(run.info.run_id, entry_point="forecasting").log_model(service)
    version = tracking.register_version("forecasting", run.info.run_id, {})
    tracking.set_alias("forecasting", tracking.CHAMPION, version)
    return service


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(readings(), tmp_path_factory.mktemp("fleet") / "readings")


def by_meter(forecasts: pd.DataFrame) -> pd.DataFrame:
    return forecasts.sort_values(["meter_id", "target_time"], ignore_index=True)


def test_each_block_is_one_predict_of_at_most_block_meters(
    champion, fleet_dir, tmp_path, monkeypatch
):
    seen: list[list[str]] = []
    original = PredictorModel.predict

    def spy(self, context, model_input, params=None):
        seen.append(sorted(model_input["meter_id"].unique()))
        return original(self, context, model_input, params)

    monkeypatch.setattr(PredictorModel, "predict", spy)
    uri = tracking.champion_uri("forecasting")
    result = batch.score_fleet(uri, fleet_dir, tmp_path / "out", block_meters=BLOCK)
    meters = sorted(readings()["meter_id"].unique())
    assert seen == [meters[i : i + BLOCK] for i in range(0, METERS, BLOCK)]  # whole meters
    assert result.fixed_uri.startswith("models:/m-")  # the alias is fixed for the whole run
    assert [b.file for b in result.blocks] == [f"part-{i:05d}.parquet" for i in range(3)]
    assert result.metrics()["meters_scored"] == METERS
    assert result.metrics()["max_block_meters"] == BLOCK
    assert result.metrics()["rows_in"] == METERS * DAYS * SPD
    whole = champion.predict(readings()[["meter_id", "timestamp", "value"]])
    pd.testing.assert_frame_equal(by_meter(pd.read_parquet(tmp_path / "out")), by_meter(whole))


def test_a_dask_cluster_writes_the_same_files(champion, fleet_dir, tmp_path, monkeypatch):
    """Workers started without the tracking store's address (as on another machine) are told
    it by the task and load the model themselves."""
    from distributed import LocalCluster

    uri = tracking.champion_uri("forecasting")
    here = batch.score_fleet(uri, fleet_dir, tmp_path / "here", block_meters=BLOCK)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # not inherited by the worker processes
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        there = batch.score_fleet(
            uri,
            fleet_dir,
            tmp_path / "dask",
            block_meters=BLOCK,
            scheduler=cluster.scheduler_address,
        )
    assert [b.file for b in there.blocks] == [b.file for b in here.blocks]
    assert [b.meters for b in there.blocks] == [4, 4, 3]
    for block in here.blocks:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "dask" / block.file),
            pd.read_parquet(tmp_path / "here" / block.file),
        )


def test_profiles_are_assigned_row_by_row_beside_their_keys(env, tmp_path):
    """The clusterer takes the profiles table; its labels come back beside meter and date."""
    rng = np.random.default_rng(0)
    slots = slot_columns(SPD)
    profiles = pd.DataFrame(rng.random((30, SPD)), columns=slots)
    profiles.insert(0, "meter_id", [f"M{i % 7}" for i in range(30)])
    profiles.insert(1, "date", pd.date_range("2024-01-01", periods=30).date)
    assigner = CentroidAssigner(
        n_slots=SPD, example_rows=profiles[slots].to_numpy()[:2], centers=rng.random((3, SPD))
    )
    with mlflow.start_run() as run:
        uri = tracking.StepRun(run.info.run_id, entry_point="clustering").log_model(assigner)
    profiles.to_parquet(tmp_path / "profiles.parquet", index=False)  # one file, not a folder
    batch.score_fleet(uri, tmp_path / "profiles.parquet", tmp_path / "out", block_meters=3)
    out = pd.read_parquet(tmp_path / "out").sort_values(["meter_id", "date"], ignore_index=True)
    expected = profiles.sort_values(["meter_id", "date"], ignore_index=True)
    assert list(out.columns) == ["meter_id", "date", "prediction"]
    np.testing.assert_array_equal(out["prediction"], assigner.predict(expected[slots]))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_value", r"lack column\(s\) \['value'\] that model .* needs"),
        ("unknown_model", "cannot load model models:/no-such-model@champion"),
        (
            "short_history",
            r"block 0 \(meters M000..M003\): forecast input: meter M000 has 3.0 days",
        ),
        ("no_readings", "do not exist"),
        ("used_output", "already holds scores"),
    ],
)
def test_bad_input_is_one_clear_line(champion, fleet_dir, tmp_path, case, message):
    uri, source, out = tracking.champion_uri("forecasting"), fleet_dir, tmp_path / "out"
    rows = readings()
    if case == "no_value":
        source = write_dataset(rows.drop(columns="value"), tmp_path / "bad")
    elif case == "unknown_model":
        uri = "models:/no-such-model@champion"
    elif case == "short_history":
        recent = rows["timestamp"] > rows["timestamp"].max() - pd.Timedelta(days=3)
        short = rows["meter_id"].ne("M000") | recent
        source = write_dataset(rows.loc[short], tmp_path / "bad")
    elif case == "no_readings":
        source = tmp_path / "nothing"
    else:
        out.mkdir()
        (out / "part-00000.parquet").write_bytes(b"")
    with pytest.raises(MeterflowError, match=message) as raised:
        batch.score_fleet(uri, source, out, block_meters=BLOCK)
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value, SchemaError) == (case in ("no_value", "short_history"))


def test_the_score_entry_point_logs_counts_and_where_the_output_is(
    champion, env, fleet_dir, monkeypatch, capsys
):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", env.experiment)
    monkeypatch.setenv("METERFLOW_REGISTRY_PREFIX", env.registry_prefix)
    monkeypatch.setenv("METERFLOW_DATA_DIR", str(env.data_dir))
    args = ["--readings", str(fleet_dir), "--block_meters", str(BLOCK)]
    assert run_entry("score", args) == 0  # model_uri '' = the forecasting champion
    run = tracking.finished_runs("score", max_results=1)[0]
    assert run.data.metrics["meters_scored"] == METERS and run.data.metrics["blocks"] == 3
    out = Path(run.data.tags["score.output"])
    assert out == (env.data_dir / "scores" / run.info.run_id).resolve()
    listing = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/{'score/output.json'}")
    assert [f["file"] for f in listing["files"]] == sorted(p.name for p in out.iterdir())
    assert run_entry("score", [*args, "--model_uri", "models:/nope@champion"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: score: cannot load model models:/nope")
