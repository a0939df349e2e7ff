"""The DTW window a person gives (a fraction of the profile length) as the kernels' band in
slots."""

from __future__ import annotations

import math

from meterflow.errors import ConfigError

from .kernel import canonical_window


def window_slots(fraction: float, slots: int) -> int:
    """The dtaidistance band (``|i - j| < band``, 0 = unconstrained) of a DTW window given as
    a ``fraction`` of the profile length ``slots``.

    The largest shift allowed is aeon's Sakoe-Chiba radius for ``window=fraction`` on two
    profiles of ``m = slots`` slots, ``int(fraction * m)`` (``create_bounding_matrix`` keeps
    ``|i - j| <= int(window * m)``), so the band is that shift + 1; e.g. 0.1 allows 2 slots of
    24, 9 of 96, 14 of 144. Unlike aeon, where ``window=0`` leaves only the diagonal, a fraction
    > 0 allows at least 1 slot of shift and 0 means unconstrained (dtaidistance's 0); a fraction
    >= 1, or one whose shift spans the whole profile, is unconstrained too (returns 0).
    Negative or NaN fractions, or ``slots < 1``, raise ConfigError.
    """
    if isinstance(fraction, bool) or math.isnan(float(fraction)) or fraction < 0:
        raise ConfigError(f"DTW window must be a fraction of the day >= 0, got {fraction!r}")
    if slots < 1:
        raise ConfigError(f"profiles need >= 1 slot for a DTW window, got {slots}")
    if fraction == 0 or fraction >= 1:
        return 0
    shift = max(1, int(fraction * slots))
    return canonical_window(shift + 1, slots)
