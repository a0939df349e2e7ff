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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, f1_score, silhouette_score

from meterflow.schemas import profile_slot_columns

SILHOUETTE_SAMPLE = 2000


@dataclass(frozen=True)
class Criterion:
    """The held-out score a step's models are compared on."""

    metric: str
    higher_is_better: bool


CRITERIA = {
    "clustering": Criterion("silhouette", True),
    "forecasting": Criterion("mae", False),
    "anomaly": Criterion("f1", True),
}
STEPS = tuple(CRITERIA)


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
    """The step's criterion for one model's ``output`` (its pyfunc ``predict`` of ``holdout``);
    NaN where it cannot be computed (no labels, a single cluster, no finite forecast).
    Forecasts are matched to ``truth`` (``forecast_id, target_time, actual``) and must cover
    every held-out target."""
    if step == "forecasting":
        return _forecast_mae(output, truth)
    if step == "anomaly":
        labelled = holdout["label"].notna().to_numpy()
        truth = holdout["label"].to_numpy(dtype=object)[labelled].astype(bool)
        if not truth.any():
            return math.nan
        flagged = np.asarray(output["flagged"], dtype=bool)[labelled]
        return float(f1_score(truth, flagged, zero_division=0))
    labels = np.asarray(output).reshape(-1)
    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return math.nan
    values = holdout[profile_slot_columns(holdout)].to_numpy(dtype=float)
    size = min(SILHOUETTE_SAMPLE, len(values))
    return float(silhouette_score(values, labels, sample_size=size, random_state=0))


def _forecast_mae(output: pd.DataFrame, truth: pd.DataFrame | None) -> float:
    """MAE of the forecasts of every held-out target; NaN if one is missing or not finite."""
    keys = ["forecast_id", "target_time"]
    if truth is None or not set(keys) <= set(getattr(output, "columns", ())):
        return math.nan
    forecasts = output[[*keys, "prediction"]].assign(
        target_time=pd.to_datetime(output["target_time"]).astype("datetime64[ns]")
    )
    wanted = truth.assign(target_time=pd.to_datetime(truth["target_time"]).astype("datetime64[ns]"))
    joined = wanted.merge(forecasts, on=keys, how="left")
    error = (joined["prediction"] - joined["actual"]).to_numpy(dtype=float)
    return float(np.mean(np.abs(error))) if np.isfinite(error).all() and len(error) else math.nan


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
