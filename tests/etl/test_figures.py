"""Figures of the ETL and harmonization runs: built from small tables, checked for real content
(bar widths equal the counts, heatmap cells equal the completeness shares)."""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from meterflow.etl.figures import (
    completeness_figure,
    completeness_table,
    quarantine_reasons_figure,
    reason_action_counts,
)
from meterflow.etl.quarantine import QUARANTINE_COLUMNS, empty_quarantine
from meterflow.profiles import figures as profile_figures
from meterflow.profiles.figures import (
    harmonized_completeness_figure,
    source_coverage_figure,
    source_coverage_table,
)
from meterflow.schemas import QUARANTINE, slot_columns

SLOTS = slot_columns(4)
DAY = pd.Timestamp("2024-03-01")


def quarantine(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """A quarantine table with one record per (reason, action) in ``rows``."""
    n = len(rows)
    frame = pd.DataFrame(
        {
            "meter_id": [f"M{i % 2}" for i in range(n)],
            "timestamp": pd.date_range("2024-03-01", periods=n, freq="15min", tz="UTC"),
            "source": "sql",
            "original_value": np.arange(n, dtype=float),
            "new_value": np.nan,
            "action": [a for _, a in rows],
            "reason": [r for r, _ in rows],
            "detail": "",
            "location": "",
            "register": "import",
        }
    )
    return QUARANTINE.validate(frame[QUARANTINE_COLUMNS])


def profiles(rows: list[tuple[str, int, str, list[float]]]) -> pd.DataFrame:
    """A profiles table from (meter, day offset, source, 4 slot values)."""
    keys = pd.DataFrame(
        {
            "meter_id": [m for m, _, _, _ in rows],
            "date": [DAY + pd.Timedelta(days=d) for _, d, _, _ in rows],
            "source": [s for _, _, s, _ in rows],
        }
    )
    values = pd.DataFrame([v for _, _, _, v in rows], columns=SLOTS, dtype=float)
    return pd.concat([keys, values], axis=1)


FULL = [1.0, 2.0, 3.0, 4.0]
HALF = [1.0, np.nan, 3.0, np.nan]
QUARTER = [np.nan, np.nan, np.nan, 4.0]


@pytest.fixture
def close_figures():
    made: list[Figure] = []
    yield made
    for fig in made:
        fig.clear()


def texts(fig: Figure) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_quarantine_bars_are_the_counts_stacked_by_action(close_figures):
    q = quarantine(
        [("gap", "filled")] * 5
        + [("duplicate", "dropped")] * 3
        + [("scale", "corrected")] * 3
        + [("scale", "dropped")]
    )
    fig = quarantine_reasons_figure(q)
    close_figures.append(fig)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    # fewest first (bottom), so the largest reason is at the top
    assert [t.get_text() for t in ax.get_yticklabels()] == ["duplicate", "scale", "gap"]
    assert [c.get_label() for c in ax.containers] == ["dropped", "corrected", "filled"]
    widths = {c.get_label(): [p.get_width() for p in c.patches] for c in ax.containers}
    assert widths == {"dropped": [3, 1, 0], "corrected": [0, 3, 0], "filled": [0, 0, 5]}
    lefts = [p.get_x() for p in ax.containers[1].patches]  # corrected sits after dropped
    assert lefts == [3, 1, 0]
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["3 dropped", "4: 1 dropped, 3 corrected", "5 filled"]
    assert "12 records" in ax.get_title() and "(sql)" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dropped", "corrected", "filled"]


def test_reason_action_counts_orders_actions_and_reasons():
    q = quarantine([("outlier", "dropped"), ("gap", "filled"), ("gap", "filled")])
    counts = reason_action_counts(q)
    assert list(counts.index) == ["outlier", "gap"]
    assert list(counts.columns) == ["dropped", "filled"]
    assert counts.to_numpy().tolist() == [[1, 0], [0, 2]]


def test_empty_quarantine_says_so(close_figures):
    fig = quarantine_reasons_figure(empty_quarantine())
    close_figures.append(fig)
    assert isinstance(fig, Figure)
    assert "no quarantined or corrected readings" in texts(fig)
    assert not fig.axes[0].patches


def heatmap(fig: Figure):
    ax = fig.axes[0]
    (image,) = ax.get_images()
    return ax, np.asarray(image.get_array())


def test_completeness_heatmap_holds_the_shares(close_figures):
    table = profiles(
        [
            ("M1", 0, "sql", FULL),
            ("M1", 1, "sql", HALF),
            ("M2", 0, "sql", QUARTER),
            ("M2", 2, "sql", FULL),  # M2 day 1 has no row: 0; M1 day 2 has no row: 0
        ]
    )
    fig = completeness_figure(table)
    close_figures.append(fig)
    assert len(fig.axes) == 2  # heatmap and colourbar
    ax, values = heatmap(fig)
    np.testing.assert_allclose(values, [[1.0, 0.5, 0.0], [0.25, 0.0, 1.0]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["M1", "M2"]
    assert fig.axes[1].get_ylabel() == "share of non-missing slots"
    left, right, _, _ = ax.get_images()[0].get_extent()
    assert (left, right) == (mdates.date2num(DAY), mdates.date2num(DAY) + 3)
    assert "2 meters" in ax.get_title()


def test_completeness_keeps_the_least_complete_meters(close_figures):
    rows = [(f"M{i}", d, "sql", FULL) for i in range(5) for d in range(3)]
    rows[4] = ("M1", 1, "sql", HALF)  # M1: 2.5 / 3
    del rows[9]  # M3 loses day 0: 2 / 3
    fig = completeness_figure(profiles(rows), max_meters=2)
    close_figures.append(fig)
    ax, values = heatmap(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["M1", "M3"]
    np.testing.assert_allclose(values, [[1.0, 0.5, 1.0], [0.0, 1.0, 1.0]])
    assert "the 2 least complete of 5 meters" in ax.get_title()


def test_completeness_table_takes_the_best_row_of_a_meter_day():
    table = profiles([("M1", 0, "sql", HALF), ("M1", 0, "oldmongo", QUARTER)])
    assert completeness_table(table).to_numpy().tolist() == [[0.5]]


def harmonized() -> pd.DataFrame:
    return profiles(
        [
            ("M1", 0, "oldmongo", FULL),
            ("M2", 0, "oldmongo", FULL),
            ("M3", 0, "sql", HALF),
            ("M1", 1, "sql", FULL),
            ("M2", 1, "sql", FULL),
            ("M3", 1, "newmongo", FULL),
            ("M1", 3, "newmongo", FULL),  # day 2: nothing
        ]
    )


def test_source_coverage_stacks_daily_counts_per_source(close_figures):
    fig = source_coverage_figure(harmonized())
    close_figures.append(fig)
    (ax,) = fig.axes
    assert [c.get_label() for c in ax.containers] == [
        "newmongo (2)",
        "sql (3)",
        "oldmongo (2)",
    ]
    heights = [[p.get_height() for p in c.patches] for c in ax.containers]
    assert heights == [[0, 1, 0, 1], [1, 2, 0, 0], [2, 0, 0, 0]]
    bottoms = [p.get_y() for p in ax.containers[2].patches]
    assert bottoms == [1, 3, 0, 1]
    colors = [c.patches[0].get_facecolor() for c in ax.containers]
    assert len(set(colors)) == 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["oldmongo (2)", "sql (3)", "newmongo (2)"]  # top of the stack first


def test_source_coverage_table_fills_missing_days():
    table = source_coverage_table(harmonized())
    assert list(table.columns) == ["newmongo", "sql", "oldmongo"]
    assert len(table) == 4
    assert table.loc[DAY + pd.Timedelta(days=2)].sum() == 0


def test_harmonized_completeness_reuses_the_etl_figure(close_figures):
    assert profile_figures.completeness_figure is completeness_figure
    fig = harmonized_completeness_figure(harmonized())
    close_figures.append(fig)
    ax, values = heatmap(fig)
    assert ax.get_title().startswith("harmonized profile completeness")
    np.testing.assert_allclose(values[2], [0.5, 1.0, 0.0, 0.0])
