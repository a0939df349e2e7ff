"""Run tables read back across versions: a harmonization run logged before the normalised
profiles had their own table name is read from its Wh table, never its normalised one."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from meterflow.errors import MeterflowError
from meterflow.schemas import slot_columns, validate_profiles
from meterflow.tracking import harmonized_energy


def _profiles(scale: float) -> pd.DataFrame:
    values = np.arange(48, dtype=np.float64).reshape(2, 24) * scale + 100.0
    df = pd.DataFrame(values, columns=slot_columns(24))
    df.insert(0, "meter_id", ["M1", "M2"])
    df.insert(1, "date", pd.to_datetime(["2024-03-01", "2024-03-01"]))
    df.insert(2, "source", "sql")
    return validate_profiles(df)


def _log_tables(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> str:
    with mlflow.start_run() as run:
        for name, table in tables.items():
            path = tmp_path / f"{name}.parquet"
            table.to_parquet(path)
            mlflow.log_artifact(str(path), artifact_path="tables")
    return run.info.run_id


@pytest.mark.parametrize("layout", ["before", "now"])
def test_the_wh_profiles_of_a_harmonization_run_of_either_layout(tracking, tmp_path, layout):
    energy, normalized = _profiles(10.0), _profiles(0.001)
    tables = (
        {"profiles": normalized, "profiles_energy": energy}
        if layout == "before"
        else {"profiles": energy, "normalized_profiles": normalized}
    )
    got = harmonized_energy(_log_tables(tmp_path, tables))
    np.testing.assert_array_equal(got[slot_columns(24)], energy[slot_columns(24)])


def test_a_run_without_profile_tables_is_refused(tracking, tmp_path):
    run_id = _log_tables(tmp_path, {"meters": pd.DataFrame({"meter_id": ["M1"]})})
    with pytest.raises(MeterflowError, match="not a harmonization run"):
        harmonized_energy(run_id)
