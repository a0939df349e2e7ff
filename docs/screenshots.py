"""Screenshots of the MLflow UI for the docs (docs/images/*.png) from a finished tracking store.

    python docs/screenshots.py --store DIR [--out docs/images] [--port 5077]

DIR holds ``mlflow.db`` and ``mlruns/`` of a finished ``make demo`` (the repository root after
one). The store is copied to a temporary folder first (the original is only read), ``mlflow ui``
is started on the copy and Chromium (``/usr/bin/chromium``, never downloaded) captures: the
experiment's run list, the parent run's overview, a model step's run, a table preview, the
parent run's ``report.html`` and the registered model page.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("screenshots")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
EXPERIMENT = "meterflow"
MAIN_ROW_EXPANDER = "[role=row]:has-text('main 2') button:has(.anticon)"
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
# the UI's own settings (browser local storage): the header's toggle on "Model training" (what
# a user clicks once when the UI shows GenAI), the assistant panel closed
UI_SETTINGS = """
window.localStorage.setItem("mlflow.workflowType_v1", '"machine_learning"');
window.localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
window.localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");
"""


def copy_store(src: Path, dst: Path) -> str:
    """Copy ``mlflow.db`` and ``mlruns/`` into ``dst``, pointing the copy's artifact paths at
    ``dst/mlruns``; returns the copy's tracking URI."""
    shutil.copy2(src / "mlflow.db", dst / "mlflow.db")
    shutil.copytree(src / "mlruns", dst / "mlruns", symlinks=True)
    with sqlite3.connect(dst / "mlflow.db") as db:
        old_roots = {
            loc.rsplit("/mlruns/", 1)[0] + "/mlruns"
            for (loc,) in db.execute("SELECT artifact_location FROM experiments")
            if "/mlruns/" in loc
        }
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = db.execute(f"PRAGMA table_info('{table}')").fetchall()
            texts = [c[1] for c in columns if "CHAR" in c[2].upper() or "TEXT" in c[2].upper()]
            for column in texts:
                for old in old_roots:
                    db.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?)',
                        (old, str(dst / "mlruns")),
                    )
    return f"sqlite:///{dst / 'mlflow.db'}"


@contextmanager
def mlflow_ui(uri: str, port: int, workdir: Path) -> Iterator[str]:
    """``mlflow ui`` on ``uri`` until the block ends; yields its base URL."""
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with (workdir / "ui.log").open("wb") as out:
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / "ui.log").read_text()) from None
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # mlflow ui and its server workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def targets(uri: str) -> list[tuple[str, str, str, list[str]]]:
    """(file name, URL fragment, text the page shows when ready, texts to click) of every
    screenshot the store allows."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if KIND_TAG not in experiment.tags:  # stores older than the tag open in the GenAI view
        client.set_experiment_tag(experiment.experiment_id, KIND_TAG, KIND)
    eid = experiment.experiment_id
    runs = client.search_runs([eid], order_by=["attributes.start_time DESC"], max_results=200)
    parent = next(r for r in runs if r.data.tags.get("mlflow.runName", "").startswith("main"))
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    step = next(r for r in children if r.data.tags.get("mlflow.runName", "").startswith("forecast"))
    parent_url = f"#/experiments/{eid}/runs/{parent.info.run_id}"
    step_url = f"#/experiments/{eid}/runs/{step.info.run_id}"
    shots = [
        # the expander of the parent run's row shows its steps' runs nested under it
        ("run-list.png", f"#/experiments/{eid}/runs", "main", [MAIN_ROW_EXPANDER]),
        ("parent-run.png", parent_url, "Description", []),
        ("model-run.png", step_url, "Metrics", []),
    ]
    previews = [f.path for f in client.list_artifacts(step.info.run_id, "previews")]
    if previews:
        preview = next((p for p in previews if p.endswith("candidates.csv")), previews[0])
        files = [f'text="{part}"' for part in preview.split("/")]
        shots.append(("table-preview.png", f"{step_url}/artifacts", "previews", files))
    if any(f.path == "report.html" for f in client.list_artifacts(parent.info.run_id)):
        shots.append(
            ("report.png", f"{parent_url}/artifacts", "report.html", ['text="report.html"'])
        )
    else:
        log.warning("the parent run has no report.html: no report.png")
    shots.append(("registered-model.png", "#/models/meterflow-forecasting", "champion", []))
    return shots


def _wait_and_click(page, name: str, ready: str, clicks: list[str]) -> None:
    """Wait until the page shows ``ready``, then click each of ``clicks`` (Playwright
    selectors) in turn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text(ready).filter(visible=True).first.wait_for(timeout=30_000)
        for text in clicks:
            page.locator(text).filter(visible=True).first.click(timeout=30_000)
            page.wait_for_timeout(1_000)
    except PlaywrightTimeout:
        log.warning("%s: %r did not appear within 30 s", name, [ready, *clicks])


def capture(base: str, shots: list[tuple[str, str, str, list[str]]], out: Path) -> None:
    """One PNG per shot, 1440 x 900, after the page's text appeared."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_init_script(UI_SETTINGS)
        for name, fragment, ready, clicks in shots:
            page = context.new_page()  # a fresh page: the UI keeps stale state across hashes
            page.goto(f"{base}/{fragment}", wait_until="load", timeout=60_000)
            _wait_and_click(page, name, ready, clicks)
            page.wait_for_timeout(3_000)  # charts, previews and reports render after the data
            page.screenshot(path=str(out / name))
            log.info("wrote %s", out / name)
            page.close()
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="folder with mlflow.db, mlruns/")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    parser.add_argument("--port", type=int, default=5077)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="meterflow-shots-") as tmp:
        uri = copy_store(args.store.resolve(), Path(tmp))
        shots = targets(uri)
        with mlflow_ui(uri, args.port, Path(tmp)) as base:
            capture(base, shots, args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
