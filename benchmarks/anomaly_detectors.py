"""Benchmark: every anomaly detector on the demo fleet's labelled anomalies, side by side.

Reads the newest finished harmonization run of the local tracking store (``make demo`` first)
and ``data/ground_truth/anomalies.csv``; runs each detector with the step's defaults
(thresholds learned from anomalies planted into the validation days, ``detector=auto``) on the
same chronological split, and prints which detector auto chose and one markdown table: F1,
precision, recall, AUC-PR, event recall per anomaly kind, false alarms per meter-month, F1 on
the planted test copy and seconds, with F1 and seconds also as ratios to the reference detector
run in the same process (``robust_z``, the cheapest)::

    python benchmarks/anomaly_detectors.py [--windowed false] [--detectors a,b]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from meterflow import tracking
from meterflow.anomaly.detection import AnomalySettings, detect_anomalies
from meterflow.anomaly.registry import DETECTORS
from meterflow.domain import MINUTES_PER_DAY
from meterflow.schemas import Table, profile_slot_columns
from meterflow.series.fleet import profiles_to_series
from meterflow.settings import Environment
from meterflow.sources.labels import read_labels

REFERENCE = "robust_z"
COLUMNS = ("f1", "precision", "recall", "auc_pr", "event_recall")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--windowed", default="true", choices=("true", "false"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    env = Environment.from_env()
    tracking.configure(env)
    run = tracking.latest_run_id("harmonization")
    profiles = tracking.load_table(run, Table.PROFILES)
    resolution = MINUTES_PER_DAY // len(profile_slot_columns(profiles))
    labels = read_labels(Path(env.truth_dir / "anomalies.csv"))
    names = [REFERENCE] + [d for d in args.detectors.split(",") if d and d != REFERENCE]
    cfg = AnomalySettings(detectors=tuple(names), windowed=args.windowed == "true")
    result = detect_anomalies(profiles_to_series(profiles), resolution, labels, cfg)
    print(f"detector=auto chose {result.chosen}: {result.reason}\n")
    print(markdown(result.comparison))


def markdown(comparison: pd.DataFrame) -> str:
    """The comparison table with ratios to the reference detector's F1 and seconds."""
    table = comparison.set_index("detector")
    kinds = sorted(c for c in table.columns if c.startswith("event_recall_"))
    extra = ["false_alarms_per_meter_month", "planted_f1", "seconds"]
    out = table[[*COLUMNS, *kinds, *extra]].copy()
    out["f1 / ref"] = out["f1"] / out.loc[REFERENCE, "f1"]
    out["seconds / ref"] = out["seconds"] / out.loc[REFERENCE, "seconds"]
    header = ["detector", *out.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in out.iterrows():
        lines.append("| " + " | ".join([str(name), *(f"{v:.3g}" for v in row)]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
