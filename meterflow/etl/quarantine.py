"""The quarantine/corrections table: every reading dropped, changed or created, with its reason.

Rows follow ``schemas.QUARANTINE`` plus a ``register`` column (import / export / net). Actions:
``dropped`` (the reading is not in the output: counted in readings_quarantined), ``corrected``
(kept with ``new_value``), ``filled`` (created by gap filling; original_value is NaN).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

from meterflow.schemas import QUARANTINE, Action


class Reason(StrEnum):
    """Why a reading is listed in the quarantine/corrections table."""

    # translation at the source edge
    UNKNOWN_METER = "unknown_meter"
    UNKNOWN_TAG = "unknown_tag"
    BAD_QUALITY = "bad_quality"
    MALFORMED_ROW = "malformed_row"
    MISSING_VALUE = "missing_value"
    OFF_GRID = "off_grid_timestamp"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
    COUNTER_BASELINE = "counter_baseline"
    COUNTER_RESET = "counter_reset"
    COUNTER_ROLLOVER = "counter_rollover"
    COUNTER_DECREASE = "counter_decrease"
    COUNTER_GLITCH = "counter_glitch"
    # shared cleaning
    NEGATIVE_ENERGY = "negative_energy"
    DUPLICATE = "duplicate"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    SCALE = "scale"
    OUTLIER = "outlier"
    ACCUMULATED_OVER_GAP = "accumulated_over_gap"
    LONG_GAP = "long_gap"
    GAP = "gap"
    INCOMPLETE_DAY = "incomplete_day"
    DST_FALLBACK_MERGE = "dst_fallback_merge"
    DST_SPRING_GAP = "dst_spring_gap"


QUARANTINE_COLUMNS = [*QUARANTINE.columns, "register"]


def quarantine_frame(
    *,
    meter_id: np.ndarray | pd.Series | pd.Categorical,
    timestamp: np.ndarray | pd.Series | pd.DatetimeIndex,
    source: str,
    original_value: np.ndarray | float,
    new_value: np.ndarray | float,
    action: Action,
    reason: Reason,
    detail: str | np.ndarray | pd.Series,
    register: str | np.ndarray | pd.Series | pd.Categorical,
) -> pd.DataFrame:
    """Build quarantine rows (vectorised; scalars are broadcast)."""
    ts = pd.DatetimeIndex(timestamp)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    n = len(ts)
    df = pd.DataFrame(
        {
            "meter_id": np.asarray(meter_id, dtype=object),
            "timestamp": ts.as_unit("ns"),
            "source": source,
            "original_value": np.broadcast_to(np.asarray(original_value, dtype=float), n),
            "new_value": np.broadcast_to(np.asarray(new_value, dtype=float), n),
            "action": str(action),
            "reason": str(reason),
            "detail": detail if not isinstance(detail, str) else np.full(n, detail, dtype=object),
            "register": register if isinstance(register, str) else np.asarray(register, object),
        },
        index=pd.RangeIndex(n),
    )
    return df[QUARANTINE_COLUMNS]


def empty_quarantine() -> pd.DataFrame:
    """A quarantine table without rows, with the contract's dtypes."""
    return quarantine_frame(
        meter_id=np.array([], dtype=object),
        timestamp=pd.DatetimeIndex([], tz="UTC"),
        source="",
        original_value=np.array([]),
        new_value=np.array([]),
        action=Action.DROPPED,
        reason=Reason.OUTLIER,
        detail=np.array([], dtype=object),
        register=np.array([], dtype=object),
    )


def concat_quarantine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate quarantine pieces, keeping the contract's dtypes when all are empty."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_quarantine()
    out = pd.concat(parts, ignore_index=True)
    for col in ("meter_id", "source", "action", "reason", "detail", "register"):
        out[col] = out[col].astype(object)
    return out[QUARANTINE_COLUMNS]
