"""A failed run says why in its description, whoever created the run."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from meterflow.errors import InputError
from meterflow.settings import EtlSqlOptions
from meterflow.tracking import DESCRIPTION_TAG, failure_description, step_run


def test_the_reason_goes_first_and_what_the_run_had_written_stays_below() -> None:
    told = "**Kept 99 % of 10 readings.**\n\n- **Data:** …"
    text = failure_description("etl_sql", "failed", "no table historian in x.db", told)
    assert text.splitlines()[0] == "**etl_sql failed.** no table historian in x.db"
    assert text.endswith(told)
    assert failure_description("etl_sql", "failed", "boom") == "**etl_sql failed.** boom"


def test_a_story_that_already_opens_with_the_failure_is_kept() -> None:
    story = "**The main night failed at step forecasting: out of memory.**\n\n- **Steps:** …"
    assert failure_description("main", "failed", "step forecasting failed", story) == story


def test_a_step_started_without_mlflow_run_describes_its_own_failure(tracking) -> None:
    with pytest.raises(InputError), step_run("etl_sql", EtlSqlOptions()) as run:
        raise InputError("meter MTR0002 row 5: active_import is not a number: abc\nmore")
    got = MlflowClient().get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags[DESCRIPTION_TAG] == (
        "**etl_sql failed.** meter MTR0002 row 5: active_import is not a number: abc"
    )
