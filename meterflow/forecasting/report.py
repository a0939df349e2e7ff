"""What the forecasting step logs, built from evaluation results (pure: no MLflow here).

``report_of`` turns one ``ForecastResult`` into a ``StepReport``: the evaluation's numbers (the
run logs ``logged_metrics``, a headline of at most ``HEADLINE_KEYS`` plus loss curves; every
family of numbers is a table: per candidate and baseline ``candidates``, per target step
``error_by_step``, per network and epoch ``forecast_training``, per cluster ``forecast_groups``),
figures, the served model and every candidate served side by side, the outcome against the
baselines and tags. With ``scope=cluster`` each cluster's total has its own evaluation;
``merge_reports`` pools them (numbers weighted by test origins, as group ``all`` rows of the
tables) and serves the clusters' models together (``GroupService``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.errors import SchemaError
from meterflow.forecasting import figures as figs
from meterflow.forecasting.evaluate import ForecastResult
from meterflow.forecasting.holdout import example_rows, holdout_tables
from meterflow.forecasting.inputs import trained_series
from meterflow.forecasting.metrics import skill
from meterflow.forecasting.registry import AUTO, combined_names
from meterflow.forecasting.serving import ForecastService
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.story import (
    PER_CLUSTER,
    DataFacts,
    Outcome,
    chosen,
    describe,
    listed,
)
from meterflow.forecasting.tables import training_table
from meterflow.schemas import Table
from meterflow.series.fleet import FleetSeries

# The run's metrics: the kept model's test errors, the best baseline's (by test MAE), the
# model's skill against it and the run's sizes (orchestration reads test_mae, test_rmse and
# skill_vs_best_baseline); at most ``MAX_LOSS_CURVES`` networks' losses per epoch beside them.
HEADLINE_KEYS = (
    "test_mae",
    "test_mape",
    "test_rmse",
    "test_coverage",
    "skill_vs_best_baseline",
    "best_baseline_test_mae",
    "best_baseline_test_mape",
    "n_series",
    "n_test_windows",
    "total_seconds",
)
MAX_LOSS_CURVES = 2  # networks whose losses are run metrics (every one: the training table)
ALL = "all"  # the group of pooled rows in a scope=cluster run's tables
LOOK_FIGURES = ("candidates", "groups", "error_by_step", "test_predictions", "training_curves")
LOOK_TABLES = (Table.CANDIDATES, Table.FORECAST_GROUPS)


@dataclass
class StepReport:
    """Everything one forecasting run logs (see the module docstring)."""

    metrics: dict[str, float]  # the evaluation's numbers; ``logged_metrics`` picks the headline
    tables: dict[str, pd.DataFrame]  # by ``Table`` name
    figures: dict[str, Figure]
    model: Any  # the served model: raw readings in, day-ahead rows out
    candidates: Any  # every fitted candidate served side by side (one column each)
    outcome: Outcome
    why: str  # why the kept model was kept
    tags: dict[str, str]
    days: tuple[int, int, int]  # train, validation, test days
    span: tuple[str, str, str, str]  # first day, validation start, test start, last day
    unit: str = "Wh"  # of the series ("": a series file's own units)
    notes: tuple[str, ...] = ()  # extra result clauses of the description
    histories: dict[str, Any] = field(default_factory=dict)


def services(
    result: ForecastResult, fleet: FleetSeries, cfg: ForecastSettings, timezone: str | None
) -> tuple[ForecastService, ForecastService]:
    """The kept model and every candidate as served models."""
    known = tuple(fleet.series_meters[trained_series(fleet)].astype(str))
    need = max(f.min_history(fleet.slots_per_day) for f in result.candidates.values())
    example = example_rows(fleet, result.test, cfg, math.ceil(need / fleet.slots_per_day) + 1)
    common = (cfg, fleet.resolution_min, known, timezone, example)
    model = ForecastService({result.choice.name: result.model}, result.choice.name, *common)
    candidates = ForecastService(dict(result.candidates), None, *common)
    return model, candidates


def report_of(
    result: ForecastResult,
    fleet: FleetSeries,
    cfg: ForecastSettings,
    timezone: str | None,
    unit: str = "Wh",
) -> StepReport:
    """The step's report of one evaluation (``unit``: of the series' values)."""
    model, candidates = services(result, fleet, cfg, timezone)
    holdout, truth = holdout_tables(fleet, result.test, cfg)
    tables = {
        Table.TEST_PREDICTIONS: result.predictions,
        Table.ERROR_BY_STEP: result.by_step,
        Table.CANDIDATES: result.scores,
        Table.HOLDOUT: holdout,
        Table.HOLDOUT_TRUTH: truth,
    }
    if result.histories:
        tables[Table.FORECAST_TRAINING] = training_table(result.histories)
    tags = {
        "forecasting.model": result.choice.name,
        "forecasting.choice": result.choice.reason,
        "forecasting.best_baseline": result.best_baseline,
        "forecasting.beats_baselines": str(not result.beaten_by).lower(),
        "forecasting.beaten_by": ",".join(result.beaten_by),
        "forecasting.test_start": str(result.split.test_start.date()),
    }
    step = pd.Timedelta(minutes=fleet.resolution_min)
    last = fleet.t0 + step * max(fleet.n_times - 1, 0)
    span = (fleet.t0, result.split.val_start, result.split.test_start, last)
    return StepReport(
        *(result.metrics, tables, result.figures, model, candidates, result.outcome),
        why=chosen(result.choice, unit, cfg.model != AUTO, combined_names(cfg.candidates)),
        tags=tags,
        days=result.split.n_days,
        span=tuple(str(pd.Timestamp(d).date()) for d in span),
        unit=unit,
        histories=result.histories,
    )


def logged_metrics(report: StepReport) -> dict[str, float]:
    """The run's headline metrics (``HEADLINE_KEYS`` it has; the loss curves aside)."""
    m, best = report.metrics, report.outcome.best_baseline
    numbers = {
        **m,
        "best_baseline_test_mae": m.get(f"baseline_{best}_mae", math.nan),
        "best_baseline_test_mape": m.get(f"baseline_{best}_mape", math.nan),
    }
    return {k: numbers[k] for k in HEADLINE_KEYS if math.isfinite(numbers.get(k, math.nan))}


def loss_curves(histories: dict[str, Any]) -> dict[str, Any]:
    """The training histories logged as per-epoch metrics, by key prefix: one network's as
    ``train_loss`` / ``val_loss``, else the first ``MAX_LOSS_CURVES`` as ``<network>/...``."""
    if len(histories) == 1:
        return {"": next(iter(histories.values()))}
    return {f"{name}/": h for name, h in list(histories.items())[:MAX_LOSS_CURVES]}


def description(report: StepReport, scope: str, source: str, look_next: tuple[str, ...]) -> str:
    """The run's Markdown description (``source``: where the series came from, e.g. a
    harmonization run; ``look_next``: artifact paths to open)."""
    n = int(report.metrics.get("n_series", 0))
    if scope == "cluster":
        subject = f"{n} cluster totals"
    elif scope == "fleet":
        subject = "the fleet's total load"
    else:
        subject = f"{n} {'meters' if report.unit else 'series'}"
    facts = DataFacts(subject, source, report.days, *report.span, unit=report.unit)
    return describe(report.outcome, facts, report.why, report.metrics, look_next, report.notes)


@dataclass
class GroupService:
    """Served models by series id (one per cluster), served as one model."""

    members: dict[str, Any]

    def input_example(self) -> pd.DataFrame:
        return pd.concat([p.input_example() for p in self.members.values()], ignore_index=True)

    def input_columns(self) -> list[tuple[str, str, bool]]:
        return next(iter(self.members.values())).input_columns()

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        ids = df["meter_id"].astype(str)
        unknown = sorted(set(ids) - set(self.members))
        if unknown:
            raise SchemaError(
                f"forecast input: no model for series {unknown[:5]} (known: "
                f"{', '.join(self.members)})"
            )
        parts = [self.members[i].predict(df.loc[(ids == i).to_numpy()]) for i in ids.unique()]
        return pd.concat(parts, ignore_index=True)


def merge_reports(reports: dict[str, StepReport]) -> StepReport:
    """The groups' reports as one: pooled numbers, tables of every group with pooled rows
    (group ``all``), a table and figure of the groups, one served model."""
    weights = {g: r.metrics["n_test_windows"] for g, r in reports.items()}
    metrics = _pooled_metrics(reports, weights)
    baselines = _baselines(metrics)
    best = min(baselines, key=lambda b: metrics[f"baseline_{b}_mae"])
    beaten_by = tuple(b for b in baselines if metrics[f"baseline_{b}_mae"] < metrics["test_mae"])
    first = next(iter(reports.values()))
    models = {g: r.tags["forecasting.model"] for g, r in reports.items()}
    tags = {
        "forecasting.model": ",".join(f"{g}={m}" for g, m in models.items()),
        "forecasting.best_baseline": best,
        "forecasting.beats_baselines": str(not beaten_by).lower(),
        "forecasting.beaten_by": ",".join(beaten_by),
        "forecasting.test_start": first.tags["forecasting.test_start"],
    }
    outcome = Outcome(
        *(PER_CLUSTER, (), metrics["test_mae"], metrics.get("test_mape", math.nan), best),
        *(metrics[f"baseline_{best}_mae"], metrics.get(f"baseline_{best}_mape", math.nan)),
        beaten_by,
    )
    tables = _merged_tables(reports, weights, models)
    histories = {f"{g}/{n}": h for g, r in reports.items() for n, h in r.histories.items()}
    span = (
        min(r.span[0] for r in reports.values()),
        *first.span[1:3],
        max(r.span[3] for r in reports.values()),
    )
    return StepReport(
        *(metrics, tables, _merged_figures(tables, histories)),
        GroupService({g: r.model for g, r in reports.items()}),
        GroupService({g: r.candidates for g, r in reports.items()}),
        outcome,
        why="one model per cluster, each kept on its own validation days: "
        + ", ".join(f"{g} {m}" for g, m in models.items()),
        tags=tags,
        days=first.days,
        span=span,
        unit=first.unit,
        notes=(_losing_groups(tables[Table.FORECAST_GROUPS]),),
        histories=histories,
    )


def _pooled_metrics(reports: dict[str, StepReport], weights: dict[str, float]) -> dict[str, float]:
    """Numbers every group has, weighted by its test origins; sizes summed; skills again."""
    total = sum(weights.values())
    names = set.intersection(*(set(r.metrics) for r in reports.values()))
    metrics = {k: sum(reports[g].metrics[k] * w for g, w in weights.items()) / total for k in names}
    for key in ("n_test_windows", "n_series"):
        metrics[key] = sum(r.metrics[key] for r in reports.values())
    baselines = _baselines(metrics)
    for name in baselines:
        metrics[f"skill_vs_{name}"] = skill(metrics["test_mae"], metrics[f"baseline_{name}_mae"])
    best = min(baselines, key=lambda b: metrics[f"baseline_{b}_mae"])
    metrics["skill_vs_best_baseline"] = metrics[f"skill_vs_{best}"]
    return metrics


def _baselines(metrics: dict[str, float]) -> list[str]:
    """The baselines with a test MAE among ``metrics`` (``baseline_<name>_mae``)."""
    return [k[9:-4] for k in metrics if k.startswith("baseline_") and k.endswith("_mae")]


def groups_table(reports: dict[str, StepReport]) -> pd.DataFrame:
    """One row per group (cluster): its model against its best baseline on test."""
    rows = []
    for group, r in reports.items():
        m, o = r.metrics, r.outcome
        rows.append(
            {
                "group": group,
                "model": o.model,
                "test_mae": m["test_mae"],
                "test_mape": m.get("test_mape", np.nan),
                "test_coverage": m.get("test_coverage", np.nan),
                "best_baseline": o.best_baseline,
                "best_baseline_test_mae": o.baseline_mae,
                "skill_vs_best_baseline": m["skill_vs_best_baseline"],
                "beats_baselines": not o.beaten_by,
                "n_series": m["n_series"],
                "n_test_windows": m["n_test_windows"],
            }
        )
    return pd.DataFrame(rows)


def _losing_groups(groups: pd.DataFrame) -> str:
    losing = groups.loc[~groups["beats_baselines"].astype(bool), "group"].tolist()
    if not losing:
        return f"each of the {len(groups)} clusters' models beats its baselines"
    return f"{len(losing)} of {len(groups)} clusters' models lose to a baseline ({listed(losing)})"


def _merged_tables(
    reports: dict[str, StepReport], weights: dict[str, float], models: dict[str, str]
) -> dict[str, pd.DataFrame]:
    """Every group's tables with a ``group`` column, the candidates and per-step tables with
    pooled rows, the groups table; the held-out rows as the served model reads them."""
    names = next(iter(reports.values())).tables
    tables = {
        name: pd.concat(
            [r.tables[name].assign(group=g) for g, r in reports.items() if name in r.tables],
            ignore_index=True,
        )
        for name in names
    }
    for name in (Table.HOLDOUT, Table.HOLDOUT_TRUTH):  # the served model's own columns only
        tables[name] = tables[name].drop(columns="group")
    pooled = _pooled_rows(
        {g: r.tables[Table.CANDIDATES] for g, r in reports.items()}, weights, models, "candidate"
    )
    pooled["kept"] = pooled["candidate"] == PER_CLUSTER
    model_mae = pooled.loc[pooled["kept"], "test_mae"].iloc[0]
    pooled["model_skill"] = [skill(model_mae, mae) for mae in pooled["test_mae"]]
    pooled = pooled.sort_values(["kept", "val_mae"], ascending=[False, True])
    tables[Table.CANDIDATES] = pd.concat([tables[Table.CANDIDATES], pooled], ignore_index=True)
    steps = _pooled_rows(
        {g: r.tables[Table.ERROR_BY_STEP] for g, r in reports.items()}, weights, models, "model"
    )
    tables[Table.ERROR_BY_STEP] = pd.concat([tables[Table.ERROR_BY_STEP], steps], ignore_index=True)
    tables[Table.FORECAST_GROUPS] = groups_table(reports)
    return tables


def _pooled_rows(
    tables: dict[str, pd.DataFrame], weights: dict[str, float], models: dict[str, str], name: str
) -> pd.DataFrame:
    """Group ``all``: for each row key (``name``, and ``step`` where there is one) that every
    group has, its numbers weighted by the groups' test origins (NaN left out); each group's
    kept model counted as ``PER_CLUSTER`` too. Other columns: the first group's."""
    parts = []
    for g, t in tables.items():
        kept = t.loc[t[name] == models[g]].assign(**{name: PER_CLUSTER})
        parts.append(pd.concat([t, kept], ignore_index=True).assign(group=g, _w=weights[g]))
    rows = pd.concat(parts, ignore_index=True)
    keys = [name, *(["step"] if "step" in rows else [])]
    numeric = [c for c in rows.select_dtypes("number").columns if c not in (*keys, "_w")]
    out = []
    for key, part in rows.groupby(keys, sort=False):
        if part["group"].nunique() < len(tables):
            continue
        w = part["_w"].to_numpy(dtype=float)
        row = {**part.iloc[0].to_dict(), **dict(zip(keys, key, strict=True)), "group": ALL}
        for c in numeric:
            x = part[c].to_numpy(dtype=float)
            ok = np.isfinite(x)
            row[c] = float((x[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else np.nan
        out.append(row)
    return pd.DataFrame(out, columns=rows.columns).drop(columns="_w")


def _merged_figures(
    tables: dict[str, pd.DataFrame], histories: dict[str, Any]
) -> dict[str, Figure]:
    """One figure per family: the pooled rows of the candidates and per-step tables, the first
    clusters' test forecasts, every network's losses and the groups."""
    pooled = {
        n: tables[n].loc[tables[n]["group"] == ALL] for n in (Table.CANDIDATES, Table.ERROR_BY_STEP)
    }
    out = {
        "test_predictions": figs.prediction_plot(tables[Table.TEST_PREDICTIONS], "model"),
        "error_by_step": figs.error_by_step(pooled[Table.ERROR_BY_STEP], PER_CLUSTER),
        "candidates": figs.candidate_scores(pooled[Table.CANDIDATES]),
        "groups": figs.group_scores(tables[Table.FORECAST_GROUPS]),
    }
    if histories:
        out["training_curves"] = figs.training_curves(histories)
    return out
