"""Local calendar of the profiles: UTC interval indices to local days and wall-clock slots.

Times are handled as integer interval indices ``k`` (UTC interval start = k x raw interval since
the Unix epoch) so that every rule stays a vectorised integer operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NS_PER_MIN = 60 * 10**9
NS_PER_DAY = 1440 * NS_PER_MIN
_MAX_TABLE = 20_000_000


@dataclass(frozen=True)
class LocalCalendar:
    """Map interval indices to the local calendar of ``timezone``."""

    timezone: str
    raw_interval_min: int

    @property
    def raw_ns(self) -> int:
        return self.raw_interval_min * NS_PER_MIN

    def local_ns(self, k: np.ndarray) -> np.ndarray:
        """Local wall-clock time (ns since the epoch, naive) of the start of intervals ``k``."""
        k = np.asarray(k, dtype=np.int64)
        if len(k) == 0:
            return k.copy()
        lo, hi = int(k.min()), int(k.max())
        if hi - lo + 1 <= _MAX_TABLE and hi - lo + 1 < 4 * len(k) + 1024:
            table = self._convert(np.arange(lo, hi + 1, dtype=np.int64))
            return table[k - lo]
        uniq, inv = np.unique(k, return_inverse=True)
        return self._convert(uniq)[inv]

    def _convert(self, k: np.ndarray) -> np.ndarray:
        utc = pd.DatetimeIndex(k * self.raw_ns, tz="UTC")
        return utc.tz_convert(self.timezone).tz_localize(None).asi8

    def day_and_minute(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local day (days since the epoch) and wall-clock minute of day of intervals ``k``."""
        return self._day_lookup(k, 1)

    def day_and_slot(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local day and wall-clock raw slot of the day (minute // raw interval) of ``k``."""
        return self._day_lookup(k, self.raw_interval_min)

    def _day_lookup(self, k: np.ndarray, minutes_per_unit: int) -> tuple[np.ndarray, np.ndarray]:
        k = np.asarray(k, dtype=np.int64)
        if len(k) == 0:
            return k.copy(), k.copy()
        # divide once per distinct interval (a table over the range, or the unique values),
        # then gather: int64 floor division per reading is the slow part otherwise
        lo, hi = int(k.min()), int(k.max())
        if hi - lo + 1 <= _MAX_TABLE and hi - lo + 1 < 4 * len(k) + 1024:
            day, unit = self._day_unit(np.arange(lo, hi + 1, dtype=np.int64), minutes_per_unit)
            idx = k - lo
            return day[idx], unit[idx]
        uniq, inv = np.unique(k, return_inverse=True)
        day, unit = self._day_unit(uniq, minutes_per_unit)
        return day[inv], unit[inv]

    def _day_unit(self, k: np.ndarray, minutes_per_unit: int) -> tuple[np.ndarray, np.ndarray]:
        loc = self._convert(k)
        day = loc // NS_PER_DAY
        minute = (loc - day * NS_PER_DAY) // NS_PER_MIN
        return day, minute // minutes_per_unit if minutes_per_unit != 1 else minute

    def day_start_k(self, days: np.ndarray) -> np.ndarray:
        """Interval index of the first interval of each local day (its UTC start)."""
        days = np.asarray(days, dtype=np.int64)
        if len(days) == 0:
            return days.copy()
        uniq, inv = np.unique(days, return_inverse=True)
        midnight = pd.DatetimeIndex(uniq * NS_PER_DAY).tz_localize(
            self.timezone, ambiguous=np.ones(len(uniq), dtype=bool), nonexistent="shift_forward"
        )
        utc_ns = midnight.tz_convert("UTC").asi8
        return (-(-utc_ns // self.raw_ns))[inv]  # first interval starting at or after midnight

    def expected_intervals(self, days: np.ndarray) -> np.ndarray:
        """Raw intervals in each local day (92/100 on DST days at 15 min)."""
        days = np.asarray(days, dtype=np.int64)
        return self.day_start_k(days + 1) - self.day_start_k(days)

    @staticmethod
    def day_to_date(days: np.ndarray) -> pd.DatetimeIndex:
        """Naive local midnight of each local day."""
        return pd.DatetimeIndex(np.asarray(days, dtype=np.int64) * NS_PER_DAY).as_unit("ns")

    def k_to_utc(self, k: np.ndarray) -> pd.DatetimeIndex:
        """UTC start of intervals ``k``."""
        return pd.DatetimeIndex(np.asarray(k, dtype=np.int64) * self.raw_ns, tz="UTC")
