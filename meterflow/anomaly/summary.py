"""The anomaly run's description for the MLflow UI: what was scored, which detector and why,
its thresholds, and how well it found planted and labelled anomalies. Pure: text out."""

from __future__ import annotations

import pandas as pd

from meterflow.anomaly.detection import AnomalyResult

KIND_PREFIX = "planted_event_recall_"


def describe(result: AnomalyResult, budget: float, warnings: list[str]) -> str:
    """Markdown for the run's description (see the module docstring)."""
    m, split = result.metrics, result.split
    scores = result.scores
    lines = [
        f"Anomalies in the readings of {scores['meter_id'].nunique()} meter(s), test days "
        f"{split.test_start:%Y-%m-%d} .. {scores['timestamp'].max():%Y-%m-%d} "
        f"({split.n_days[2]} days): **{len(result.events)} event(s) flagged**.",
        f"Detector **{result.chosen}** — {result.reason}.",
        "Thresholds (z): "
        + ", ".join(f"{k} {v:.2f}" for k, v in result.predictor.thresholds.items())
        + f" — learned from {m.get('val_planted_events', 0):.0f} anomalies planted into copies"
        f" of the validation days, within {budget:g} false alarms per meter-month.",
        _planted_line(m),
        _labelled_line(m),
        _rival_line(result),
        *warnings,
    ]
    return "\n\n".join(line for line in lines if line)


def _planted_line(m: dict[str, float]) -> str:
    kinds = sorted(k for k in m if k.startswith(KIND_PREFIX))
    per_kind = ", ".join(f"{k[len(KIND_PREFIX) :]} {m[k]:.2f}" for k in kinds)
    return (
        f"On a copy of the test days with planted anomalies (the Model Registry's holdout): "
        f"F1 {m.get('planted_f1', float('nan')):.3f}, anomalies found "
        f"{m.get('planted_event_recall', float('nan')):.2f} ({per_kind}), false alarms "
        f"{m.get('planted_false_alarms_per_meter_month', float('nan')):.2f} per meter-month."
    )


def _labelled_line(m: dict[str, float]) -> str:
    if "f1" not in m:
        return (
            "No labelled anomaly in the test days: F1 against real anomalies is not measured "
            "(the planted copy stands in)."
        )
    return (
        f"Against the labels: F1 {m['f1']:.3f}, precision {m['precision']:.3f}, recall "
        f"{m['recall']:.3f}, labelled anomalies found {m.get('event_recall', 0.0):.2f}, false "
        f"alarms {m['false_alarms_per_meter_month']:.2f} per meter-month."
    )


def _rival_line(result: AnomalyResult) -> str:
    """Says so when another detector did better on the test copy or the labels."""
    table = result.comparison.set_index("detector")
    out = []
    for metric, what in (("planted_f1", "the planted test copy"), ("f1", "the labels")):
        if metric not in table or table[metric].isna().all():
            continue
        best = table[metric].astype(float).idxmax()
        if best != result.chosen and table.loc[best, metric] > table.loc[result.chosen, metric]:
            out.append(
                f"On {what}, **{best}** did better (F1 {table.loc[best, metric]:.3f} against "
                f"{table.loc[result.chosen, metric]:.3f}); it was not chosen because the choice "
                "is made on validation only."
            )
    return " ".join(out)


def headline(result: AnomalyResult) -> dict[str, str]:
    """Tags of the run: the chosen detector and the kinds the planted test copy missed."""
    kinds = {
        k[len(KIND_PREFIX) :]: v for k, v in result.metrics.items() if k.startswith(KIND_PREFIX)
    }
    missed = sorted(k for k, v in kinds.items() if pd.notna(v) and v < 0.5)
    return {
        "anomaly.detector": result.chosen,
        "anomaly.weak_kinds": ",".join(missed) or "none",
    }
