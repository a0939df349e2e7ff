"""Figures of an ETL run (matplotlib ``Figure`` objects, no pyplot global state, no I/O): what
the cleaning quarantined or changed, and how complete the daily profiles are."""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from meterflow.schemas import Action, profile_slot_columns

ACTION_COLORS = {
    str(Action.DROPPED): "tab:red",
    str(Action.CORRECTED): "tab:orange",
    str(Action.FILLED): "tab:blue",
}


def _message_figure(text: str, title: str) -> Figure:
    """A small figure holding only a centred message (for empty inputs)."""
    fig = Figure(figsize=(6, 2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, transform=ax.transAxes)
    return fig


def reason_action_counts(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Records per reason (rows, fewest first) and action (columns: dropped, corrected, filled,
    then any other action met)."""
    counts = pd.crosstab(quarantine["reason"].astype(str), quarantine["action"].astype(str))
    known = [str(a) for a in Action]
    order = [a for a in known if a in counts.columns]
    order += sorted(c for c in counts.columns if c not in known)
    counts = counts[order]
    total = counts.sum(axis=1)
    return counts.loc[total.sort_values(kind="stable").index]


def _count_label(row: pd.Series) -> str:
    """``"1,234 dropped"`` or ``"1,500: 1,200 dropped, 300 corrected"`` for one reason."""
    parts = [f"{n:,} {action}" for action, n in row.items() if n]
    return parts[0] if len(parts) == 1 else f"{row.sum():,}: " + ", ".join(parts)


def quarantine_reasons_figure(quarantine: pd.DataFrame) -> Figure:
    """Horizontal bars of quarantine records per reason, stacked by action (dropped, corrected,
    filled), the count per action written at the end of each bar; largest reason at the top."""
    title = "quarantine and corrections by reason"
    if quarantine.empty:
        return _message_figure("no quarantined or corrected readings", title)
    counts = reason_action_counts(quarantine)
    sources = sorted(quarantine["source"].astype(str).unique()) if "source" in quarantine else []
    fig = Figure(figsize=(9, 1.4 + 0.32 * len(counts)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(counts))
    left = np.zeros(len(counts))
    for action in counts.columns:
        widths = counts[action].to_numpy(dtype=float)
        color = ACTION_COLORS.get(action)
        ax.barh(y, widths, left=left, color=color, label=action, height=0.7)
        left += widths
    totals = counts.sum(axis=1).to_numpy()
    note = {"xytext": (3, 0), "textcoords": "offset points", "va": "center", "fontsize": 8}
    for yi, (_, row) in zip(y, counts.iterrows(), strict=True):
        ax.annotate(_count_label(row), (row.sum(), yi), **note)
    ax.set_yticks(y, counts.index, fontsize=9)
    ax.set_xlim(0, totals.max() * 1.4)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("records")
    ax.legend(title="action", loc="lower right", fontsize=8)
    where = f" ({', '.join(sources)})" if sources else ""
    ax.set_title(f"{title}{where}: {int(totals.sum()):,} records")
    return fig


def completeness_table(profiles: pd.DataFrame) -> pd.DataFrame:
    """Share of non-NaN slots (0..1) per meter (rows, sorted) and day (columns, every day from
    the first to the last); a meter-day without a row counts 0, the best row when several."""
    slots = profile_slot_columns(profiles)
    share = profiles[slots].notna().mean(axis=1)
    frame = pd.DataFrame({"meter_id": profiles["meter_id"].astype(str), "date": profiles["date"]})
    table = frame.assign(share=share).pivot_table(
        index="meter_id", columns="date", values="share", aggfunc="max"
    )
    days = pd.date_range(profiles["date"].min(), profiles["date"].max(), freq="D")
    return table.reindex(columns=days, fill_value=0.0).fillna(0.0).sort_index()


def completeness_figure(
    profiles: pd.DataFrame, max_meters: int = 60, *, title: str = "profile completeness"
) -> Figure:
    """Heatmap of the share of non-missing slots per meter (y) and day (x), 0..1; meter-days
    without a profile count 0. Above ``max_meters`` meters only the least complete are shown."""
    if profiles.empty:
        return _message_figure("no profiles", title)
    table = completeness_table(profiles)
    n_meters = len(table)
    if n_meters > max_meters:
        worst = table.mean(axis=1).sort_values(kind="stable").index[:max_meters]
        table = table.loc[sorted(worst)]
        title += f": the {max_meters} least complete of {n_meters} meters"
    else:
        title += f": {n_meters} meters"
    n_days = table.shape[1]
    fig = Figure(figsize=(10, 1.8 + 0.17 * len(table)), layout="constrained")
    ax = fig.add_subplot()
    first = mdates.date2num(table.columns[0])
    extent = (first, first + n_days, len(table) - 0.5, -0.5)
    values = table.to_numpy()
    style = {"aspect": "auto", "cmap": "RdYlGn", "vmin": 0.0, "vmax": 1.0}
    image = ax.imshow(values, extent=extent, interpolation="nearest", **style)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_yticks(np.arange(len(table)), table.index, fontsize=7 if len(table) > 20 else 9)
    ax.set_xlabel(f"day ({n_days} days)")
    ax.set_ylabel("meter")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.9, label="share of non-missing slots")
    return fig
