"""The anomaly run's story: its headline metrics fit the run's metric budget, every other number
is in one family table, and the description's verdict says plainly whether the chosen detector
beats the best simple baseline."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from meterflow.anomaly.detection import AnomalyResult, AnomalySettings, detect_anomalies
from meterflow.anomaly.families import families
from meterflow.anomaly.summary import (
    HEADLINE_BUDGET,
    AlertsRaised,
    RunContext,
    describe,
    headline,
    headline_metrics,
    verdict,
)
from meterflow.schemas import Table
from meterflow.tracking import MAX_METRIC_KEYS
from tests.anomaly.synthetic import clean_series, planted

WRITTEN = AlertsRaised(7, 5, 2, (("sql", "sqlite:///alerts.db"), ("mongo", "meterflow")))
CONTEXT = RunContext("series file `fleet.csv`", 60, 0.1, WRITTEN)
LOSS_CURVES_AND_PROCESS = 4  # train_loss, val_loss, process_peak_rss_mb, process_cpu_seconds


@pytest.fixture(scope="module")
def real() -> AnomalyResult:
    series, labels = planted(clean_series())
    cfg = AnomalySettings(detector="auto", detectors=("robust_z", "isolation_forest"))
    return detect_anomalies(series, 60, labels, cfg)


def with_f1(result: AnomalyResult, chosen: str, f1: dict[str, float]) -> AnomalyResult:
    """``result`` as if the detectors of ``f1`` had run, ``chosen`` chosen, with these F1."""
    comparison = pd.DataFrame(
        {"detector": list(f1), "f1": list(f1.values()), "planted_f1": [0.5] * len(f1)}
    )
    metrics = {**result.metrics, "f1": f1[chosen], "planted_f1": 0.5}
    return dataclasses.replace(result, metrics=metrics, comparison=comparison, chosen=chosen)


def test_every_metric_of_the_result_is_in_one_family_table(real):
    fam = families(real.metrics, real.comparison, real.chosen)
    assert set(fam.tables) == {Table.DETECTORS, Table.SPLITS, Table.KINDS, Table.THRESHOLDS}
    assert set(fam.figures) == {t.value for t in fam.tables}
    splits = fam.tables[Table.SPLITS].set_index("split")
    kinds = fam.tables[Table.KINDS].set_index(["split", "kind"])
    thresholds = fam.tables[Table.THRESHOLDS].set_index("component")["threshold_z"]
    cells = splits.notna().sum().sum() + kinds.notna().sum().sum() + len(thresholds)
    per_detector = [k for k in real.metrics if k.startswith("other_")]
    assert cells == len(real.metrics) - len(per_detector) - 1  # and seconds
    m = real.metrics
    assert splits.loc["labels", "f1"] == m["f1"]
    assert splits.loc["planted test copy", "precision"] == m["planted_precision"]
    assert splits.loc["validation copies", "n_label_events"] == m["val_planted_events"]
    assert (
        kinds.loc[("planted test copy", "spike"), "event_recall"]
        == (m["planted_event_recall_spike"])
    )
    assert kinds.loc[("labels", "theft"), "recall"] == m["recall_theft"]
    assert thresholds["point"] == m["threshold_point"]
    detectors = fam.tables[Table.DETECTORS].set_index("detector")
    assert detectors.loc[real.chosen, "seconds"] == m["seconds"]
    for key in per_detector:
        name = next(d for d in detectors.index if key.startswith(f"other_{d}_"))
        assert detectors.loc[name, key.removeprefix(f"other_{name}_")] == m[key], key


def test_the_headline_metrics_fit_the_runs_budget(real):
    metrics = headline_metrics(real, WRITTEN)
    assert len(metrics) <= HEADLINE_BUDGET <= MAX_METRIC_KEYS - LOSS_CURVES_AND_PROCESS
    other = next(d for d in ("robust_z", "isolation_forest") if d != real.chosen)
    table = real.comparison.set_index("detector")
    assert metrics["baseline_f1"] == table.loc[other, "f1"]
    assert metrics["baseline_planted_f1"] == table.loc[other, "planted_f1"]
    assert (
        metrics["f1"] == real.metrics["f1"] and metrics["planted_f1"] == real.metrics["planted_f1"]
    )
    assert (metrics["alerts_raised"], metrics["alerts_new"], metrics["alerts_updated"]) == (7, 5, 2)
    unwritten = headline_metrics(real, AlertsRaised(7))
    assert "alerts_new" not in unwritten and unwritten["alerts_raised"] == 7
    assert headline(real)["anomaly.baseline"] == other


def test_a_learned_detector_that_beats_the_baselines_says_so(real):
    result = with_f1(
        real,
        "lstm_autoencoder",
        {"lstm_autoencoder": 0.7, "robust_z": 0.6, "isolation_forest": 0.65},
    )
    text = describe(result, CONTEXT)
    assert text.startswith(
        "**lstm_autoencoder beats the best simple baseline isolation_forest: F1 0.7 vs 0.65 "
        "on the labelled anomalies of the test days (7.69 % higher).**"
    )
    assert "but the choice is made on validation only" not in text
    tie = with_f1(real, "lstm_autoencoder", {"lstm_autoencoder": 0.6001, "robust_z": 0.6})
    assert verdict(tie).startswith("lstm_autoencoder only ties the simple baseline robust_z")


def test_a_learned_detector_that_loses_to_a_baseline_says_so_plainly(real):
    result = with_f1(
        real,
        "lstm_autoencoder",
        {"lstm_autoencoder": 0.6, "robust_z": 0.666, "isolation_forest": 0.5},
    )
    text = describe(result, CONTEXT)
    first = text.splitlines()[0]
    assert first == (
        "**lstm_autoencoder does not beat the simple baseline robust_z: F1 0.6 vs 0.666 on the "
        "labelled anomalies of the test days (9.91 % lower); robust_z is the better detector on "
        "this data.**"
    )
    assert "robust_z did better on the test days (F1 0.666)" in text


def test_the_description_tells_data_alerts_choice_and_where_to_look(real):
    text = describe(real, CONTEXT)
    for part in ("**Data:**", "**Result:**", "**Alerts:**", "**Chosen:**", "**Look next:**"):
        assert part in text
    assert "8 meters, 60 min readings from series file `fleet.csv`" in text
    assert "7 raised (5 new, 2 updated), written to sql (`sqlite:///alerts.db`) and mongo" in text
    assert "`figures/detectors.png`" in text and real.chosen in text
    assert len(text) <= 1500 and "nan" not in text and "None" not in text
    unwritten = describe(real, dataclasses.replace(CONTEXT, alerts=AlertsRaised(7)))
    assert "7 raised, written to no store" in unwritten


def test_without_labels_the_verdict_compares_on_the_planted_copy(real):
    metrics = {k: v for k, v in real.metrics.items() if not k.startswith(("f1", "precision"))}
    comparison = real.comparison.drop(columns="f1")
    result = dataclasses.replace(real, metrics=metrics, comparison=comparison)
    assert "anomalies planted into a copy of the test days" in verdict(result)
    assert "baseline_f1" not in headline_metrics(result, WRITTEN)
    alone = dataclasses.replace(result, comparison=comparison.iloc[:1])
    assert "no other simple baseline ran" in verdict(alone)
