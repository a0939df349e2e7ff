"""Shared pieces of the damaged-input corpus: a small clean fleet and the outcome checks.

Each source module (``sql_cases``, ``oldexport_cases``, ``mongo_cases``, ``meters_cases``)
builds small damaged inputs from the clean fleet below and asserts the exact outcome of each:
the quarantine rows by (action, reason) of the damaged meter, or the one-line error text, and
that the clean neighbour's profiles are the same as on clean input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd

from meterflow.etl import EtlResult
from meterflow.schemas import QUARANTINE

TZ = "Europe/Rome"
DAYS = ("2024-01-10", "2024-01-11")
CLEAN, DAMAGED, PV = "CLEAN1", "DMG1", "PV1"
METERS = pd.DataFrame(
    {
        "meter_id": [CLEAN, DAMAGED, PV],
        "contractual_power_kw": [3.0, 6.0, 4.0],
        "production_kw": [0.0, 0.0, 3.0],
        "type": ["household", "commercial", "household"],
        "latitude": [42.0, 42.1, 42.2],
        "longitude": [12.0, 12.1, 12.2],
    }
)


def interval_starts(days: tuple[str, ...] = DAYS) -> pd.DatetimeIndex:
    """UTC starts of every 15-min interval of the local ``days``."""
    parts = []
    for day in days:
        start = pd.Timestamp(day).tz_localize(TZ)
        stop = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(TZ)
        parts.append(pd.date_range(start, stop, freq="15min", inclusive="left"))
    out = parts[0]
    for p in parts[1:]:
        out = out.append(p)
    return out.tz_convert("UTC")


def import_kwh(meter: str, n: int) -> np.ndarray:
    """Deterministic import energy (kWh per 15 min) of a meter, well inside its contract."""
    seed = sum(map(ord, meter))
    phase = np.arange(n) * 2 * np.pi / 96
    base = {CLEAN: 0.15, DAMAGED: 0.4, PV: 0.2}.get(meter, 0.1)
    return np.round(base * (1.2 + np.sin(phase + seed % 7)), 4)


def export_kwh(meter: str, n: int) -> np.ndarray:
    """Export energy (kWh per 15 min): midday bell for the PV meter, zero for the others."""
    if meter != PV:
        return np.zeros(n)
    hour = (np.arange(n) % 96) / 4
    return np.round(np.clip(0.5 * np.sin((hour - 7) * np.pi / 10), 0, None), 4)


def quarantine_counts(result: EtlResult, meter: str | None = None) -> dict[tuple[str, str], int]:
    """Rows of the quarantine table by (action, reason), for one meter or all."""
    q = result.quarantine
    if meter is not None:
        q = q.loc[q["meter_id"].astype(str) == meter]
    return dict(Counter(zip(q["action"], q["reason"], strict=True)))


def assert_reconciles(result: EtlResult) -> None:
    """in = kept + quarantined, the contract holds and every row says where it came from."""
    m = result.metrics
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"], m
    QUARANTINE.validate(result.quarantine)
    sourced = result.quarantine["reason"] != "dst_spring_gap"
    located = result.quarantine["location"].astype(str).str.len() > 0
    assert located[sourced].all(), result.quarantine.loc[sourced & ~located].head()


def assert_outcome(
    result: EtlResult,
    expected: Mapping[tuple[str, str], int],
    *,
    clean: EtlResult,
    meter: str = DAMAGED,
) -> None:
    """The damaged meter's quarantine rows are exactly ``expected``; the clean neighbours'
    profiles equal those of the clean run; counts reconcile."""
    assert_reconciles(result)
    assert quarantine_counts(result, meter) == dict(expected)
    for other in (CLEAN, PV):
        got = result.profiles.loc[result.profiles["meter_id"] == other].reset_index(drop=True)
        want = clean.profiles.loc[clean.profiles["meter_id"] == other].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
