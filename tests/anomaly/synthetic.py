"""A small synthetic fleet with planted anomalies of every kind (hourly, naive local time)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TZ = "Europe/Rome"
START = "2024-01-01"  # a Monday; winter: Rome = UTC+1
N_DAYS = 126  # 0.7/0.1/0.2 -> 88 training, 13 validation and 25 test days
TEST_DAY = 101  # first test day
VAL_DAY = 88
HOURS = np.arange(24)
SHAPE = 0.4 + 0.5 * np.exp(-(((HOURS - 8) / 1.5) ** 2)) + np.exp(-(((HOURS - 20) / 2.5) ** 2))


def clean_series(n_meters: int = 8, seed: int = 3) -> pd.DataFrame:
    """Daily-periodic load with a weekend rhythm, a slow trend every meter shares and 5 %
    noise: long table ``meter_id, timestamp, value`` (Wh per hour)."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(START, periods=N_DAYS * 24, freq="h")
    day = np.arange(N_DAYS * 24) // 24
    weekend = np.where(stamps.dayofweek >= 5, 1.25, 1.0)
    trend = 1.0 + 0.3 * np.sin(day / N_DAYS * np.pi)
    frames = []
    for m in range(n_meters):
        level = rng.uniform(300, 900)
        noise = rng.normal(1.0, 0.05, len(stamps))
        values = np.round(level * SHAPE[stamps.hour] * weekend * trend * noise, 1)
        frames.append(pd.DataFrame({"meter_id": f"M{m:02d}", "timestamp": stamps, "value": values}))
    return pd.concat(frames, ignore_index=True)


# (meter, kind, first day, first hour, hours, factor); flat_line holds the first reading
PLANTED = (
    ("M00", "spike", TEST_DAY + 5, 19, 1, 4.0),
    ("M01", "flat_line", TEST_DAY + 8, 9, 10, 1.0),
    ("M02", "level_shift", TEST_DAY + 12, 0, 5 * 24, 0.6),
    ("M03", "theft", TEST_DAY + 3, 0, 10 * 24, 0.3),
    ("M05", "spike", VAL_DAY + 4, 12, 1, 4.0),
    ("M06", "flat_line", VAL_DAY + 6, 2, 12, 1.0),
)
CLEAN_METERS = ("M04", "M07")


def planted(series: pd.DataFrame, scale: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``series`` with the ``PLANTED`` anomalies (spikes and shifts ``scale`` times as
    strong) and their labels in UTC."""
    out = series.copy()
    labels = []
    for meter, kind, day, hour, hours, factor in PLANTED:
        start = pd.Timestamp(START) + pd.Timedelta(days=day, hours=hour)
        rows = out.index[
            (out["meter_id"] == meter)
            & (out["timestamp"] >= start)
            & (out["timestamp"] < start + pd.Timedelta(hours=hours))
        ]
        if kind == "flat_line":
            out.loc[rows, "value"] = out.loc[rows[0], "value"]
        else:
            out.loc[rows, "value"] *= factor**scale if factor < 1 else factor * scale
        bounds = pd.DatetimeIndex([start, start + pd.Timedelta(hours=hours)])
        utc = bounds.tz_localize(TZ).tz_convert("UTC")
        labels.append((meter, kind, utc[0], utc[1], factor))
    columns = ["meter_id", "kind", "start_utc", "end_utc", "magnitude"]
    return out, pd.DataFrame(labels, columns=columns)
