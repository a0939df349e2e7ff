"""The harmonization step refuses, in one line and before it writes a table or computes a DTW
pair, when its outputs (tables and the whole DTW matrix) do not fit the disk. MLflow is stood in
for (no tracking server), and so is the disk's free space."""

from __future__ import annotations

import shutil
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from meterflow import tracking
from meterflow.errors import DiskFullError, format_bytes
from meterflow.schemas import slot_columns
from meterflow.settings import Environment, HarmonizationOptions
from meterflow.sources import diskspace
from meterflow.sources.dtw_cache import DtwCache
from meterflow.tasks.harmonization import run_harmonization

Usage = namedtuple("Usage", "total used free")
METERS, DAYS = 60, 10  # 600 profiles: a 1.4 MB float64 matrix, about 0.4 MB of tables


class FakeRun:
    """The logging calls of a step run, recorded instead of sent to MLflow."""

    run_id = "harmonization-under-test"

    def __init__(self) -> None:
        self.logged: list[str] = []

    def log_table(self, df: pd.DataFrame, name: str) -> None:
        self.logged.append(name)

    def log_figure(self, fig, name: str) -> None:
        plt.close(fig)
        self.logged.append(name)

    def log_model(self, predictor, **kwargs) -> None:
        self.logged.append("model")

    def log_metrics(self, metrics, step=None) -> None:
        self.logged.append("metrics")

    def log_params(self, params) -> None:
        self.logged.extend(params)

    def set_tags(self, tags) -> None:
        self.logged.append("tags")

    def describe(self, text: str) -> None:
        self.logged.append("description")


def etl_tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    keys = pd.MultiIndex.from_product(
        [[f"M{i:03d}" for i in range(METERS)], pd.date_range("2024-03-01", periods=DAYS)],
        names=["meter_id", "date"],
    ).to_frame(index=False)
    values = pd.DataFrame(rng.gamma(2.0, 50.0, (len(keys), 24)), columns=slot_columns(24))
    profiles = pd.concat([keys.assign(source="sql"), values], axis=1)
    meters = pd.DataFrame(
        {
            "meter_id": [f"M{i:03d}" for i in range(METERS)],
            "contractual_power_kw": 10.0,
            "production_kw": 0.0,
            "type": "residential",
            "latitude": 38.7,
            "longitude": -9.1,
        }
    )
    return {"profiles": profiles, "meters": meters}


@pytest.fixture
def fake_tracking(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    run, tables = FakeRun(), etl_tables()

    @contextmanager
    def step_run(entry_point: str, options) -> Iterator[FakeRun]:
        yield run

    monkeypatch.setattr(tracking, "configure", lambda env: None)
    monkeypatch.setattr(tracking, "step_run", step_run)
    monkeypatch.setattr(tracking, "resolve_run", lambda run_id, entry_point: run_id)
    monkeypatch.setattr(tracking, "load_table", lambda run_id, name: tables[name].copy())
    monkeypatch.setattr(tracking, "tracking_uri", lambda: "http://tracking.invalid:5000")
    return run


def environment(root: Path) -> Environment:
    return Environment(
        data_dir=root, sql_url="sqlite://", mongodb_uri=None, mongo_database="t", experiment="t"
    )


def free_space(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 10**12 - free, free))


def never(*args, **kwargs) -> None:
    raise AssertionError("the DTW matrix was computed although the disk is too small")


def test_harmonization_refuses_before_writing_or_computing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_tracking: FakeRun
) -> None:
    free = diskspace.SAFETY_MARGIN_BYTES + 10**6  # less than tables + matrix
    free_space(monkeypatch, free)
    monkeypatch.setattr(DtwCache, "update", never)
    opts = HarmonizationOptions(etl_runs="etl-run")
    with pytest.raises(DiskFullError) as caught:
        run_harmonization(opts, environment(tmp_path))
    message = str(caught.value)
    cache_dir = tmp_path / "cache" / "dtw"  # the place that needs most on that disk
    assert message.startswith(f"not enough disk space for the harmonization outputs at {cache_dir}")
    assert message.endswith(f", {format_bytes(free)} free") and "\n" not in message
    assert caught.value.needed > DtwCache(tmp_path).matrix_bytes(METERS * DAYS)
    assert fake_tracking.logged == []  # no table, figure or model logged
    assert not (tmp_path / "cache").exists()


def test_the_dtw_matrix_is_what_does_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_tracking: FakeRun
) -> None:
    """The same free space holds the tables alone: without the DTW matrix the step runs."""
    free_space(monkeypatch, diskspace.SAFETY_MARGIN_BYTES + 10**6)
    monkeypatch.setattr(DtwCache, "update", never)
    opts = HarmonizationOptions(etl_runs="etl-run", compute_dtw=False)
    assert run_harmonization(opts, environment(tmp_path)) == FakeRun.run_id
    assert {"profiles", "normalized_profiles", "meters", "model"} <= set(fake_tracking.logged)


def test_harmonization_with_room_computes_the_matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_tracking: FakeRun
) -> None:
    free_space(monkeypatch, diskspace.SAFETY_MARGIN_BYTES + 3 * 10**6)
    opts = HarmonizationOptions(etl_runs="etl-run")
    run_harmonization(opts, environment(tmp_path))
    assert {"dtw_index", "dtw_window_slots"} <= set(fake_tracking.logged)
    (matrix,) = (tmp_path / "cache" / "dtw").glob("*/matrix-*.bin")
    assert matrix.stat().st_size == DtwCache(tmp_path).matrix_bytes(METERS * DAYS)
