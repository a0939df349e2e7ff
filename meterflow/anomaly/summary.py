"""The anomaly run's story for the MLflow UI: its headline metrics (at most ``HEADLINE_BUDGET``
keys; every family of numbers is a table, ``families``), its tags and its Markdown description:
the verdict first (the chosen detector against the best simple baseline), then the data, the
result, the alerts raised and where they were written, the choice and what to open next.
Pure: numbers in, text out."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from meterflow.anomaly.detection import AnomalyResult
from meterflow.prose import count, description, num, percent

BASELINES = ("robust_z", "isolation_forest")  # the simple detectors a learned one must beat
# the chosen detector's metrics logged under their own names (the pipeline run and the Model
# Registry read f1, auc_pr, event_recall, planted_f1 and planted_event_recall)
HEADLINE_KEYS = (
    "f1", "precision", "recall", "event_recall", "auc_pr", "false_alarms_per_meter_month",
    "flagged_share", "planted_f1", "planted_precision", "planted_event_recall",
)  # fmt: skip
HEADLINE_BUDGET = 16  # of a run's 20 metric keys: train_loss, val_loss and process_* are the rest
KIND_PREFIX = "planted_event_recall_"
WEAK_RECALL = 0.5  # a kind of planted anomaly found less often than this is weak
LOOK_NEXT = (
    "`figures/detectors.png`",
    "`figures/kinds.png`",
    "`figures/scores_over_time.png`",
    "`previews/splits.csv`",
    "`previews/alerts.csv`",
)


@dataclass(frozen=True)
class AlertsRaised:
    """The run's alerts and what writing them did (``new``/``updated``: the first store's,
    None when they were not written; ``sinks``: (name, where) of each store written)."""

    raised: int
    new: int | None = None
    updated: int | None = None
    sinks: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunContext:
    """What the description tells beyond the result: the input, the budget, the alerts."""

    source: str  # e.g. "profiles run 0123abcd" or "series file load.csv"
    resolution_min: int
    budget: float  # false alarms per meter-month the thresholds may spend
    alerts: AlertsRaised
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rival:
    """The best simple baseline other than the chosen detector, on one metric."""

    name: str
    value: float


def best_baseline(comparison: pd.DataFrame, chosen: str, metric: str) -> Rival | None:
    """The simple baseline (``BASELINES``) other than ``chosen`` with the best ``metric`` in
    the comparison table; None when none ran or the metric is not measured."""
    table = comparison.set_index("detector")
    if metric not in table.columns:
        return None
    others = [d for d in table.index if d in BASELINES and d != chosen]
    values = table.loc[others, metric].astype(float).dropna()
    if values.empty:
        return None
    return Rival(str(values.idxmax()), float(values.max()))


def verdict_metric(metrics: dict[str, float]) -> tuple[str, str]:
    """The F1 the verdict compares on and what it is measured against: the labels when the test
    days have labelled anomalies, else the anomalies planted into a copy of them."""
    if "f1" in metrics:
        return "f1", "the labelled anomalies of the test days"
    return "planted_f1", "anomalies planted into a copy of the test days"


def headline_metrics(result: AnomalyResult, alerts: AlertsRaised) -> dict[str, float]:
    """The run's metrics: the chosen detector's headlines, the best simple baseline's F1 beside
    them (``baseline_f1``, ``baseline_planted_f1``) and the alerts raised, new and updated."""
    m = result.metrics
    out = {k: m[k] for k in HEADLINE_KEYS if k in m}
    for metric in ("f1", "planted_f1"):
        rival = best_baseline(result.comparison, result.chosen, metric)
        if rival is not None and metric in m:
            out[f"baseline_{metric}"] = rival.value
    out["alerts_raised"] = float(alerts.raised)
    if alerts.new is not None and alerts.updated is not None:
        out |= {"alerts_new": float(alerts.new), "alerts_updated": float(alerts.updated)}
    return out


def headline(result: AnomalyResult) -> dict[str, str]:
    """Tags of the run: the chosen detector, the best simple baseline it is compared with and
    the kinds the planted test copy mostly missed."""
    kinds = {
        k[len(KIND_PREFIX) :]: v for k, v in result.metrics.items() if k.startswith(KIND_PREFIX)
    }
    rival = best_baseline(result.comparison, result.chosen, verdict_metric(result.metrics)[0])
    return {
        "anomaly.detector": result.chosen,
        "anomaly.baseline": rival.name if rival else "none",
        "anomaly.weak_kinds": ",".join(weak_kinds(kinds)) or "none",
    }


def weak_kinds(recall_by_kind: dict[str, float]) -> list[str]:
    """The kinds found less often than ``WEAK_RECALL``, sorted."""
    return sorted(k for k, v in recall_by_kind.items() if pd.notna(v) and v < WEAK_RECALL)


def describe(result: AnomalyResult, ctx: RunContext) -> str:
    """Markdown for the run's description (see the module docstring)."""
    bullets = [
        ("Data", _data(result, ctx)),
        ("Result", _result(result)),
        ("Alerts", _alerts(ctx.alerts)),
        ("Chosen", _chosen(result, ctx.budget)),
        ("Look next", f"{', '.join(LOOK_NEXT)}."),
        *(("Warning", w) for w in ctx.warnings),
    ]
    return description(verdict(result), bullets)


def verdict(result: AnomalyResult) -> str:
    """One sentence: the chosen detector's F1 against the best simple baseline's, saying
    plainly when it does not beat it."""
    metric, what = verdict_metric(result.metrics)
    chosen, mine = result.chosen, result.metrics.get(metric, math.nan)
    rival = best_baseline(result.comparison, chosen, metric)
    if rival is None:
        return f"{chosen}: F1 {num(mine)} on {what}; no other simple baseline ran to compare with."
    gap = (mine - rival.value) / rival.value if rival.value else math.nan
    scores = f"F1 {num(mine)} vs {num(rival.value)} on {what}"
    if num(mine) == num(rival.value):  # equal to the digits shown
        return f"{chosen} only ties the simple baseline {rival.name}: {scores}."
    if mine > rival.value:
        higher = f"({percent(gap)} higher)"
        return f"{chosen} beats the best simple baseline {rival.name}: {scores} {higher}."
    return (
        f"{chosen} does not beat the simple baseline {rival.name}: {scores} "
        f"({percent(-gap)} lower); "
        f"{rival.name} is the better detector on this data."
    )


def _data(result: AnomalyResult, ctx: RunContext) -> str:
    split, scores = result.split, result.scores
    train, val, test = split.n_days
    last = f"{scores['timestamp'].max():%Y-%m-%d}" if len(scores) else "n/a"
    return (
        f"{scores['meter_id'].nunique()} meters, {ctx.resolution_min} min readings from "
        f"{ctx.source}; {train} training, {val} validation and {test} test days "
        f"(test {split.test_start:%Y-%m-%d} .. {last})."
    )


def _result(result: AnomalyResult) -> str:
    m = result.metrics
    if "f1" in m:
        labelled = (
            f"on {count(m.get('n_label_events'))} labelled anomalies F1 {num(m['f1'])}, precision "
            f"{num(m.get('precision'))}, recall {num(m.get('recall'))}, "
            f"{percent(m.get('event_recall'))} of them found, "
            f"{num(m.get('false_alarms_per_meter_month'))} false alarms per meter-month"
        )
    else:
        labelled = "no labelled anomaly in the test days (the planted copy stands in)"
    rival = best_baseline(result.comparison, result.chosen, "planted_f1")
    beside = f" (best simple baseline {rival.name} {num(rival.value)})" if rival else ""
    kinds = {k[len(KIND_PREFIX) :]: v for k, v in m.items() if k.startswith(KIND_PREFIX)}
    weak = ", ".join(weak_kinds(kinds))
    missed = f" (mostly missed: {weak})" if weak else ""
    return (
        f"{labelled}; on {count(m.get('planted_n_label_events'))} anomalies planted into a copy of "
        f"the test days (the Model Registry's holdout) F1 {num(m.get('planted_f1'))}{beside}, "
        f"precision {num(m.get('planted_precision'))}, "
        f"{percent(m.get('planted_event_recall'))} found{missed}; "
        f"{percent(m.get('flagged_share'))} of the test readings flagged."
    )


def _alerts(alerts: AlertsRaised) -> str:
    if not alerts.sinks:
        return f"{alerts.raised} raised, written to no store (write_alerts off or none configured)."
    where = " and ".join(f"{name} (`{target}`)" for name, target in alerts.sinks)
    return (
        f"{alerts.raised} raised ({alerts.new} new, {alerts.updated} updated), written to {where}."
    )


def _chosen(result: AnomalyResult, budget: float) -> str:
    m, table = result.metrics, result.comparison.set_index("detector")
    text = (
        f"{result.chosen} — {result.reason}; thresholds spend {num(budget)} false alarms per "
        f"meter-month, learned from {count(m.get('val_planted_events'))} anomalies planted into "
        "copies of the validation days."
    )
    metric, _ = verdict_metric(m)
    if metric not in table.columns or table[metric].isna().all():
        return text
    best = str(table[metric].astype(float).idxmax())
    top, mine = float(table.loc[best, metric]), m.get(metric, math.nan)
    if best != result.chosen and top > mine and num(top) != num(mine):
        text += (
            f" {best} did better on the test days (F1 {num(top)}), but the choice is made on "
            "validation only."
        )
    return text
