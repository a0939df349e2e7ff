"""Figures of the harmonized profiles (matplotlib ``Figure`` objects, no pyplot global state, no
I/O): which source won each meter-day, and how complete the result is (``completeness_figure``
is the ETL one, re-exported)."""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.etl.figures import completeness_figure
from meterflow.profiles.harmonize import DEFAULT_PRIORITY

__all__ = [
    "SOURCE_COLORS",
    "completeness_figure",
    "harmonized_completeness_figure",
    "source_coverage_figure",
    "source_coverage_table",
]

SOURCE_COLORS = dict(zip(DEFAULT_PRIORITY, ("tab:blue", "tab:orange", "tab:green"), strict=True))
_OTHER_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def source_coverage_table(profiles: pd.DataFrame) -> pd.DataFrame:
    """Meter-days per day (rows: every day from the first to the last) and winning source
    (columns: ``DEFAULT_PRIORITY`` order, then any other source alphabetically)."""
    counts = pd.crosstab(profiles["date"], profiles["source"].astype(str))
    days = pd.date_range(profiles["date"].min(), profiles["date"].max(), freq="D")
    order = [s for s in DEFAULT_PRIORITY if s in counts.columns]
    order += sorted(c for c in counts.columns if c not in DEFAULT_PRIORITY)
    return counts.reindex(index=days, columns=order, fill_value=0)


def source_coverage_figure(profiles: pd.DataFrame) -> Figure:
    """Stacked daily bars of meter-days in the harmonized table per winning source (one colour
    per source; the legend gives each source's total)."""
    title = "harmonized profiles: meter-days per winning source"
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    if profiles.empty:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no profiles", ha="center", va="center", transform=ax.transAxes)
        return fig
    table = source_coverage_table(profiles)
    x = mdates.date2num(table.index)
    bottom = np.zeros(len(table))
    others = iter(_OTHER_COLORS * (1 + len(table.columns) // len(_OTHER_COLORS)))
    for source in table.columns:
        heights = table[source].to_numpy(dtype=float)
        color = SOURCE_COLORS.get(source) or next(others)
        label = f"{source} ({int(heights.sum()):,})"
        ax.bar(x, heights, bottom=bottom, width=1.0, align="edge", color=color, label=label)
        bottom += heights
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlim(x[0], x[-1] + 1)
    ax.set_ylim(0, bottom.max() * 1.08)
    ax.set_xlabel("day")
    ax.set_ylabel("meter-days")
    handles, labels = ax.get_legend_handles_labels()
    where = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8}
    ax.legend(handles[::-1], labels[::-1], title="winning source", **where)  # top of stack first
    return fig


def harmonized_completeness_figure(profiles: pd.DataFrame, max_meters: int = 60) -> Figure:
    """``completeness_figure`` of the harmonized table, titled as such."""
    return completeness_figure(profiles, max_meters, title="harmonized profile completeness")
