"""The parent run tells its night against a real tracking server: its description, the
``night_steps`` table, the step-durations figure and ``report.html`` (which opens in Chromium
without errors); a failed night is told too, naming the step that failed."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from meterflow import tracking as seam
from meterflow.errors import MeterflowError
from meterflow.orchestration.night import gather, tell
from meterflow.orchestration.pipeline import _tell_failure
from meterflow.orchestration.runner import StepRunner
from meterflow.orchestration.story import FAILED, REUSED, RUN, StepOutcome
from meterflow.report.collect import RunTables
from meterflow.schemas import Table
from meterflow.settings import RetrainOptions
from tests import demo_night as nights
from tests.report.browser import open_in_chromium


def _children(steps: tuple[str, ...]) -> dict[str, str]:
    """A finished run per step with the demo night's metrics and tables; step -> run id."""
    tables = nights.tables()
    ids = {}
    for step in steps:
        with mlflow.start_run(run_name=step) as active:
            run = seam.StepRun(active.info.run_id, active.info.experiment_id, step)
            run.log_metrics(nights.CHILDREN[step].metrics)
            run.set_tags(nights.CHILDREN[step].tags)
            for (owner, name), table in tables.items():
                if owner == nights.run_id(step):
                    run.log_table(table, name)
        ids[step] = active.info.run_id
    return ids


def _runner(parent: seam.StepRun, outcomes: list[StepOutcome]) -> StepRunner:
    return StepRunner(
        Path("."), reuse=True, parent_run_id=parent.run_id, experiment_id=parent.experiment_id,
        record={o.step: o for o in outcomes},
    )  # fmt: skip


def test_the_parent_tells_its_night_with_a_report_that_opens_cleanly(tracking, tmp_path: Path):
    ids = _children(nights.STEPS)
    outcomes = [
        StepOutcome(s, REUSED if s == "etl_sql" else RUN, ids[s], nights.DURATIONS[s])
        for s in reversed(nights.STEPS)  # the record's order is the order steps ended
    ]
    with seam.step_run("retrain", RetrainOptions()) as parent:
        runner = _runner(parent, outcomes)
        tables = RunTables()
        night = gather("retrain", runner, tables, promotion=None, promote=False, duration_s=304.0)
        tell(parent, night, tables)
    client = MlflowClient()
    record = client.get_run(parent.run_id)
    text = record.data.tags[seam.DESCRIPTION_TAG]
    assert text.startswith("**The retrain night of ") and "7 of 8 steps run, 1 reused" in text
    assert f"[etl_sql](#/experiments/{parent.experiment_id}/runs/{ids['etl_sql']})" in text
    assert "110 alerts raised" in text and "clustering, forecasting, anomaly not registered" in text
    assert len(record.data.metrics) <= seam.MAX_METRIC_KEYS
    steps = seam.load_table(parent.run_id, Table.NIGHT_STEPS)
    assert list(steps["step"]) == list(nights.STEPS)
    assert steps.set_index("step").loc["etl_sql", "run_id"] == ids["etl_sql"]
    artifacts = {a.path for a in client.list_artifacts(parent.run_id)}
    assert {"report.html", "figures", "tables", "previews"} <= artifacts
    page = Path(client.download_artifacts(parent.run_id, "report.html", str(tmp_path)))
    assert "not available in this run" not in page.read_text()
    seen = open_in_chromium(page)
    assert seen.console_errors == [] and seen.page_errors == [] and seen.requests == []
    assert len(seen.image_widths) == 5 and all(w > 0 for w in seen.image_widths)


def test_a_failed_night_is_told_naming_the_step_and_why(tracking) -> None:
    ids = _children(nights.STEPS[:5])
    outcomes = [StepOutcome(s, RUN, ids[s], 1.0) for s in nights.STEPS[:5]]
    outcomes.append(StepOutcome("clustering", FAILED, "", 0.0, "clustering: k_max < k_min"))
    error = MeterflowError("clustering: k_max < k_min")
    with seam.step_run("retrain", RetrainOptions()) as parent:
        _tell_failure(parent, _runner(parent, outcomes), RetrainOptions(), 42.0, error)
    text = MlflowClient().get_run(parent.run_id).data.tags[seam.DESCRIPTION_TAG]
    assert text.splitlines()[0] == (
        "**The retrain night failed at step clustering: clustering: k_max < k_min.**"
    )
    assert "not reached: forecasting, anomaly" in text
    steps = seam.load_table(parent.run_id, Table.NIGHT_STEPS)
    assert steps["status"].iloc[-1] == FAILED
    names = {a.path for a in MlflowClient().list_artifacts(parent.run_id)}
    assert "report.html" in names
