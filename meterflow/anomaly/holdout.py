"""The score an anomaly detector gets on held-out readings, which promotion compares a new
model and the champion on: the F1 of its flags against the labelled rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score


def holdout_f1(holdout: pd.DataFrame, output: pd.DataFrame) -> float:
    """F1 of ``output["flagged"]`` (the model's ``predict`` of ``holdout``) against the rows of
    ``holdout`` with a ``label``; NaN when no labelled row is an anomaly."""
    labelled = holdout["label"].notna().to_numpy()
    truth = holdout["label"].to_numpy(dtype=object)[labelled].astype(bool)
    if not truth.any():
        return math.nan
    flagged = np.asarray(output["flagged"], dtype=bool)[labelled]
    return float(f1_score(truth, flagged, zero_division=0))
