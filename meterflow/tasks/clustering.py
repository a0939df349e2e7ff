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
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow import tracking
from meterflow.clustering import all_metrics, fit_clustering, select_k
from meterflow.clustering.composition import assignment_table, composition_tables
from meterflow.clustering.figures import plot_cluster_members, plot_cluster_sizes, plot_som_map
from meterflow.clustering.metrics import silhouette_dtw
from meterflow.config import ClusteringOptions, Environment
from meterflow.errors import ConfigError, SourceError
from meterflow.profiles.select import recent_days_mask, sample_rows
from meterflow.schemas import slot_columns
from meterflow.sources.dtw_cache import DtwCache
from meterflow.tasks.harmonization import DTW_INDEX, METERS, PROFILES

log = logging.getLogger(__name__)


def read_profile_file(path: Path, opts: ClusteringOptions) -> pd.DataFrame:
    """A profile table file as meter_id, [date], [label], slot_00.. (float)."""
    if not path.is_file():
        raise SourceError("profile file does not exist", source="in_profiles", file=str(path))
    try:
        raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise SourceError(
            f"cannot read profile file: {e}", source="in_profiles", file=str(path)
        ) from None
    named = {opts.id_column: "meter_id"}
    if opts.date_column and opts.date_column in raw.columns:
        named[opts.date_column] = "date"
    if opts.label_column:
        named[opts.label_column] = "label"
    missing = [c for c in named if c not in raw.columns]
    if missing:
        raise SourceError(f"missing column(s) {missing}", source="in_profiles", file=str(path))
    values = raw.drop(columns=list(named))
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise SourceError(
            f"non-numeric slot column(s) {bad[:5]} (name id/date/label columns with "
            "id_column/date_column/label_column)",
            source="in_profiles",
            file=str(path),
        )
    if values.shape[1] < 2:
        raise SourceError("need at least 2 slot columns", source="in_profiles", file=str(path))
    nan_rows = np.flatnonzero(values.isna().any(axis=1).to_numpy())
    if len(nan_rows):
        raise SourceError(
            f"missing slot values in {len(nan_rows)} row(s)",
            source="in_profiles",
            file=str(path),
            row=int(nan_rows[0]) + 2 if path.suffix != ".parquet" else int(nan_rows[0]),
        )
    out = raw[list(named)].rename(columns=named).reset_index(drop=True)
    out["meter_id"] = out["meter_id"].astype(str)
    if "date" in out.columns:
        out["date"] = pd.to_datetime(out["date"])
    slots = pd.DataFrame(values.to_numpy(dtype=np.float64), columns=slot_columns(values.shape[1]))
    return pd.concat([out, slots], axis=1)


def _options(opts: ClusteringOptions) -> dict[str, object]:
    """Algorithm settings from the step options (each algorithm ignores the others' keys)."""
    out: dict[str, object] = {"epochs": opts.epochs}
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


def _dtw_square(X: np.ndarray, env: Environment, *, window: int, normalization: str) -> np.ndarray:
    """The DTW matrix of ``X`` from the cache (computing only what it lacks). A read-only lookup
    comes first so that clustering a subset never evicts rows the harmonization step cached."""
    cache = DtwCache(env.dtw_cache_dir)
    found = cache.lookup(X, window=window, normalization=normalization)
    if found is None:
        found = cache.update(X, window=window, normalization=normalization)
    return found.square()


def run_clustering(opts: ClusteringOptions, env: Environment) -> str:
    tracking.configure(env.experiment)
    uses_dtw = opts.distance_metric == "dtw"
    with tracking.step_run("clustering", opts) as run:
        if opts.in_profiles:
            profiles = read_profile_file(Path(opts.in_profiles), opts)
            meters, normalization = None, "external"
            dtw_rows = _file_dtw_rows(profiles, opts.max_profiles, opts.seed) if uses_dtw else None
        else:
            source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
            run.set_tags({"input.profiles_run": source_run})
            profiles = tracking.load_table(source_run, PROFILES)
            meters = tracking.load_table(source_run, METERS)
            normalization = tracking.run_params(source_run).get("normalization", "none")
            dtw_rows = None
            if tracking.run_tag(source_run, "dtw.cache_key"):
                index = tracking.load_table(source_run, DTW_INDEX)
                dtw_rows = index["profile_row"].to_numpy(dtype=np.int64)
            if opts.prosumers != "include":
                profiles, dtw_rows = _select_prosumers(profiles, meters, dtw_rows, opts.prosumers)
        slots = [c for c in profiles.columns if c.startswith("slot_")]
        X = np.ascontiguousarray(profiles[slots].to_numpy(dtype=np.float64))
        fit_rows = _fit_rows(profiles, dtw_rows, uses_dtw, opts)
        D = None
        if dtw_rows is not None:
            D = _dtw_square(X[dtw_rows], env, window=opts.dtw_window, normalization=normalization)
        X_fit = X[fit_rows]
        k_table = None
        started = time.monotonic()
        if opts.number_of_clusters == 0 and not opts.som_grid:
            chosen = select_k(
                opts.model,
                X_fit,
                distance_metric=opts.distance_metric,
                dtw=D if uses_dtw else None,
                window=opts.dtw_window,
                seed=opts.seed,
                options=_options(opts),
                k_min=opts.k_min,
                k_max=opts.k_max,
            )
            result, k_table = chosen.result, chosen.table
            run.log_figure(chosen.figure, "k_selection")
            run.set_tags({"clustering.k_criterion": chosen.criterion})
        else:
            k = opts.number_of_clusters
            if opts.som_grid:
                rows, cols = (int(v) for v in opts.som_grid.split("x"))
                k = rows * cols
            result = fit_clustering(
                opts.model,
                X_fit,
                k=k,
                distance_metric=opts.distance_metric,
                dtw=D if uses_dtw else None,
                window=opts.dtw_window,
                seed=opts.seed,
                options=_options(opts),
            )
        labels = result.assigner.predict(X)
        truth, truth_name = _truth(profiles, meters)
        metrics = all_metrics(
            X_fit,
            labels[fit_rows],
            result.centers,
            dtw=D if uses_dtw else None,
            truth=None if truth is None else truth[fit_rows],
            seed=opts.seed,
        )
        if D is not None and not uses_dtw:
            metrics["silhouette_dtw"] = silhouette_dtw(D, labels[dtw_rows], seed=opts.seed)
        metrics.update(
            {
                "k": len(result.centers),
                "profiles": len(X),
                "profiles_fitted": len(fit_rows),
                "fit_seconds": time.monotonic() - started,
            }
        )
        run.log_metrics(metrics)
        run.log_params({f"algo.{key}": value for key, value in result.options.items()})
        run.set_tags({"clustering.center_kind": result.center_kind, "clustering.truth": truth_name})
        _log_outputs(run, profiles, X_fit, labels, fit_rows, result, meters, k_table)
        run.log_model(result.assigner)
        log.info("clustering: k=%d, %s", len(result.centers), metrics)
        return run.run_id


def _log_outputs(run, profiles, X_fit, labels, fit_rows, result, meters, k_table) -> None:
    assign = assignment_table(profiles, labels)
    run.log_table(assign, "assignments")
    centers = pd.DataFrame(result.centers, columns=slot_columns(result.centers.shape[1]))
    centers.insert(0, "cluster", np.arange(len(centers)))
    run.log_table(centers, "centers")
    k = len(result.centers)
    for name, table in composition_tables(assign, meters, k=k).items():
        run.log_table(table if table.index.name is None else table.reset_index(), name)
    if k_table is not None:
        run.log_table(k_table, "k_selection")
    run.log_figure(
        plot_cluster_members(
            result.assigner.prepare(X_fit), labels[fit_rows], result.centers,
            center_kind=result.center_kind,
        ),
        "cluster_members",
    )  # fmt: skip
    run.log_figure(plot_cluster_sizes(labels, k), "cluster_sizes")
    if hasattr(result.assigner, "weights_grid"):
        run.log_figure(plot_som_map(result.assigner.weights_grid, labels[fit_rows]), "som_map")
