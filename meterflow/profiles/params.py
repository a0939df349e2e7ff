"""The user-facing parameters of harmonization and the DTW matrix, declared once."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from meterflow import domain
from meterflow.params import OneOf, Params, Resolution

# The DTW window as a fraction of the day, for harmonization and the clustering step's default.
DTW_WINDOW = 0.05


def check_window_fraction(v: object, name: str) -> object:
    """``v`` unchanged unless it is a number > 1: a window counted in slots, as before issue 29,
    which is refused with the fraction it meant on an hourly day."""
    try:
        value = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return v  # pydantic reports it
    if value > 1:
        raise ValueError(
            f"{name}={v} looks like slots: the window is a fraction of the day since issue 29 "
            f"(the largest shift over the slots of a day): the old band {v} allowed shifts of "
            f"up to {value - 1:g} slots, on a 24-slot day {name}={(value - 1) / 24:.3g}"
        )
    return v


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
    dtw_window: float = Field(
        DTW_WINDOW,
        ge=0,
        description="DTW window: the largest time shift as a fraction of the day (aeon's "
        "'window'; 0 = unconstrained)",
    )
    dtw_max_profiles: int = Field(
        4000,
        gt=1,
        description="DTW matrix rows: a fixed sample of meters x recent days, at most this many",
    )

    @field_validator("dtw_window", mode="before")
    @classmethod
    def _dtw_window(cls, v: object) -> object:
        return check_window_fraction(v, "dtw_window")

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: str) -> str:
        names = [s.strip() for s in v.split(",") if s.strip()]
        unknown = sorted(set(names) - set(domain.SOURCES))
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"must list distinct sources of {domain.SOURCES}, got {v!r}")
        return ",".join(names)
