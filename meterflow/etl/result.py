"""What one ETL run returns to its caller (the MLflow task logs each table as an artifact)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from meterflow.etl.quarantine import concat_quarantine


@dataclass
class EtlResult:
    """Output of one source's ETL.

    profiles            profiles contract (meter_id, date, source, slot_00.. in Wh)
    quarantine          every reading dropped/corrected/filled (quarantine contract + register)
    quality             per-meter data quality (completeness, days kept, counts by reason)
    corrections_summary counts by action and reason
    scale_corrections   one row per scale correction (meter, period, factor, evidence)
    metrics             readings_in, readings_kept, readings_quarantined (in = kept +
                        quarantined), readings_filled, readings_corrected, meter_days_out, ...
    watermark           newest source timestamp consumed (incremental Mongo loads)
    files               file sources: one row per file found (read, or skipped and why)
    """

    profiles: pd.DataFrame
    quarantine: pd.DataFrame
    quality: pd.DataFrame
    corrections_summary: pd.DataFrame
    scale_corrections: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    watermark: pd.Timestamp | None = None  # newest source time consumed (Mongo ``since``)
    files: pd.DataFrame | None = None  # file sources: every file found, read or why not


def summarize_corrections(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Counts of the quarantine table by action and reason."""
    if quarantine.empty:
        return pd.DataFrame({"action": [], "reason": [], "count": []}).astype(
            {"action": object, "reason": object, "count": "int64"}
        )
    return (
        quarantine.groupby(["action", "reason"], observed=True)
        .size()
        .rename("count")
        .reset_index()
        .sort_values(["action", "count"], ascending=[True, False], ignore_index=True)
    )


_SUMMED = ("readings_in", "readings_kept", "readings_quarantined", "readings_filled",
           "readings_corrected", "meter_days_out", "meters_out", "scale_corrections")  # fmt: skip


def merge_results(parts: list[EtlResult]) -> EtlResult:
    """Combine results of disjoint meter groups of one source (counts add up)."""
    if len(parts) == 1:
        return parts[0]
    quarantine = concat_quarantine([p.quarantine for p in parts])
    profiles = pd.concat([p.profiles for p in parts], ignore_index=True)
    profiles = profiles.astype({"meter_id": "str", "source": "str"})
    profiles = profiles.sort_values(["meter_id", "date"], ignore_index=True)
    quality = pd.concat([p.quality for p in parts], ignore_index=True).fillna(0)
    scale = pd.concat([p.scale_corrections for p in parts], ignore_index=True)
    metrics: dict[str, float] = {}
    for p in parts:
        for key, value in p.metrics.items():
            if key in _SUMMED or key.startswith(("quarantined_", "filled_", "corrected_")):
                metrics[key] = metrics.get(key, 0.0) + value
            elif key.endswith("_max"):
                metrics[key] = max(metrics.get(key, value), value)
            elif key.endswith("_min"):
                metrics[key] = min(metrics.get(key, value), value)
    if metrics.get("readings_in"):
        metrics["quarantined_share"] = metrics["readings_quarantined"] / metrics["readings_in"]
    marks = [p.watermark for p in parts if p.watermark is not None]
    return EtlResult(
        profiles,
        quarantine,
        quality,
        summarize_corrections(quarantine),
        scale,
        metrics,
        max(marks) if marks else None,
    )
