"""The anomaly run's families of numbers, each one table and one figure: one row per split the
chosen detector was evaluated on (``splits``), per split and anomaly kind (``kinds``), per
evidence component (``thresholds``) and per detector (``detectors``, the result's comparison).
Every number of ``AnomalyResult.metrics`` lands in one of them, so the run logs only its
headlines as metrics. Pure: metrics in, tables and figures out."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from meterflow.anomaly import figures
from meterflow.schemas import Table

# split -> the prefix of its metrics (a metric's split: the longest prefix it starts with)
SPLITS = {
    "labels": "",
    "planted test copy": "planted_",
    "validation copies": "val_planted_",
}
# metrics of a split whose name does not carry its split's prefix -> (split, column)
RENAMED = {
    "val_planted_events": ("validation copies", "n_label_events"),
    "val_false_days_per_meter_month": ("validation copies", "false_days_per_meter_month"),
}
# per-kind metric prefixes (after the split's prefix) -> the kinds table's column
KIND_METRICS = {"event_recall_": "event_recall", "recall_": "recall"}
THRESHOLD_PREFIX = "threshold_"
DETECTOR_ONLY = ("other_", "seconds")  # per-detector numbers: in the detectors table
EVALUATION_ORDER = (
    "split", "f1", "precision", "recall", "event_recall", "auc_pr", "auc_roc",
    "false_alarms_per_meter_month", "flagged_share", "n_events", "n_label_events",
)  # fmt: skip


@dataclass(frozen=True)
class Families:
    """The run's families: one table and one figure each, by table name (the figure's too)."""

    tables: dict[Table, pd.DataFrame]
    figures: dict[str, Figure]


def families(metrics: dict[str, float], comparison: pd.DataFrame, chosen: str) -> Families:
    """The tables and figures of the families of ``metrics`` (the chosen detector's) and of
    ``comparison`` (one row per detector)."""
    splits, kinds = evaluation_table(metrics), kinds_table(metrics)
    thresholds = thresholds_table(metrics)
    tables = {
        Table.DETECTORS: comparison,
        Table.SPLITS: splits,
        Table.KINDS: kinds,
        Table.THRESHOLDS: thresholds,
    }
    figs = {
        Table.DETECTORS.value: figures.detector_bars(comparison, chosen),
        Table.SPLITS.value: figures.split_bars(splits),
        Table.KINDS.value: figures.kind_bars(kinds),
        Table.THRESHOLDS.value: figures.threshold_bars(thresholds),
    }
    return Families(tables, figs)


def evaluation_table(metrics: dict[str, float]) -> pd.DataFrame:
    """One row per split the chosen detector was evaluated on (labels, the planted test copy,
    the validation copies), its overall metrics as columns (NaN where a split lacks one)."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        where = _evaluation_cell(key)
        if where is not None:
            rows.setdefault(where[0], {})[where[1]] = value
    table = pd.DataFrame([{"split": split, **rows[split]} for split in SPLITS if split in rows])
    if table.empty:
        return pd.DataFrame({"split": pd.Series(dtype=str)})
    first = [c for c in EVALUATION_ORDER if c in table.columns]
    return table[first + sorted(c for c in table.columns if c not in first)]


def kinds_table(metrics: dict[str, float]) -> pd.DataFrame:
    """One row per split and anomaly kind: the share of its anomalies found (``event_recall``)
    and of their readings flagged (``recall``)."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in metrics.items():
        split, rest = _split_of(key)
        for prefix, column in KIND_METRICS.items():
            if rest.startswith(prefix):
                cells.setdefault((split, rest[len(prefix) :]), {})[column] = value
                break
    rows = [{"split": s, "kind": k, **v} for (s, k), v in cells.items()]
    table = pd.DataFrame(rows, columns=["split", "kind", "event_recall", "recall"])
    order = table["split"].map({s: i for i, s in enumerate(SPLITS)})
    return (
        table.assign(_order=order)
        .sort_values(["_order", "kind"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def thresholds_table(metrics: dict[str, float]) -> pd.DataFrame:
    """One row per evidence component: its threshold (z) learned on validation."""
    rows = [
        {"component": k[len(THRESHOLD_PREFIX) :], "threshold_z": v}
        for k, v in metrics.items()
        if k.startswith(THRESHOLD_PREFIX)
    ]
    return pd.DataFrame(rows, columns=["component", "threshold_z"])


def _split_of(key: str) -> tuple[str, str]:
    """The split of a metric and its name without the split's prefix."""
    split = max((s for s, p in SPLITS.items() if key.startswith(p)), key=lambda s: len(SPLITS[s]))
    return split, key[len(SPLITS[split]) :]


def _evaluation_cell(key: str) -> tuple[str, str] | None:
    """The (split, column) of an overall metric in the evaluation table, None for the metrics
    of another family (per kind, per component, per detector)."""
    if key in RENAMED:
        return RENAMED[key]
    if key.startswith(THRESHOLD_PREFIX) or key.startswith(DETECTOR_ONLY):
        return None
    split, rest = _split_of(key)
    if any(rest.startswith(prefix) for prefix in KIND_METRICS):
        return None
    return split, rest
