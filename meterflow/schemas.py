"""Table contracts between layers, written down once and checked at each edge.

Every arrow of the pipeline is one of these tables (a Parquet artifact of a step's run):

- readings:   meter_id, timestamp (UTC, start of the interval), energy_wh (import +, export -),
              source, quality
- quarantine: meter_id, timestamp, source, original_value, new_value, action, reason, detail,
              location (where the record sits in its store: file:line, table key, collection _id)
- profiles:   meter_id, date (local calendar day, naive midnight), source, slot_00 ... slot_NN
              (energy in Wh per slot; NN = slots per day - 1, set by the run's resolution)
- meters:     meter_id, contractual_power_kw, production_kw, type, latitude, longitude
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError

MINUTES_PER_DAY = 1440


class Quality(StrEnum):
    """Quality of a reading in the readings table."""

    OK = "ok"
    FILLED = "filled"  # interpolated over a short gap
    CORRECTED = "corrected"  # value changed (scale correction, DST merge)


class Action(StrEnum):
    """What the ETL did to a reading listed in the quarantine/corrections table."""

    DROPPED = "dropped"  # removed from the output
    CORRECTED = "corrected"  # kept with a changed value (new_value holds it)
    FILLED = "filled"  # created by gap filling (original_value is NaN)


class MeterType(StrEnum):
    HOUSEHOLD = "household"
    COMMERCIAL = "commercial"
    AGRICULTURAL = "agricultural"


@dataclass(frozen=True)
class Contract:
    """Column names and dtypes (numpy kinds or exact pandas dtype names) of one table."""

    name: str
    columns: Mapping[str, str]

    def validate(self, df: pd.DataFrame, *, where: str = "") -> pd.DataFrame:
        """Raise SchemaError naming the table, the place and the column when ``df`` breaks the
        contract; return ``df`` unchanged otherwise. Extra columns are allowed."""
        at = f" in {where}" if where else ""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise SchemaError(f"{self.name} table{at} lacks column(s) {missing}")
        for col, kind in self.columns.items():
            if not _dtype_matches(df[col], kind):
                raise SchemaError(
                    f"{self.name} table{at}: column {col!r} has dtype {df[col].dtype}, "
                    f"expected {kind}"
                )
        return df


def _dtype_matches(s: pd.Series, kind: str) -> bool:
    if kind == "utc":
        return isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dtype.tz) == "UTC"
    if kind == "naive_datetime":
        return pd.api.types.is_datetime64_dtype(s.dtype) and not isinstance(
            s.dtype, pd.DatetimeTZDtype
        )
    if kind == "float":
        return pd.api.types.is_float_dtype(s.dtype)
    if kind == "int":
        return pd.api.types.is_integer_dtype(s.dtype)
    if kind == "str":
        return (
            pd.api.types.is_string_dtype(s.dtype)
            or isinstance(s.dtype, pd.CategoricalDtype)
            or s.dtype == object
        )
    raise ValueError(f"unknown dtype kind {kind!r}")


READINGS = Contract(
    "readings",
    {
        "meter_id": "str",
        "timestamp": "utc",
        "energy_wh": "float",
        "source": "str",
        "quality": "str",
    },
)

QUARANTINE = Contract(
    "quarantine",
    {
        "meter_id": "str",
        "timestamp": "utc",
        "source": "str",
        "original_value": "float",
        "new_value": "float",
        "action": "str",
        "reason": "str",
        "detail": "str",
        "location": "str",
    },
)

METERS = Contract(
    "meters",
    {
        "meter_id": "str",
        "contractual_power_kw": "float",
        "production_kw": "float",
        "type": "str",
        "latitude": "float",
        "longitude": "float",
    },
)

PROFILE_KEYS = ("meter_id", "date", "source")
PROFILES_KEYS = Contract("profiles", {"meter_id": "str", "date": "naive_datetime", "source": "str"})


def slots_per_day(resolution_min: int) -> int:
    """Number of slots in a day at ``resolution_min`` minutes; the resolution must divide a day."""
    if resolution_min <= 0 or MINUTES_PER_DAY % resolution_min:
        raise SchemaError(
            f"resolution {resolution_min} min does not divide a day ({MINUTES_PER_DAY} min)"
        )
    return MINUTES_PER_DAY // resolution_min


def slot_columns(n_slots: int) -> list[str]:
    """Profile value columns ``slot_00`` ... zero-padded to a common width (at least 2)."""
    width = max(2, len(str(n_slots - 1)))
    return [f"slot_{i:0{width}d}" for i in range(n_slots)]


def profile_slot_columns(df: pd.DataFrame) -> list[str]:
    """The slot columns of a profiles table, in order."""
    cols = [c for c in df.columns if c.startswith("slot_")]
    if not cols:
        raise SchemaError("profiles table has no slot_* columns")
    return sorted(cols, key=lambda c: int(c[5:]))


def validate_profiles(df: pd.DataFrame, *, where: str = "") -> pd.DataFrame:
    """Check keys, slot columns (consecutive, float, a divisor of a day) and key uniqueness."""
    PROFILES_KEYS.validate(df, where=where)
    cols = profile_slot_columns(df)
    at = f" in {where}" if where else ""
    if cols != slot_columns(len(cols)):
        raise SchemaError(f"profiles table{at}: slot columns are not consecutive slot_00..")
    if MINUTES_PER_DAY % len(cols):
        raise SchemaError(f"profiles table{at}: {len(cols)} slots do not divide a day")
    bad = [c for c in cols if not pd.api.types.is_float_dtype(df[c].dtype)]
    if bad:
        raise SchemaError(f"profiles table{at}: non-float slot column(s) {bad[:3]}")
    dup = df.duplicated(list(PROFILE_KEYS))
    if dup.any():
        row = df.loc[dup].iloc[0]
        raise SchemaError(
            f"profiles table{at}: duplicate key meter={row['meter_id']} date={row['date']:%Y-%m-%d}"
            f" source={row['source']}"
        )
    return df


def empty(contract: Contract) -> pd.DataFrame:
    """An empty table with the contract's columns and dtypes."""
    dtypes = {
        "utc": "datetime64[ns, UTC]",
        "naive_datetime": "datetime64[ns]",
        "float": "float64",
        "int": "int64",
        "str": "object",
    }
    return pd.DataFrame({c: pd.Series(dtype=dtypes[k]) for c, k in contract.columns.items()})


def profile_matrix(df: pd.DataFrame, columns: Iterable[str] | None = None) -> np.ndarray:
    """The slot values of a profiles table as a C-contiguous float64 array (rows x slots)."""
    cols = list(columns) if columns is not None else profile_slot_columns(df)
    return np.ascontiguousarray(df[cols].to_numpy(dtype=np.float64))
