"""Model Registry promotion after a pipeline run: each new model version becomes ``champion``
only when it beats the current champion on the same held-out rows; otherwise ``challenger``.

One registered model per step (``meterflow-clustering``, ``-forecasting``, ``-anomaly``); each
version is tagged with its run, data window and scores. A step whose run was reused (no new data,
no new code) registers nothing and moves no alias; a run that did not finish is refused.
The decision of each step is a tag on its run and a row of the pipeline run's ``promotion``
table.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from meterflow import tracking
from meterflow.clustering.holdout import cluster_labels
from meterflow.errors import MeterflowError
from meterflow.orchestration.decision import CRITERIA, Decision, agreement, decide, holdout_score
from meterflow.orchestration.steps import PROMOTED
from meterflow.prose import description, num
from meterflow.schemas import Table, validate_holdout

log = logging.getLogger(__name__)

TRUTH_COLUMNS = ("actual", "label")  # in the holdout tables, never model inputs
BEATS_BASELINES = "beats_baselines"  # version tag: the model beat every baseline on test
BEATS_BASELINES_RUN_TAG = "forecasting.beats_baselines"
BECAME_CHAMPION = "became_champion"  # version tag: it won its promotion
UNLOADABLE = "unloadable"  # version tag: why its model no longer loads
TAG_MODEL_VERSION = "meterflow.model_version"  # run tag: the registered version of its model


def repair_champion(step: str) -> str | None:
    """When the champion's model no longer loads (its files were deleted), move the alias to
    the best version that loads — the newest one that won its promotion, else the newest one —
    or remove it if none loads; what was done (one line), or None when nothing was wrong."""
    champion = tracking.alias_version(step, tracking.CHAMPION)
    if champion is None or tracking.version_loads(step, champion):
        return None
    tracking.set_version_tag(step, champion, UNLOADABLE, "model files missing")
    loadable = [
        v
        for v in tracking.recent_versions(step)
        if v.version != champion and tracking.version_loads(step, v.version)
    ]
    winners = [v for v in loadable if v.tags.get(BECAME_CHAMPION) == "true"]
    best = (winners or loadable or [None])[0]
    if best is None:
        tracking.delete_alias(step, tracking.CHAMPION)
        what = f"champion version {champion} no longer loads and no version does: alias removed"
    else:
        tracking.set_alias(step, tracking.CHAMPION, best.version)
        what = f"champion version {champion} no longer loads: version {best.version} is champion"
    log.warning("%s: %s", step, what)
    return what


def promote_models(
    steps: dict[str, tuple[str, bool]], margin: float, run: tracking.StepRun
) -> pd.DataFrame:
    """Register and alias the new model of every model step of ``steps`` (a reused run too when
    it was never registered: its night ended before promotion); log and return the decisions
    (an empty table when every model step was reused and registered)."""
    rows = []
    for step in PROMOTED:
        run_id, reused = steps[step]
        replaced = repair_champion(step)
        if replaced:
            run.set_tags({f"meterflow.champion_repair.{step}": replaced})
        if reused and tracking.run_tag(run_id, TAG_MODEL_VERSION):
            log.info("%s: run %s reused, registered already", step, run_id)
            continue
        rows.append(promote_step(step, run_id, margin).row())
    table = pd.DataFrame(rows, columns=list(Decision.__dataclass_fields__))
    if rows:
        run.log_table(table, Table.PROMOTION)
    return table


def promote_step(step: str, run_id: str, margin: float) -> Decision:
    """Register the model of ``run_id`` and give it ``champion`` or ``challenger``."""
    tracking.require_finished(run_id)
    holdout = validate_holdout(
        step, tracking.load_table(run_id, Table.HOLDOUT), where=f"run {run_id}"
    )
    with_truth = CRITERIA[step].with_truth
    truth = tracking.load_table(run_id, Table.HOLDOUT_TRUTH) if with_truth else None
    new_output = tracking.predict_with(tracking.logged_model_uri(run_id, step), _inputs(holdout))
    score = holdout_score(step, holdout, new_output, truth)
    champion = tracking.alias_version(step, tracking.CHAMPION)
    champion_score, stability = None, math.nan
    if champion is not None:
        champion_output = _champion_output(step, holdout)
        champion_score = math.nan
        if champion_output is not None:
            champion_score = holdout_score(step, holdout, champion_output, truth)
            if step == "clustering":
                stability = agreement(cluster_labels(new_output), cluster_labels(champion_output))
    beats = (_beats_baselines(run_id), _champion_beats_baselines(step, champion))
    decision = decide(step, score, champion_score, margin, beats)
    tags = {
        **_version_tags(run_id, holdout, decision),
        BEATS_BASELINES: str(beats[0]).lower(),
        BECAME_CHAMPION: str(decision.promote).lower(),
    }
    text = version_description(holdout, decision, tracking.registered_name(step), champion)
    version = tracking.register_version(step, run_id, tags, text, ABOUT[step])
    alias = tracking.CHAMPION if decision.promote else tracking.CHALLENGER
    tracking.set_alias(step, alias, version)
    tracking.tag_run(
        run_id,
        {
            "meterflow.promotion": alias,
            "meterflow.promotion.reason": decision.reason,
            TAG_MODEL_VERSION: f"{tracking.registered_name(step)}/{version}",
            **({"meterflow.promotion.stability_ari": stability} if champion else {}),
        },
    )
    log.info("%s: version %s is %s (%s)", step, version, alias, decision.reason)
    return decision


def _beats_baselines(run_id: str) -> bool:
    """Whether the run's model beat every baseline on its test split (forecasting runs say;
    other steps have no such verdict and count as beating them)."""
    return tracking.run_tag(run_id, BEATS_BASELINES_RUN_TAG) != "false"


def _champion_beats_baselines(step: str, version: str | None) -> bool:
    if version is None:
        return False
    return tracking.version_tag(step, version, BEATS_BASELINES) != "false"


OUTPUTS = {
    "forecasting": "`prediction` (the median) and the quantiles `q10`, `q50`, `q90` of each "
    "target slot after a meter's last reading, in Wh per slot (the units of its training "
    "readings)",
    "anomaly": "`score` per reading (1 or more: flagged), `flagged`, `component` (the evidence "
    "that decided) and each component's z; no unit",
    "clustering": "the cluster index (an integer) of each daily profile",
}
SCORES = {"forecasting": ("MAE", "Wh"), "anomaly": ("F1", ""), "clustering": ("silhouette", "")}
ABOUT = {
    "forecasting": "Day-ahead forecaster of smart-meter consumption. Input: raw readings, one "
    "row per meter and slot (`meter_id`, `timestamp` = the slot start, `value` in Wh per slot; "
    "optional `forecast_id` to send several histories of one meter), with the history the "
    "model needs before the forecast origin. Output: one row per meter and target slot after "
    "its last reading: `target_time`, `step`, `prediction` (the median, Wh per slot) and the "
    "quantiles `q10`, `q50`, `q90`. A version becomes `@champion` when its MAE on its run's "
    "held-out forecasts beats the champion's on the same rows; otherwise `@challenger`.",
    "anomaly": "Anomaly detector of smart-meter readings. Input: raw readings (`meter_id`, "
    "`timestamp`, `value` in Wh per slot; optional `history` = true for rows that only give "
    "context), with the days of history the detector needs before the rows to score. Output: "
    "row by row, `score` (1 or more: flagged), `flagged`, `component` (the evidence that "
    "decided) and each component's z. A version becomes `@champion` when its F1 on its run's "
    "held-out labelled readings beats the champion's on the same rows; otherwise `@challenger`.",
    "clustering": "Clusterer of daily load profiles. Input: one row per meter and day with the "
    "slot columns `slot_00`, `slot_01`, … (the harmonization step's `normalized_profiles`). "
    "Output: the cluster index (an integer) of each row. A version becomes `@champion` when its "
    "silhouette on its run's held-out profiles beats the champion's on the same rows; "
    "otherwise `@challenger`.",
}


def version_description(
    holdout: pd.DataFrame, decision: Decision, registered: str, champion_version: str | None
) -> str:
    """The Markdown description of a new registered version: its held-out score against the
    champion it was compared with (``champion_version``), what it outputs, what the holdout
    covers and how to load it. Pure."""
    metric, unit = SCORES[decision.step]
    against = (
        f"vs {num(decision.champion, unit)} for champion version {champion_version} on the "
        "same rows"
        if math.isfinite(decision.champion)
        else "(no champion score to compare with)"
    )
    champion = f"models:/{registered}@{tracking.CHAMPION}"
    use = (
        f'`mlflow.pyfunc.load_model("{champion}")`: this version, until a later one beats it'
        if decision.promote
        else f"`models:/{registered}@{tracking.CHALLENGER}` while it is the newest challenger; "
        f"the model in use is `{champion}`"
    )
    role = tracking.CHAMPION if decision.promote else tracking.CHALLENGER
    return description(
        f"{role.capitalize()}: held-out {metric} {num(decision.challenger, unit)} {against}.",
        [
            ("Output", f"{OUTPUTS[decision.step]}."),
            ("Holdout", f"{holdout_coverage(decision.step, holdout)}."),
            ("Decision", f"{decision.reason}."),
            ("Use", f"{use}."),
        ],
    )


def holdout_coverage(step: str, holdout: pd.DataFrame) -> str:
    """What the held-out rows of ``step`` cover: forecasts or readings, meters, days, dates."""
    if step == "forecasting":
        last = holdout.loc[holdout["value"].notna()].groupby("forecast_id")["timestamp"].max()
        return (
            f"{len(last):,} held-out day-ahead forecasts of {holdout['meter_id'].nunique()} series "
            f"over {last.dt.normalize().nunique()} test days ({_dates(last)}), each with its "
            "history as raw readings: tables `holdout` and `holdout_truth` of the run"
        )
    if step == "anomaly":
        scored = holdout.loc[~holdout["history"].astype(bool)]
        labelled = scored["label"].notna()
        planted = int(scored.loc[labelled, "label"].astype(bool).sum())
        return (
            f"{len(scored):,} held-out readings of {scored['meter_id'].nunique()} meters over "
            f"{scored['timestamp'].dt.normalize().nunique()} days ({_dates(scored['timestamp'])}),"
            f" {int(labelled.sum()):,} of them labelled ({planted:,} anomalous), after their"
            " history: table `holdout` of the run"
        )
    meters = f" of {holdout['meter_id'].nunique()} meters" if "meter_id" in holdout else ""
    dates = f" ({_dates(holdout['date'])})" if "date" in holdout else ""
    return f"{len(holdout):,} held-out daily profiles{meters}{dates}: table `holdout` of the run"


def _dates(stamps: pd.Series) -> str:
    if stamps.empty:
        return "no dates"
    return f"{stamps.min():%Y-%m-%d} .. {stamps.max():%Y-%m-%d}"


def _champion_output(step: str, holdout: pd.DataFrame) -> pd.DataFrame | np.ndarray | None:
    """The champion's predictions of the held-out rows; None when it cannot read them."""
    try:
        return tracking.predict_with(tracking.champion_uri(step), _inputs(holdout))
    except (MeterflowError, KeyError, ValueError, AttributeError, ImportError) as e:
        # a champion of an older version: its input schema, or the modules and classes its
        # pickle names (moved since), no longer match
        log.warning("%s: the champion cannot score these held-out rows: %s", step, e)
        return None


def _inputs(holdout: pd.DataFrame) -> pd.DataFrame:
    """The held-out rows without the truth the models are scored against."""
    truth = [c for c in holdout.columns if c in TRUTH_COLUMNS or c.startswith("actual_h")]
    return holdout.drop(columns=truth)


def _version_tags(run_id: str, holdout: pd.DataFrame, decision: Decision) -> dict[str, object]:
    if "history" in holdout.columns:  # anomaly: the scored rows, not their history
        holdout = holdout.loc[~holdout["history"].astype(bool)]
    columns = ("window_end", "date", "timestamp")
    stamps = next((holdout[c] for c in columns if c in holdout.columns), None)
    window = "" if stamps is None or stamps.empty else f"{stamps.min()} .. {stamps.max()}"
    return {
        "run_id": run_id,
        "holdout_window": window,
        "holdout_rows": len(holdout),  # scored rows
        f"holdout_{decision.metric}": decision.challenger,
        **{f"run_{k}": v for k, v in tracking.run_metrics(run_id).items() if _headline(k)},
    }


def _headline(metric: str) -> bool:
    return metric in ("test_mae", "test_rmse", "f1", "auc_roc", "auc_pr", "silhouette", "k")
