"""Meter-level clustering of typical days: planted customer classes with PV meters among them,
the composition table, the agreement and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from meterflow.clustering.meter_figures import plot_meter_clusters
from meterflow.clustering.meter_level import (
    PROSUMER_SHARE,
    agreement,
    cluster_meters,
    composition,
    meter_table,
    peak_scale,
    represent,
)
from meterflow.clustering.metrics import ari
from meterflow.clustering.typical_days import typical_days
from meterflow.errors import ConfigError

HOURS = np.arange(24) + 0.5
DAYS = pd.date_range("2024-01-01", periods=28, freq="D")  # four whole weeks from a Monday


def bump(centre: float, width: float) -> np.ndarray:
    return np.exp(-((HOURS - centre) ** 2) / (2 * width**2))


# weekday and weekend shape of each planted class (relative to the meter's size)
CLASSES = {
    "office": (0.2 + bump(12, 3.0), 0.2 + 0.1 * bump(12, 3.0)),  # closed at weekends
    "home": (0.3 + bump(19, 1.5), 0.3 + bump(19, 1.5) + 0.8 * bump(12, 2.5)),  # home at weekends
    "farm": (0.3 + bump(7, 1.0) + bump(18, 1.0),) * 2,  # the same every day
}
PV = 0.5 * bump(12.5, 2.0)  # production per unit of size, the same on every day of the week


def fleet(per_class: int = 8, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Profiles (meter_id, date, slots) and meters (meter_id, type, production_kw): meters of
    sizes spread over two decades, every third one with PV, day-to-day noise."""
    rng = np.random.default_rng(seed)
    rows, meters = [], []
    for kind, (weekday, weekend) in CLASSES.items():
        for i in range(per_class):
            meter, size, pv = f"{kind}-{i}", 10 ** rng.uniform(0, 2), i % 3 == 0
            meters.append({"meter_id": meter, "type": kind, "production_kw": 5.0 * pv})
            for day in DAYS:
                shape = weekend if day.dayofweek >= 5 else weekday
                sun = rng.uniform(0.3, 1.0) * PV if pv else 0.0
                values = size * (shape * rng.lognormal(0, 0.1, 24) - sun)
                rows.append(
                    {"meter_id": meter, "date": day}
                    | {f"slot_{j:02d}": v for j, v in enumerate(values)}
                )
    return pd.DataFrame(rows), pd.DataFrame(meters)


@pytest.fixture(scope="module")
def planted():
    profiles, meters = fleet()
    typical = typical_days(profiles)
    return typical, meters, cluster_meters(typical, seed=0)


def test_the_rhythm_recovers_planted_classes_with_pv_meters_included(planted):
    _, meters, clusters = planted
    truth = meters.set_index("meter_id").loc[clusters.meter_ids, "type"].to_numpy()
    assert clusters.k == 3
    assert ari(truth, clusters.labels) == pytest.approx(1.0)
    assert agreement(clusters, meters)["ari"] == pytest.approx(1.0)
    assert clusters.centers.shape == (3, 48) and len(set(clusters.names)) == 3
    office = clusters.labels[list(clusters.meter_ids).index("office-1")]
    assert clusters.names[office].endswith("quieter weekends")
    home = clusters.labels[list(clusters.meter_ids).index("home-1")]
    assert clusters.names[home].endswith("busier weekends")


def test_pv_that_is_the_same_all_week_cancels_from_the_rhythm():
    rng = np.random.default_rng(0)
    consumption = rng.uniform(0.5, 2.0, (4, 48))
    net = consumption - np.tile(PV, 2)
    with_pv = represent(net, 24, "rhythm") * peak_scale(net)
    without = represent(consumption, 24, "rhythm") * peak_scale(consumption)
    np.testing.assert_allclose(with_pv, without)


def test_scale_is_the_peak_import_else_the_largest_value():
    typical = np.array([[1.0, -4.0, 2.0, 0.0], [-1.0, -3.0, -2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(peak_scale(typical).ravel(), [2.0, 3.0, 1.0])
    np.testing.assert_allclose(represent(typical, 2, "week")[0], [0.5, -2.0, 1.0, 0.0])
    np.testing.assert_allclose(represent(typical, 2, "rhythm")[2], [0.0, 0.0])
    with pytest.raises(ConfigError, match="representation"):
        represent(typical, 2, "shape")


def test_composition_counts_every_meter_once(planted):
    _, meters, clusters = planted
    table = composition(clusters, meters)
    assert list(table.columns) == [
        "cluster", "cluster_name", "meters", "farm", "home", "office", PROSUMER_SHARE
    ]  # fmt: skip
    assert table["meters"].sum() == len(meters)
    assert (table[["farm", "home", "office"]].sum(axis=1) == table["meters"]).all()
    pv = meters.set_index("meter_id")["production_kw"].gt(0)
    expected = pv.loc[clusters.meter_ids].groupby(clusters.labels).mean()
    np.testing.assert_allclose(table[PROSUMER_SHARE], expected.to_numpy())
    rows = meter_table(clusters, meters)
    assert list(rows.columns) == ["meter_id", "cluster", "cluster_name", "meter_type", "prosumer"]
    assert rows["prosumer"].sum() == pv.sum()


def test_without_a_meter_table_there_are_sizes_and_no_agreement(planted):
    _, meters, clusters = planted
    table = composition(clusters, None)
    assert list(table.columns) == ["cluster", "cluster_name", "meters"]
    assert agreement(clusters, None) == {}
    assert agreement(clusters, meters.drop(columns="type")) == {}
    fig = plot_meter_clusters(clusters, table)
    assert isinstance(fig, Figure)


def test_figure_has_a_panel_per_cluster_and_the_composition(planted):
    _, meters, clusters = planted
    fig = plot_meter_clusters(clusters, composition(clusters, meters), title="demo")
    visible = [ax for ax in fig.get_axes() if ax.get_visible()]
    assert len(visible) == clusters.k + 1
    assert {t.get_text() for t in visible[-1].get_yticklabels()} == set(clusters.names)


def test_too_few_meters_is_a_config_error(planted):
    typical, _, _ = planted
    few = type(typical)(typical.table.head(2), typical.skipped, typical.slots)
    with pytest.raises(ConfigError, match="needs 3 meters"):
        cluster_meters(few)
