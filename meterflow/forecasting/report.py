"""What the forecasting step logs, built from evaluation results (pure: no MLflow here).

``report_of`` turns one ``ForecastResult`` into a ``StepReport``: metrics, tables, figures, the
served model and every candidate served side by side, the verdict and tags. With
``scope=cluster`` each cluster's total has its own evaluation; ``merge_reports`` pools them
(metrics weighted by test origins) and serves the clusters' models together (``GroupService``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from meterflow.errors import SchemaError
from meterflow.forecasting.evaluate import ForecastResult
from meterflow.forecasting.holdout import example_rows, holdout_tables
from meterflow.forecasting.inputs import trained_series
from meterflow.forecasting.metrics import skill
from meterflow.forecasting.serving import ForecastService
from meterflow.forecasting.settings import ForecastSettings
from meterflow.schemas import Table
from meterflow.series.fleet import FleetSeries

HEADLINE = ("test_mae", "test_mape", "test_coverage", "skill_vs_best_baseline")


@dataclass
class StepReport:
    """Everything one forecasting run logs (see the module docstring)."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]  # by ``Table`` name
    figures: dict[str, Figure]
    model: Any  # the served model: raw readings in, day-ahead rows out
    candidates: Any  # every fitted candidate served side by side (one column each)
    verdict: str
    tags: dict[str, str]
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
    result: ForecastResult, fleet: FleetSeries, cfg: ForecastSettings, timezone: str | None
) -> StepReport:
    """The step's report of one evaluation."""
    model, candidates = services(result, fleet, cfg, timezone)
    holdout, truth = holdout_tables(fleet, result.test, cfg)
    tables = {
        Table.TEST_PREDICTIONS: result.predictions,
        Table.ERROR_BY_STEP: result.by_step,
        Table.CANDIDATES: result.scores,
        Table.HOLDOUT: holdout,
        Table.HOLDOUT_TRUTH: truth,
    }
    tags = {
        "forecasting.model": result.choice.name,
        "forecasting.choice": result.choice.reason,
        "forecasting.best_baseline": result.best_baseline,
        "forecasting.beats_baselines": str(not result.beaten_by).lower(),
        "forecasting.beaten_by": ",".join(result.beaten_by),
        "forecasting.test_start": str(result.split.test_start.date()),
    }
    return StepReport(
        *(result.metrics, tables, result.figures, model, candidates, result.verdict, tags),
        result.histories,
    )


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
    """The groups' reports as one: pooled metrics, concatenated tables (with a ``group``
    column), per-group headline metrics, figures and tags, one served model."""
    weights = {g: r.metrics["n_test_windows"] for g, r in reports.items()}
    total = sum(weights.values())
    names = set.intersection(*(set(r.metrics) for r in reports.values()))
    metrics = {k: sum(reports[g].metrics[k] * w for g, w in weights.items()) / total for k in names}
    for key in ("n_test_windows", "n_series"):
        metrics[key] = sum(r.metrics[key] for r in reports.values())
    baselines = [
        k.removeprefix("baseline_").removesuffix("_mae")
        for k in metrics
        if k.startswith("baseline_") and k.endswith("_mae")
    ]
    for name in baselines:
        metrics[f"skill_vs_{name}"] = skill(metrics["test_mae"], metrics[f"baseline_{name}_mae"])
    best = min(baselines, key=lambda b: metrics[f"baseline_{b}_mae"])
    metrics["skill_vs_best_baseline"] = metrics[f"skill_vs_{best}"]
    for group, report in reports.items():
        metrics.update({f"{group}/{k}": report.metrics[k] for k in HEADLINE if k in report.metrics})
    beaten_by = tuple(b for b in baselines if metrics[f"baseline_{b}_mae"] < metrics["test_mae"])
    models = {g: r.tags["forecasting.model"] for g, r in reports.items()}
    tags = {
        "forecasting.model": ",".join(f"{g}={m}" for g, m in models.items()),
        "forecasting.best_baseline": best,
        "forecasting.beats_baselines": str(not beaten_by).lower(),
        "forecasting.beaten_by": ",".join(beaten_by),
        "forecasting.test_start": next(iter(reports.values())).tags["forecasting.test_start"],
    }
    verdict = "; ".join(f"{g}: {r.verdict}" for g, r in reports.items())
    tables = {
        name: pd.concat(
            [r.tables[name].assign(group=g) for g, r in reports.items()], ignore_index=True
        )
        for name in next(iter(reports.values())).tables
    }
    for name in (Table.HOLDOUT, Table.HOLDOUT_TRUTH):  # the served model's own columns only
        tables[name] = tables[name].drop(columns="group")
    figures = {f"{n}_{g}": f for g, r in reports.items() for n, f in r.figures.items()}
    histories = {f"{g}/{n}": h for g, r in reports.items() for n, h in r.histories.items()}
    model = GroupService({g: r.model for g, r in reports.items()})
    candidates = GroupService({g: r.candidates for g, r in reports.items()})
    return StepReport(metrics, tables, figures, model, candidates, verdict, tags, histories)
