"""The user-facing parameters of the cleaning shared by every ETL entry point, declared once.

``CleaningConfig`` takes its defaults from here; the entry points' options add the source's own
(``meterflow.settings``).
"""

from __future__ import annotations

from pydantic import Field

from meterflow.params import Params, Resolution, Timezone


class CleaningParams(Params):
    """Cleaning rules shared by every ETL entry point."""

    resolution: Resolution
    timezone: Timezone
    max_gap_min: int = Field(60, ge=0, description="longest gap filled by interpolation (min)")
    night_max_gap_min: int = Field(180, ge=0, description="longest gap filled at night (min)")
