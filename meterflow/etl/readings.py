"""The readings table as the sources hand it to the cleaning (``schemas.READINGS`` plus extras).

Extra columns, all optional for callers of :func:`make_readings`:

- ``register``: ``import`` or ``export``. Import and export stay separate readings all through the
  cleaning (each has its own bound: contractual power vs production) and are netted only in the
  daily profiles, so every raw value has exactly one fate and counts reconcile per register.
  ``energy_wh`` is signed: import >= 0, export <= 0.
- ``span``: number of raw intervals the energy covers (> 1 for a register difference across
  missing documents); ``timestamp`` is the start of the whole span.
- ``row``: position of the record in its source (file row, document, historian row), for details.
- ``context``: readings re-read only to continue a series across an incremental boundary; they
  shape the output but are not counted again and never listed in the quarantine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from meterflow.schemas import READINGS, Quality

Locator = Callable[[pd.DataFrame], np.ndarray]
"""Maps rows of a readings table to where each record sits in its store (``file:line``, a table
key, a collection ``_id``), as strings; the cleaning calls it for quarantined readings only."""

IMPORT, EXPORT = "import", "export"
REGISTERS = (IMPORT, EXPORT)
READINGS_EXTRA = ("register", "span", "row", "context")


def make_readings(
    meter_id: np.ndarray | pd.Series | pd.Categorical,
    timestamp: np.ndarray | pd.Series | pd.DatetimeIndex,
    energy_wh: np.ndarray | pd.Series,
    *,
    source: str,
    register: str | np.ndarray | pd.Series | pd.Categorical,
    span: int | np.ndarray = 1,
    row: np.ndarray | None = None,
    context: bool | np.ndarray = False,
) -> pd.DataFrame:
    """Readings table in the contract's dtypes (timestamp in UTC, interval start)."""
    ts = pd.DatetimeIndex(timestamp)
    ts = (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).as_unit("ns")
    n = len(ts)
    df = pd.DataFrame(
        {
            "meter_id": pd.Categorical(np.asarray(meter_id, dtype=object))
            if not isinstance(meter_id, pd.Categorical)
            else meter_id,
            "timestamp": ts,
            "energy_wh": np.asarray(energy_wh, dtype=np.float64),
            "source": _constant(source, n),
            "quality": _constant(str(Quality.OK), n),
            "register": _registers(register, n),
            "span": np.broadcast_to(np.asarray(span, dtype=np.int32), n).copy(),
            "row": np.arange(n, dtype=np.int64) if row is None else np.asarray(row, np.int64),
            "context": np.broadcast_to(np.asarray(context, dtype=bool), n).copy(),
        }
    )
    return READINGS.validate(df, where=f"{source} adapter")


def _constant(value: str, n: int) -> pd.Categorical:
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])


def _registers(register: str | np.ndarray | pd.Series | pd.Categorical, n: int) -> pd.Categorical:
    if isinstance(register, pd.Categorical) and list(register.categories) == list(REGISTERS):
        return register
    if isinstance(register, str):
        code = REGISTERS.index(register) if register in REGISTERS else -1
        return pd.Categorical.from_codes(np.full(n, code, dtype=np.int8), categories=REGISTERS)
    return pd.Categorical(np.asarray(register, dtype=object), categories=list(REGISTERS))


def row_locator(store: str) -> Locator:
    """The default :data:`Locator`: ``<store> row <row>``."""

    def locate(rows: pd.DataFrame) -> np.ndarray:
        return np.char.add(f"{store} row ", rows["row"].to_numpy().astype(str)).astype(object)

    return locate


def codes_in(values: pd.Series, categories: pd.Index | list[str]) -> np.ndarray:
    """Position of each value in ``categories`` (-1 when absent); fast for categoricals."""
    cats = pd.Index(categories)
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = cats.get_indexer(values.cat.categories.astype(object))
        codes = values.cat.codes.to_numpy()
        if np.array_equal(lookup, np.arange(len(lookup))):  # same categories, same order
            return codes.astype(np.int64)  # a missing value (-1) stays -1
        # one gather; code -1 (missing) picks the -1 appended at the end
        return np.append(lookup, -1).astype(np.int64)[codes]
    return cats.get_indexer(values.astype(object)).astype(np.int64)


def empty_readings(source: str) -> pd.DataFrame:
    """A readings table without rows."""
    return make_readings(
        np.array([], dtype=object),
        pd.DatetimeIndex([], tz="UTC"),
        np.array([]),
        source=source,
        register=np.array([], dtype=object),
    )


def concat_readings(parts: list[pd.DataFrame], source: str) -> pd.DataFrame:
    """Concatenate readings pieces (meter categories unified, registers kept as codes)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_readings(source)
    meter = union_categoricals(
        [
            p["meter_id"].array
            if isinstance(p["meter_id"].dtype, pd.CategoricalDtype)
            else pd.Categorical(p["meter_id"])
            for p in parts
        ]
    )
    register = pd.Categorical.from_codes(
        np.concatenate([codes_in(p["register"], list(REGISTERS)) for p in parts]),
        categories=list(REGISTERS),
    )
    out = pd.concat([p.drop(columns=["meter_id", "register"]) for p in parts], ignore_index=True)
    out.insert(0, "meter_id", meter)
    out["register"] = register
    out["source"] = _constant(source, len(out))
    out["quality"] = _constant(str(Quality.OK), len(out))
    return out
