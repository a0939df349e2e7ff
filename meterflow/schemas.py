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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from meterflow.domain import MINUTES_PER_DAY
from meterflow.errors import SchemaError


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
    if kind == "any":
        return True
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


def _columns(name: str, *names: str, **kinds: str) -> Contract:
    """A contract that requires ``names`` (any dtype) and ``kinds`` (name=kind)."""
    return Contract(name, {**dict.fromkeys(names, "any"), **kinds})


def _profiles(df: pd.DataFrame, *, where: str = "") -> pd.DataFrame:
    return validate_profiles(df, where=where)


class Table(StrEnum):
    """Names of the tables runs log (``tables/<name>.parquet``); see ``TABLES``."""

    PROFILES = "profiles"
    QUARANTINE = "quarantine"
    QUALITY = "quality"
    CORRECTIONS_SUMMARY = "corrections_summary"
    SCALE_CORRECTIONS = "scale_corrections"
    FILES = "files"
    REASONS = "reasons"
    METERS = "meters"
    DOCUMENTS = "documents"
    CONTEXT = "context"
    NORMALIZED_PROFILES = "normalized_profiles"
    LOSERS = "losers"
    DTW_INDEX = "dtw_index"
    SOURCES = "sources"
    ASSIGNMENTS = "assignments"
    CENTERS = "centers"
    CLUSTER_SIZES = "cluster_sizes"
    BY_TYPE = "by_type"
    BY_WEEKDAY = "by_weekday"
    BY_MONTH = "by_month"
    K_SELECTION = "k_selection"
    AUTO_CANDIDATES = "auto_candidates"
    METER_CLUSTERS = "meter_clusters"
    METER_COMPOSITION = "meter_composition"
    AUTO_STRUCTURES = "auto_structures"
    VALIDATION = "validation"
    TEST_PREDICTIONS = "test_predictions"
    ERROR_BY_STEP = "error_by_step"
    CANDIDATES = "candidates"
    FORECAST_TRAINING = "forecast_training"
    FORECAST_GROUPS = "forecast_groups"
    SCORES = "scores"
    EVENTS = "events"
    ALERTS = "alerts"
    DETECTORS = "detectors"
    SPLITS = "splits"
    KINDS = "kinds"
    THRESHOLDS = "thresholds"
    HOLDOUT = "holdout"
    HOLDOUT_TRUTH = "holdout_truth"
    PROMOTION = "promotion"
    NIGHT_STEPS = "night_steps"


# Every table a run logs (``tables/<name>.parquet``), by name, with the check it must pass when it
# is logged and when another step loads it. A table not listed here cannot be logged.
TABLES: dict[Table, Callable[..., pd.DataFrame]] = {
    # ETL runs
    Table.PROFILES: _profiles,
    Table.QUARANTINE: QUARANTINE.validate,
    Table.QUALITY: _columns("quality", meter_id="str").validate,
    Table.CORRECTIONS_SUMMARY: _columns(
        "corrections_summary", "action", "reason", "count"
    ).validate,
    Table.SCALE_CORRECTIONS: _columns("scale_corrections").validate,
    Table.FILES: _columns("files", "file", "meter_id", "status", "reason").validate,
    Table.REASONS: _columns("reasons", "reason", "meaning").validate,
    Table.METERS: METERS.validate,
    # load_newmongo runs
    Table.DOCUMENTS: _columns("documents", "meter_id", "ts", "issue", "coercions").validate,
    Table.CONTEXT: _columns("context", "meter_id", "ts").validate,
    # harmonization runs
    Table.NORMALIZED_PROFILES: _profiles,
    Table.LOSERS: _columns("losers", "meter_id", "date", "source", "winner_source").validate,
    Table.DTW_INDEX: _columns("dtw_index", *PROFILE_KEYS, profile_row="int").validate,
    Table.SOURCES: _columns("sources", "source", "etl_run", "meter_days_in", "kept").validate,
    # clustering runs
    Table.ASSIGNMENTS: _columns("assignments", meter_id="str", cluster="int").validate,
    Table.CENTERS: _columns("centers", cluster="int").validate,
    Table.CLUSTER_SIZES: _columns("cluster_sizes", "cluster", "profiles", "meters").validate,
    Table.BY_TYPE: _columns("by_type", "cluster").validate,
    Table.BY_WEEKDAY: _columns("by_weekday", "cluster").validate,
    Table.BY_MONTH: _columns("by_month", "cluster").validate,
    Table.K_SELECTION: _columns("k_selection", "k").validate,
    Table.AUTO_CANDIDATES: _columns(
        "auto_candidates", "candidate", "k", "silhouette_gap", "silhouette", "stability"
    ).validate,
    Table.AUTO_STRUCTURES: _columns(
        "auto_structures", "rank", "configuration", "k", "gap", "stability", "consensus"
    ).validate,
    Table.VALIDATION: _columns("validation", "metric", "value", "rows", "run_metric").validate,
    Table.METER_CLUSTERS: _columns("meter_clusters", meter_id="str", cluster="int").validate,
    Table.METER_COMPOSITION: _columns(
        "meter_composition", "cluster", "cluster_name", "meters"
    ).validate,
    # forecasting runs
    Table.TEST_PREDICTIONS: _columns("test_predictions", "meter_id").validate,
    Table.ERROR_BY_STEP: _columns("error_by_step", "model", "step", "mae").validate,
    Table.CANDIDATES: _columns(
        "candidates", "candidate", "role", "kept", "val_mae", "test_mae"
    ).validate,
    Table.FORECAST_TRAINING: _columns(
        "forecast_training", "network", "epoch", "train_loss", "val_loss"
    ).validate,
    Table.FORECAST_GROUPS: _columns(
        "forecast_groups", "group", "model", "test_mae", "best_baseline_test_mae"
    ).validate,
    # model runs: held-out rows any later model is scored on; per step, ``HOLDOUT_COLUMNS``
    Table.HOLDOUT: _columns("holdout").validate,
    # forecasting runs: the actual values after each held-out forecast's origin
    Table.HOLDOUT_TRUTH: _columns("holdout_truth", "forecast_id", "target_time", "actual").validate,
    # pipeline runs
    Table.PROMOTION: _columns("promotion", "step", "metric", "promote", "reason").validate,
    # pipeline runs: each step of the night, run, reused or failed (``orchestration.story``)
    Table.NIGHT_STEPS: _columns(
        "night_steps", "step", "status", "run_id", "run_link", "headline", duration_s="float"
    ).validate,
    # anomaly runs
    Table.SCORES: _columns("scores", "meter_id", "timestamp", "score", "flagged").validate,
    Table.EVENTS: _columns("events", "meter_id", "start", "end", "peak_score", "kind").validate,
    Table.ALERTS: _columns(
        "alerts", "alert_id", "run_id", "detector", "meter_id", "start", "end", "kind"
    ).validate,
    Table.DETECTORS: _columns(
        "detectors", "detector", "threshold_point", "val_planted_objective"
    ).validate,
    Table.SPLITS: _columns("splits", "split").validate,
    Table.KINDS: _columns("kinds", "split", "kind", "event_recall").validate,
    Table.THRESHOLDS: _columns("thresholds", "component", "threshold_z").validate,
}


# The columns of each model step's held-out rows that its holdout score
# (``meterflow.<family>.holdout``) and the promotion (``meterflow.orchestration``) read; a name
# ending in ``*``: at least one column with that prefix.
HOLDOUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "clustering": ("slot_*",),
    "forecasting": ("meter_id", "forecast_id", "timestamp", "value"),
    "anomaly": ("meter_id", "timestamp", "value", "history", "label"),
}


def validate_holdout(step: str, df: pd.DataFrame, *, where: str = "") -> pd.DataFrame:
    """Check the held-out rows of ``step`` against ``HOLDOUT_COLUMNS`` (SchemaError naming the
    missing column(s), or the step if it has no holdout contract); return ``df`` unchanged."""
    try:
        required = HOLDOUT_COLUMNS[step]
    except KeyError:
        raise SchemaError(
            f"step {step!r} has no holdout contract; known: {sorted(HOLDOUT_COLUMNS)}"
        ) from None
    missing = [c for c in required if not _has_column(df, c)]
    if missing:
        at = f" in {where}" if where else ""
        raise SchemaError(f"{step} holdout table{at} lacks column(s) {missing}")
    return df


def _has_column(df: pd.DataFrame, name: str) -> bool:
    if name.endswith("*"):
        return any(str(c).startswith(name[:-1]) for c in df.columns)
    return name in df.columns


def validate_table(name: str, df: pd.DataFrame, *, where: str = "", step: str = "") -> pd.DataFrame:
    """Check ``df`` against the contract of the run table ``name`` (SchemaError if it breaks it
    or if ``name`` is not a known table); the ``holdout`` table of a model ``step`` also
    against that step's ``HOLDOUT_COLUMNS``."""
    try:
        check = TABLES[Table(name)]
    except ValueError:
        raise SchemaError(
            f"unknown run table {name!r}; known: {sorted(map(str, TABLES))}"
        ) from None
    if name == Table.HOLDOUT and step in HOLDOUT_COLUMNS:
        validate_holdout(step, df, where=where)
    return check(df, where=where)
