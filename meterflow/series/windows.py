"""Input windows and labels, indexed exactly as seed 002 (the IoT LSTM prediction notebook).

Training windows: for each start ``i``, inputs ``x[i : i + seq_length]`` and label
``x[i + seq_length + horizon - 1]``, i.e. the value ``horizon`` slots after the last input.
Streaming validation: at each step only the readings seen so far are known, so the input is the
last ``seq_length`` of them, pre-padded when shorter; predictions start after ``min_history``
readings (2 in the notebook).

One deliberate difference: the notebook's loops (``range(len - seq_length - horizon)`` and
``range(2, len - horizon)``) stop one window early and never predict the last reading; here
every label that exists is used. For all the notebook's indices the windows are identical.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from meterflow.series.fleet import FleetSeries


def gather_windows(
    values: np.ndarray,
    label_pos: np.ndarray,
    first: np.ndarray | int,
    seq_length: int,
    horizon: int,
    pad_value: float = 0.0,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs for labels at ``label_pos``: the ``seq_length`` values ending ``horizon`` slots
    before each label, positions before ``first`` replaced by ``pad_value`` (pre-padding).

    Returns ``(windows (n, seq_length) dtype, n_real (n,) int)`` where ``n_real`` counts the
    real (non-padded) values of each window. Callers keep windows with ``n_real >= min_history``.
    """
    label_pos = np.asarray(label_pos, dtype=np.int64)
    end = label_pos - horizon + 1  # exclusive end of the inputs
    idx = end[:, None] - seq_length + np.arange(seq_length)[None, :]
    first_arr = np.broadcast_to(np.asarray(first, dtype=np.int64), end.shape)
    real = idx >= first_arr[:, None]
    windows = np.where(real, values[np.clip(idx, 0, None)], pad_value).astype(dtype)
    n_real = np.clip(end - first_arr, 0, seq_length)
    return windows, n_real


def windows_at(
    values: np.ndarray,
    origin: np.ndarray,
    first: np.ndarray | int,
    seq_length: int,
    pad_value: float = 0.0,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """``gather_windows`` of forecasts made at ``origin`` (positions of each window's last
    reading, which need not be followed by a target in ``values``)."""
    origin = np.asarray(origin, dtype=np.int64)
    return gather_windows(values, origin + 1, first, seq_length, 1, pad_value, dtype)


def sliding_windows(
    series: np.ndarray, seq_length: int = 30, horizon: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Notebook training windows of one contiguous series: ``(X (n, seq_length), y (n,))``."""
    series = np.asarray(series, dtype=np.float64)
    labels = np.arange(seq_length + horizon - 1, len(series))
    windows, _ = gather_windows(series, labels, 0, seq_length, horizon)
    return windows, series[labels].astype(np.float32)


def streaming_windows(
    series: np.ndarray,
    seq_length: int = 30,
    horizon: int = 5,
    min_history: int = 2,
    pad_value: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Notebook streaming validation of one contiguous series with no prior history: zero
    pre-padded windows from the first ``min_history`` readings on: ``(X, y)``."""
    series = np.asarray(series, dtype=np.float64)
    labels = np.arange(min_history + horizon - 1, len(series))
    windows, _ = gather_windows(series, labels, 0, seq_length, horizon, pad_value)
    return windows, series[labels].astype(np.float32)


def label_positions(
    fleet: FleetSeries,
    splits: tuple[int, ...],
    first: np.ndarray | None,
    seq_length: int,
    horizon: int,
    min_history: int,
    usable_meters: np.ndarray | None = None,
    span: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions whose value can be a label: in ``splits``, on a usable meter, with at least
    ``min_history`` real inputs between ``first`` (per point; default: segment start) and the
    window end. With ``span`` > 1 the label is the last of ``span`` consecutive targets (a
    multi-step forecast), and the first of them must be in ``splits`` too, so that no target
    crosses a split boundary. Returns ``(positions, first_of_each)``."""
    in_split = np.isin(fleet.split, splits)
    pos = np.flatnonzero(in_split)
    pos = pos[pos - span + 1 >= 0]
    pos = pos[in_split[pos - span + 1]]
    if usable_meters is not None:
        pos = pos[usable_meters[fleet.meter_idx[pos]]]
    start = fleet.seg_start[pos] if first is None else first[pos]
    end = pos - horizon + 1
    ok = end - start >= min_history
    return pos[ok], start[ok]


def time_channels(
    last_index: np.ndarray, seq_length: int, horizon: int, slots_per_day: int
) -> np.ndarray:
    """Calendar channels ``(n, seq_length, 5)`` float32 of the time ``horizon`` slots after each
    input step (so the last step carries the target's calendar). ``last_index`` is the
    ``calendar_index`` of each window's last input."""
    steps = (
        np.asarray(last_index, dtype=np.int64)[:, None]
        - (seq_length - 1)
        + np.arange(seq_length)
        + horizon
    )
    return calendar_channels(steps, slots_per_day)


def calendar_channels(index: np.ndarray, slots_per_day: int) -> np.ndarray:
    """Calendar channels (``index.shape + (5,)``, float32) of ``calendar_index`` values: sin/cos
    of the slot of day, sin/cos of the position in the week, and a weekend flag."""
    steps = np.asarray(index, dtype=np.int64)
    return _week_channels(slots_per_day)[np.mod(steps, 7 * slots_per_day)]


@lru_cache(maxsize=8)
def _week_channels(slots_per_day: int) -> np.ndarray:
    """(slots of a week, 5) the calendar channels of each slot of a week (read-only): looked
    up, not recomputed for every window step."""
    steps = np.arange(7 * slots_per_day, dtype=np.int64)
    week = 7 * slots_per_day
    day_angle = 2 * np.pi * np.mod(steps, slots_per_day) / slots_per_day
    week_angle = 2 * np.pi * np.mod(steps, week) / week
    weekend = np.mod(steps, week) >= 5 * slots_per_day
    channels = [np.sin(day_angle), np.cos(day_angle), np.sin(week_angle), np.cos(week_angle)]
    table = np.stack([*channels, weekend], axis=-1).astype(np.float32)
    table.setflags(write=False)
    return table


def model_inputs(
    scaled_windows: np.ndarray,
    last_index: np.ndarray | None,
    horizon: int,
    slots_per_day: int,
    time_features: bool,
) -> np.ndarray:
    """Temporal model input ``(n, seq_length, 1 or 6)``: the scaled window plus, optionally,
    the calendar channels (``last_index``: ``calendar_index`` of each window's last input)."""
    x = scaled_windows.astype(np.float32)[:, :, None]
    if not time_features:
        return x
    if last_index is None:
        raise ValueError("time features need the calendar index of each window end")
    calendar = time_channels(last_index, x.shape[1], horizon, slots_per_day)
    return np.concatenate([x, calendar], axis=-1)
