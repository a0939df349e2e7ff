"""Small synthetic fleets the forecasting tests share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.schemas import slot_columns

SPD = 24


def make_profiles(
    values: np.ndarray, dates: pd.DatetimeIndex, meter: str = "M1", source: str = "sql"
) -> pd.DataFrame:
    """Profiles table of one meter from a (days, slots) array."""
    df = pd.DataFrame(values.astype(np.float64), columns=slot_columns(values.shape[1]))
    df.insert(0, "source", source)
    df.insert(0, "date", pd.DatetimeIndex(dates).astype("datetime64[ns]"))
    df.insert(0, "meter_id", meter)
    return df


def synthetic_fleet(
    n_meters: int = 6, n_days: int = 60, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Periodic daily load with noise and a regional shock, meters on a small map."""
    rng = np.random.default_rng(seed)
    hours = np.arange(SPD)
    shape = 0.4 + 0.5 * np.exp(-(((hours - 8) / 1.5) ** 2)) + np.exp(-(((hours - 20) / 2.5) ** 2))
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    regional = np.cumsum(rng.normal(0, 0.03, n_days * SPD))
    regional = 0.2 * (regional - regional.mean()) / (regional.std() + 1e-9)
    frames, rows = [], []
    for m in range(n_meters):
        level = rng.uniform(300, 900)
        series = level * (
            np.tile(shape, n_days) * (1 + regional) + rng.normal(0, 0.05, n_days * SPD)
        )
        frames.append(make_profiles(series.reshape(n_days, SPD), dates, f"M{m:02d}"))
        rows.append((f"M{m:02d}", 6.0, 0.0, "household", 45.0 + 0.01 * m, 9.0 + 0.02 * (m % 3)))
    columns = ["meter_id", "contractual_power_kw", "production_kw", "type", "latitude", "longitude"]
    meters = pd.DataFrame(rows, columns=columns)
    return pd.concat(frames, ignore_index=True), meters
