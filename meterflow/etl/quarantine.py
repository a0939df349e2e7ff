"""The quarantine/corrections table: every reading dropped, changed or created, with its reason.

Rows follow ``schemas.QUARANTINE`` plus a ``register`` column (import / export / net). Actions:
``dropped`` (the reading is not in the output: counted in readings_quarantined), ``corrected``
(kept with ``new_value``), ``filled`` (created by gap filling; original_value is NaN).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from meterflow.schemas import QUARANTINE, Action


class Reason(StrEnum):
    """Why a reading is listed in the quarantine/corrections table (meanings: REASON_MEANING)."""

    # translation at the source edge
    MISSING_KEY = "missing_key"
    UNKNOWN_METER = "unknown_meter"
    METER_MISMATCH = "meter_mismatch"
    UNKNOWN_TAG = "unknown_tag"
    BAD_QUALITY = "bad_quality"
    MALFORMED_ROW = "malformed_row"
    MALFORMED_VALUE = "malformed_value"
    COERCED_VALUE = "coerced_value"
    TRUNCATED_LINE = "truncated_line"
    UNREADABLE_FILE = "unreadable_file"
    MISSING_VALUE = "missing_value"
    OFF_GRID = "off_grid_timestamp"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
    AMBIGUOUS_LOCAL_TIME = "ambiguous_local_time"
    COUNTER_BASELINE = "counter_baseline"
    COUNTER_RESET = "counter_reset"
    COUNTER_ROLLOVER = "counter_rollover"
    COUNTER_DECREASE = "counter_decrease"
    COUNTER_GLITCH = "counter_glitch"
    # shared cleaning
    AGGREGATED_INTERVAL = "aggregated_interval"
    INCOMPLETE_INTERVAL = "incomplete_interval"
    COARSE_INTERVAL = "coarse_interval"
    IRREGULAR_INTERVAL = "irregular_interval"
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


REASON_MEANING: dict[Reason, str] = {
    Reason.MISSING_KEY: "meter, tag or time is missing: never filled from a neighbour",
    Reason.UNKNOWN_METER: "meter is not in the meter description table",
    Reason.METER_MISMATCH: "row of a per-meter export names another meter than its file",
    Reason.UNKNOWN_TAG: "historian tag is not <meter>.1.8.0 or <meter>.2.8.0",
    Reason.BAD_QUALITY: "historian OPC quality is bad",
    Reason.MALFORMED_ROW: "row or document cannot be parsed (wrong type, wrong field count)",
    Reason.MALFORMED_VALUE: "value is text that is not a number (raw text in detail)",
    Reason.COERCED_VALUE: "value stored with the wrong type was read unambiguously (detail: how)",
    Reason.TRUNCATED_LINE: "last line of a file without its line end: cut off while written",
    Reason.UNREADABLE_FILE: "file cannot be read as an export (empty, bad header, not CSV)",
    Reason.MISSING_VALUE: "energy or register value is missing or not finite",
    Reason.OFF_GRID: "timestamp not on the raw interval grid",
    Reason.NONEXISTENT_LOCAL_TIME: "local wall-clock time skipped by the spring-forward change",
    Reason.AMBIGUOUS_LOCAL_TIME: "local wall-clock time of the repeated autumn hour that cannot "
    "be placed: not exactly two rows of the series at that time",
    Reason.COUNTER_BASELINE: "first register read of a meter: no interval to difference",
    Reason.COUNTER_RESET: "register restarted near zero (meter replaced)",
    Reason.COUNTER_ROLLOVER: "register wrapped at its rollover value: difference reconstructed",
    Reason.COUNTER_DECREASE: "register went down without a reset, rollover or rebound",
    Reason.COUNTER_GLITCH: "one register read off its trend and back at the next read: ignored",
    Reason.AGGREGATED_INTERVAL: "finer-than-raw reading summed into its raw interval",
    Reason.INCOMPLETE_INTERVAL: "finer-than-raw readings that do not cover their raw interval",
    Reason.COARSE_INTERVAL: "series reports coarser than the raw interval: slots unknown",
    Reason.IRREGULAR_INTERVAL: "series interval does not divide the raw interval",
    Reason.NEGATIVE_ENERGY: "import below zero or export above zero",
    Reason.DUPLICATE: "exact copy of another reading",
    Reason.CONFLICTING_DUPLICATE: "another value for the same interval; detail: the value kept",
    Reason.SCALE: "unit/scale error of the store removed",
    Reason.OUTLIER: "beyond contractual power (import) or production (export)",
    Reason.ACCUMULATED_OVER_GAP: "energy of several intervals in one reading, spread over them",
    Reason.LONG_GAP: "reading spans a gap longer than may be filled",
    Reason.GAP: "value created by gap filling",
    Reason.INCOMPLETE_DAY: "local day without every interval: profiles hold complete days only",
    Reason.DST_FALLBACK_MERGE: "the two occurrences of the repeated hour averaged into one slot",
    Reason.DST_SPRING_GAP: "wall-clock slot skipped by the spring change, filled",
}


def reasons_table() -> pd.DataFrame:
    """Every reason code with its meaning (logged beside the quarantine table)."""
    return pd.DataFrame(
        {"reason": [str(r) for r in Reason], "meaning": [REASON_MEANING[r] for r in Reason]}
    )


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
    location: str | np.ndarray | pd.Series = "",
) -> pd.DataFrame:
    """Build quarantine rows (vectorised; scalars are broadcast). ``location`` says where the
    record sits in its store (``file:line``, historian key, collection ``_id``); it is empty only
    for values the ETL created (DST spring-gap fills)."""
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
            "location": location if isinstance(location, str) else np.asarray(location, object),
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


# text columns with few distinct values, held as categories (sorted, so that any cut of a
# source into meter blocks gives the same table): a year of old exports lists about 2 900
# readings per meter, 440 bytes a row as Python strings against about 60 this way
CATEGORY_COLUMNS = ("meter_id", "source", "action", "reason", "detail", "register")


def concat_quarantine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate quarantine pieces in order, keeping the contract's dtypes when all are empty;
    the text columns come out compact (``CATEGORY_COLUMNS`` as categories, ``location`` as
    Arrow strings)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_quarantine()
    out = pd.concat([p.drop(columns=list(CATEGORY_COLUMNS)) for p in parts], ignore_index=True)
    for col in CATEGORY_COLUMNS:
        pieces = [pd.Categorical(p[col].astype("str")) for p in parts]
        out[col] = union_categoricals(pieces, sort_categories=True)
    out["location"] = out["location"].astype("str")
    return out[QUARANTINE_COLUMNS]
