"""The harmonization step's model: bring new daily profiles to the step's resolution and
normalisation, exactly as the step did for its own table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError
from meterflow.etl.resample import resample_values
from meterflow.schemas import MINUTES_PER_DAY, profile_slot_columns, slot_columns

from .normalize import normalize_values

FINEST_INPUT_MIN = 5  # the finest input slot length the model's signature lists


@dataclass(frozen=True)
class ProfileNormalizer:
    """``predict`` takes a table with ``slot_*`` columns (Wh, any resolution that is a divisor of
    ``resolution_min``) and returns ``slot_*`` columns at ``resolution_min``, normalised."""

    resolution_min: int
    normalization: str

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        cols = profile_slot_columns(df)
        if MINUTES_PER_DAY % len(cols):
            raise SchemaError(f"{len(cols)} slot columns do not divide a day")
        values = resample_values(
            df[cols].to_numpy(dtype=np.float64), MINUTES_PER_DAY // len(cols), self.resolution_min
        )
        out = normalize_values(values, self.normalization)
        return pd.DataFrame(out, columns=slot_columns(out.shape[1]), index=df.index)

    def input_columns(self) -> list[tuple[str, str, bool]]:
        """``(name, MLflow type, required)`` of the input (the model's signature): the slot
        columns of every grid it takes (slot lengths dividing ``resolution_min``, down to
        ``FINEST_INPUT_MIN`` minutes), each optional, since a table holds the slots of one."""
        finest = min(FINEST_INPUT_MIN, self.resolution_min)
        lengths = [
            m for m in range(self.resolution_min, finest - 1, -1) if self.resolution_min % m == 0
        ]
        names = dict.fromkeys(c for m in lengths for c in slot_columns(MINUTES_PER_DAY // m))
        return [(name, "double", False) for name in names]

    def input_example(self) -> pd.DataFrame:
        n = MINUTES_PER_DAY // self.resolution_min
        hours = np.arange(n) * self.resolution_min / 60
        shape = 200 + 300 * np.exp(-((hours - 19) ** 2) / 6) + 150 * np.exp(-((hours - 8) ** 2) / 3)
        return pd.DataFrame([shape], columns=slot_columns(n))
