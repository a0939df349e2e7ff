"""The sections of the night's report, from the story and the tables the steps logged: the night
(steps, reuse, promotions), data quality, clusters, forecasts against baselines, alerts.

Pure: tables in, ``Section`` out (figures drawn in memory). Columns are read by name and the
optional ones only where present, so a table that gained or lost a column still reports.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from meterflow.orchestration.story import (
    FAILED,
    Night,
    forecast_phrase,
    night_steps,
    quarantined_share,
    source_of,
    verdict,
)
from meterflow.prose import count, num, percent, seconds
from meterflow.report.figures import (
    centroids_figure,
    forecast_figure,
    horizon_figure,
    png,
    reasons_figure,
)
from meterflow.report.render import Figure, Section, Table

NIGHT, QUALITY, CLUSTERS, FORECASTS, ALERTS = (
    "The night",
    "Data quality",
    "Clusters",
    "Forecasts against baselines",
    "Alerts",
)
TOP_REASONS = 8
TOP_ALERTS = 10
HORIZON_MODELS = 4  # candidates drawn over the horizon, the best on test (and the kept one)
NAME_COLUMNS = ("name", "cluster_name", "shape")  # a cluster's name, where the run gives one
QUARANTINED = "dropped"  # the corrections_summary action of a quarantined reading


def _present(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return frame[[c for c in columns if c in frame.columns]]


def night_section(night: Night, durations_png: bytes | None) -> Section:
    """What ran, what was reused (and from which run), what became of each model."""
    steps = night_steps(night)
    steps["run_id"] = steps["run_id"].str[:12]
    shown = steps.drop(columns=["run_link"]).rename(columns={"duration_s": "seconds"})
    tables = [Table("Steps of the night (run id: the run the night used)", shown)]
    if night.promotions:
        rows = [(p.step, p.outcome, p.reason or "") for p in night.promotions]
        promotions = pd.DataFrame(rows, columns=["step", "outcome", "reason"])
        tables.append(Table("Model promotions", promotions))
    lines = [verdict(night) + ".", f"The night took {seconds(night.duration_s)}."]
    if any(o.status == "reused" for o in night.outcomes):
        lines.append("A reused step's run had the same inputs and code; it was not run again.")
    figures = (Figure("Seconds per step this night", durations_png),) if durations_png else ()
    return Section(NIGHT, tuple(lines), tuple(tables), figures)


def source_totals(night: Night) -> pd.DataFrame:
    """One row per ETL step of the night: its readings in, kept, quarantined, meter-days."""
    rows = []
    for o in night.outcomes:
        if not o.step.startswith("etl_") or o.status == FAILED:
            continue
        m = night.child(o.step).metrics
        share = quarantined_share(night.child(o.step))
        rows.append(
            {
                "source": source_of(o.step),
                "status": o.status,
                "readings_in": m.get("readings_in"),
                "readings_kept": m.get("readings_kept"),
                "readings_quarantined": m.get("readings_quarantined"),
                "quarantined_%": None if share is None else share * 100,
                "meter_days_out": m.get("meter_days_out"),
            }
        )
    return pd.DataFrame(rows).convert_dtypes()


def top_reasons(reasons: pd.DataFrame) -> pd.DataFrame:
    """The quarantine reasons with the most readings (``source``, ``action``, ``reason``,
    ``count`` in), one column per source and the total."""
    dropped = reasons.loc[reasons["action"].astype(str) == QUARANTINED]
    table = dropped.pivot_table(
        index="reason", columns="source", values="count", aggfunc="sum", fill_value=0
    )
    table["count"] = table.sum(axis=1)
    table = table.sort_values("count", ascending=False).head(TOP_REASONS)
    return table.reset_index().rename_axis(columns=None)


def quality_section(night: Night, reasons: pd.DataFrame | None) -> Section:
    """Per source: readings kept and quarantined; the top reasons over all sources."""
    totals = source_totals(night)
    if totals.empty:
        return Section(QUALITY, missing="not available in this run: no ETL step finished")
    read, quarantined = totals["readings_in"].sum(), totals["readings_quarantined"].sum()
    share = quarantined / read if read else None
    lines = [
        f"{count(read)} readings read from {len(totals)} sources, {count(quarantined)} quarantined "
        f"({percent(share)}); per-reason detail in each ETL run's quarantine table."
    ]
    tables = [Table("Readings per source", totals)]
    figures: list[Figure] = []
    if reasons is not None and not reasons.empty:
        top = top_reasons(reasons)
        tables.append(Table("Top quarantine reasons (readings)", top))
        figures.append(Figure("Readings quarantined per reason", png(reasons_figure(top))))
    else:
        lines.append("Quarantine reasons: not available in this run (no corrections_summary).")
    return Section(QUALITY, tuple(lines), tuple(tables), tuple(figures))


def cluster_names(*tables: pd.DataFrame | None) -> dict[int, str]:
    """Each cluster's name, from the first table with a name column (empty: none has one)."""
    for table in tables:
        if table is None:
            continue
        column = next((c for c in NAME_COLUMNS if c in table.columns), None)
        if column is not None:
            return {int(c): str(n) for c, n in zip(table["cluster"], table[column], strict=True)}
    return {}


def clusters_section(
    sizes: pd.DataFrame, centers: pd.DataFrame | None, metrics: dict[str, float]
) -> Section:
    """The clusters: names, sizes, centroids."""
    names = cluster_names(sizes, centers)
    shown = sizes.copy()
    if names:
        shown["name"] = shown["cluster"].map(names)
    if "share" in shown.columns:
        shown["share_%"] = shown["share"] * 100
    shown = _present(shown, ("cluster", "name", "profiles", "meters", "share_%"))
    k = metrics.get("k", float(len(sizes)))
    lines = [f"{count(k)} clusters, silhouette {num(metrics.get('silhouette'))}."]
    figures = ()
    if centers is not None:
        figures = (Figure("Cluster centroids over the day", png(centroids_figure(centers, names))),)
    else:
        lines.append("Centroid figure: not available in this run (no centers table).")
    return Section(CLUSTERS, tuple(lines), (Table("Cluster sizes", shown),), figures)


def forecast_section(
    candidates: pd.DataFrame, by_step: pd.DataFrame | None, night: Night
) -> Section:
    """The kept forecaster against every baseline on the test split."""
    rows = candidates.sort_values("test_mae")
    shown = _present(rows, ("candidate", "role", "kept", "val_mae", "test_mae", "test_rmse"))
    phrase = forecast_phrase(night.child("forecasting"))
    lines = [f"The kept forecaster: test {phrase}." if phrase else "Test MAE: n/a."]
    figures = [Figure("Test MAE per candidate", png(forecast_figure(rows)))]
    best = set(rows["candidate"].head(HORIZON_MODELS)) | set(rows.loc[rows["kept"], "candidate"])
    if by_step is not None and by_step["model"].isin(best).any():
        curves = by_step.loc[by_step["model"].isin(best)]
        caption = f"MAE over the horizon: the {HORIZON_MODELS} best on test and the kept model"
        figures.append(Figure(caption, png(horizon_figure(curves))))
    table = Table("Candidates and baselines on the test split (Wh)", shown)
    return Section(FORECASTS, tuple(lines), (table,), tuple(figures))


def alerts_section(alerts: pd.DataFrame, reused_run: str = "") -> Section:
    """How many alerts, of which kinds, and the strongest ones."""
    when = f"raised when run {reused_run[:12]} ran (reused tonight)" if reused_run else "raised"
    meters = alerts["meter_id"].nunique() if "meter_id" in alerts.columns else 0
    lines = [f"{len(alerts)} alerts {when}, on {meters} meters."]
    if alerts.empty:
        return Section(ALERTS, tuple(lines))
    by_kind = (
        alerts.groupby("kind")
        .agg(alerts=("meter_id", "size"), meters=("meter_id", "nunique"))
        .sort_values("alerts", ascending=False)
        .reset_index()
    )
    top = alerts.sort_values("peak_score", ascending=False) if "peak_score" in alerts else alerts
    columns = ("meter_id", "kind", "start", "end", "peak_score", "n_flagged", "detector")
    tables = (
        Table("Alerts per kind", by_kind),
        Table(f"Top {TOP_ALERTS} alerts by peak score", _present(top.head(TOP_ALERTS), columns)),
    )
    return Section(ALERTS, tuple(lines), tables)
