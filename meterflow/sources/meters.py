"""The meter description table (meters contract) from a SQLAlchemy URL."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from meterflow.errors import SourceError
from meterflow.schemas import METERS
from meterflow.sources.formats import METERS_TABLE
from meterflow.sources.sql import describe_db_error, engine_for

SOURCE = "meters"


def read_meters(url: str | sa.URL, *, table: str = METERS_TABLE) -> pd.DataFrame:
    """Read and validate the meters table: one row per meter_id, powers in kW (float)."""
    engine = engine_for(url, source=SOURCE)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                raise SourceError(f"table {table!r} not found", source=SOURCE)
            df = pd.read_sql_table(table, conn)
    except SQLAlchemyError as exc:
        raise SourceError(
            f"cannot read the meters table: {describe_db_error(exc, url)}", source=SOURCE
        ) from None
    finally:
        engine.dispose()
    missing = [c for c in METERS.columns if c not in df.columns]
    if missing:
        raise SourceError(f"table {table!r} lacks column(s) {missing}", source=SOURCE)
    df = df[list(METERS.columns)].copy()
    df["meter_id"] = df["meter_id"].astype(str).str.strip()
    for col in ("contractual_power_kw", "production_kw", "latitude", "longitude"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise SourceError(
                f"column {col!r} is not numeric: {df[col].iloc[i]!r}",
                source=SOURCE, meter=df["meter_id"].iloc[i], row=i + 1,
            )  # fmt: skip
        df[col] = values.astype(float)
    df["production_kw"] = df["production_kw"].fillna(0.0)
    df["type"] = df["type"].astype(str)
    bad_power = ~(df["contractual_power_kw"] > 0)
    if bad_power.any():
        i = int(bad_power.to_numpy().nonzero()[0][0])
        raise SourceError(
            "contractual_power_kw must be > 0", source=SOURCE, meter=df["meter_id"].iloc[i],
            row=i + 1,
        )  # fmt: skip
    dup = df["meter_id"].duplicated()
    if dup.any():
        raise SourceError(
            "duplicate meter_id", source=SOURCE, meter=df.loc[dup, "meter_id"].iloc[0]
        )
    return METERS.validate(df.reset_index(drop=True), where=f"table {table}")
