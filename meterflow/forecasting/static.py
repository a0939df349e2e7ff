"""Static series features of a global per-meter model: what the meter table says about each
meter (PV production, contractual power, type), standardised over the meters, so that one
network can tell a prosumer's day from a household's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class StaticFeatures:
    """Features by series id: ``values (n_series, n_features)``, standardised; unknown series
    (and series without a meter table row) get zeros, the average meter."""

    series_ids: tuple[str, ...]
    names: tuple[str, ...]
    values: np.ndarray

    def lookup(self, series_ids: np.ndarray | pd.Series) -> np.ndarray:
        """``(n, n_features)`` features of ``series_ids``."""
        idx = pd.Index(self.series_ids).get_indexer(pd.Index(np.asarray(series_ids, dtype=object)))
        out = np.zeros((len(idx), len(self.names)))
        known = idx >= 0
        out[known] = self.values[idx[known]]
        return out


NONE = StaticFeatures((), (), np.zeros((0, 0)))


def meter_features(meters: pd.DataFrame | None, series_ids: np.ndarray) -> StaticFeatures:
    """PV flag, log contractual power and meter type (one column per type) of ``series_ids``
    from the meter table, standardised; no features without a table."""
    if meters is None or meters.empty or "meter_id" not in meters.columns:
        return NONE
    table = meters.assign(meter_id=meters["meter_id"].astype(str)).drop_duplicates("meter_id")
    table = table.set_index("meter_id").reindex(pd.Index(series_ids, dtype=object).astype(str))
    raw = {
        "pv": (table["production_kw"].fillna(0) > 0).astype(float),
        "log_contractual_kw": np.log1p(table["contractual_power_kw"].clip(lower=0)),
    }
    for kind in sorted(table["type"].dropna().unique()):
        raw[f"type_{kind}"] = (table["type"] == kind).astype(float)
    frame = pd.DataFrame(raw)
    std = frame.std(ddof=0).replace(0, 1.0).fillna(1.0)
    scaled = ((frame - frame.mean()) / std).fillna(0.0)
    ids = tuple(str(s) for s in series_ids)
    return StaticFeatures(ids, tuple(frame.columns), scaled.to_numpy(dtype=np.float64))
