"""Names for clusters, read from the shape of each cluster's centre, its days and its sign.

A name is ``<shape>[, <days>]``, e.g. ``evening peak, weekdays`` or ``midday export (PV)``.
Every rule reads hours, never slot numbers (slot ``i`` of ``L`` is centred at
``(i + 0.5) * 24 / L`` h), so a shape gets the same name at 24, 48, 96 or 144 slots. The centre
is first smoothed with a circular moving average of about one hour (``2 * (L // 48) + 1``
slots), so that noise at fine resolutions does not make peaks. The rules are deterministic.

Periods of the day: night 22-06 h, morning 06-10 h, midday 10-16 h, evening 16-22 h.

Shape, the first rule that applies:

1. ``midday export (PV)`` / ``<period> export``: the values keep their sign (``signed``: Wh,
   or a scale-only normalisation: none, l2, max) and the lowest value is below
   ``-EXPORT_SHARE`` (10 %) of the largest absolute value, i.e. the meters feed in; named by the
   period of the lowest slot, "midday ... (PV)" when that is between 09 and 16 h.
2. ``flat (baseload)``: no spread at all, or (signed) the spread max - min is at most
   ``FLAT_SPREAD`` (35 %) of the maximum.
3. ``midday dip``: the lowest slot is between 09 and 16 h and the "low" hours (value below
   halfway between the day's minimum and maximum) add up to at most ``DIP_HOURS`` (8 h), all
   between 07 and 19 h (PV that does not export, or exports with the sign normalised away).
4. ``night load``: at least ``NIGHT_SHARE`` (60 %) of the "high" hours (value at least halfway
   between the day's minimum and maximum) are night hours.
5. ``daytime plateau``: the high hours add up to at least ``PLATEAU_HOURS`` (9 h), at least
   75 % of them between 07 and 21 h.
6. ``<period> peak`` or ``<period> and <period> peaks`` (``morning and evening peaks``): the
   periods of the prominent peaks (``peaks.prominent_peaks``, prominence at least
   ``PEAK_PROMINENCE`` (25 %) of the spread), in the order of the day from morning; the period
   of the maximum when no peak is prominent.

Days (needs the members' weekend share and the share among all days, ``base``): ``, weekends``
when the cluster's share of Saturdays and Sundays is at least ``WEEKEND_RATIO`` (1.75) times
``base`` (50 % for a plain calendar), ``, weekdays`` when it is at most ``WEEKDAY_RATIO`` (0.5)
times ``base`` (14 %); nothing otherwise.

Names are unique within a run: clusters that share a name get the hour of their defining slot
(the maximum; the lowest slot for export and dip) as ``(19 h)``; any still equal get ``(2)``,
``(3)``, ... in cluster order.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from meterflow.clustering.peaks import prominent_peaks
from meterflow.errors import SchemaError

SIGN_KEEPING = frozenset({"none", "l2", "max", "external"})  # normalisations that keep the sign
EXPORT_SHARE = 0.10
FLAT_SPREAD = 0.35
NIGHT_SHARE = 0.6
PLATEAU_HOURS = 9.0
DIP_HOURS = 8.0
DIP_DAY = (7.0, 19.0)
PLATEAU_DAY = (7.0, 21.0)
PLATEAU_DAY_SHARE = 0.75
PEAK_PROMINENCE = 0.25
WEEKEND_RATIO = 1.75
WEEKDAY_RATIO = 0.5
PERIODS = (("morning", 6.0, 10.0), ("midday", 10.0, 16.0), ("evening", 16.0, 22.0))
PV_HOURS = (9.0, 16.0)


def keeps_sign(*normalizations: str) -> bool:
    """Whether profiles normalised by each of ``normalizations`` in turn keep their sign and
    their level relative to the day's maximum (scale-only normalisations)."""
    return all(n in SIGN_KEEPING for n in normalizations)


def slot_hours(n_slots: int) -> np.ndarray:
    """Hour of day at the centre of each of ``n_slots`` slots."""
    return (np.arange(n_slots) + 0.5) * 24.0 / n_slots


def period(hour: float) -> str:
    """The period of the day (module doc) an hour falls in."""
    for name, start, end in PERIODS:
        if start <= hour % 24 < end:
            return name
    return "night"


def smooth(centre: np.ndarray) -> np.ndarray:
    """Circular moving average over about one hour (module doc)."""
    width = 2 * (len(centre) // 48) + 1
    if width == 1:
        return np.asarray(centre, dtype=np.float64)
    padded = np.concatenate([centre[-(width // 2) :], centre, centre[: width // 2]])
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def shape_name(centre: np.ndarray, *, signed: bool = True) -> tuple[str, float]:
    """The shape part of a centre's name and the hour of its defining slot (module doc)."""
    raw = np.asarray(centre, dtype=np.float64)
    if raw.ndim != 1 or len(raw) < 2 or not np.isfinite(raw).all():
        raise SchemaError(f"a cluster centre must be a finite profile, got shape {raw.shape}")
    values = smooth(raw)
    hours = slot_hours(len(values))
    low, high = float(values.min()), float(values.max())
    top = float(np.abs(values).max())
    if signed and low < -EXPORT_SHARE * top:
        hour = float(hours[values.argmin()])
        where = "midday" if PV_HOURS[0] <= hour < PV_HOURS[1] else period(hour)
        return f"{where} export" + (" (PV)" if where == "midday" else ""), hour
    peak_hour = float(hours[values.argmax()])
    spread = high - low
    if spread <= 1e-12 * max(top, 1e-300) or (signed and spread <= FLAT_SPREAD * high):
        return "flat (baseload)", peak_hour
    relative = (values - low) / spread
    high_hours, low_hours = hours[relative >= 0.5], hours[relative < 0.5]
    slot = 24.0 / len(values)
    low_hour = float(hours[values.argmin()])
    if (
        PV_HOURS[0] <= low_hour < PV_HOURS[1]
        and len(low_hours) * slot <= DIP_HOURS
        and ((low_hours >= DIP_DAY[0]) & (low_hours < DIP_DAY[1])).all()
    ):
        return "midday dip", low_hour
    at_night = np.array([period(h) == "night" for h in high_hours])
    if at_night.mean() >= NIGHT_SHARE:
        return "night load", peak_hour
    in_day = (high_hours >= PLATEAU_DAY[0]) & (high_hours < PLATEAU_DAY[1])
    if len(high_hours) * slot >= PLATEAU_HOURS and in_day.mean() >= PLATEAU_DAY_SHARE:
        return "daytime plateau", peak_hour
    return _peaks_name(values, hours), peak_hour


def _peaks_name(values: np.ndarray, hours: np.ndarray) -> str:
    """``<period> peak`` or ``<a>, <b> and <c> peaks`` from the prominent peaks' periods."""
    found = prominent_peaks(values, prominence=PEAK_PROMINENCE)
    slots = found if len(found) else np.array([values.argmax()])
    order = [p for p, _, _ in PERIODS] + ["night"]
    periods = sorted({period(float(hours[s])) for s in slots}, key=order.index)
    if len(periods) == 1:
        return f"{periods[0]} peak"
    return f"{', '.join(periods[:-1])} and {periods[-1]} peaks"


def days_suffix(weekend_share: float | None, base: float | None) -> str:
    """``, weekends``, ``, weekdays`` or nothing (module doc)."""
    if weekend_share is None or base is None or not 0.0 < base < 1.0:
        return ""
    if not np.isfinite(weekend_share):
        return ""
    if weekend_share >= WEEKEND_RATIO * base:
        return ", weekends"
    if weekend_share <= WEEKDAY_RATIO * base:
        return ", weekdays"
    return ""


def name_clusters(
    centers: np.ndarray,
    *,
    signed: bool = True,
    weekend_shares: np.ndarray | None = None,
    base_weekend_share: float | None = None,
) -> list[str]:
    """One unique name per row of ``centers`` (k, L) (module doc). ``signed``: the centres keep
    the sign of the energy (see :func:`keeps_sign`); ``weekend_shares`` (k,): each cluster's
    share of weekend days; ``base_weekend_share``: that share among all days."""
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2:
        raise SchemaError(f"cluster centres must be (k, slots), got shape {centers.shape}")
    shapes = [shape_name(c, signed=signed) for c in centers]
    shares = [None] * len(centers) if weekend_shares is None else list(weekend_shares)
    names = [
        (shape, days_suffix(share, base_weekend_share))
        for (shape, _), share in zip(shapes, shares, strict=True)
    ]
    counts = Counter(names)
    hours = [hour for _, hour in shapes]
    full = [
        f"{shape} ({int(hour)} h){days}" if counts[(shape, days)] > 1 else f"{shape}{days}"
        for (shape, days), hour in zip(names, hours, strict=True)
    ]
    return _numbered(full)


def _numbered(names: list[str]) -> list[str]:
    """``names`` with the second, third, ... of equal names suffixed ``(2)``, ``(3)``, ..."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def weekend_shares(assign: pd.DataFrame, k: int) -> tuple[np.ndarray | None, float | None]:
    """Each cluster's share of Saturdays and Sundays (k,) among its profiles (NaN for an empty
    cluster) and the share among all profiles; ``(None, None)`` without a ``date`` column."""
    if "date" not in assign.columns or assign.empty:
        return None, None
    weekend = pd.to_datetime(assign["date"]).dt.dayofweek.to_numpy() >= 5
    labels = assign["cluster"].to_numpy(dtype=np.int64)
    days = np.bincount(labels, minlength=k).astype(float)
    ends = np.bincount(labels, weights=weekend.astype(float), minlength=k)
    shares = np.divide(ends, days, out=np.full(k, np.nan), where=days > 0)
    return shares, float(weekend.mean())
