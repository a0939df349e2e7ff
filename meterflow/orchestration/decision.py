"""When a new model becomes the champion: scores on one held-out table and the decision.

A new model version (the challenger) and the registry's current champion are both scored with
the same function on the same held-out rows — the challenger's run's ``holdout`` table (and, for
forecasts, the actual values in its ``holdout_truth`` table) — through their pyfunc ``predict``.
The challenger is promoted when it beats the champion by a relative ``margin``; a model that
cannot be scored there (another input layout, no labels) is not promoted, and neither is a
forecaster that loses to one of its own baselines in place of a champion that beats them; the
reason says so. Pure: tables in, numbers and a decision out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from meterflow.anomaly.holdout import holdout_f1
from meterflow.clustering.holdout import holdout_silhouette
from meterflow.forecasting.holdout import holdout_mae
from meterflow.schemas import validate_holdout

# (holdout, the model's output for it, the holdout_truth table or None) -> score
HoldoutScore = Callable[[pd.DataFrame, Any, pd.DataFrame | None], float]


@dataclass(frozen=True)
class Criterion:
    """The held-out score a step's models are compared on, computed next to its model family."""

    metric: str
    higher_is_better: bool
    score: HoldoutScore
    with_truth: bool = False  # scored against its run's ``holdout_truth`` table


CRITERIA = {
    "clustering": Criterion("silhouette", True, lambda h, out, _: holdout_silhouette(h, out)),
    "forecasting": Criterion("mae", False, lambda _, out, truth: holdout_mae(out, truth), True),
    "anomaly": Criterion("f1", True, lambda h, out, _: holdout_f1(h, out)),
}


@dataclass(frozen=True)
class Decision:
    step: str
    metric: str
    challenger: float
    champion: float
    margin: float
    promote: bool
    reason: str

    def row(self) -> dict[str, object]:
        return self.__dict__.copy()


def holdout_score(
    step: str,
    holdout: pd.DataFrame,
    output: pd.DataFrame | np.ndarray,
    truth: pd.DataFrame | None = None,
) -> float:
    """The step's criterion for one model's ``output`` (its pyfunc ``predict`` of ``holdout``,
    which must hold the step's ``HOLDOUT_COLUMNS``: SchemaError otherwise); NaN where it cannot
    be computed (no labels, a single cluster, a held-out target without a finite forecast).
    Forecasts are matched to ``truth`` (``forecast_id, target_time, actual``)."""
    validate_holdout(step, holdout)
    return CRITERIA[step].score(holdout, output, truth)


def agreement(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Adjusted Rand index between two clusterings of the same rows (stability)."""
    return float(adjusted_rand_score(np.ravel(labels_a), np.ravel(labels_b)))


def decide(
    step: str,
    challenger: float,
    champion: float | None,
    margin: float,
    beats_baselines: tuple[bool, bool] = (True, True),
) -> Decision:
    """Promote the challenger when there is no champion, or when it beats the champion's score
    on the same rows by ``margin`` (relative: 0.01 = 1 % better) — unless the champion beats
    its baselines on its run's test split and the challenger does not (``beats_baselines``:
    challenger's, champion's)."""
    crit = CRITERIA[step]
    champ = math.nan if champion is None else champion
    if champion is None:
        return Decision(step, crit.metric, challenger, champ, margin, True, "first version")
    if beats_baselines[1] and not beats_baselines[0]:
        reason = "the new model loses to one of its baselines and the champion does not"
        return Decision(step, crit.metric, challenger, champ, margin, False, reason)
    if not math.isfinite(challenger):
        reason = "the new model has no score on its held-out rows"
        return Decision(step, crit.metric, challenger, champ, margin, False, reason)
    if not math.isfinite(champ):
        reason = "the champion cannot be scored on these held-out rows (kept; promote by hand)"
        return Decision(step, crit.metric, challenger, champ, margin, False, reason)
    better = (
        challenger >= champ + margin * abs(champ)
        if crit.higher_is_better
        else challenger <= champ - margin * abs(champ)
    )
    word = "beats" if better else "does not beat"
    reason = f"{crit.metric} {challenger:.4g} {word} the champion's {champ:.4g} by {margin:.1%}"
    return Decision(step, crit.metric, challenger, champ, margin, better, reason)
