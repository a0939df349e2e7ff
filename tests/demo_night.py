"""A realistic night for the report tests: the numbers and table layouts of a 200-meter demo
night (three sources, two clusters, a combination forecaster, 110 alerts), one ETL step reused."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.errors import MeterflowError
from meterflow.orchestration.steps import PROMOTED, pipeline_steps
from meterflow.orchestration.story import REUSED, RUN, ChildRun, Night, StepOutcome, promotions

STEPS = tuple(s.name for s in pipeline_steps())
EXPERIMENT = "1"
CHILDREN = {
    "load_newmongo": ChildRun({"documents": 303239.0}),
    "etl_newmongo": ChildRun(
        {"readings_in": 606478.0, "readings_kept": 598560.0, "readings_quarantined": 7918.0,
         "meter_days_out": 3122.0}
    ),
    "etl_sql": ChildRun(
        {"readings_in": 6960568.0, "readings_kept": 6889075.0, "readings_quarantined": 71493.0,
         "meter_days_out": 35965.0}
    ),
    "etl_oldmongo": ChildRun(
        {"readings_in": 7003794.0, "readings_kept": 6945546.0, "readings_quarantined": 58248.0,
         "meter_days_out": 36216.0}
    ),
    "harmonization": ChildRun({"profiles": 74527.0, "meters": 200.0}),
    "clustering": ChildRun({"k": 2.0, "silhouette": 0.6854}),
    "forecasting": ChildRun(
        {"test_mae": 382.02, "skill_vs_best_baseline": 0.01497},
        {"forecasting.best_baseline": "dshw", "forecasting.model": "combination"},
    ),
    "anomaly": ChildRun({"f1": 0.632, "n_events": 110.0}, {"anomaly.detector": "lstm_autoencoder"}),
}  # fmt: skip
DURATIONS = dict(zip(STEPS, (19.9, 10.1, 0.04, 22.8, 10.2, 35.5, 177.0, 135.5), strict=True))


def run_id(step: str) -> str:
    return f"{STEPS.index(step) + 1:032x}"


def night(**changes: object) -> Night:
    """The demo night; ``changes`` replace its fields."""
    outcomes = tuple(
        StepOutcome(s, REUSED if s == "etl_sql" else RUN, run_id(s), DURATIONS[s]) for s in STEPS
    )
    decided = pd.DataFrame(
        [
            ("clustering", True, "first version"),
            ("forecasting", True, "mae 362 beats the champion's 390 by 1.0%"),
            ("anomaly", False, "f1 0.448 does not beat the champion's 0.452 by 1.0%"),
        ],
        columns=["step", "promote", "reason"],
    )
    fields = {
        "entry_point": "retrain",
        "experiment_id": EXPERIMENT,
        "day": "2026-12-07",
        "outcomes": outcomes,
        "planned": STEPS,
        "children": CHILDREN,
        "promotions": promotions(decided, PROMOTED, outcomes, promote=True),
        "alerts": 110,
        "duration_s": 304.1,
    }
    return Night(**{**fields, **changes})


def _alerts(rng: np.random.Generator) -> pd.DataFrame:
    kinds = rng.choice(["spike", "level_shift", "flat_line", "theft"], size=110)
    start = pd.Timestamp("2025-08-01") + pd.to_timedelta(rng.integers(0, 24 * 70, 110), "h")
    return pd.DataFrame(
        {
            "alert_id": [f"MTR{i:04d}:{k}" for i, k in enumerate(kinds)],
            "run_id": run_id("anomaly"),
            "detector": "lstm_autoencoder",
            "meter_id": [f"MTR{m:04d}" for m in rng.integers(1, 200, 110)],
            "start": start,
            "end": start + pd.Timedelta("3h"),
            "kind": kinds,
            "peak_score": rng.gamma(2.0, 1.5, 110),
            "n_flagged": rng.integers(1, 200, 110),
        }
    )


def _corrections(scale: int) -> pd.DataFrame:
    rows = [
        ("dropped", "incomplete_day", 53884), ("dropped", "duplicate", 3159),
        ("dropped", "conflicting_duplicate", 707), ("dropped", "outlier", 498),
        ("corrected", "scale", 539062), ("filled", "gap", 7926),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["action", "reason", "count"])
    frame["count"] = frame["count"] // scale
    return frame


def tables() -> dict[tuple[str, str], pd.DataFrame]:
    """The tables the report reads, by (run id, name)."""
    rng = np.random.default_rng(7)
    hours = np.arange(24)
    evening = 0.1 + 0.15 * np.exp(-((hours - 19) ** 2) / 8)
    midday = 0.12 - 0.3 * np.exp(-((hours - 12) ** 2) / 10)
    centers = pd.DataFrame([evening, midday], columns=[f"slot_{h:02d}" for h in hours])
    centers.insert(0, "cluster", [0, 1])
    sizes = pd.DataFrame(
        {"cluster": [0, 1], "profiles": [61910, 12617], "share": [0.8307, 0.1693],
         "meters": [200, 44], "name": ["evening peak", "midday dip (solar)"]}
    )  # fmt: skip
    names = ["combination", "dshw", "lstm", "seasonal_naive_week", "linear", "persistence"]
    maes = [382.0, 387.8, 419.4, 553.0, 578.4, 1804.0]
    candidates = pd.DataFrame(
        {"candidate": names, "role": ["combination", "baseline", "model", *["baseline"] * 3],
         "kept": [True, *[False] * 5], "val_mae": np.array(maes) * 1.01, "test_mae": maes,
         "test_rmse": np.array(maes) * 2.8}
    )  # fmt: skip
    by_step = pd.DataFrame(
        [(m, s, mae * (0.6 + 0.4 * (1 - np.exp(-s / 4))))
         for m, mae in zip(names[:3], maes[:3], strict=True) for s in range(1, 25)],
        columns=["model", "step", "mae"],
    )  # fmt: skip
    return {
        (run_id("etl_newmongo"), "corrections_summary"): _corrections(10),
        (run_id("etl_sql"), "corrections_summary"): _corrections(1),
        (run_id("etl_oldmongo"), "corrections_summary"): _corrections(1),
        (run_id("clustering"), "cluster_sizes"): sizes,
        (run_id("clustering"), "centers"): centers,
        (run_id("forecasting"), "candidates"): candidates,
        (run_id("forecasting"), "error_by_step"): by_step,
        (run_id("anomaly"), "alerts"): _alerts(rng),
    }


def reader(available: dict[tuple[str, str], pd.DataFrame]):
    """A table reader over ``available`` that fails like the tracking store's for the rest."""

    def read(run: str, name: str) -> pd.DataFrame:
        if (run, name) not in available:
            raise MeterflowError(f"run {run} has no table {name!r}")
        return available[(run, name)]

    return read
