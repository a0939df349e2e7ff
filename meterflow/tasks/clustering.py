"""The ``clustering`` step: cluster daily profiles, validate, log assignments, figures and a model.

Input is a harmonization run (``profiles_run``, default the newest) or a profile table file
(``in_profiles``: CSV/Parquet with an id column, optional date and label columns, one numeric
column per slot, any number of slots).

Which profiles the model is fitted on:
- DTW methods (and ``silhouette_dtw``) need the pairwise DTW matrix: from a run, the rows the
  harmonization step put in its DTW matrix (the most recent whole days, ``dtw_max_profiles``); from
  a file, every row (at most ``max_profiles``, else the most recent days).
- Euclidean methods: every profile, or a seeded random sample of ``max_profiles``.
The fitted model then assigns every profile, so the assignment table covers the whole input.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow import defaults, tracking
from meterflow.clustering import all_metrics, fit_clustering, select_k
from meterflow.clustering.composition import assignment_table, composition_tables
from meterflow.clustering.figures import plot_cluster_members, plot_cluster_sizes, plot_som_map
from meterflow.clustering.metrics import silhouette_dtw
from meterflow.config import ClusteringOptions, Environment
from meterflow.errors import ConfigError
from meterflow.profiles.dtw import dask_rows
from meterflow.profiles.select import recent_days_mask, sample_rows
from meterflow.schemas import Table, slot_columns
from meterflow.sources.dtw_cache import DtwCache
from meterflow.sources.profilefile import read_profile_file

log = logging.getLogger(__name__)


def _options(opts: ClusteringOptions) -> dict[str, object]:
    """Algorithm settings from the step options (each algorithm ignores the others' keys)."""
    out: dict[str, object] = {"epochs": opts.epochs, "threads": opts.threads}
    if opts.linkage:
        out["linkage"] = opts.linkage
    if opts.som_grid:
        out["som_grid"] = opts.som_grid
    return out


def _fit_rows(
    profiles: pd.DataFrame, dtw_rows: np.ndarray | None, uses_dtw: bool, opts: ClusteringOptions
) -> np.ndarray:
    if uses_dtw:
        if dtw_rows is None:
            raise ConfigError(
                f"model {opts.model} with distance_metric=dtw needs the harmonization step's DTW "
                "matrix; rerun harmonization with compute_dtw=true"
            )
        return dtw_rows
    return sample_rows(len(profiles), opts.max_profiles, opts.seed)


def _file_dtw_rows(profiles: pd.DataFrame, max_rows: int, seed: int) -> np.ndarray:
    if len(profiles) <= max_rows:
        return np.arange(len(profiles))
    if "date" in profiles.columns:
        return np.flatnonzero(recent_days_mask(profiles["date"], max_rows))
    return sample_rows(len(profiles), max_rows, seed)


def _truth(profiles: pd.DataFrame, meters: pd.DataFrame | None) -> tuple[np.ndarray | None, str]:
    """Known classes to score against: the file's label column, else the meters' type."""
    if "label" in profiles.columns:
        return profiles["label"].astype(str).to_numpy(), "label_column"
    if meters is not None and "type" in meters.columns:
        types = profiles["meter_id"].map(meters.set_index("meter_id")["type"])
        if types.notna().all():
            return types.astype(str).to_numpy(), "meter_type"
    return None, ""


def _select_prosumers(
    profiles: pd.DataFrame, meters: pd.DataFrame, dtw_rows: np.ndarray | None, which: str
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Profiles of meters without PV (``exclude``) or with PV (``only``), and the DTW rows
    renumbered to the kept profiles. Net profiles of prosumers are shaped by their export, so
    clustering them with consumers mostly separates sunny days from the rest."""
    production = profiles["meter_id"].map(meters.set_index("meter_id")["production_kw"])
    is_prosumer = production.fillna(0).to_numpy() > 0
    keep = is_prosumer if which == "only" else ~is_prosumer
    if not keep.any():
        raise ConfigError(f"prosumers={which} leaves no profiles to cluster")
    log.info("prosumers=%s: %d of %d profiles", which, keep.sum(), len(keep))
    if dtw_rows is not None:
        new_row = np.cumsum(keep) - 1
        dtw_rows = new_row[dtw_rows[keep[dtw_rows]]]
    return profiles[keep].reset_index(drop=True), dtw_rows


def _dtw_square(
    X: np.ndarray, env: Environment, *, window: int, norm: str, scheduler: str
) -> np.ndarray:
    """The DTW matrix of ``X`` from the cache (computing only what it lacks, on the Dask
    ``scheduler`` if given). A read-only lookup comes first so that clustering a subset never
    evicts rows the harmonization step cached."""
    cache = DtwCache(env.dtw_cache_dir)
    found = cache.lookup(X, window=window, normalization=norm)
    if found is None:
        with dask_rows(scheduler) as rows:
            found = cache.update(X, window=window, normalization=norm, rows=rows)
    return found.square()


@dataclass
class ClusteringInput:
    """What the step clusters: profiles, the meter table (from a run), the profiles'
    normalisation, their rows in the DTW matrix (if any) and the DTW window."""

    profiles: pd.DataFrame
    meters: pd.DataFrame | None
    normalization: str
    dtw_rows: np.ndarray | None
    window: int


def _input_from_file(opts: ClusteringOptions) -> ClusteringInput:
    profiles = read_profile_file(
        Path(opts.in_profiles),
        id_column=opts.id_column,
        date_column=opts.date_column,
        label_column=opts.label_column,
    )
    uses_dtw = opts.distance_metric == "dtw"
    rows = _file_dtw_rows(profiles, opts.max_profiles, opts.seed) if uses_dtw else None
    window = defaults.DTW_WINDOW if opts.dtw_window < 0 else opts.dtw_window
    return ClusteringInput(profiles, None, "external", rows, window)


def _input_from_run(opts: ClusteringOptions, run: tracking.StepRun) -> ClusteringInput:
    """The harmonization run's profiles, meters and DTW rows; the DTW window is the run's unless
    the option sets another one."""
    source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
    run.set_tags({"input.profiles_run": source_run})
    profiles = tracking.load_table(source_run, Table.PROFILES)
    meters = tracking.load_table(source_run, Table.METERS)
    params = tracking.run_params(source_run)
    window = int(params.get("dtw_window", defaults.DTW_WINDOW))
    window = window if opts.dtw_window < 0 else opts.dtw_window
    dtw_rows = None
    if tracking.run_tag(source_run, "dtw.cache_key"):
        index = tracking.load_table(source_run, Table.DTW_INDEX)
        dtw_rows = index["profile_row"].to_numpy(dtype=np.int64)
    if opts.prosumers != "include":
        profiles, dtw_rows = _select_prosumers(profiles, meters, dtw_rows, opts.prosumers)
    return ClusteringInput(profiles, meters, params.get("normalization", "none"), dtw_rows, window)


def _fit(
    opts: ClusteringOptions, X_fit: np.ndarray, D: np.ndarray | None, window: int, run
) -> tuple[object, pd.DataFrame | None]:
    """Fit the model with the given k, or choose k (logging the curve); return the result and
    the k-selection table (None with a given k)."""
    uses_dtw = opts.distance_metric == "dtw"
    common = {
        "distance_metric": opts.distance_metric,
        "dtw": D if uses_dtw else None,
        "window": window,
        "seed": opts.seed,
        "options": _options(opts),
    }
    if opts.number_of_clusters == 0 and not opts.som_grid:
        chosen = select_k(opts.model, X_fit, k_min=opts.k_min, k_max=opts.k_max, **common)
        run.log_figure(chosen.figure, "k_selection")
        run.set_tags({"clustering.k_criterion": chosen.criterion})
        return chosen.result, chosen.table
    k = opts.number_of_clusters
    if opts.som_grid:
        rows, cols = (int(v) for v in opts.som_grid.split("x"))
        k = rows * cols
    return fit_clustering(opts.model, X_fit, k=k, **common), None


def run_clustering(opts: ClusteringOptions, env: Environment) -> str:
    tracking.configure(env)
    uses_dtw = opts.distance_metric == "dtw"
    with tracking.step_run("clustering", opts) as run:
        data = _input_from_file(opts) if opts.in_profiles else _input_from_run(opts, run)
        slots = [c for c in data.profiles.columns if c.startswith("slot_")]
        X = np.ascontiguousarray(data.profiles[slots].to_numpy(dtype=np.float64))
        fit_rows = _fit_rows(data.profiles, data.dtw_rows, uses_dtw, opts)
        D = None
        if data.dtw_rows is not None:
            D = _dtw_square(
                X[data.dtw_rows],
                env,
                window=data.window,
                norm=data.normalization,
                scheduler=opts.dask_scheduler,
            )
        started = time.monotonic()
        result, k_table = _fit(opts, X[fit_rows], D, data.window, run)
        labels = result.assigner.predict(X)
        metrics = _metrics(data, X, labels, fit_rows, result, D, uses_dtw, opts.seed)
        metrics["fit_seconds"] = time.monotonic() - started
        run.log_metrics(metrics)
        run.log_params({f"algo.{key}": value for key, value in result.options.items()})
        run.log_params({"dtw_window_used": data.window})
        truth_name = _truth(data.profiles, data.meters)[1]
        run.set_tags({"clustering.center_kind": result.center_kind, "clustering.truth": truth_name})
        _log_outputs(run, data, X[fit_rows], labels, fit_rows, result, k_table)
        if result.network is not None:  # the LSTM autoencoder's encoder (Keras flavor)
            run.log_keras(result.network, [result.network_example])
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
    D: np.ndarray | None,
    uses_dtw: bool,
    seed: int,
) -> dict[str, float]:
    """Label-free scores on the fitted profiles, and agreement with the known classes."""
    truth = _truth(data.profiles, data.meters)[0]
    metrics = all_metrics(
        X[fit_rows],
        labels[fit_rows],
        result.centers,
        dtw=D if uses_dtw else None,
        truth=None if truth is None else truth[fit_rows],
        seed=seed,
    )
    if D is not None and not uses_dtw:
        metrics["silhouette_dtw"] = silhouette_dtw(D, labels[data.dtw_rows], seed=seed)
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
        result.assigner.prepare(X_fit),
        labels[fit_rows],
        result.centers,
        center_kind=result.center_kind,
    )
    run.log_figure(members, "cluster_members")
    run.log_figure(plot_cluster_sizes(labels, k), "cluster_sizes")
    if hasattr(result.assigner, "weights_grid"):
        run.log_figure(plot_som_map(result.assigner.weights_grid, labels[fit_rows]), "som_map")
