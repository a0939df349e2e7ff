"""What one ETL run returns to its caller (the MLflow task logs each table as an artifact)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from meterflow.errors import InputError
from meterflow.etl.quality import combine_quality
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


_RATIOS = {"quarantined_share": ("readings_quarantined", "readings_in")}  # recomputed


def merge_results(parts: list[EtlResult]) -> EtlResult:
    """Combine the results of disjoint meter blocks of one source, given in sorted meter order
    (``etl.blocks``): each table's rows of one meter stay together (the quarantine and the
    scale report ordered stably by meter, rows without a meter first), counts are summed,
    ratios recomputed and the newest watermark kept, so any cut into blocks gives the same."""
    if not parts:
        raise InputError("merge_results needs at least one result")
    quarantine = concat_quarantine([_by_meter(p.quarantine) for p in parts])
    marks = [p.watermark for p in parts if p.watermark is not None]
    return EtlResult(
        _concat([p.profiles for p in parts]),
        quarantine,
        combine_quality([p.quality for p in parts]),
        summarize_corrections(quarantine),
        _concat([_by_meter(p.scale_corrections) for p in parts]),
        merge_metrics([p.metrics for p in parts]),
        max(marks) if marks else None,
    )


def merge_metrics(parts: list[dict[str, float]]) -> dict[str, float]:
    """Metrics of disjoint meter blocks combined: counts (and seconds) summed, ``*_max`` /
    ``*_min`` as the largest / smallest, ratios recomputed from the summed counts."""
    out: dict[str, float] = {}
    for metrics in parts:
        for key, value in metrics.items():
            if key in _RATIOS:
                continue
            if key.endswith("_max"):
                out[key] = max(out.get(key, value), value)
            elif key.endswith("_min"):
                out[key] = min(out.get(key, value), value)
            else:
                out[key] = out.get(key, 0.0) + value
    for key, (num, den) in _RATIOS.items():
        if any(key in m for m in parts):
            out[key] = out[num] / out[den] if out.get(den) else 0.0
    return out


def _by_meter(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` ordered stably by meter id, rows without one first."""
    if len(table) < 2:
        return table
    return table.sort_values("meter_id", kind="stable", na_position="first", ignore_index=True)


def _concat(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Tables of the same columns one after the other (empty ones left out unless all are)."""
    full = [t for t in tables if len(t)] or tables[:1]
    return full[0] if len(full) == 1 else pd.concat(full, ignore_index=True)
