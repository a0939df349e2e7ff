"""Time bounds as the sources take them: text, a timestamp or None; naive is UTC."""

from __future__ import annotations

import pandas as pd

TimeLike = str | pd.Timestamp | None


def utc_naive(value: TimeLike) -> pd.Timestamp | None:
    """``value`` as a naive UTC timestamp (an aware one converted, a naive one taken as UTC)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts
