"""The ``clustering`` step: cluster daily profiles, validate, log assignments, figures and a model.

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
ARI/NMI are computed on all of it (on the fitted sample too, as ``*_fitted``).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from meterflow import tracking
from meterflow.clustering import all_metrics, fit_clustering, known_options, select_k
from meterflow.clustering.assign import assign_all
from meterflow.clustering.auto import choose_configuration
from meterflow.clustering.composition import assignment_table, composition_tables
from meterflow.clustering.figures import plot_cluster_members, plot_cluster_sizes, plot_som_map
from meterflow.clustering.metrics import TRUTH_METRICS, silhouette_dtw, truth_metrics
from meterflow.clustering.registry import AUTO_MODEL, DTW_FAMILY
from meterflow.errors import ConfigError
from meterflow.schemas import Table, slot_columns
from meterflow.settings import ClusteringOptions, Environment
from meterflow.sources import diskspace
from meterflow.tasks.clustering_input import (
    ClusteringInput,
    Matrices,
    input_from_file,
    input_from_run,
    known_classes,
    rows_to_fit,
)

log = logging.getLogger(__name__)


def _options(opts: ClusteringOptions) -> dict[str, object]:
    """Algorithm settings from the step options: every step option some registered algorithm
    takes (``known_options``), ``''`` meaning the algorithm's default; each algorithm ignores the
    others' keys."""
    names = sorted(known_options() & set(type(opts).model_fields))
    return {name: getattr(opts, name) for name in names if getattr(opts, name) != ""}


def _fit(
    opts: ClusteringOptions, X_fit: np.ndarray, matrices: Matrices | None, window: int, run
) -> tuple[object, pd.DataFrame | None]:
    """Fit the model with the given k, or choose k (logging the curve); return the result and
    the k-selection table (None with a given k)."""
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
        run.log_figure(chosen.figure, "k_selection")
        run.set_tags({"clustering.k_criterion": chosen.criterion})
        return chosen.result, chosen.table
    k = opts.number_of_clusters
    if opts.som_grid:
        rows, cols = (int(v) for v in opts.som_grid.split("x"))
        k = rows * cols
    return fit_clustering(opts.model, X_fit, k=k, **common), None


def _fit_auto(
    opts: ClusteringOptions,
    X_fit: np.ndarray,
    matrices: Matrices | None,
    window: int,
    truth: np.ndarray | None,
    run: tracking.StepRun,
) -> tuple[object, pd.DataFrame | None]:
    """``model=auto``: fit every candidate configuration, log each as a child run, keep the one
    that scores best without labels; return it and its k-selection table (if k was chosen)."""
    if matrices is None:
        raise ConfigError("model=auto needs the harmonization step's DTW matrix")
    best, scored = choose_configuration(
        X_fit,
        matrices,
        k=opts.number_of_clusters,
        window=window,
        seed=opts.seed,
        options=_options(opts),
        k_range=(opts.k_min, opts.k_max),
        k_criterion=opts.k_criterion,
    )
    rows = []
    for s in scored:
        row = {"candidate": s.candidate.name, "k": s.result.k, "silhouette_gap": s.gap}
        row |= {"silhouette": s.silhouette, "null_silhouette": s.null_silhouette}
        row |= {"stability": s.stability, "consensus": s.consensus, "chosen": s is best}
        if truth is not None:
            row |= truth_metrics(truth, s.result.labels)
        rows.append(row)
        metrics = {k: v for k, v in row.items() if k not in ("candidate", "chosen")}
        run.log_child(f"candidate {s.candidate.name}", s.result.options, metrics)
    run.log_table(pd.DataFrame(rows), Table.AUTO_CANDIDATES)
    run.set_tags({"clustering.auto_choice": best.candidate.name})
    log.info("auto: chose %s (silhouette gap %.3f)", best.candidate.name, best.gap)
    return best.result, None if best.k_selection is None else best.k_selection.table


def run_clustering(opts: ClusteringOptions, env: Environment) -> str:
    tracking.configure(env)
    with tracking.step_run("clustering", opts) as run:
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
            )
            matrices("dtw")
        started = time.monotonic()
        if opts.model == AUTO_MODEL:
            truth = known_classes(data.profiles, data.meters)[0]
            truth = None if truth is None else truth[fit_rows]
            result, k_table = _fit_auto(opts, X[fit_rows], matrices, data.window, truth, run)
        else:
            result, k_table = _fit(opts, X[fit_rows], matrices, data.window, run)
        labels = assign_all(result.assigner, X, opts.dask_scheduler)
        metrics = _metrics(data, X, labels, fit_rows, result, matrices, opts.seed)
        metrics["fit_seconds"] = time.monotonic() - started
        run.log_metrics(metrics)
        run.log_params({f"algo.{key}": value for key, value in result.options.items()})
        run.log_params({"dtw_window_used": data.window})
        truth_name = known_classes(data.profiles, data.meters)[1]
        run.set_tags({"clustering.center_kind": result.center_kind, "clustering.truth": truth_name})
        _log_outputs(run, data, X[fit_rows], labels, fit_rows, result, k_table)
        if result.network is not None:  # the LSTM autoencoder's encoder (Keras flavor)
            run.log_keras(result.network, [result.network_example])
        result.assigner.slot_names = data.slot_names
        run.log_model(result.assigner)
        shown = ", ".join(f"{k}={metrics[k]:.3g}" for k in SUMMARY_METRICS if k in metrics)
        log.info("clustering: k=%d, %s", len(result.centers), shown)
        return run.run_id


SUMMARY_METRICS = ("silhouette", "silhouette_dtw", "davies_bouldin", "ari", "peak_match")


def _metrics(
    data: ClusteringInput,
    X: np.ndarray,
    labels: np.ndarray,
    fit_rows: np.ndarray,
    result,
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


HOLDOUT_ROWS = 5000  # fitted profiles kept to compare a model with the registry's champion


def _holdout(profiles: pd.DataFrame, fit_rows: np.ndarray) -> pd.DataFrame:
    """Up to ``HOLDOUT_ROWS`` of the fitted profiles (evenly spread), as the model takes them."""
    step = max(1, len(fit_rows) // HOLDOUT_ROWS)
    return profiles.iloc[np.sort(fit_rows)[::step][:HOLDOUT_ROWS]].reset_index(drop=True)


def _log_outputs(run, data, X_fit, labels, fit_rows, result, k_table) -> None:
    """Assignments, centres, composition tables and figures."""
    assign = assignment_table(data.profiles, labels)
    run.log_table(assign, Table.ASSIGNMENTS)
    centers = pd.DataFrame(result.centers, columns=slot_columns(result.centers.shape[1]))
    centers.insert(0, "cluster", np.arange(len(centers)))
    run.log_table(centers, Table.CENTERS)
    k = len(result.centers)
    for name, table in composition_tables(assign, data.meters, k=k).items():
        run.log_table(table if table.index.name is None else table.reset_index(), name)
    if k_table is not None:
        run.log_table(k_table, Table.K_SELECTION)
    run.log_table(_holdout(data.profiles, fit_rows), Table.HOLDOUT)
    members = plot_cluster_members(
        result.assigner.normalized(X_fit),
        labels[fit_rows],
        result.centers,
        center_kind=result.center_kind,
    )
    run.log_figure(members, "cluster_members")
    run.log_figure(plot_cluster_sizes(labels, k), "cluster_sizes")
    if hasattr(result.assigner, "weights_grid"):
        run.log_figure(plot_som_map(result.assigner.weights_grid, labels[fit_rows]), "som_map")
