"""Shared fixtures: the real stores and services the tests start and stop themselves."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.register_assert_rewrite("tests.sources.corpus.common")

from meterflow.sources.mongo_server import LocalMongoServer, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MongoDB wire-protocol server (nx-27017) on loopback for the whole session."""
    with LocalMongoServer(tmp_path_factory.mktemp("mongo") / "nx.db") as uri:
        yield uri


def _pg_command() -> list[str] | None:
    """Prefix to run the PostgreSQL binaries (initdb refuses to run as root)."""
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        return None
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (initdb/pg_ctl found on the machine) for the session;
    skips the test when the binaries are missing."""
    prefix = _pg_command()
    if prefix is None:
        pytest.skip("PostgreSQL binaries initdb/pg_ctl (Debian package postgresql) not found")
    root = Path(tempfile.mkdtemp(prefix="meterflow-pg-"))
    if prefix:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, capture_output=True)  # noqa: E731
    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")  # fmt: skip
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
        engine, deadline = sa.create_engine(url), time.monotonic() + 30
        try:
            while True:
                try:
                    engine.connect().close()
                    break
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
        finally:
            engine.dispose()
        yield url
    finally:
        subprocess.run([*prefix, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server with a SQLite backend and a local artifact store."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log_file = (root / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start within 120 s")
            time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


@pytest.fixture()
def tracking(tracking_server: str, monkeypatch: pytest.MonkeyPatch, request) -> str:
    """Point this test's MLflow client at the tracking server, in an experiment of its own."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    name = f"test-{request.node.name}-{time.time_ns()}"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    mlflow.set_tracking_uri(tracking_server)
    mlflow.set_experiment(name)
    yield tracking_server
    while mlflow.active_run():
        mlflow.end_run()


def repo_copy(dst: Path) -> Path:
    """A copy of the project's tracked files (what `mlflow run .` would see in a clone)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for rel in files:
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


def subprocess_env(**extra: str) -> dict[str, str]:
    # a run or experiment id left in the environment by an earlier in-process test would clash
    # with the child's own --experiment-name
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_RUN") and k != "MLFLOW_EXPERIMENT_ID"}  # fmt: skip
    env.update(extra)
    return env
