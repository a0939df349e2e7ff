"""The user-facing parameters of harmonization and the DTW matrix, declared once."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from meterflow import domain
from meterflow.params import OneOf, Params, Resolution


def normalizations() -> tuple[str, ...]:
    from meterflow.profiles.normalize import NORMALIZATIONS

    return NORMALIZATIONS


class HarmonizationParams(Params):
    """How profiles from every source become one table, and the DTW matrix over them."""

    resolution: Resolution
    normalization: Annotated[str, AfterValidator(OneOf(normalizations))] = Field(
        "l2", description="per-profile normalisation"
    )
    priority: str = Field(
        ",".join(domain.SOURCES), description="source priority for overlapping meter-days"
    )
    compute_dtw: bool = Field(True, description="update the cached DTW distance matrix")
    dtw_window: int = Field(3, ge=0, description="DTW band (dtaidistance 'window'; 0 = none)")
    dtw_max_profiles: int = Field(
        4000,
        gt=1,
        description="DTW matrix rows: a fixed sample of meters x recent days, at most this many",
    )

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: str) -> str:
        names = [s.strip() for s in v.split(",") if s.strip()]
        unknown = sorted(set(names) - set(domain.SOURCES))
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"must list distinct sources of {domain.SOURCES}, got {v!r}")
        return ",".join(names)
