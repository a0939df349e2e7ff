"""The ETL steps' models: the run's cleaning rules (and meter table) applied to new input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.domain import REGISTER_ROLLOVER_KWH, SOURCE_NEWMONGO
from meterflow.etl.config import CleaningConfig
from meterflow.etl.counters import registers_to_readings
from meterflow.etl.pipeline import clean_readings
from meterflow.etl.readings import EXPORT, IMPORT, make_readings


def _example_day(meters: pd.DataFrame, config: CleaningConfig) -> tuple[str, pd.DatetimeIndex]:
    """One meter and the UTC interval starts of one complete local day (a plain mid-January
    day, no DST change)."""
    start = pd.Timestamp("2025-01-15", tz=config.timezone)
    stamps = pd.date_range(
        start, start + pd.Timedelta(days=1), freq=f"{config.raw_interval_min}min", inclusive="left"
    )
    return str(meters["meter_id"].iloc[0]), stamps.tz_convert("UTC")


@dataclass
class ReadingsCleaner:
    """``predict``: readings (meter_id, timestamp UTC interval start, energy_wh signed, optional
    register import|export) -> daily profiles (meter_id, date, source, slot_..), cleaned exactly as
    the step cleaned its source (same rules, same meter table)."""

    meters: pd.DataFrame
    config: CleaningConfig
    source: str

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        energy = df["energy_wh"].to_numpy(dtype=np.float64)
        register = (
            df["register"].astype(str).to_numpy()
            if "register" in df.columns
            else np.where(energy < 0, EXPORT, IMPORT)
        )
        readings = make_readings(
            df["meter_id"].astype(str).to_numpy(),
            pd.to_datetime(df["timestamp"]),
            energy,
            source=self.source,
            register=register,
        )
        return clean_readings(readings, self.meters, self.config, source=self.source).profiles

    def input_columns(self) -> list[tuple[str, str, bool]]:
        """``(name, MLflow type, required)`` of the input rows (the model's signature)."""
        return [
            ("meter_id", "string", True),
            ("timestamp", "datetime", True),
            ("energy_wh", "double", True),
            ("register", "string", False),  # import | export; else the sign of energy_wh
        ]

    def input_example(self) -> pd.DataFrame:
        meter, stamps = _example_day(self.meters, self.config)
        hours = (stamps.tz_convert(self.config.timezone).hour).to_numpy()
        energy = 80.0 + 120.0 * ((hours >= 7) & (hours <= 22))
        return pd.DataFrame(
            {"meter_id": meter, "timestamp": stamps.tz_localize(None), "energy_wh": energy}
        )


@dataclass
class DocumentsTranslator:
    """``predict``: MongoDB reading documents (meter_id, ts UTC = end of interval, import_kwh,
    export_kwh cumulative registers) -> interval readings (readings contract), with counter
    resets and rollovers handled as in the load step."""

    meters: pd.DataFrame
    config: CleaningConfig
    rollover_kwh: float = REGISTER_ROLLOVER_KWH

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        readings, _ = registers_to_readings(
            df, self.meters, self.config, source=SOURCE_NEWMONGO, rollover_kwh=self.rollover_kwh
        )
        out = readings[["meter_id", "timestamp", "energy_wh", "register", "span"]].copy()
        out["meter_id"] = out["meter_id"].astype(str)
        out["register"] = out["register"].astype(str)
        return out.reset_index(drop=True)

    def input_columns(self) -> list[tuple[str, str, bool]]:
        """``(name, MLflow type, required)`` of the documents (the model's signature)."""
        return [
            ("_id", "string", False),
            ("meter_id", "string", True),
            ("ts", "datetime", True),
            ("import_kwh", "double", True),
            ("export_kwh", "double", True),
        ]

    def input_example(self) -> pd.DataFrame:
        meter, stamps = _example_day(self.meters, self.config)
        reads = stamps[:9] + pd.Timedelta(minutes=self.config.raw_interval_min)
        return pd.DataFrame(
            {
                "meter_id": meter,
                "ts": reads.tz_localize(None),
                "import_kwh": 1000.0 + 0.1 * np.arange(len(reads)),
                "export_kwh": 0.0,
            }
        )
