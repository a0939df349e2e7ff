"""The parent run's story of a night: what ran or was reused (linked), new data, promotions,
alerts, headline numbers; a failed night names its step and reason first."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from meterflow.orchestration.steps import PROMOTED
from meterflow.orchestration.story import (
    FAILED,
    REUSED,
    RUN,
    ChildRun,
    Night,
    StepOutcome,
    describe_night,
    night_steps,
    promotions,
    step_headline,
)
from meterflow.schemas import Table, validate_table
from tests.demo_night import CHILDREN, STEPS  # the 200-meter demo night


def _night(statuses: dict[str, str], **kwargs) -> Night:
    outcomes = tuple(
        StepOutcome(s, statuses.get(s, RUN), f"{i:032x}", 10.0 + i) for i, s in enumerate(STEPS)
    )
    promotion = pd.DataFrame(
        [("forecasting", True, "first version"), ("anomaly", False, "f1 0.44 does not beat")],
        columns=["step", "promote", "reason"],
    )
    args = {
        "entry_point": "retrain",
        "experiment_id": "3",
        "day": "2026-12-07",
        "outcomes": outcomes,
        "planned": STEPS,
        "children": CHILDREN,
        "promotions": promotions(promotion, PROMOTED, outcomes, promote=True),
        "alerts": 110,
        "duration_s": 304.1,
    }
    return Night(**{**args, **kwargs})


def test_a_night_with_reused_steps_links_them_and_tells_what_came_of_it() -> None:
    night = _night({"etl_sql": REUSED, "etl_oldmongo": REUSED, "clustering": REUSED})
    text = describe_night(night)
    first = text.splitlines()[0]
    assert first.startswith("**The retrain night of 2026-12-07: 5 of 8 steps run, 3 reused")
    assert "promoted forecasting" in first and "110 alerts raised" in first
    assert "MAE 382 Wh vs dshw 388 Wh (1.5 % better)" in first
    for step in ("etl_sql", "etl_oldmongo", "clustering"):
        run_id = night.outcome(step).run_id
        assert f"[{step}](#/experiments/3/runs/{run_id})" in text
    assert "303,239 documents loaded" in text and "sql 35,965 (reused)" in text
    assert "clustering champion kept (run reused, registered already)" in text
    assert "anomaly challenger (f1 0.44 does not beat)" in text
    assert "`report.html`" in text and "`previews/night_steps.csv`" in text
    assert len(text) <= 1500
    assert not re.search(r"\bnan\b|\bNone\b", text)


def test_every_step_reused_still_fits_and_says_no_new_alerts() -> None:
    night = _night(dict.fromkeys(STEPS, REUSED), alerts=None)
    night = Night(**{**night.__dict__, "promotions": promotions(None, PROMOTED, night.outcomes,
                                                                promote=True)})  # fmt: skip
    text = describe_night(night)
    assert "0 of 8 steps run, 8 reused" in text and "no model promoted" in text
    assert "none new: [anomaly](#/experiments/3/runs/" in text
    assert "newmongo: no new documents (load reused)" in text
    assert len(text) <= 1500


def test_a_failed_night_names_the_step_and_why_in_its_first_line() -> None:
    outcomes = (
        StepOutcome("etl_sql", RUN, "a" * 32, 30.0),
        StepOutcome("forecasting", FAILED, "b" * 32, 12.0, "forecasting: no profiles in window"),
    )
    night = _night({}, outcomes=outcomes, promotions=(), alerts=None, failure="step failed")
    text = describe_night(night)
    assert text.splitlines()[0] == (
        "**The retrain night failed at step forecasting: forecasting: no profiles in window.**"
    )
    assert f"[forecasting](#/experiments/3/runs/{'b' * 32})" in text
    assert "not reached: load_newmongo" in text
    table = night_steps(night)
    assert table.loc[1, "status"] == FAILED and "no profiles" in table.loc[1, "headline"]


def test_a_night_that_failed_outside_a_step_says_why() -> None:
    night = _night({}, outcomes=(), promotions=(), failure="tracking store unreachable")
    assert describe_night(night).startswith(
        "**The retrain night failed: tracking store unreachable.**"
    )


def test_a_forecaster_that_loses_to_its_baseline_says_so() -> None:
    child = ChildRun(
        {"test_mae": 382.0, "skill_vs_best_baseline": -0.0822},
        {"forecasting.best_baseline": "dshw"},
    )
    assert step_headline("forecasting", child) == "MAE 382 Wh, 8.22 % worse than dshw (353 Wh)"


def test_the_night_steps_table_keeps_its_contract_and_links_every_run() -> None:
    night = _night({"etl_sql": REUSED})
    table = validate_table(Table.NIGHT_STEPS, night_steps(night))
    assert list(table["step"]) == list(STEPS)
    assert table.loc[table["step"] == "etl_sql", "status"].item() == REUSED
    assert table["run_link"].str.startswith("#/experiments/3/runs/").all()
    assert table.set_index("step").loc["forecasting", "headline"].startswith("MAE 382 Wh")
    assert table.set_index("step").loc["etl_newmongo", "headline"] == (
        "598,560 readings kept, 1.31 % quarantined, 3,122 meter-days"
    )


@pytest.mark.parametrize(
    ("status", "promote", "expected"),
    [
        (RUN, False, "not registered"),
        (FAILED, True, "not reached"),
        (REUSED, True, "champion kept"),
    ],
)
def test_promotions_say_what_became_of_each_model(status: str, promote: bool, expected: str):
    outcomes = [StepOutcome(step, status, "r", 1.0) for step in PROMOTED]
    assert {p.outcome for p in promotions(None, PROMOTED, outcomes, promote=promote)} == {expected}
