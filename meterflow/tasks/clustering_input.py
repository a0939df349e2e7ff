"""What the ``clustering`` step clusters: the profiles of a harmonization run or of a file, the
rows the model is fitted on, the known classes, and the distance matrices from the DTW cache."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow import tracking
from meterflow.clustering.registry import AUTO_MODEL, DTW_FAMILY
from meterflow.errors import ConfigError
from meterflow.profiles.dtw import cache_tag, dask_rows, row_computer, window_slots
from meterflow.profiles.normalize import normalize_values
from meterflow.profiles.params import HarmonizationParams
from meterflow.profiles.select import meter_days_mask, sample_rows
from meterflow.schemas import Table
from meterflow.settings import ClusteringOptions, Environment
from meterflow.sources.dtw_store import (
    DEFAULT_DTW_STORE,
    TAG_LOCATION,
    TAG_STORE,
    DtwStore,
    open_dtw_store,
)
from meterflow.sources.profilefile import read_profile_file

log = logging.getLogger(__name__)


def needs_matrix(opts: ClusteringOptions) -> bool:
    """Whether the step fits on the rows of the DTW matrix (a DTW-family method, or ``auto``)."""
    return opts.model == AUTO_MODEL or opts.distance_metric in DTW_FAMILY


def rows_to_fit(
    profiles: pd.DataFrame, dtw_rows: np.ndarray | None, opts: ClusteringOptions
) -> np.ndarray:
    """The rows the model is fitted on: the DTW matrix's for matrix methods, else a sample."""
    on_matrix = needs_matrix(opts)
    if on_matrix:
        if dtw_rows is None:
            raise ConfigError(
                f"model {opts.model} with distance_metric={opts.distance_metric} needs the "
                "harmonization step's DTW matrix; rerun harmonization with compute_dtw=true"
            )
        return dtw_rows
    return sample_rows(len(profiles), opts.max_profiles, opts.seed)


def file_dtw_rows(profiles: pd.DataFrame, max_rows: int, seed: int) -> np.ndarray:
    """Rows of a profile file in the DTW matrix: all if they fit, else with a date column a
    stable sample of meters times the most recent days (``meter_days_mask``, meters ranked by
    ``seed``), else a seeded random sample."""
    if len(profiles) <= max_rows:
        return np.arange(len(profiles))
    if "date" in profiles.columns:
        mask = meter_days_mask(profiles["meter_id"], profiles["date"], max_rows, seed=seed)
        return np.flatnonzero(mask)
    return sample_rows(len(profiles), max_rows, seed)


def known_classes(
    profiles: pd.DataFrame, meters: pd.DataFrame | None
) -> tuple[np.ndarray | None, str]:
    """Known classes to score against: the file's label column, else the meters' type."""
    if "label" in profiles.columns:
        return profiles["label"].astype(str).to_numpy(), "label_column"
    if meters is not None and "type" in meters.columns:
        types = profiles["meter_id"].map(meters.set_index("meter_id")["type"])
        if types.notna().all():
            return types.astype(str).to_numpy(), "meter_type"
    return None, ""


def select_prosumers(
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


def dtw_store_of_run(source_run: str, env: Environment) -> DtwStore:
    """The DTW store the harmonization run ``source_run`` wrote its matrix to (its tags), or the
    environment's default one for a run that recorded none."""
    kind, location = (
        tracking.run_tag(source_run, TAG_STORE),
        tracking.run_tag(source_run, TAG_LOCATION),
    )
    if kind and location:
        return open_dtw_store(kind, location)
    return open_dtw_store(DEFAULT_DTW_STORE, env.dtw_cache_dir)


def _distance_square(
    metric: str, X: np.ndarray, cache: DtwStore, *, window: int, norm: str, scheduler: str
) -> np.ndarray:
    """The ``metric`` matrix of ``X`` from the DTW store (computing only what it lacks; DTW on
    the Dask ``scheduler`` if given). A read-only lookup comes first so that clustering a subset
    never evicts rows the harmonization step cached."""
    tag = cache_tag(metric, norm)
    found = cache.lookup(X, window=window, normalization=tag)
    if found is None:
        dask = dask_rows(scheduler) if metric == "dtw" else contextlib.nullcontext()
        with dask as rows:
            computer = rows if metric == "dtw" else row_computer(metric)
            found = cache.update(X, window=window, normalization=tag, rows=computer)
    return found.square()


@dataclass
class Matrices:
    """Square distance matrices of the profiles in the DTW matrix's rows, by metric, read from
    (or added to) the DTW store when first asked for. ``normalize``: the clustering step's
    normalisation of the profiles (already ``normalization``-ed by their source): the matrices
    are of ``normalize_values(X, normalize)``, cached apart from the source's; ``none`` or the
    source's own normalisation (each is idempotent) reads the source's matrices."""

    X: np.ndarray
    store: DtwStore
    window: int
    normalization: str
    scheduler: str
    normalize: str = "none"
    found: dict[str, np.ndarray] = field(default_factory=dict)

    def __call__(self, metric: str) -> np.ndarray:
        if metric not in self.found:
            plain = self.normalize in ("none", self.normalization)
            self.found[metric] = _distance_square(
                metric,
                self.X if plain else normalize_values(self.X, self.normalize),
                self.store,
                window=self.window,
                norm=self.normalization if plain else f"{self.normalization}-{self.normalize}",
                scheduler=self.scheduler,
            )
        return self.found[metric]


@dataclass
class ClusteringInput:
    """What the step clusters: profiles, the meter table (from a run), the profiles'
    normalisation, their rows in the DTW matrix (if any), the DTW window (the kernels' band in
    slots, ``window_slots``, and the fraction of the day it came from) and the DTW store."""

    profiles: pd.DataFrame
    meters: pd.DataFrame | None
    normalization: str
    dtw_rows: np.ndarray | None
    window: int
    window_fraction: float
    dtw_store: DtwStore
    slot_names: tuple[str, ...] = ()  # the file's names of the slot columns ('' = slot_NN)
    source: str = ""  # where the profiles come from, for people: "harmonization run `…`"


def input_from_file(opts: ClusteringOptions, env: Environment) -> ClusteringInput:
    file = read_profile_file(
        Path(opts.in_profiles),
        id_column=opts.id_column,
        date_column=opts.date_column,
        label_column=opts.label_column,
    )
    profiles = file.table
    rows = file_dtw_rows(profiles, opts.max_profiles, opts.seed) if needs_matrix(opts) else None
    fraction = HarmonizationParams.default("dtw_window") if opts.dtw_window < 0 else opts.dtw_window
    window = window_slots(fraction, _slots(profiles))
    store = open_dtw_store(DEFAULT_DTW_STORE, env.dtw_cache_dir)
    source = f"file `{Path(opts.in_profiles).name}`"
    return ClusteringInput(
        profiles, None, "external", rows, window, fraction, store, file.slot_names, source
    )


def _slots(profiles: pd.DataFrame) -> int:
    return sum(c.startswith("slot_") for c in profiles.columns)


def run_window(params: dict[str, str], slots: int) -> tuple[int, float]:
    """The DTW window of a harmonization run with ``params`` on profiles of ``slots`` slots:
    the band in slots and the fraction of the day. A run since issue 29 logged the fraction
    (``dtw_window``) and, with a DTW matrix, its band (``dtw_window_slots``); an older run
    logged the band as ``dtw_window`` (an integer), read as slots (fraction: its largest shift
    over ``slots``, 0 when unconstrained)."""
    if "dtw_window" not in params:
        fraction = HarmonizationParams.default("dtw_window")
        return window_slots(fraction, slots), fraction
    value = params["dtw_window"]
    if "dtw_window_slots" in params:
        return int(params["dtw_window_slots"]), float(value)
    if value.lstrip("-").isdigit():  # logged before issue 29: slots
        band = int(value)
        return band, (band - 1) / slots if band > 0 else 0.0
    return window_slots(float(value), slots), float(value)


def input_from_run(
    opts: ClusteringOptions, run: tracking.StepRun, env: Environment
) -> ClusteringInput:
    """The harmonization run's profiles, meters, DTW rows and DTW store; the DTW window is the
    run's (``run_window``) unless the option sets another fraction."""
    source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
    run.set_tags({"input.profiles_run": source_run})
    profiles = tracking.load_table(source_run, Table.NORMALIZED_PROFILES)
    meters = tracking.load_table(source_run, Table.METERS)
    params = tracking.run_params(source_run)
    window, fraction = run_window(params, _slots(profiles))
    if opts.dtw_window >= 0:
        window, fraction = window_slots(opts.dtw_window, _slots(profiles)), opts.dtw_window
    dtw_rows = None
    if tracking.run_tag(source_run, "dtw.cache_key"):
        index = tracking.load_table(source_run, Table.DTW_INDEX)
        dtw_rows = index["profile_row"].to_numpy(dtype=np.int64)
    if opts.prosumers != "include":
        profiles, dtw_rows = select_prosumers(profiles, meters, dtw_rows, opts.prosumers)
    norm, store = params.get("normalization", "none"), dtw_store_of_run(source_run, env)
    source = f"harmonization run `{source_run[:8]}`"
    return ClusteringInput(profiles, meters, norm, dtw_rows, window, fraction, store, source=source)
