"""The ``clustering`` step: cluster daily profiles, validate, name the clusters, log assignments,
figures, a model and a description.

Input is a harmonization run (``profiles_run``, default the newest) or a profile table file
(``in_profiles``: CSV/Parquet with an id column, optional date and label columns, one numeric
column per slot, any number of slots).

Which profiles the model is fitted on (``clustering_input``):
- DTW-family methods and ``model=auto`` (and ``silhouette_<metric>``) need the pairwise matrix:
  from a run, the rows the harmonization step put in its DTW matrix (the most recent whole days,
  ``dtw_max_profiles``); from a file, every row (at most ``max_profiles``, else the most recent
  days). Their DDTW/WDTW matrices are cached next to the DTW one.
- Euclidean methods: every profile, or a seeded random sample of ``max_profiles``.
The fitted model then assigns every profile, so the assignment table covers the whole input, and
ARI/NMI are computed on all of it (on the fitted sample too, as ``*_fitted``, in the
``validation`` table with every other score: ``clustering.scores``).

Each cluster is named from its centre's shape, its days and its sign (``clustering.naming``);
the names are in the tables, the figures and the model's output (``cluster_name``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from meterflow import tracking
from meterflow.clustering import all_metrics, fit_clustering, known_options, select_k
from meterflow.clustering.assign import NamedClusters, assign_all
from meterflow.clustering.auto import (
    AUTO_CRITERION,
    AUTO_K_RANGE,
    best_per_candidate,
    candidates_table,
    choose_configuration,
    null_silhouette,
    structures_table,
)
from meterflow.clustering.base import ClusteringResult
from meterflow.clustering.composition import assignment_table, composition_tables
from meterflow.clustering.figures import (
    plot_auto_candidates,
    plot_cluster_members,
    plot_cluster_sizes,
    plot_k_selection,
    plot_som_map,
    plot_validation,
)
from meterflow.clustering.metrics import TRUTH_METRICS, silhouette_dtw, truth_metrics
from meterflow.clustering.naming import keeps_sign, name_clusters, weekend_shares
from meterflow.clustering.registry import AUTO_MODEL, DTW_FAMILY
from meterflow.clustering.scores import COUNTS, run_metrics, validation_table
from meterflow.clustering.selection import LOWER_IS_BETTER
from meterflow.clustering.story import Summary, describe
from meterflow.clustering.structure_figures import plot_structures
from meterflow.errors import ConfigError
from meterflow.profiles.normalize import normalize_values
from meterflow.schemas import Table, slot_columns
from meterflow.settings import ClusteringOptions, Environment
from meterflow.sources import diskspace
from meterflow.tasks.clustering_input import (
    ClusteringInput,
    Matrices,
    input_from_file,
    input_from_run,
    known_classes,
    needs_matrix,
    rows_to_fit,
)
from meterflow.tasks.clustering_meters import log_meter_level

log = logging.getLogger(__name__)


@dataclass
class KChoice:
    """How k came about: the k table (None with a given k), the criterion ('' = given) and the
    configuration ``model=auto`` kept ('' otherwise)."""

    table: pd.DataFrame | None = None
    criterion: str = ""
    auto: str = ""


def _options(opts: ClusteringOptions) -> dict[str, object]:
    """Algorithm settings from the step options: every step option some registered algorithm
    takes (``known_options``), ``''`` meaning the algorithm's default; each algorithm ignores the
    others' keys."""
    names = sorted(known_options() & set(type(opts).model_fields))
    return {name: getattr(opts, name) for name in names if getattr(opts, name) != ""}


def _fit(
    opts: ClusteringOptions, X_fit: np.ndarray, matrices: Matrices | None, window: int
) -> tuple[ClusteringResult, KChoice]:
    """Fit the model with the given k, or choose k; return the result and how k was chosen."""
    metric = opts.distance_metric
    uses_matrix = metric in DTW_FAMILY and matrices is not None
    common = {
        "distance_metric": metric,
        "dtw": matrices(metric) if uses_matrix else None,
        "window": window,
        "seed": opts.seed,
        "options": _options(opts),
    }
    if opts.number_of_clusters == 0 and not opts.som_grid:
        chosen = select_k(
            opts.model,
            X_fit,
            k_min=opts.k_min,
            k_max=opts.k_max,
            criterion=opts.k_criterion,
            **common,
        )
        return chosen.result, KChoice(chosen.table, chosen.criterion)
    k = opts.number_of_clusters
    if opts.som_grid:
        rows, cols = (int(v) for v in opts.som_grid.split("x"))
        k = rows * cols
    return fit_clustering(opts.model, X_fit, k=k, **common), KChoice()


def _fit_auto(
    opts: ClusteringOptions,
    X_fit: np.ndarray,
    matrices: Matrices | None,
    window: int,
    truth: np.ndarray | None,
    run: tracking.StepRun,
) -> tuple[ClusteringResult, KChoice]:
    """``model=auto``: screen every candidate configuration at every k (``clustering.auto``),
    log the partitions (a child run per configuration, at its best k), the top distinct
    structures (table and figure); return the chosen one refitted on every fitted profile."""
    if matrices is None:
        raise ConfigError("model=auto needs the harmonization step's DTW matrix")
    k_range = (opts.k_min, max(opts.k_min, min(opts.k_max, AUTO_K_RANGE[1])))
    if not opts.number_of_clusters and k_range[1] < opts.k_max:
        log.info("auto: k_max capped at %d (each k is fitted for every candidate)", k_range[1])
    options = _options(opts)
    choice = choose_configuration(
        X_fit,
        matrices,
        k=opts.number_of_clusters,
        window=window,
        seed=opts.seed,
        options=options,
        k_range=k_range,
    )
    table = candidates_table(choice, None if truth is None else truth[choice.rows])
    run.log_table(table, Table.AUTO_CANDIDATES)
    tops = best_per_candidate(choice)
    for i, row in table.iloc[tops].iterrows():
        metrics = {k: float(v) for k, v in row.items() if k not in ("candidate", "chosen")}
        run.log_child(f"candidate {row['candidate']}", choice.scored[i].result.options, metrics)
    run.log_figure(plot_auto_candidates(table.iloc[tops]), "auto_candidates")
    structures = structures_table(choice)
    run.log_table(structures, Table.AUTO_STRUCTURES)
    leaders = [choice.scored[i].result.labels for i in choice.structures.leaders]
    titles = [f"{c} k={k}" for c, k in structures[["configuration", "k"]].itertuples(index=False)]
    screened = normalize_values(X_fit[choice.rows], str(options.get("normalize") or "none"))
    figure = plot_structures(screened, leaders, titles, choice.structures.agreement)
    run.log_figure(figure, "auto_structures")
    name = choice.chosen.candidate.name
    run.set_tags({"clustering.auto_choice": name})
    criterion = "" if opts.number_of_clusters else AUTO_CRITERION
    return choice.result, KChoice(criterion=criterion, auto=name)


def _input(
    opts: ClusteringOptions, env: Environment, run: tracking.StepRun
) -> tuple[ClusteringInput, np.ndarray, np.ndarray, Matrices | None]:
    """The input, its profiles as an array, the rows to fit and the distance matrices."""
    data = input_from_file(opts, env) if opts.in_profiles else input_from_run(opts, run, env)
    needed = diskspace.model_step_bytes(data.profiles, models=1)
    diskspace.require_output_space(needed, tracking.tracking_uri(), "the clustering outputs")
    slots = [c for c in data.profiles.columns if c.startswith("slot_")]
    X = np.ascontiguousarray(data.profiles[slots].to_numpy(dtype=np.float64))
    fit_rows = rows_to_fit(data.profiles, data.dtw_rows, opts)
    matrices = None
    if data.dtw_rows is not None:  # the matrix methods fit exactly these rows
        matrices = Matrices(
            X[data.dtw_rows],
            data.dtw_store,
            data.window,
            data.normalization,
            opts.dask_scheduler,
            normalize=opts.normalize,  # the matrices of the profiles as the fit sees them
        )
        matrices("dtw")
    return data, X, fit_rows, matrices


def run_clustering(opts: ClusteringOptions, env: Environment) -> str:
    tracking.configure(env)
    with tracking.step_run("clustering", opts) as run:
        data, X, fit_rows, matrices = _input(opts, env, run)
        started = time.monotonic()
        if opts.model == AUTO_MODEL:
            truth = known_classes(data.profiles, data.meters)[0]
            truth = None if truth is None else truth[fit_rows]
            result, choice = _fit_auto(opts, X[fit_rows], matrices, data.window, truth, run)
        else:
            result, choice = _fit(opts, X[fit_rows], matrices, data.window)
        labels = assign_all(result.assigner, X, opts.dask_scheduler)
        scores = _metrics(data, X, labels, fit_rows, result, matrices, opts.seed)
        scores["fit_seconds"] = time.monotonic() - started
        scores["silhouette_null"] = null_silhouette(X[fit_rows], len(result.centers), opts.seed)
        scores = {k: v for k, v in scores.items() if np.isfinite(v)}
        run.log_metrics(run_metrics(scores))
        run.log_params({f"algo.{key}": value for key, value in result.options.items()})
        run.log_params(
            {"dtw_window_used": data.window_fraction, "dtw_window_slots_used": data.window}
        )
        truth_name = known_classes(data.profiles, data.meters)[1]
        run.set_tags({"clustering.center_kind": result.center_kind, "clustering.truth": truth_name})
        if choice.criterion:
            run.set_tags({"clustering.k_criterion": choice.criterion})
        assign = assignment_table(data.profiles, labels)
        names = _names(result, assign, data.normalization)
        figures = _log_outputs(run, data, (X, labels, fit_rows, assign), result, choice, names)
        _log_scores(run, scores)
        meter_view = log_meter_level(run, opts, data)
        if result.network is not None:  # the LSTM autoencoder's encoder (Keras flavor)
            run.log_keras(result.network, [result.network_example])
        result.assigner.slot_names = data.slot_names
        run.log_model(NamedClusters(result.assigner, tuple(names)))
        summary = _summary(opts, data, result, choice, names, labels, scores, figures)
        run.describe(describe(replace(summary, meter_level=meter_view)))
        run.set_tags({"mlflow.runName": run_name(result, choice)})
        shown = ", ".join(f"{k}={scores[k]:.3g}" for k in SUMMARY_METRICS if k in scores)
        log.info("clustering: k=%d (%s), %s", len(names), "; ".join(names), shown)
        return run.run_id


SUMMARY_METRICS = ("silhouette", "silhouette_null", "silhouette_dtw", "davies_bouldin", "ari")


def run_name(result: ClusteringResult, choice: KChoice) -> str:
    """The run's name in the runs list, e.g. ``clustering kmeans euclidean k=2 (silhouette)``:
    what was fitted and how k came about (the step's options only say ``number_of_clusters=0``)."""
    auto = "auto: " if choice.auto else ""
    how = f" ({choice.criterion})" if choice.criterion else ""
    return f"clustering {auto}{result.name} {result.distance_metric} k={result.k}{how}"


def _metrics(
    data: ClusteringInput,
    X: np.ndarray,
    labels: np.ndarray,
    fit_rows: np.ndarray,
    result: ClusteringResult,
    matrices: Matrices | None,
    seed: int,
) -> dict[str, float]:
    """Label-free scores on the fitted profiles (``silhouette_<metric>`` on the DTW matrix and
    on the model's own matrix); agreement with the known classes on every assigned profile
    (and, when only a sample was fitted, on the sample as ``<name>_fitted``)."""
    truth = known_classes(data.profiles, data.meters)[0]
    metrics = all_metrics(
        X[fit_rows],
        labels[fit_rows],
        result.centers,
        truth=None if truth is None else truth[fit_rows],
        seed=seed,
    )
    if matrices is not None:
        for metric in {"dtw", result.distance_metric} & set(DTW_FAMILY):
            on_rows = labels[data.dtw_rows]
            metrics[f"silhouette_{metric}"] = silhouette_dtw(matrices(metric), on_rows, seed=seed)
    if truth is not None and len(fit_rows) < len(X):  # ari/nmi on every assigned row
        metrics.update({f"{name}_fitted": metrics[name] for name in TRUTH_METRICS})
        metrics.update(truth_metrics(truth, labels))
    metrics.update({"k": len(result.centers), "profiles": len(X), "profiles_fitted": len(fit_rows)})
    return metrics


def _names(result: ClusteringResult, assign: pd.DataFrame, normalization: str) -> list[str]:
    """The clusters' names from their centres (in the space the model normalised them to),
    their members' weekend share and, where the values keep their sign, export."""
    k = len(result.centers)
    shares, base = weekend_shares(assign, k)
    signed = keeps_sign(normalization, result.assigner.normalize)
    return name_clusters(
        result.centers, signed=signed, weekend_shares=shares, base_weekend_share=base
    )


def _log_scores(run: tracking.StepRun, scores: dict[str, float]) -> None:
    """Every score in the ``validation`` table and its figure (the run metrics are a subset)."""
    table = validation_table(scores)
    run.log_table(table, Table.VALIDATION)
    run.log_figure(plot_validation(table, skip=COUNTS), "validation")


HOLDOUT_ROWS = 5000  # fitted profiles kept to compare a model with the registry's champion


def _holdout(profiles: pd.DataFrame, fit_rows: np.ndarray) -> pd.DataFrame:
    """Up to ``HOLDOUT_ROWS`` of the fitted profiles (evenly spread), as the model takes them."""
    step = max(1, len(fit_rows) // HOLDOUT_ROWS)
    return profiles.iloc[np.sort(fit_rows)[::step][:HOLDOUT_ROWS]].reset_index(drop=True)


def _named(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``table`` with the ``cluster_name`` of its ``cluster`` column beside it."""
    out = table.copy()
    at = list(out.columns).index("cluster") + 1
    out.insert(at, "cluster_name", np.asarray(names, dtype=object)[out["cluster"].to_numpy()])
    return out


def _log_outputs(
    run: tracking.StepRun,
    data: ClusteringInput,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame],
    result: ClusteringResult,
    choice: KChoice,
    names: list[str],
) -> list[str]:
    """Assignments, centres, composition tables and figures (sizes count every assigned
    profile in each figure); return the figures' artifact paths."""
    X, labels, fit_rows, assign = arrays
    run.log_table(_named(assign, names), Table.ASSIGNMENTS)
    centers = pd.DataFrame(result.centers, columns=slot_columns(result.centers.shape[1]))
    centers.insert(0, "cluster", np.arange(len(centers)))
    run.log_table(_named(centers, names), Table.CENTERS)
    k = len(result.centers)
    for name, table in composition_tables(assign, data.meters, k=k).items():
        run.log_table(
            _named(table if table.index.name is None else table.reset_index(), names), name
        )
    run.log_table(_holdout(data.profiles, fit_rows), Table.HOLDOUT)
    figures = {
        "cluster_members": plot_cluster_members(
            result.assigner.normalized(X[fit_rows]),
            labels[fit_rows],
            result.centers,
            names=names,
            assigned=labels,
            center_kind=result.center_kind,
        ),
        "cluster_sizes": plot_cluster_sizes(labels, k, names=names),
    }
    if choice.table is not None:
        run.log_table(choice.table, Table.K_SELECTION)
        figures["k_selection"] = plot_k_selection(choice.table, chosen=k, names=names)
    if hasattr(result.assigner, "weights_grid"):
        figures["som_map"] = plot_som_map(result.assigner.weights_grid, labels, names)
    for name, fig in figures.items():
        run.log_figure(fig, name)
    return [f"figures/{name}.png" for name in figures]


def _runner_up(choice: KChoice, k: int) -> tuple[int, float] | None:
    """The next best k of the k table and its score."""
    table = choice.table
    if table is None or len(table) < 2:
        return None
    others = table.loc[(table["k"] != k) & np.isfinite(table["score"])]
    if others.empty:
        return None
    lower = choice.criterion in LOWER_IS_BETTER
    row = others.sort_values("score", ascending=lower).iloc[0]
    return int(row["k"]), float(row["score"])


def _summary(
    opts: ClusteringOptions,
    data: ClusteringInput,
    result: ClusteringResult,
    choice: KChoice,
    names: list[str],
    labels: np.ndarray,
    scores: dict[str, float],
    figures: list[str],
) -> Summary:
    """What the description tells, from the run's parts."""
    k = len(names)
    dates = data.profiles["date"] if "date" in data.profiles.columns else None
    period = None
    if dates is not None and len(dates):
        period = tuple(f"{pd.Timestamp(d):%Y-%m-%d}" for d in (dates.min(), dates.max()))
    truth = {"meter_type": "the meter types", "label_column": "the file's labels"}
    fitted_on = (
        "the rows of the DTW matrix: the most recent whole days"
        if needs_matrix(opts)
        else "all of them"
        if scores.get("profiles_fitted") == scores.get("profiles")
        else f"a seeded random sample of max_profiles={opts.max_profiles}"
    )
    return Summary(
        model=result.name,
        distance_metric=result.distance_metric,
        k=k,
        names=names,
        shares=list(np.bincount(labels, minlength=k) / max(len(labels), 1)),
        metrics=scores,
        source=data.source or "the input",
        fitted_on=fitted_on,
        k_choice=choice.criterion,
        k_range=(opts.k_min, opts.k_max) if choice.criterion else None,
        runner_up=_runner_up(choice, k),
        auto_choice=choice.auto,
        meters=int(data.profiles["meter_id"].nunique()),
        period=period,
        truth=truth.get(known_classes(data.profiles, data.meters)[1], ""),
        look_next=[
            *figures,
            *(["figures/auto_candidates.png"] if choice.auto else []),
            "figures/validation.png",
            "previews/centers.csv",
            "previews/validation.csv",
        ],
    )
