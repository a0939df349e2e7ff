"""The meter description table (meters contract) from a SQLAlchemy URL.

Every column is checked once, here, on the values as the driver returns them (a NULL stays
distinct from a NaN): meter_id not NULL, not blank and unique after stripping; powers numeric
and finite, contractual_power_kw > 0, production_kw >= 0 (0, not NULL, for meters without PV);
type one of ``MeterType`` (stripped and lower-cased); latitude in [-90, 90], longitude in
[-180, 180]. All violations are reported in one SourceError.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from meterflow.errors import SourceError
from meterflow.schemas import METERS, MeterType
from meterflow.sources.formats import METERS_TABLE
from meterflow.sources.sql_engine import describe_db_error, engine_for

SOURCE = "meters"
MAX_LISTED = 5  # bad rows named in the message; the others are counted
METER_TYPES = tuple(t.value for t in MeterType)

# numeric columns: (test of a finite value, what the test requires)
NUMERIC_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "contractual_power_kw": (lambda x: x > 0, "> 0"),
    "production_kw": (lambda x: x >= 0, ">= 0"),
    "latitude": (lambda x: -90 <= x <= 90, "in [-90, 90]"),
    "longitude": (lambda x: -180 <= x <= 180, "in [-180, 180]"),
}


def _number(col: str, value: object) -> tuple[float, str | None]:
    """(the value as float, None) or (NaN, what is wrong with it)."""
    if value is None:
        return math.nan, f"{col} is NULL"
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        return math.nan, f"{col} must be numeric, got {value!r}"
    test, requirement = NUMERIC_RULES[col]
    if not math.isfinite(x):
        return math.nan, f"{col} must be finite, got {x!r}"
    return x, None if test(x) else f"{col} must be {requirement}, got {x!r}"


def _meter_type(value: object) -> tuple[str, str | None]:
    """(the type stripped and lower-cased, None) or ("", what is wrong with it)."""
    if value is None:
        return "", "type is NULL"
    text = str(value).strip().lower()
    if text not in METER_TYPES:
        return "", f"type {value!r} not in {'|'.join(METER_TYPES)}"
    return text, None


def _meter_ids(values: Sequence[object]) -> tuple[list[str], list[str | None]]:
    """Stripped ids and, per row, what is wrong with the id (NULL, blank, duplicate)."""
    ids: list[str] = []
    problems: list[str | None] = []
    first_row: dict[str, int] = {}
    for i, value in enumerate(values):
        text = "" if value is None else str(value).strip()
        ids.append(text)
        if value is None:
            problems.append("meter_id is NULL")
        elif not text:
            problems.append("meter_id is blank")
        elif text in first_row:
            problems.append(f"meter_id {value!r} duplicates row {first_row[text] + 1}")
        else:
            first_row[text] = i
            problems.append(None)
    return ids, problems


# every column but meter_id (checked across rows): value -> (clean value, problem or None)
COLUMN_CHECKS: dict[str, Callable[[object], tuple[object, str | None]]] = {
    col: _meter_type if col == "type" else partial(_number, col)
    for col in METERS.columns
    if col != "meter_id"
}


def _row_text(i: int, meter: str, problems: list[str]) -> str:
    name = f" meter {meter if meter.isprintable() else repr(meter)}" if meter else ""
    return f"row {i + 1}{name}: {', '.join(problems)}"


def validate_meters(raw: pd.DataFrame, *, table: str = METERS_TABLE) -> pd.DataFrame:
    """The meters table from the raw values of its columns (None for NULL), or one SourceError
    naming the table and, per bad row, the row (1-based), the meter and the bad column(s)."""
    ids, id_problems = _meter_ids(raw["meter_id"].tolist())
    out, problems = {"meter_id": ids}, [[p] if p else [] for p in id_problems]
    for col, check in COLUMN_CHECKS.items():
        checked = [check(v) for v in raw[col].tolist()]
        out[col] = [value for value, _ in checked]
        for row, (_, problem) in zip(problems, checked, strict=True):
            if problem:
                row.append(problem)
    bad = [_row_text(i, ids[i], p) for i, p in enumerate(problems) if p]
    if bad:
        more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        single = len(bad) == 1
        first = next(i for i, p in enumerate(problems) if p)
        raise SourceError(
            f"meter table {table!r} has {len(bad)} invalid row(s): "
            f"{'; '.join(bad[:MAX_LISTED])}{more}",
            source=SOURCE,
            meter=(ids[first] or None) if single else None,
            row=first + 1 if single else None,
        )
    df = pd.DataFrame(out, columns=list(METERS.columns))
    df = df.astype({c: float for c in NUMERIC_RULES} | {"meter_id": str, "type": str})
    return METERS.validate(df, where=f"table {table}")


def read_meters(url: str | sa.URL, *, table: str = METERS_TABLE) -> pd.DataFrame:
    """Read and validate the meters table: one row per meter_id, powers in kW (float)."""
    engine = engine_for(url, source=SOURCE)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(table):
                raise SourceError(f"table {table!r} not found", source=SOURCE)
            present = {c["name"] for c in inspector.get_columns(table)}
            missing = [c for c in METERS.columns if c not in present]
            if missing:
                raise SourceError(f"table {table!r} lacks column(s) {missing}", source=SOURCE)
            # untyped columns: the driver's values as they are (no type conversion, NULL=None)
            stmt = sa.select(*map(sa.column, METERS.columns)).select_from(sa.table(table))
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise SourceError(
            f"cannot read the meters table: {describe_db_error(exc, url)}", source=SOURCE
        ) from None
    finally:
        engine.dispose()
    raw = pd.DataFrame([tuple(r) for r in rows], columns=list(METERS.columns), dtype=object)
    return validate_meters(raw, table=table)
