"""What a forecasting run logs: a headline of metrics within the run's budget (loss curves and
the process figures counted), every other number of the evaluation in a table, one figure per
family; with one model per cluster, pooled rows and a table of the clusters."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from meterflow.forecasting import ForecastSettings, evaluate_forecaster
from meterflow.forecasting.report import (
    ALL,
    HEADLINE_KEYS,
    StepReport,
    description,
    logged_metrics,
    loss_curves,
    merge_reports,
    report_of,
)
from meterflow.forecasting.story import PER_CLUSTER
from meterflow.schemas import Table, validate_table
from meterflow.series.fleet import build_panel, split_dates
from meterflow.tracking import MAX_METRIC_KEYS, process_usage
from tests.forecasting.test_serving import QUICK, two_meters

AGGREGATE_COUNTS = 3  # aggregate_slots, _estimated_slots, _gap_slots of fleet and cluster scope


def evaluated(series: pd.DataFrame) -> StepReport:
    dates = split_dates(series["timestamp"], 0.7, 0.1, pd.Timestamp("2024-02-05"), 7)
    fleet = build_panel(series, 60, dates)
    cfg = ForecastSettings(**QUICK)
    return report_of(evaluate_forecaster(fleet, None, cfg), fleet, cfg, "Europe/Rome")


@pytest.fixture(scope="module")
def report() -> StepReport:
    return evaluated(two_meters())


@pytest.fixture(scope="module")
def merged() -> StepReport:
    series = two_meters()
    groups = {f"cluster_{i}": series.loc[series["meter_id"] == m] for i, m in enumerate("AB")}
    return merge_reports({g: evaluated(part) for g, part in groups.items()})


def metric_keys(report: StepReport, counts: int = 0) -> int:
    """The keys the run logs: headline, loss curves (two each), scope counts and process."""
    curves = 2 * len(loss_curves(report.histories))
    return len(logged_metrics(report)) + curves + counts + len(process_usage())


def table_value(report: StepReport, key: str) -> float:
    """Where a number of the evaluation is in the run's tables."""
    t = report.tables
    kept = t[Table.CANDIDATES].loc[t[Table.CANDIDATES]["kept"]].iloc[0]
    rows = t[Table.CANDIDATES].set_index("candidate")
    if m := re.fullmatch(r"baseline_(\w+?)_(mae|mape|rmse|smape|wape)", key):
        return rows.loc[m[1], f"test_{m[2]}"]
    if m := re.fullmatch(r"skill_vs_(\w+)", key):
        return rows.loc[m[1], "model_skill"]
    if m := re.fullmatch(r"test_mape_h(\d+)", key):
        steps = t[Table.ERROR_BY_STEP]
        return steps.loc[(steps["model"] == kept["candidate"]) & (steps["step"] == int(m[1]))][
            "mape"
        ].item()
    if m := re.fullmatch(r"(\w+)_(epochs_run|best_epoch|train_seconds)", key):
        net = t[Table.FORECAST_TRAINING].query("network == @m[1]")
        return {
            "epochs_run": len(net),
            "best_epoch": net.loc[net["kept_epoch"], "epoch"].item(),
            "train_seconds": net["train_seconds"].iloc[0],
        }[m[2]]
    if key == "fit_seconds":
        return rows["fit_seconds"].sum()
    return kept[key]  # the model's test_* and val_mae


def test_the_headline_fits_the_budget_and_every_other_number_is_in_a_table(report):
    logged = logged_metrics(report)
    assert set(logged) <= set(HEADLINE_KEYS) and {"test_mae", "test_rmse"} <= set(logged)
    assert logged["best_baseline_test_mae"] == report.outcome.baseline_mae
    assert list(loss_curves(report.histories)) == [""]  # one network: train_loss, val_loss
    assert metric_keys(report, AGGREGATE_COUNTS) <= MAX_METRIC_KEYS
    for key, value in report.metrics.items():
        if key not in logged and key != "skill_vs_best_baseline":
            assert table_value(report, key) == pytest.approx(value, rel=1e-9), key
    for name, table in report.tables.items():
        validate_table(name, table)
    assert set(report.figures) == {"test_predictions", "error_by_step", "candidates",
                                   "training_curves"}  # fmt: skip


def test_clusters_pool_into_one_table_row_each_and_one_figure_per_family(merged):
    groups = merged.tables[Table.FORECAST_GROUPS]
    assert list(groups["group"]) == ["cluster_0", "cluster_1"]
    assert groups["n_series"].sum() == merged.metrics["n_series"] == 2
    candidates = merged.tables[Table.CANDIDATES]
    pooled = candidates.loc[candidates["group"] == ALL].set_index("candidate")
    assert pooled.loc[PER_CLUSTER, "kept"] and pooled["kept"].sum() == 1
    assert pooled.loc[PER_CLUSTER, "test_mae"] == pytest.approx(merged.metrics["test_mae"])
    for key, value in merged.metrics.items():
        if m := re.fullmatch(r"baseline_(\w+?)_(mae|mape|rmse|smape|wape)", key):
            assert pooled.loc[m[1], f"test_{m[2]}"] == pytest.approx(value), key
        if (m := re.fullmatch(r"skill_vs_(\w+)", key)) and m[1] != "best_baseline":
            assert pooled.loc[m[1], "model_skill"] == pytest.approx(value), key
    steps = merged.tables[Table.ERROR_BY_STEP]
    assert len(steps.loc[(steps["group"] == ALL) & (steps["model"] == PER_CLUSTER)]) == 24
    assert set(merged.figures) == {"test_predictions", "error_by_step", "candidates", "groups",
                                   "training_curves"}  # fmt: skip
    assert list(loss_curves(merged.histories)) == ["cluster_0/lstm/", "cluster_1/lstm/"]
    assert metric_keys(merged, AGGREGATE_COUNTS) <= MAX_METRIC_KEYS
    assert not any("/" in k for k in logged_metrics(merged))
    for name, table in merged.tables.items():
        validate_table(name, table)


def test_the_cluster_description_speaks_of_the_per_cluster_models(merged):
    text = description(merged, "cluster", "harmonization run `h`", ("figures/groups.png",))
    first = text.splitlines()[0]
    assert first.startswith("**The per-cluster models are ") and first.endswith(".**")
    assert "2 cluster totals from harmonization run `h`" in text
    assert "clusters' models" in text and "one model per cluster" in text
    assert "nan" not in text.lower() and len(text) <= 1500
    assert np.isfinite(merged.outcome.skill)
