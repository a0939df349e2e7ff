"""``AnomalyPredictor``: a fitted detector and its score model, as one picklable scorer.

Input: a long table ``meter_id, timestamp, value`` (Wh per slot at the training resolution,
naive timestamps on the series' own clock) and optionally ``history`` (True: the row only
serves as history, it is not scored); other columns are ignored. Give ``context_days`` days of
each meter's history before the readings to score (the daily-energy evidence compares a day
with the weeks before it). Without ``history``, the first days the detector needs as input
are history. Output on the input's index:
``score`` (NaN when not scored; the largest component over its threshold), ``flagged``
(``score >= 1``), ``component`` (which evidence decided: point, spike, ratio, base, clock or
flat) and each component's z (``scoring``). The meters are scored in blocks
(``blocked.score_fleet``): memory follows the block, and the result is the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from meterflow.anomaly.base import DetectorProtocol
from meterflow.anomaly.blocked import Blocking, Changes, score_fleet
from meterflow.anomaly.clock import clock_shift
from meterflow.anomaly.scoring import COMPONENTS, FLAG_LEVEL, Evidence, ScoreModel
from meterflow.anomaly.windowed import REF_DAYS, energy_change, flat_runs, spike_excess
from meterflow.errors import InputError, SchemaError
from meterflow.series.fleet import DateSplit, FleetSeries, build_panel

INPUT_COLUMNS = ("meter_id", "timestamp", "value")


class AnomalyPredictor:
    """Scores and flags of readings (see the module docstring)."""

    def __init__(
        self,
        detector: DetectorProtocol,
        resolution_min: int,
        windowed: bool = True,
        peers: dict[str, tuple[str, ...]] | None = None,
        model: ScoreModel | None = None,
        example: pd.DataFrame | None = None,
    ):
        self.detector = detector
        self.resolution_min = resolution_min
        self.windowed = windowed
        self.peers = peers  # of each meter, for the daily-energy ratio (``windowed``)
        self.model = model  # set by calibration (``detection``)
        self.example = example

    @property
    def context_days(self) -> int:
        """Days of history the input must hold before the first reading to score."""
        return self.detector.context_days + (REF_DAYS if self.windowed else 0)

    @property
    def threshold(self) -> float:
        """The score from which a reading is flagged (each component's own threshold is 1)."""
        return FLAG_LEVEL

    @property
    def thresholds(self) -> dict[str, float]:
        """Each evidence component's threshold on its z scale."""
        return dict(zip(COMPONENTS, self.calibrated_model.thresholds, strict=True))

    @property
    def calibrated_model(self) -> ScoreModel:
        """The score model; ValueError before calibration."""
        if self.model is None:
            raise InputError("this predictor is not calibrated yet")
        return self.model

    @property
    def network(self) -> Any:
        return self.detector.network

    def network_example(self) -> list[np.ndarray]:
        fleet, _ = self.fleet(self.input_example())
        return self.detector.network_inputs(fleet)

    def input_columns(self) -> list[tuple[str, str, bool]]:
        """``(name, MLflow type, required)`` of the input rows (the model's signature)."""
        return [
            ("meter_id", "string", True),
            ("timestamp", "datetime", True),
            ("value", "double", True),
            ("history", "boolean", False),
        ]

    def input_example(self) -> pd.DataFrame:
        if self.example is None:
            raise InputError("this predictor was built without an input example")
        return self.example.copy()

    def fleet(self, df: pd.DataFrame) -> tuple[FleetSeries, np.ndarray]:
        """The checked input as a fleet, and each fleet reading's row in ``df``."""
        if "history" in df.columns and df["history"].isna().any():
            raise SchemaError("anomaly input: column 'history' has missing values")
        missing = [c for c in INPUT_COLUMNS if c not in df.columns]
        if missing:
            raise SchemaError(f"anomaly input lacks column(s) {missing}")
        table = pd.DataFrame(
            {
                "meter_id": df["meter_id"].astype(str).to_numpy(),
                "timestamp": _timestamps(df),
                "value": pd.to_numeric(df["value"], errors="coerce").to_numpy(np.float64),
                "row": np.arange(len(df)),
            }
        )
        table = table.loc[np.isfinite(table["value"])]  # a missing reading is a gap
        _check_grid(table, df, self.resolution_min)
        table = table.sort_values(["meter_id", "timestamp"], kind="stable")
        start = table["timestamp"].min().normalize() if len(table) else pd.Timestamp(0)
        everything_test = DateSplit(start, start, (0, 0, 0))
        return build_panel(table, self.resolution_min, everything_test), table["row"].to_numpy()

    def scored(self, fleet: FleetSeries, history: np.ndarray | None = None) -> np.ndarray:
        """Readings to score: not ``history``, and past the days the detector needs as input."""
        day = fleet.time_idx // fleet.slots_per_day
        out = day >= self.detector.context_days
        return out if history is None else out & ~history

    def evidence(
        self, fleet: FleetSeries, where: np.ndarray, changes: Changes | None = None
    ) -> Evidence:
        """The detector's evidence of the readings in ``where``, the windowed evidence of all;
        ``changes``: the fleet's daily-energy and base-load change grids when ``fleet`` is a
        block of a larger fleet (default: computed on ``fleet``)."""
        if changes is None:
            changes = energy_change(fleet, self.peers), energy_change(fleet, self.peers, "base")
        return Evidence(
            point=np.where(where, self.detector.evidence(fleet, where), np.nan),
            spike=spike_excess(fleet),
            runs=flat_runs(fleet),
            ratio=changes[0],
            base=changes[1],
            clock=clock_shift(fleet),
        )

    def predict(self, df: pd.DataFrame, blocking: Blocking | None = None) -> pd.DataFrame:
        """Scores of the rows of ``df`` (see the module docstring), ``blocking`` meters at a
        time (default: ``Blocking()``, here)."""
        fleet, rows = self.fleet(df)
        history = df["history"].to_numpy(bool)[rows] if "history" in df.columns else None
        where = self.scored(fleet, history)
        scores = score_fleet(self, fleet, where, blocking or Blocking())
        out = pd.DataFrame(index=df.index)
        out["score"] = np.nan
        out.iloc[rows, 0] = scores.score
        out["flagged"] = out["score"].to_numpy() >= self.threshold
        component = np.full(len(df), None, dtype=object)
        known = np.isfinite(scores.score)
        component[rows[known]] = np.asarray(COMPONENTS, dtype=object)[scores.best[known]]
        out["component"] = component
        change = np.full(len(df), np.nan)
        change[rows] = scores.day_change
        out["day_change"] = change  # the day's energy against own history and peers
        for i, name in enumerate(COMPONENTS):
            values = np.full(len(df), np.nan)
            values[rows] = scores.parts[i]
            out[f"{name}_z"] = values
        return out


def _timestamps(df: pd.DataFrame) -> np.ndarray:
    stamps = pd.to_datetime(df["timestamp"], errors="coerce")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    if stamps.isna().any():
        i = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise SchemaError(
            f"anomaly input row {df.index[i]!r} (meter={df['meter_id'].iloc[i]}): "
            f"timestamp {df['timestamp'].iloc[i]!r} is not a time"
        )
    return stamps.to_numpy(dtype="datetime64[ns]")


def _check_grid(table: pd.DataFrame, df: pd.DataFrame, resolution_min: int) -> None:
    """SchemaError naming the row of a reading off the slot grid or a repeated one."""
    stamps = table["timestamp"].to_numpy(dtype="datetime64[ns]")
    off = (stamps - stamps.astype("datetime64[D]")) % np.timedelta64(resolution_min, "m")
    duplicated = table.duplicated(["meter_id", "timestamp"]).to_numpy()
    for bad, why in ((off != np.timedelta64(0), "is off the grid"), (duplicated, "is repeated")):
        if bad.any():
            row = int(table["row"].to_numpy()[np.flatnonzero(bad)[0]])
            raise SchemaError(
                f"anomaly input row {df.index[row]!r} (meter={df['meter_id'].iloc[row]}): "
                f"timestamp {pd.Timestamp(stamps[np.flatnonzero(bad)[0]])} {why} "
                f"({resolution_min}-min slots)"
            )
