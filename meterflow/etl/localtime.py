"""Naive wall-clock timestamps of a store that writes local time (pure functions).

A store written in naive local time and read as UTC shifts every value by the zone's offset and
leaves a signature on the days the offset changes: each series repeats the wall-clock hour of
the autumn change (two rows per timestamp) and skips the hour of the spring change.
:func:`dst_evidence` measures that signature per change, on the stamps as stored; the caller
decides (most series showing it on the change day, and not on the days around it).

:func:`localise` converts such stamps to UTC: a repeated wall-clock time is summer time at its
first row of a series (in store order) and standard time at its second; with any other number
of rows it is left unresolved, as is a wall-clock time that does not exist (the skipped hour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NS_PER_MIN = 60 * 10**9
NS_PER_DAY = 1440 * NS_PER_MIN
LOCAL_OK, NONEXISTENT, AMBIGUOUS = 0, 1, 2  # status of a localised stamp
_CONTROL_DAYS = (-1, 1)  # the same wall-clock window on these days is the control


@dataclass(frozen=True)
class Transition:
    """One change of a zone's UTC offset, as the wall-clock window it skips or repeats."""

    utc_ns: int  # the instant of the change
    wall_lo: int  # first wall-clock time of the window (naive ns)
    wall_hi: int  # end of the window (exclusive)
    skipped: bool  # spring forward: the window does not exist; fall back: it occurs twice

    @property
    def label(self) -> str:
        """``2024-03-31 02:00-03:00`` (the window's wall-clock times)."""
        lo, hi = pd.Timestamp(self.wall_lo), pd.Timestamp(self.wall_hi)
        return f"{lo:%Y-%m-%d %H:%M}-{hi:%H:%M}"


def _offsets(stamps: pd.DatetimeIndex, zone: str) -> np.ndarray:
    """UTC offsets (ns) of ``zone`` at the UTC instants ``stamps``."""
    stamps = stamps.as_unit("ns")
    return stamps.tz_convert(zone).tz_localize(None).asi8 - stamps.tz_localize(None).asi8


def transitions(zone: str, lo_ns: int, hi_ns: int) -> list[Transition]:
    """The offset changes of ``zone`` between the UTC instants ``lo_ns`` and ``hi_ns`` (a day of
    margin each side), found per day and then to the minute."""
    lo = pd.Timestamp(lo_ns, tz="UTC").floor("D") - pd.Timedelta(days=2)
    hi = pd.Timestamp(hi_ns, tz="UTC").ceil("D") + pd.Timedelta(days=2)
    days = pd.date_range(lo, hi, freq="D")
    off = _offsets(days, zone)
    out = []
    for i in np.flatnonzero(off[1:] != off[:-1]):
        minutes = pd.date_range(days[i], days[i + 1], freq="min")
        m_off = _offsets(minutes, zone)
        j = int(np.flatnonzero(m_off != m_off[0])[0])
        t, before, after = int(minutes[j].value), int(m_off[0]), int(m_off[j])
        lo_w, hi_w = (t + before, t + after) if after > before else (t + after, t + before)
        out.append(Transition(t, lo_w, hi_w, skipped=after > before))
    return out


def windows(trans: list[Transition]) -> np.ndarray:
    """Sorted, merged ``[lo, hi)`` wall-clock bounds (flat array) of everything
    :func:`dst_evidence` looks at: each change's window with its width before and after, on the
    change day and the control days."""
    spans = []
    for t in trans:
        width = t.wall_hi - t.wall_lo
        for d in (0, *_CONTROL_DAYS):
            spans.append((t.wall_lo - width + d * NS_PER_DAY, t.wall_hi + width + d * NS_PER_DAY))
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return np.asarray(merged, dtype=np.int64).ravel()


def in_windows(stamps: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mask of ``stamps`` inside the flat sorted ``[lo, hi)`` ``bounds`` of :func:`windows`."""
    return np.searchsorted(bounds, stamps, side="right") % 2 == 1


@dataclass(frozen=True)
class Evidence:
    """The local-time signature at one change, counted in series (e.g. historian tags)."""

    transition: Transition
    observable: int  # series with rows on both sides of the window
    local: int  # ... whose window looks like local time read as UTC (skipped or doubled)
    utc: int  # ... whose window cannot be local time (rows in the skipped hour, single rows)
    control_shown: int  # observable series showing ``local`` on the control days ...
    control_seen: int  # ... of the series observable there

    @property
    def control(self) -> float:
        """Share of the series observable on the control days that show ``local`` there."""
        return self.control_shown / self.control_seen if self.control_seen else 0.0


def _window_signature(
    series: np.ndarray, stamps: np.ndarray, lo: int, hi: int, skipped: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct series: (observable, local-time signature, UTC signature) at ``[lo, hi)``."""
    width = hi - lo
    keys = np.unique(series)
    before = np.isin(keys, series[(stamps >= lo - width) & (stamps < lo)])
    after = np.isin(keys, series[(stamps >= hi) & (stamps < hi + width)])
    inside = (stamps >= lo) & (stamps < hi)
    s_in, t_in = series[inside], stamps[inside]
    rows = np.bincount(np.searchsorted(keys, s_in), minlength=len(keys))
    pairs = np.unique(np.stack([s_in, t_in]), axis=1) if len(s_in) else np.zeros((2, 0), np.int64)
    distinct = np.bincount(np.searchsorted(keys, pairs[0]), minlength=len(keys))
    observable = before & after
    if skipped:
        return observable, observable & (rows == 0), observable & (rows > 0)
    doubled = (rows - distinct) * 2 >= distinct  # at least half the stamps occur twice
    return observable, observable & (rows > 0) & doubled, observable & (rows > 0) & ~doubled


def dst_evidence(series: np.ndarray, stamps: np.ndarray, trans: list[Transition]) -> list[Evidence]:
    """The signature at each change of ``trans`` in the stored ``stamps`` (wall-clock ns, any
    order) of ``series`` (integer keys); rows outside :func:`windows` are ignored."""
    series, stamps = np.asarray(series, np.int64), np.asarray(stamps, np.int64)
    out = []
    for t in trans:
        obs, local, utc = _window_signature(series, stamps, t.wall_lo, t.wall_hi, t.skipped)
        shown, seen = 0, 0
        for d in _CONTROL_DAYS:
            shift = d * NS_PER_DAY
            c_obs, c_local, _ = _window_signature(
                series, stamps, t.wall_lo + shift, t.wall_hi + shift, t.skipped
            )
            shown, seen = shown + int(c_local.sum()), seen + int(c_obs.sum())
        out.append(Evidence(t, int(obs.sum()), int(local.sum()), int(utc.sum()), shown, seen))
    return out


def combine_evidence(parts: list[list[Evidence]]) -> list[Evidence]:
    """The evidence of disjoint sets of series (blocks of meters) as that of all of them: the
    counts of each change summed (a block sees every change its series can be observed at, so
    a change missing from a block's list counts nothing there), in time order."""
    total: dict[int, Evidence] = {}
    for evidence in parts:
        for e in evidence:
            before = total.get(e.transition.utc_ns)
            if before is not None:
                e = Evidence(
                    e.transition,
                    *(
                        getattr(before, f) + getattr(e, f)
                        for f in ("observable", "local", "utc", "control_shown", "control_seen")
                    ),
                )
            total[e.transition.utc_ns] = e
    return [total[t] for t in sorted(total)]


def _pairs(series: np.ndarray, wall: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of each row among the rows of its (series, wall time) group by ``order`` when the
    group has exactly two rows (0 first, 1 second); -1 in groups of any other size."""
    idx = np.lexsort((order, wall, series))
    s, w = series[idx], wall[idx]
    start = np.r_[True, (s[1:] != s[:-1]) | (w[1:] != w[:-1])]
    gid = np.cumsum(start) - 1
    rank = np.arange(len(idx)) - np.flatnonzero(start)[gid]
    out = np.full(len(idx), -1, dtype=np.int64)
    out[idx] = np.where(np.bincount(gid)[gid] == 2, rank, -1)
    return out


def localise(
    series: np.ndarray, wall_ns: np.ndarray, order: np.ndarray, zone: str
) -> tuple[np.ndarray, np.ndarray]:
    """UTC ns of the wall-clock stamps ``wall_ns`` of ``zone``, and each row's status
    (``LOCAL_OK``, ``NONEXISTENT``, ``AMBIGUOUS``: unresolved; their UTC value is meaningless).

    A repeated wall-clock time is summer time at the first row of its series (by ``order``, the
    store's row order) and standard time at the second, when the series has exactly two rows
    at that time; otherwise it stays ``AMBIGUOUS``."""
    wall_ns = np.asarray(wall_ns, np.int64)
    uniq, inv = np.unique(wall_ns, return_inverse=True)
    naive = pd.DatetimeIndex(uniq.view("datetime64[ns]"))
    strict = naive.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    dst = naive.tz_localize(zone, ambiguous=np.ones(len(uniq), bool), nonexistent="NaT")
    std = naive.tz_localize(zone, ambiguous=np.zeros(len(uniq), bool), nonexistent="NaT")
    u_status = np.where(dst.isna(), NONEXISTENT, np.where(strict.isna(), AMBIGUOUS, LOCAL_OK))
    status = u_status[inv].astype(np.int8)
    utc = np.where(dst.isna(), 0, dst.asi8)[inv]
    amb = np.flatnonzero(status == AMBIGUOUS)
    if len(amb):
        rank = _pairs(np.asarray(series)[amb], wall_ns[amb], np.asarray(order)[amb])
        second = amb[rank == 1]
        utc[second] = std.asi8[inv[second]]
        status[amb[rank >= 0]] = LOCAL_OK
    return utc, status


def naive_local_changes(evidence: list[Evidence]) -> list[Evidence]:
    """The changes where most observable series show the local-time signature and the days
    around do not (a store in naive local time, read as UTC)."""
    return [e for e in evidence if e.local * 2 > e.observable > 0 and e.control < 0.5]


def utc_changes(evidence: list[Evidence]) -> list[Evidence]:
    """The changes where most observable series have rows that local time cannot have (a store
    in UTC, read as local time)."""
    return [e for e in evidence if e.utc * 2 > e.observable > 0]


def describe_changes(changes: list[Evidence], *, local: bool, unit: str, most: int = 4) -> str:
    """``2024-03-31 02:00-03:00 missing in 10 of 10 tags, ...`` (the first ``most`` changes);
    ``local``: the local-time signature, else the UTC one."""
    parts = []
    for e in changes[:most]:
        t = e.transition
        if local:
            what, n = ("missing" if t.skipped else "repeated"), e.local
        else:
            what, n = ("present" if t.skipped else "not repeated"), e.utc
        parts.append(f"{t.label} {what} in {n} of {e.observable} {unit}")
    more = f" and {len(changes) - most} more change(s)" if len(changes) > most else ""
    return ", ".join(parts) + more
