"""The forecasting run's story: its verdict against the best baseline and its Markdown
description (pure: facts in, text out; the task module logs it).

Numbers read as ``meterflow.prose`` writes them, with their unit (``Wh`` per slot for
harmonized profiles, the series' own units for a series file); a missing number reads ``n/a``.
When the kept model loses to a baseline on test, the first line says so and names the better
forecaster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from meterflow.forecasting.combine import COMBINATION, Choice
from meterflow.prose import NA, description, num, percent

PER_CLUSTER = "per-cluster models"  # the kept "model" of a scope=cluster run
MAX_LISTED = 4  # names listed in one sentence before "and n more"


@dataclass(frozen=True)
class Outcome:
    """The kept model against the baselines on the test split."""

    model: str  # COMBINATION, a forecaster's name or PER_CLUSTER
    members: tuple[str, ...]  # a combination's members, by weight
    test_mae: float
    test_mape: float
    best_baseline: str  # the baseline with the lowest test MAE
    baseline_mae: float
    baseline_mape: float
    beaten_by: tuple[str, ...]  # baselines with a lower test MAE than the model
    runner_up: tuple[str, float] | None = None  # the model is a baseline: the next one, its MAE

    @property
    def skill(self) -> float:
        """``1 - model MAE / best baseline MAE`` (> 0: the model is better)."""
        if not self.baseline_mae > 0:
            return math.nan
        return 1.0 - self.test_mae / self.baseline_mae


@dataclass(frozen=True)
class DataFacts:
    """What went in: ``subject`` (e.g. "200 meters"), where from, and the split's dates."""

    subject: str
    source: str  # e.g. "harmonization run `c8367fd8`" or "series file `load.csv`"
    days: tuple[int, int, int]  # train, validation, test days
    first_day: str
    val_start: str
    test_start: str
    last_day: str
    unit: str  # "Wh" or "" (the series' own units)


def amount(x: float | None, unit: str) -> str:
    """A number with its unit (``Wh``), or marked as in the series' units."""
    text = num(x)
    if text == NA:
        return text
    return f"{text} {unit}" if unit else f"{text} (series units)"


def listed(names: tuple[str, ...] | list[str]) -> str:
    """``a, b and c`` (at most ``MAX_LISTED`` names, then ``and n more``)."""
    names = list(names)
    if len(names) > MAX_LISTED:
        return f"{', '.join(names[:MAX_LISTED])} and {len(names) - MAX_LISTED} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def outcome_of(
    choice: Choice, metrics: dict[str, float], best: str, beaten_by: tuple[str, ...]
) -> Outcome:
    """The outcome of one evaluation (``metrics``: the model's ``test_*`` and each baseline's
    ``baseline_<name>_*``)."""
    members = tuple(sorted(choice.weights, key=lambda n: -float(np.mean(choice.weights[n]))))
    runner_up = None
    if f"baseline_{choice.name}_mae" in metrics and not beaten_by:
        others = {
            k.removeprefix("baseline_").removesuffix("_mae"): v
            for k, v in metrics.items()
            if k.startswith("baseline_") and k.endswith("_mae") and k != f"baseline_{best}_mae"
        }
        if others:
            runner = min(others, key=others.get)
            runner_up = (runner, others[runner])
    return Outcome(
        model=choice.name,
        members=members if choice.name == COMBINATION else (),
        test_mae=metrics["test_mae"],
        test_mape=metrics.get("test_mape", math.nan),
        best_baseline=best,
        baseline_mae=metrics[f"baseline_{best}_mae"],
        baseline_mape=metrics.get(f"baseline_{best}_mape", math.nan),
        beaten_by=beaten_by,
        runner_up=runner_up,
    )


def _label(outcome: Outcome) -> str:
    if outcome.model == COMBINATION:
        return f"The combination of {listed(outcome.members)}"
    if outcome.model == PER_CLUSTER:
        return "The per-cluster models"
    return f"The {outcome.model} model"


def _verb(outcome: Outcome, singular: str, plural: str) -> str:
    return plural if outcome.model == PER_CLUSTER else singular


def _relative(a: float, b: float) -> str:
    """How much ``a`` differs from ``b``, in percent of ``b`` (no sign)."""
    return percent(abs(a / b - 1)) if b > 0 else NA


def verdict(outcome: Outcome, unit: str) -> str:
    """One sentence: the kept model against the best baseline on test, plainly."""
    o, label = outcome, _label(outcome)
    mae, base = amount(o.test_mae, unit), amount(o.baseline_mae, unit)
    if o.beaten_by:
        worse = _relative(o.test_mae, o.baseline_mae)
        also = [b for b in o.beaten_by if b != o.best_baseline]
        tail = f" (also better: {listed(also)})" if also else ""
        return (
            f"{label} {_verb(o, 'is', 'are')} {worse} worse than {o.best_baseline} on test (MAE "
            f"{num(o.test_mae)} vs {base}); {o.best_baseline} is the better forecaster on this "
            f"data{tail}"
        )
    if o.runner_up is not None:
        runner, runner_mae = o.runner_up
        return (
            f"The kept model is the baseline {o.model} itself (no candidate beat it on "
            f"validation): test MAE {mae}, {_relative(o.test_mae, runner_mae)} better than the "
            f"next baseline {runner} ({amount(runner_mae, unit)})"
        )
    better = _relative(o.test_mae, o.baseline_mae)
    return (
        f"{label} {_verb(o, 'beats', 'beat')} every baseline on test: MAE {mae}, {better} "
        f"better than the best baseline {o.best_baseline} ({base})"
    )


def chosen(choice: Choice, unit: str, asked: bool, pool: tuple[str, ...] = ()) -> str:
    """Why the kept model was kept, from the validation split (``asked``: by the ``model``
    option rather than ``auto``; ``pool``: the forecasters ``auto`` combined)."""
    mae = choice.val_mae
    if choice.name == COMBINATION:
        shares = ", ".join(
            f"{n} {num(float(np.mean(w)))}"
            for n, w in sorted(choice.weights.items(), key=lambda kv: -float(np.mean(kv[1])))
        )
        single = min((n for n in mae if n in (pool or choice.weights)), key=mae.get)
        return (
            f"the combination ({shares}) learned on validation: validation MAE "
            f"{amount(mae[COMBINATION], unit)} vs {amount(mae[single], unit)} for the best "
            f"single candidate {single}"
        )
    if asked:
        return f"{choice.name}, the model asked for (`model` option): validation MAE " + amount(
            mae.get(choice.name), unit
        )
    return (
        f"{choice.name}: the combination learned on validation gives it all the weight "
        f"(validation MAE {amount(mae.get(choice.name), unit)})"
    )


def describe(
    outcome: Outcome,
    data: DataFacts,
    why: str,
    numbers: dict[str, float],
    look_next: tuple[str, ...],
    notes: tuple[str, ...] = (),
) -> str:
    """The run's Markdown description: verdict, data, result, chosen model, what to open next
    (``numbers``: ``test_coverage`` and its nominal level when the model has quantiles;
    ``notes``: extra result clauses, e.g. clusters that lose)."""
    o, unit = outcome, data.unit
    n_train, n_val, n_test = data.days
    result = (
        f"test MAE {amount(o.test_mae, unit)}, MAPE {percent(o.test_mape / 100)}; best baseline "
        f"{o.best_baseline} MAE {amount(o.baseline_mae, unit)}, MAPE "
        f"{percent(o.baseline_mape / 100)}; skill vs the best baseline {_signed(o.skill)}"
    )
    coverage, nominal = numbers.get("test_coverage"), numbers.get("test_coverage_nominal")
    if coverage is not None and nominal is not None:
        result += f"; the {percent(nominal)} interval holds {percent(coverage)} of the actuals"
    data_text = (
        f"{data.subject} from {data.source}, {sum(data.days)} days {data.first_day} to "
        f"{data.last_day}: train {n_train} d, validation {n_val} d from {data.val_start}, test "
        f"{n_test} d from {data.test_start} (test decides nothing)."
    )
    bullets = [
        ("Data", data_text),
        ("Result", f"{'; '.join([result, *notes])}."),
        ("Chosen", f"{why}."),
        ("Look next", f"{', '.join(f'`{p}`' for p in look_next)}."),
    ]
    return description(f"{verdict(o, unit)}.", bullets)


def _signed(x: float) -> str:
    text = num(x)
    return f"+{text}" if text != NA and x > 0 else text
