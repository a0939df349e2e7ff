"""One model per group (scope=cluster): every group's series is forecast by its own model, and
the group models are served together.

``GroupPredictor`` routes each input row to the predictor of its ``meter_id`` (the group's
series id) and returns the rows' forecasts in the input order; ``combine_results`` merges the
groups' evaluations into the step's metrics (pooled over groups, weighted by test windows) with
each group's own metrics under ``<group>/<metric>``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError
from meterflow.forecasting.evaluate import ForecastResult
from meterflow.forecasting.metrics import skill


@dataclass
class GroupPredictor:
    """Predictors by series id, served as one model (same input rows as each of them)."""

    members: dict[str, Any]

    def input_example(self) -> pd.DataFrame:
        return pd.concat([p.input_example() for p in self.members.values()], ignore_index=True)

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        ids = df["meter_id"].astype(str)
        unknown = sorted(set(ids) - set(self.members))
        if unknown:
            raise SchemaError(f"forecast input: no model for series {unknown[:5]}")
        parts = [self.members[i].predict(df.loc[(ids == i).to_numpy()]) for i in ids.unique()]
        order = pd.Series(np.arange(len(df)), index=df.index)
        out = pd.concat(parts)
        return out.iloc[np.argsort(order.loc[out.index].to_numpy(), kind="stable")]


def combine_results(results: dict[str, ForecastResult]) -> ForecastResult:
    """The groups' results as one: pooled metrics, concatenated tables, per-group metrics."""
    first = next(iter(results.values()))
    weights = {g: r.metrics["n_test_windows"] for g, r in results.items()}
    total = sum(weights.values())
    names = set.intersection(*(set(r.metrics) for r in results.values()))
    metrics = {k: sum(results[g].metrics[k] * w for g, w in weights.items()) / total for k in names}
    for key in ("n_test_windows", "n_train_windows", "n_val_windows", "n_series"):
        metrics[key] = sum(r.metrics[key] for r in results.values())
    for name in [k for k in metrics if _baseline_mae(k)]:
        base = name.removeprefix("baseline_").removesuffix("_mae")
        metrics[f"skill_vs_{base}"] = skill(metrics["test_mae"], metrics[name])
    for group, result in results.items():
        metrics.update({f"{group}/{k}": v for k, v in result.metrics.items() if _headline(k)})
    best = min(
        (k.removeprefix("baseline_").removesuffix("_mae") for k in metrics if _baseline_mae(k)),
        key=lambda b: metrics[f"baseline_{b}_mae"],
    )
    metrics["skill_vs_best_baseline"] = metrics[f"skill_vs_{best}"]
    figures = {f"{name}_{g}": f for g, r in results.items() for name, f in r.figures.items()}
    return replace(
        first,
        predictor=GroupPredictor({g: r.predictor for g, r in results.items()}),
        baselines=GroupPredictor({g: r.baselines for g, r in results.items()}),
        metrics=metrics,
        predictions=pd.concat([r.predictions for r in results.values()], ignore_index=True),
        by_step=pd.concat(
            [r.by_step.assign(group=g) for g, r in results.items()], ignore_index=True
        ),
        figures=figures,
        best_baseline=best,
        holdout=pd.concat([r.holdout for r in results.values()], ignore_index=True),
    )


def _baseline_mae(name: str) -> bool:
    return name.startswith("baseline_") and name.endswith("_mae")


def _headline(name: str) -> bool:
    return name in ("test_mae", "test_mape", "test_coverage", "skill_vs_best_baseline") or (
        name.startswith("baseline_") and name.endswith(("_mae", "_mape"))
    )
