"""The table of steps the pipeline walks: stages, lanes, inputs, promotion."""

from __future__ import annotations

import pytest

from meterflow.entrypoints import entry_point
from meterflow.orchestration.decision import CRITERIA
from meterflow.orchestration.steps import PROMOTED, Step, check_table, pipeline_steps, stages


def _names(table: list) -> list:
    return [[[step.name for step in lane] for lane in lanes] for lanes in table]


def test_the_table_runs_the_chains_side_by_side_then_harmonization_then_the_models() -> None:
    check_table()
    assert _names(stages()) == [
        [["load_newmongo", "etl_newmongo"], ["etl_sql", "etl_oldmongo"]],
        [["harmonization"]],
        [["clustering"], ["forecasting"], ["anomaly"]],
    ]
    memory_bound = {s.name for s in pipeline_steps() if s.memory_bound}
    assert memory_bound == {"clustering", "forecasting", "anomaly"}
    assert set(PROMOTED) == set(CRITERIA)


def test_every_step_is_an_entry_point_that_takes_its_inputs() -> None:
    for step in pipeline_steps():
        fields = entry_point(step.name).options.model_fields
        takes = {*step.upstream, step.carry_over} - {""}
        if step.fingerprint is not None:
            takes.add("source_fingerprint")
        assert takes <= set(fields), step.name


def test_a_step_that_reads_a_step_not_finished_by_then_is_refused() -> None:
    late = (Step("a", 0, "x", upstream={"in": ("b",)}), Step("b", 0, "y"))
    with pytest.raises(ValueError, match="a: in takes b"):
        check_table(late)
    beside = (Step("b", 0, "y"), Step("a", 0, "x", upstream={"in": ("b",)}))
    with pytest.raises(ValueError, match="a: in takes b"):
        check_table(beside)  # another lane of the same stage runs at the same time
    check_table((Step("b", 0, "x"), Step("a", 0, "x", upstream={"in": ("b",)})))
    check_table((Step("b", 0), Step("a", 1, upstream={"in": ("b",)})))


def test_adding_a_step_is_one_row() -> None:
    extra = Step("report", 3, upstream={"profiles_run": ("harmonization",)})
    table = stages((*pipeline_steps(), extra))
    assert _names(table)[-1] == [["report"]]
    check_table((*pipeline_steps(), extra))
