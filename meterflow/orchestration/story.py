"""The story of one pipeline night, told on its parent run: which steps ran or were reused (with
a link to the reused run in the MLflow UI), the new data, the promotions, the alerts and the
headline numbers, and what to open next; a failed night names the step that failed and why in
its first line.

Pure: what the runner recorded and what the children logged (metrics, tags) in, Markdown and a
``night_steps`` table out. ``meterflow.orchestration.night`` reads the inputs and logs the
outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from meterflow.prose import count, description, num, percent, seconds

RUN, REUSED, FAILED = "run", "reused", "failed"  # a step's status in the night
REPORT_FILE = "report.html"  # at the artifact root of the parent run
NIGHT_STEPS_COLUMNS = ("step", "status", "run_id", "run_link", "duration_s", "headline")
DURATIONS_FIGURE = "step_durations"
REASON_CHARS = 160  # of a promotion reason or a failure, in the description


@dataclass(frozen=True)
class StepOutcome:
    """What the runner recorded of one step this night (``run_id`` empty: no run was made)."""

    step: str
    status: str  # RUN, REUSED or FAILED
    run_id: str
    duration_s: float  # this night's wall time on the step
    reason: str = ""  # why it failed


@dataclass(frozen=True)
class ChildRun:
    """What the story reads of a step's run."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Promotion:
    """What became of a model step's new model."""

    step: str
    outcome: str  # "promoted", "challenger", "champion kept", "not registered", "not reached"
    reason: str = ""


@dataclass(frozen=True)
class Night:
    """One pipeline night, as the parent run tells it."""

    entry_point: str  # main or retrain
    experiment_id: str
    day: str  # YYYY-MM-DD
    outcomes: tuple[StepOutcome, ...]  # in the order of the table of steps
    planned: tuple[str, ...]  # every step of the table, in order
    children: Mapping[str, ChildRun] = field(default_factory=dict)
    promotions: tuple[Promotion, ...] = ()
    alerts: int | None = None  # alerts raised by this night's anomaly run; None: unknown
    duration_s: float = math.nan
    failure: str = ""  # why the night failed ("" when it finished)

    def outcome(self, step: str) -> StepOutcome | None:
        return next((o for o in self.outcomes if o.step == step), None)

    def child(self, step: str) -> ChildRun:
        return self.children.get(step, ChildRun())


def run_link(experiment_id: str, run_id: str) -> str:
    """The MLflow UI's route to a run (relative: works on whatever host serves the UI)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"


def source_of(step: str) -> str:
    """The source an ETL or load step reads (``etl_sql`` -> ``sql``)."""
    return step.split("_", 1)[1] if step.startswith(("etl_", "load_")) else step


def _metric(child: ChildRun, *names: str) -> float | None:
    """The first of ``names`` the run logged (other names of the same number come later)."""
    return next((child.metrics[n] for n in names if n in child.metrics), None)


def quarantined_share(child: ChildRun) -> float | None:
    """The share of an ETL run's readings it quarantined (None without its counts)."""
    quarantined, read = _metric(child, "readings_quarantined"), _metric(child, "readings_in")
    return quarantined / read if quarantined is not None and read else None


def forecast_phrase(child: ChildRun) -> str:
    """The forecaster against its best baseline, e.g. "MAE 382 Wh vs dshw 388 Wh (1.5 %
    better)"; empty without a test MAE."""
    mae = _metric(child, "test_mae")
    if mae is None:
        return ""
    skill = _metric(child, "skill_vs_best_baseline")
    best = child.tags.get("forecasting.best_baseline") or "the best baseline"
    if skill is None or skill >= 1:
        return f"MAE {num(mae, 'Wh')}"
    base = mae / (1 - skill)
    if skill >= 0:
        return f"MAE {num(mae, 'Wh')} vs {best} {num(base, 'Wh')} ({percent(skill)} better)"
    worse = mae / base - 1
    return f"MAE {num(mae, 'Wh')}, {percent(worse)} worse than {best} ({num(base, 'Wh')})"


def step_headline(step: str, child: ChildRun) -> str:
    """The one number a person looks at first for a step's run (read by name: "" when the
    run has none of them)."""
    m = child.metrics
    if step.startswith("load_"):
        docs = _metric(child, "documents", "documents_loaded")
        return "" if docs is None else f"{count(docs)} documents"
    if step.startswith("etl_"):
        kept, days = _metric(child, "readings_kept"), _metric(child, "meter_days_out")
        parts = [f"{count(kept)} readings kept" if kept is not None else ""]
        share = quarantined_share(child)
        parts.append(f"{percent(share)} quarantined" if share is not None else "")
        parts.append(f"{count(days)} meter-days" if days is not None else "")
        return ", ".join(p for p in parts if p)
    if step == "harmonization":
        profiles = _metric(child, "profiles")
        meters = f" of {count(m['meters'])} meters" if "meters" in m else ""
        return "" if profiles is None else f"{count(profiles)} daily profiles{meters}"
    if step == "clustering":
        parts = [f"k = {count(m['k'])}" if "k" in m else ""]
        parts.append(f"silhouette {num(m['silhouette'])}" if "silhouette" in m else "")
        return ", ".join(p for p in parts if p)
    if step == "forecasting":
        return forecast_phrase(child)
    if step == "anomaly":
        f1 = f"F1 {num(m['f1'])}" if "f1" in m else ""
        if not f1 and "planted_f1" in m:
            f1 = f"F1 {num(m['planted_f1'])} on planted anomalies"
        alerts = _metric(child, "alerts_raised", "n_events")
        return ", ".join(
            p for p in (f1, f"{count(alerts)} alerts" if alerts is not None else "") if p
        )
    return ""


def night_steps(night: Night) -> pd.DataFrame:
    """The ``night_steps`` table: one row per step the night reached."""
    rows = [
        {
            "step": o.step,
            "status": o.status,
            "run_id": o.run_id,
            "run_link": run_link(night.experiment_id, o.run_id) if o.run_id else "",
            "duration_s": round(float(o.duration_s), 2),
            "headline": o.reason[:REASON_CHARS]
            if o.status == FAILED
            else step_headline(o.step, night.child(o.step)),
        }
        for o in night.outcomes
    ]
    return pd.DataFrame(rows, columns=list(NIGHT_STEPS_COLUMNS))


def promotions(
    table: pd.DataFrame | None,
    model_steps: Sequence[str],
    outcomes: Sequence[StepOutcome],
    *,
    promote: bool,
) -> tuple[Promotion, ...]:
    """What became of each model step's model, from the ``promotion`` table (``step``,
    ``promote``, ``reason``) and the steps' outcomes."""
    rows = {} if table is None else {r["step"]: r for r in table.to_dict("records")}
    status = {o.step: o.status for o in outcomes}
    out = []
    for step in model_steps:
        if status.get(step) not in (RUN, REUSED):
            out.append(Promotion(step, "not reached"))
        elif step in rows:
            row = rows[step]
            outcome = "promoted" if bool(row["promote"]) else "challenger"
            out.append(Promotion(step, outcome, str(row.get("reason", ""))))
        elif not promote:
            out.append(Promotion(step, "not registered", "promote=false"))
        else:
            out.append(Promotion(step, "champion kept", "run reused, registered already"))
    return tuple(out)


def _linked(night: Night, outcome: StepOutcome) -> str:
    if not outcome.run_id:
        return outcome.step
    return f"[{outcome.step}]({run_link(night.experiment_id, outcome.run_id)})"


def _failed(night: Night) -> StepOutcome | None:
    return next((o for o in night.outcomes if o.status == FAILED), None)


def _short(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def verdict(night: Night) -> str:
    """The first line: a failed night's step and reason, else what ran and what came of it."""
    failed = _failed(night)
    if failed is not None:
        why = _short(failed.reason)
        return f"The {night.entry_point} night failed at step {failed.step}: {why}"
    if night.failure:
        return f"The {night.entry_point} night failed: {_short(night.failure)}"
    ran = sum(o.status == RUN for o in night.outcomes)
    parts = [f"{ran} of {len(night.outcomes)} steps run, {len(night.outcomes) - ran} reused"]
    promoted = [p.step for p in night.promotions if p.outcome == "promoted"]
    parts.append(f"promoted {', '.join(promoted)}" if promoted else "no model promoted")
    forecast = forecast_phrase(night.child("forecasting"))
    if forecast:
        parts.append(f"forecast {forecast}")
    if night.alerts is not None:
        parts.append(f"{night.alerts} alerts raised")
    return f"The {night.entry_point} night of {night.day}: {'; '.join(parts)}"


def _data_line(night: Night) -> str:
    parts = []
    for o in night.outcomes:
        child = night.child(o.step)
        if o.step.startswith("load_"):
            docs = _metric(child, "documents", "documents_loaded")
            if o.status == REUSED:
                parts.append(f"{source_of(o.step)}: no new documents (load reused)")
            else:
                parts.append(f"{source_of(o.step)}: {count(docs)} documents loaded")
    days = [
        f"{source_of(o.step)} {count(_metric(night.child(o.step), 'meter_days_out'))}"
        + (" (reused)" if o.status == REUSED else "")
        for o in night.outcomes
        if o.step.startswith("etl_") and o.status != FAILED
    ]
    if days:
        parts.append(f"meter-days out per source: {', '.join(days)}")
    return "; ".join(parts) or "no source step finished"


def _steps_line(night: Night) -> str:
    ran = [f"{o.step} {seconds(o.duration_s)}" for o in night.outcomes if o.status == RUN]
    reused = [_linked(night, o) for o in night.outcomes if o.status == REUSED]
    parts = [f"run: {', '.join(ran)}" if ran else ""]
    parts.append(f"reused: {', '.join(reused)}" if reused else "")
    reached = {o.step for o in night.outcomes}
    missing = [s for s in night.planned if s not in reached]
    if missing and (night.failure or _failed(night)):
        parts.append(f"not reached: {', '.join(missing)}")
    return "; ".join(p for p in parts if p) or "none"


def _result_line(night: Night) -> str:
    shown = []
    for step in ("forecasting", "anomaly", "clustering", "harmonization"):
        outcome = night.outcome(step)
        headline = step_headline(step, night.child(step)) if outcome else ""
        if headline and outcome is not None and outcome.status != FAILED:
            shown.append(f"{step} {headline}")
    return "; ".join(shown) or "n/a (no model step finished)"


def _chosen_line(night: Night) -> str:
    """Each model step's outcome, steps with the same outcome and reason together."""
    groups: dict[tuple[str, str], list[str]] = {}
    for p in night.promotions:
        groups.setdefault((p.outcome, p.reason), []).append(p.step)
    return "; ".join(
        f"{', '.join(steps)} {outcome}" + (f" ({_short(reason)})" if reason else "")
        for (outcome, reason), steps in groups.items()
    )


def _alerts_line(night: Night) -> str:
    anomaly = night.outcome("anomaly")
    if anomaly is None or anomaly.status == FAILED:
        return "n/a (the anomaly step did not finish)"
    if anomaly.status == REUSED:
        return f"none new: {_linked(night, anomaly)} reused (its alerts were raised on its night)"
    return "n/a" if night.alerts is None else f"{night.alerts} raised by the anomaly run"


def describe_night(night: Night) -> str:
    """The parent run's description (Markdown, about 1500 characters at most)."""
    bullets: list[tuple[str, str]] = []
    failed = _failed(night)
    if failed is not None and failed.run_id:
        bullets.append(("Failed run", f"{_linked(night, failed)} (its description and log)"))
    bullets += [
        ("Data", _data_line(night)),
        ("Steps", f"{_steps_line(night)}; the night took {seconds(night.duration_s)}"),
        ("Result", _result_line(night)),
    ]
    if night.promotions:
        bullets.append(("Chosen", _chosen_line(night)))
    bullets.append(("Alerts", _alerts_line(night)))
    look = [f"`{REPORT_FILE}` (the night on one page)", "`previews/night_steps.csv`"]
    if any(p.outcome in ("promoted", "challenger") for p in night.promotions):
        look.append("`previews/promotion.csv`")
    look.append(f"`figures/{DURATIONS_FIGURE}.png`")
    bullets.append(("Look next", ", ".join(look)))
    return description(f"{verdict(night)}.", bullets)
