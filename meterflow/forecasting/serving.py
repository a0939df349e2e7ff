"""The forecasting model as it is served: raw readings in, day-ahead rows out.

Input rows (the readings contract, or a series file): ``meter_id``, ``timestamp`` (the start of
the slot; naive = the model's local clock, with an offset = converted to it), ``value`` (per
slot, the units the model was trained on), the model's extra inputs when it has any (given also
on rows after the last reading, at the target times, with an empty ``value``), and optionally
``forecast_id``: rows sharing one are one history, so one request can hold several forecasts of
a meter. One forecast is made from the last reading of each meter (or forecast id).

Output: one row per forecast and target step: ``meter_id`` (``forecast_id``), ``target_time``,
``step``, ``prediction`` (the median), ``q10``, ``q50``, ``q90`` (the model's quantiles), and,
for a service of several forecasters, one point column per other forecaster.

Every problem is one line naming the meter and the row: a missing column, an unparsable or
off-grid timestamp, a repeated reading, a non-finite value, an unknown meter, too short a
history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError
from meterflow.forecasting.base import Forecaster
from meterflow.forecasting.inputs import inputs_at, last_readings
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.tables import quantile_columns
from meterflow.series.fleet import DateSplit, FleetSeries, build_panel

KEY_SEP = "\x1f"  # joins meter_id and forecast_id into one series id
REQUIRED = ("meter_id", "timestamp", "value")


@dataclass
class ForecastService:
    """Forecasters served from raw readings (see the module docstring). ``primary``: the
    forecaster whose quantiles are the output (None: one point column per forecaster)."""

    forecasters: dict[str, Forecaster]
    primary: str | None
    settings: ForecastSettings
    resolution_min: int
    known_meters: tuple[str, ...]
    timezone: str | None  # the model's clock (tz-aware input is converted to it); None = UTC
    example: pd.DataFrame

    def input_example(self) -> pd.DataFrame:
        return self.example.copy()

    def input_columns(self) -> list[tuple[str, str, bool]]:
        """``(name, MLflow type, required)`` of the input rows (the model's signature)."""
        exog = [(name, "double", True) for name in self.settings.exog]
        return [
            ("meter_id", "string", True),
            ("forecast_id", "string", False),
            ("timestamp", "datetime", True),
            ("value", "double", True),
            *exog,
        ]

    @property
    def network(self):
        """The Keras network of the primary forecaster, if it has one (logged beside)."""
        return None if self.primary is None else self.forecasters[self.primary].network

    def network_example(self) -> list[np.ndarray]:
        """The primary network's inputs for the input example (the logged signature)."""
        fleet, _ = self.readings_fleet(self.example)
        return self.forecasters[self.primary].network_inputs(fleet)

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Forecasts of the target steps after each history's last reading."""
        fleet, origin = self.readings_fleet(df)
        inputs = inputs_at(fleet, origin, self.settings)
        out = self._frame(fleet, origin)
        point = self.settings.point_quantile if self.settings.quantiles else 0
        for name, forecaster in self.forecasters.items():
            pred = forecaster.predict(inputs)
            if name == self.primary:
                out["prediction"] = pred[..., point].ravel()
                for j, col in enumerate(quantile_columns(self.settings.quantiles)):
                    out[col] = pred[..., j].ravel()
            else:
                out[name] = pred[..., point].ravel()
        return out

    def _frame(self, fleet: FleetSeries, origin: np.ndarray) -> pd.DataFrame:
        steps = self.settings.steps
        keys = fleet.meter_ids[fleet.meter_idx[origin]].astype(str)
        meter, _, forecast_id = np.char.partition(keys.astype(str), KEY_SEP).T
        stamp = fleet.timestamps(origin)
        out = pd.DataFrame({"meter_id": np.repeat(meter, len(steps))})
        if fleet.owners is not None:
            out["forecast_id"] = np.repeat(forecast_id, len(steps))
        step = np.timedelta64(self.resolution_min, "m")
        out["target_time"] = (stamp[:, None] + steps[None, :] * step).ravel()
        out["step"] = np.tile(steps, len(origin))
        return out

    def readings_fleet(self, df: pd.DataFrame) -> tuple[FleetSeries, np.ndarray]:
        """The checked rows as a fleet of histories, and the origin (last reading) of each."""
        rows = checked_rows(df, self)
        fleet = build_panel(rows, self.resolution_min, _NO_SPLIT, self.settings.exog)
        if "forecast_id" in df.columns:
            fleet.owners = np.char.partition(fleet.meter_ids.astype(str), KEY_SEP)[:, 0]
        origin = last_readings(fleet)
        self._check_history(fleet, origin, rows)
        return fleet, origin

    def _check_history(self, fleet: FleetSeries, origin: np.ndarray, rows: pd.DataFrame) -> None:
        """SchemaError naming the meter when a history is too short for the model."""
        spd = fleet.slots_per_day
        need = max(f.min_history(spd) for f in self.forecasters.values())
        first = np.searchsorted(fleet.meter_idx, fleet.meter_idx[origin])
        span = fleet.time_idx[origin] - fleet.time_idx[first] + 1
        short = np.flatnonzero(span < need)
        if len(short):
            i = short[0]
            key = str(fleet.meter_ids[fleet.meter_idx[origin[i]]])
            row = rows.index[rows["meter_id"] == key][-1]
            raise SchemaError(
                f"forecast input: meter {key.split(KEY_SEP)[0]} has {span[i] / spd:.1f} days of "
                f"history up to {fleet.timestamps(origin[i : i + 1])[0]} (row {row}); the model "
                f"needs at least {need / spd:g} days"
            )
        if self.settings.exog:
            _check_future_inputs(fleet, origin, self.settings, rows)


_NO_SPLIT = DateSplit(pd.Timestamp.min, pd.Timestamp.min, (0, 0, 0))


def _check_future_inputs(
    fleet: FleetSeries, origin: np.ndarray, cfg: ForecastSettings, rows: pd.DataFrame
) -> None:
    """SchemaError unless every target after each origin has a row with the extra inputs."""
    target = origin[:, None] + cfg.steps[None, :]
    inside = target < len(fleet.values)
    safe = np.minimum(target, len(fleet.values) - 1)
    ok = inside & (fleet.meter_idx[safe] == fleet.meter_idx[origin][:, None])
    ok &= fleet.time_idx[safe] == fleet.time_idx[origin][:, None] + cfg.steps[None, :]
    ok &= np.isfinite(fleet.exog[safe]).all(axis=-1)
    if not ok.all():
        i = int(np.flatnonzero(~ok.all(axis=1))[0])
        key = str(fleet.meter_ids[fleet.meter_idx[origin[i]]]).split(KEY_SEP)[0]
        raise SchemaError(
            f"forecast input: meter {key} needs the extra inputs {list(cfg.exog)} on a row at "
            f"each of the {len(cfg.steps)} target times after its last reading "
            f"({fleet.timestamps(origin[i : i + 1])[0]}), with an empty value"
        )


def checked_rows(df: pd.DataFrame, service: ForecastService) -> pd.DataFrame:
    """``meter_id`` (the series key), ``timestamp`` (naive, the model's clock), ``value`` and
    the extra inputs of ``df``; SchemaError naming the meter and row of the first problem."""
    exog = list(service.settings.exog)
    missing = [c for c in (*REQUIRED, *exog) if c not in df.columns]
    if missing:
        raise SchemaError(
            f"forecast input lacks column(s) {missing}; it needs meter_id, "
            f"timestamp, value{''.join(', ' + c for c in exog)}"
        )
    df = df.reset_index(drop=True)
    meter = df["meter_id"].astype(str)
    _check_known(meter, service.known_meters)
    stamps = _timestamps(df["timestamp"], meter, service)
    values = _numbers(df, "value", meter)
    key = (
        meter
        if "forecast_id" not in df.columns
        else meter + KEY_SEP + df["forecast_id"].astype(str)
    )
    rows = pd.DataFrame({"meter_id": key, "timestamp": stamps, "value": values})
    for col in exog:
        rows[col] = _numbers(df, col, meter)
    keep = rows["value"].notna() | (rows[exog].notna().any(axis=1) if exog else False)
    rows = rows.loc[keep]
    dup = rows.duplicated(["meter_id", "timestamp"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        row = rows.index[i]
        raise SchemaError(
            f"forecast input row {row} (meter {meter.iloc[row]}): timestamp "
            f"{rows['timestamp'].iloc[i]} is given twice"
        )
    readings = rows["value"].notna().groupby(rows["meter_id"]).sum()
    if rows.empty or (readings == 0).any():
        empty = "" if rows.empty else str(readings.index[readings.to_numpy() == 0][0])
        raise SchemaError(f"forecast input: no reading for meter {empty.split(KEY_SEP)[0]!r}")
    return rows


def _check_known(meter: pd.Series, known: tuple[str, ...]) -> None:
    unknown = ~meter.isin(known)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        sample = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        raise SchemaError(
            f"forecast input row {i}: meter {meter.iloc[i]} is unknown to the model "
            f"(trained on {len(known)} series: {sample})"
        )


def _timestamps(column: pd.Series, meter: pd.Series, service: ForecastService) -> pd.Series:
    """Naive timestamps on the model's clock and grid."""
    stamps = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = stamps.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"forecast input row {i} (meter {meter.iloc[i]}): unparsable timestamp "
            f"{column.iloc[i]!r}"
        )
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert(service.timezone or "UTC").dt.tz_localize(None)
    stamps = stamps.astype("datetime64[ns]")
    off = (stamps - stamps.dt.normalize()) % pd.Timedelta(minutes=service.resolution_min)
    bad = (off != pd.Timedelta(0)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"forecast input row {i} (meter {meter.iloc[i]}): timestamp "
            f"{stamps.iloc[i]} is off the model's {service.resolution_min}-min grid "
            "(give the start of each slot)"
        )
    return stamps


def _numbers(df: pd.DataFrame, col: str, meter: pd.Series) -> pd.Series:
    """``df[col]`` as floats: empty cells are gaps, anything else must be a finite number."""
    values = pd.to_numeric(df[col], errors="coerce").astype(np.float64)
    bad = (values.isna() & df[col].notna()) | np.isinf(values)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError(
            f"forecast input row {i} (meter {meter.iloc[i]}): {col} "
            f"{df[col].iloc[i]!r} is not a finite number"
        )
    return values
