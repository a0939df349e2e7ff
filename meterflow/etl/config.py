"""Typed settings of the shared cleaning, one frozen dataclass built once by the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterflow.domain import LOCAL_TIMEZONE, RAW_INTERVAL_MIN
from meterflow.errors import ConfigError
from meterflow.etl.params import CleaningParams as Declared
from meterflow.schemas import MINUTES_PER_DAY

# Error factors a badly exported value can carry (raw = true x factor): powers of ten (Wh, daWh,
# MWh instead of kWh ...) and minute/hour unit mix-ups (kW average instead of kWh per 15 min = x4,
# kWmin = x60, per-minute values = x1/60). x1/4 is left out by default: a value four times too
# small cannot be told from theft-like under-reading (real behaviour the anomaly step must see).
DEFAULT_SCALE_CANDIDATES: tuple[float, ...] = (
    *(10.0**k for k in (-6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6)),
    *(4.0, 60.0, 1 / 60, 4e3, 6e4),
)


@dataclass(frozen=True)
class CleaningConfig:
    """Settings of the cleaning rules shared by every source.

    resolution_min      output slot length (any divisor of a day, finer than the raw interval too)
    timezone            local calendar of the profiles (days, DST)
    raw_interval_min    interval length of the raw readings (15 min for all three stores)
    max_gap_min         longest gap filled by interpolation (minutes of missing data)
    night_max_gap_min   longest gap filled when the whole gap lies in night hours
    night_start_hour, night_end_hour   local night window [start, end) (may wrap midnight)
    outlier_tolerance   relative margin above contractual power / production before a reading is
                        rejected as an outlier
    outlier_abs_tolerance_wh   absolute margin (rounding of the stores)
    detect_scale        run the scale detection (the old exports need it)
    scale_candidates    error factors the scale detection may find
    scale_min_days      shortest period (days) a scale correction can cover (single holidays
                        of commercial meters drop ~10x and must not pass as a unit error)
    """

    resolution_min: int = Declared.default("resolution")
    timezone: str = LOCAL_TIMEZONE
    raw_interval_min: int = RAW_INTERVAL_MIN
    max_gap_min: int = Declared.default("max_gap_min")
    night_max_gap_min: int = Declared.default("night_max_gap_min")
    night_start_hour: int = 0
    night_end_hour: int = 5
    outlier_tolerance: float = 0.10
    outlier_abs_tolerance_wh: float = 1.0
    detect_scale: bool = False
    scale_candidates: tuple[float, ...] = field(default=DEFAULT_SCALE_CANDIDATES)
    scale_min_days: int = 3

    def __post_init__(self) -> None:
        if self.resolution_min <= 0 or MINUTES_PER_DAY % self.resolution_min:
            raise ConfigError(
                f"resolution_min={self.resolution_min} must be a positive divisor of 1440"
            )
        if self.raw_interval_min <= 0 or MINUTES_PER_DAY % self.raw_interval_min:
            raise ConfigError(
                f"raw_interval_min={self.raw_interval_min} must be a positive divisor of 1440"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown timezone {self.timezone!r}") from exc
        if self.max_gap_min < 0 or self.night_max_gap_min < 0:
            raise ConfigError("max_gap_min and night_max_gap_min must be >= 0")
        for name in ("night_start_hour", "night_end_hour"):
            if not 0 <= getattr(self, name) <= 24:
                raise ConfigError(f"{name}={getattr(self, name)} must lie in 0..24")
        if self.outlier_tolerance < 0 or self.outlier_abs_tolerance_wh < 0:
            raise ConfigError("outlier tolerances must be >= 0")
        if any(f <= 0 or f == 1 for f in self.scale_candidates):
            raise ConfigError("scale_candidates must be positive and different from 1")
        if self.scale_min_days < 1:
            raise ConfigError("scale_min_days must be >= 1")

    @property
    def raw_per_day(self) -> int:
        """Raw intervals in a 24-hour day."""
        return MINUTES_PER_DAY // self.raw_interval_min
