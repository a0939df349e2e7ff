"""The ``harmonization`` step: one profile table from every ETL run, plus the cached DTW matrix.

The run says what it merged in its description (``profiles.story``); what each source brought,
kept and lost is the ``sources`` table and the ``source_coverage`` figure."""

from __future__ import annotations

import logging
import tempfile

import pandas as pd

from meterflow import tracking
from meterflow.errors import ConfigError
from meterflow.profiles.dtw import dask_rows, window_slots
from meterflow.profiles.figures import harmonized_completeness_figure, source_coverage_figure
from meterflow.profiles.harmonize import Harmonized, harmonize
from meterflow.profiles.normalize import normalize
from meterflow.profiles.predictor import ProfileNormalizer
from meterflow.profiles.resample import resample_profiles
from meterflow.profiles.select import meter_days_mask
from meterflow.profiles.story import (
    DtwStory,
    HarmonizationStory,
    harmonization_description,
    source_table,
)
from meterflow.schemas import PROFILE_KEYS, Table, profile_matrix, profile_slot_columns
from meterflow.settings import Environment, HarmonizationOptions
from meterflow.sources import diskspace
from meterflow.sources.dtw_store import (
    DEFAULT_DTW_STORE,
    DtwMatrixView,
    DtwStore,
    open_dtw_store,
    store_tags,
)
from meterflow.sources.registry import etl_step, source_names

log = logging.getLogger(__name__)

# Tables of the harmonization run, read by the downstream steps: PROFILES (Wh, as in the ETL
# runs: what forecasting and anomaly detection model), NORMALIZED_PROFILES (what clustering
# compares), DTW_INDEX (rows of NORMALIZED_PROFILES in the DTW matrix) and METERS.


def _etl_runs(option: str) -> list[str]:
    """The ETL runs to merge: the given ids (each checked), or the newest run of each ETL step."""
    etl_entry_points = tuple(etl_step(name) for name in source_names())
    if option:
        ids = [s.strip() for s in option.split(",") if s.strip()]
        return [tracking.resolve_run(run_id, etl_entry_points) for run_id in ids]
    runs = [tracking.finished_runs(ep, max_results=1) for ep in etl_entry_points]
    found = [r[0].info.run_id for r in runs if r]
    if not found:
        raise ConfigError("no finished ETL run found; run an etl_* step first or pass etl_runs")
    return found


def run_harmonization(opts: HarmonizationOptions, env: Environment) -> str:
    tracking.configure(env)
    with tracking.step_run("harmonization", opts) as run:
        run_ids = _etl_runs(opts.etl_runs)
        inputs = [(r, tracking.load_table(r, Table.PROFILES)) for r in run_ids]
        tables = [t for _, t in inputs if len(t)]
        if not tables:
            raise ConfigError(f"the ETL runs {run_ids} produced no profiles")
        priority = tuple(opts.priority.split(","))
        merged = harmonize(tables, resolution_min=opts.resolution, priority=priority)
        energy, carried = merged.profiles, 0
        if opts.previous_run:
            previous_run = tracking.resolve_run(opts.previous_run, "harmonization")
            previous = tracking.harmonized_energy(previous_run)
            energy, carried = _carry_over(energy, previous, opts.resolution)
        energy = energy.sort_values(["meter_id", "date"], ignore_index=True)
        normalized = normalize(energy, opts.normalization)
        meters = pd.concat([tracking.load_table(r, Table.METERS) for r in run_ids])
        meters = meters.drop_duplicates("meter_id")
        subset = (
            _dtw_subset(normalized, meters, opts.dtw_max_profiles) if opts.compute_dtw else None
        )
        location = opts.dtw_cache_dir or env.dtw_cache_dir
        cache = open_dtw_store(DEFAULT_DTW_STORE, location)
        _require_space([energy, normalized, merged.losers, meters], subset, cache)
        _log_tables(run, energy, normalized, merged.losers, meters)
        sources = source_table(inputs, merged.losers)
        run.log_table(sources, Table.SOURCES)
        metrics = _profile_metrics(energy, merged, carried)
        dtw = None
        if subset is not None:
            matrix = _update_dtw(run, subset, cache, opts)
            metrics.update(_dtw_metrics(matrix, len(subset)))
            dtw = DtwStory(
                len(subset), matrix.pairs_computed, matrix.pairs_reused, matrix.window,
                cache.location(),
            )  # fmt: skip
        run.log_metrics(metrics)
        run.log_model(ProfileNormalizer(opts.resolution, opts.normalization))
        story = HarmonizationStory(
            sources, energy, len(merged.losers), merged.overlaps, carried, opts.resolution,
            opts.normalization, priority, dtw,
        )  # fmt: skip
        run.describe(harmonization_description(story))
        return run.run_id


def _log_tables(
    run: tracking.StepRun,
    energy: pd.DataFrame,
    normalized: pd.DataFrame,
    losers: pd.DataFrame,
    meters: pd.DataFrame,
) -> None:
    run.log_table(energy, Table.PROFILES)
    run.log_table(normalized, Table.NORMALIZED_PROFILES)
    run.log_table(losers, Table.LOSERS)
    run.log_table(meters, Table.METERS)
    run.log_figure(source_coverage_figure(energy), "source_coverage")
    run.log_figure(harmonized_completeness_figure(energy), "completeness")


def _profile_metrics(energy: pd.DataFrame, merged: Harmonized, carried: int) -> dict[str, float]:
    metrics = {
        "profiles": len(energy),
        "meters": energy["meter_id"].nunique(),
        "days": energy["date"].nunique(),
        "overlapping_meter_days": merged.overlaps,
        "losing_candidates": len(merged.losers),
        "carried_over_meter_days": carried,
    }
    counts = energy["source"].value_counts()
    return metrics | {f"profiles_from_{s}": n for s, n in counts.items()}


def _carry_over(
    new: pd.DataFrame, previous: pd.DataFrame, resolution: int
) -> tuple[pd.DataFrame, int]:
    """Keep the previous harmonization's meter-days that no new ETL output covers (incremental
    nightly runs load only new MongoDB documents)."""
    previous = resample_profiles(previous, resolution)
    covered = pd.MultiIndex.from_frame(new[["meter_id", "date"]])
    old = previous.loc[~pd.MultiIndex.from_frame(previous[["meter_id", "date"]]).isin(covered)]
    return pd.concat([new, old], ignore_index=True), len(old)


def _dtw_subset(profiles: pd.DataFrame, meters: pd.DataFrame, max_profiles: int) -> pd.DataFrame:
    """The rows of the DTW matrix: at most ``max_profiles`` complete profiles, a fixed set of
    meters (stratified by meter type) times the most recent days (``meter_days_mask``), day by
    day: each day's profiles take neighbouring slots of the cached matrix, so the nightly slide
    rewrites one short run of each matrix row instead of values on every page of the file."""
    complete = ~profiles[profile_slot_columns(profiles)].isna().any(axis=1).to_numpy()
    types = meters.set_index("meter_id")["type"] if "type" in meters.columns else None
    mask = meter_days_mask(
        profiles["meter_id"],
        profiles["date"],
        max_profiles,
        usable=complete,
        meter_types=types,
    )
    return profiles.loc[mask].sort_values(["date", "meter_id"], kind="stable")


def _require_space(
    tables: list[pd.DataFrame], subset: pd.DataFrame | None, cache: DtwStore
) -> None:
    """Refuse the step (``DiskFullError``) before it writes or computes anything when its tables
    (in the temporary folder, then the local tracking store) and the whole DTW matrix of
    ``subset`` (a first build or a rewrite writes it beside the old one; a nightly slide recycles
    slots in place and needs less) do not fit their disks."""
    tables_bytes = diskspace.table_bytes(*tables)
    needs = [(tempfile.gettempdir(), tables_bytes), (tracking.tracking_uri(), tables_bytes)]
    if subset is not None:
        needs += cache.disk_needs(len(subset))
    diskspace.require_space(needs, "the harmonization outputs")


def _update_dtw(
    run: tracking.StepRun, subset: pd.DataFrame, cache: DtwStore, opts: HarmonizationOptions
) -> DtwMatrixView:
    """Compute (or take from ``cache``) the DTW matrix of ``subset`` and log its index and its
    window in slots (``dtw_window_slots``: the store keeps bands in slots)."""
    X = profile_matrix(subset)
    window = window_slots(opts.dtw_window, X.shape[1])
    log.info("DTW window %g of the day = band %d of %d slots", opts.dtw_window, window, X.shape[1])
    run.log_params({"dtw_window_slots": window})
    with dask_rows(opts.dask_scheduler) as rows:
        matrix = cache.update(
            X,
            window=window,
            normalization=opts.normalization,
            rows=rows,
        )
    index = subset[list(PROFILE_KEYS)].reset_index(names="profile_row")
    run.log_table(index, Table.DTW_INDEX)
    # where the matrix is: clustering reopens the store through this run (store_tags)
    run.set_tags({"dtw.cache_key": matrix.key, "dtw.window": matrix.window} | store_tags(cache))
    return matrix


def _dtw_metrics(matrix: DtwMatrixView, profiles: int) -> dict[str, float]:
    return {
        "dtw_profiles": profiles,
        "dtw_matrix_rows": matrix.n,
        "dtw_matrix_bytes": matrix.nbytes,
        "dtw_pairs_computed": matrix.pairs_computed,
        "dtw_pairs_reused": matrix.pairs_reused,
    }
