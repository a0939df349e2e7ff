"""Before a run: an unreachable tracking server, a damaged SQLite store and a store that lost the
data folder's state record each end the run at once in one line; nothing is registered."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from meterflow.errors import ConfigError
from meterflow.orchestration.preflight import check_sqlite_store
from meterflow.orchestration.state import missing_from_store, read_state, write_state
from meterflow.sources.mongo_server import free_port
from tests.conftest import REPO, subprocess_env


def _store(path: Path) -> str:
    """A real MLflow SQLite store with one finished run; its id."""
    client = MlflowClient(f"sqlite:///{path}")
    experiment = client.create_experiment("meterflow")
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _preflight(
    tmp_path: Path,
    tracking_uri: str,
    *,
    module: str = "meterflow.orchestration.preflight",
    args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    env = subprocess_env(
        MLFLOW_TRACKING_URI=tracking_uri,
        METERFLOW_DATA_DIR=str(tmp_path / "data"),
        METERFLOW_TRACKING_TIMEOUT_S="10",
    )
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_an_unreachable_tracking_server_fails_the_night_in_one_line_within_30_s(tmp_path: Path):
    """``make retrain`` (``meterflow.orchestration.launch -e retrain``), tracking server down."""
    started = time.monotonic()
    uri = f"http://user:secret@127.0.0.1:{free_port()}"
    done = _preflight(
        tmp_path, uri, module="meterflow.orchestration.launch", args=("-e", "retrain")
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
    (line,) = _error_lines(done.stderr)
    assert line.startswith("error: retrain: tracking server http://***:***@127.0.0.1:")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not_sqlite"])
def test_a_damaged_sqlite_store_is_refused_in_one_line(tmp_path: Path, damage: str):
    path = tmp_path / "mlflow.db"
    _store(path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        path.write_bytes(data[:8192] + b"\x5a" * (len(data) - 16384) + data[-8192:])
    else:
        path.write_bytes(b"this is a text file, not a database\n" * 100)
    with pytest.raises(ConfigError, match="is damaged") as raised:
        check_sqlite_store(path)
    assert "\n" not in str(raised.value)


def test_a_night_against_a_damaged_store_fails_in_one_line_before_touching_it(tmp_path: Path):
    path = tmp_path / "mlflow.db"
    _store(path)
    damaged = path.read_bytes()[:5000]
    path.write_bytes(damaged)
    done = _preflight(tmp_path, f"sqlite:///{path}", module="meterflow.orchestration.launch")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = _error_lines(done.stderr)
    assert line.startswith(f"error: main: tracking store {path} is damaged")
    assert path.read_bytes() == damaged


def test_a_sound_or_missing_sqlite_store_passes(tmp_path: Path):
    path = tmp_path / "mlflow.db"
    check_sqlite_store(path)  # missing: the state record decides
    path.touch()
    check_sqlite_store(path)  # empty: the same
    _store(path)
    check_sqlite_store(path)


def test_the_state_record_round_trips_and_says_what_a_store_lacks(tmp_path: Path):
    write_state(tmp_path, run_id="r1", entry_point="retrain", experiment="m", champions={"f": "3"})
    record = read_state(tmp_path)
    assert record["last_run_id"] == "r1" and record["champions"] == {"f": "3"}
    known = {"r1"}
    ok = missing_from_store(record, run_exists=known.__contains__, champion_version=lambda s: "4")
    assert ok is None  # a champion may move on
    lost = missing_from_store(record, run_exists=set().__contains__, champion_version=str)
    assert "does not know the last retrain run r1" in lost
    older = missing_from_store(
        record, run_exists=known.__contains__, champion_version=lambda s: "1"
    )
    assert "champion is 1, recorded as version 3" in older


def test_an_unreadable_state_record_is_one_line(tmp_path: Path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"unreadable.*start_over"):
        read_state(tmp_path)


@pytest.mark.parametrize("store", ["empty", "replaced"])
def test_a_store_that_lost_the_state_is_refused_and_nothing_is_registered(
    tmp_path: Path, store: str
):
    data = tmp_path / "data"
    data.mkdir()
    old_run = _store(tmp_path / "old.db")
    write_state(data, run_id=old_run, entry_point="retrain", experiment="meterflow", champions={})
    path = tmp_path / "mlflow.db"
    if store == "empty":
        path.touch()
    else:
        _store(path)  # another store, with runs of its own
    uri = f"sqlite:///{path}"
    done = _preflight(tmp_path, uri)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = _error_lines(done.stderr)
    assert f"does not know the last retrain run {old_run}" in line and "start_over" in line
    assert MlflowClient(uri).search_registered_models() == []
    started = _preflight(tmp_path, uri, args=("--start-over",))
    assert started.returncode == 0, started.stderr


def test_the_pipeline_itself_refuses_a_store_that_lost_the_state(tmp_path: Path):
    """``mlflow run .`` without the Makefile: the pipeline checks the same before any step."""
    data = tmp_path / "data"
    data.mkdir()
    write_state(data, run_id="0" * 32, entry_point="main", experiment="meterflow", champions={})
    env = subprocess_env(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        METERFLOW_DATA_DIR=str(data),
        MLFLOW_EXPERIMENT_NAME="meterflow",
    )
    done = subprocess.run(
        [sys.executable, "retrain.py"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = _error_lines(done.stderr)
    assert line.startswith("error: retrain: tracking store sqlite:///") and "start_over" in line
    assert json.loads((data / "state.json").read_text())["last_run_id"] == "0" * 32
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.search_registered_models() == []
