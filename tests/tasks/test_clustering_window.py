"""The clustering step's DTW window and normalisation: the window of a harmonization run (a
fraction since issue 29, slots before), and the distance matrices of the profiles as the fit
normalises them."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from meterflow.clustering.params import ClusteringParams
from meterflow.profiles.dtw import condensed_to_square, dtw_condensed, window_slots
from meterflow.profiles.normalize import NORMALIZATIONS, normalize_values
from meterflow.profiles.params import HarmonizationParams
from meterflow.sources.dtw_store import DEFAULT_DTW_STORE, open_dtw_store
from meterflow.tasks.clustering_input import Matrices, run_window


@pytest.mark.parametrize(
    ("params", "slots", "expected"),
    [
        ({"dtw_window": "0.1", "dtw_window_slots": "3"}, 24, (3, 0.1)),  # since issue 29
        ({"dtw_window": "0.1"}, 96, (10, 0.1)),  # no DTW matrix: the fraction on the profiles
        ({"dtw_window": "0.0", "dtw_window_slots": "0"}, 24, (0, 0.0)),
        ({"dtw_window": "3"}, 24, (3, 2 / 24)),  # before issue 29: a band in slots
        ({"dtw_window": "5"}, 96, (5, 4 / 96)),
        ({"dtw_window": "0"}, 24, (0, 0.0)),  # unconstrained then and now
    ],
)
def test_run_window_reads_new_and_old_harmonization_runs(params, slots, expected) -> None:
    assert run_window(params, slots) == pytest.approx(expected)


def test_run_window_without_the_param_is_the_default() -> None:
    fraction = HarmonizationParams.default("dtw_window")
    band, used = run_window({}, 24)
    assert used == fraction and band == int(fraction * 24) + 1


def test_an_old_runs_band_reads_back_as_the_same_band() -> None:
    """The fraction reported for an old run's band gives that band again."""
    for slots in (24, 48, 96, 144):
        for band in range(2, slots):
            assert window_slots(run_window({"dtw_window": str(band)}, slots)[1], slots) == band


@pytest.fixture
def profiles() -> np.ndarray:
    rng = np.random.default_rng(7)
    return normalize_values(rng.gamma(2.0, 1.0, size=(12, 24)), "l2")


def test_matrices_are_of_the_profiles_as_the_fit_normalises_them(tmp_path, profiles) -> None:
    store = open_dtw_store(DEFAULT_DTW_STORE, tmp_path)
    plain = Matrices(profiles, store, 3, "l2", "")("dtw")
    zscored = Matrices(profiles, store, 3, "l2", "", normalize="zscore")("dtw")
    expected = condensed_to_square(dtw_condensed(normalize_values(profiles, "zscore"), 3), 12)
    np.testing.assert_allclose(zscored, expected, rtol=1e-6)
    np.testing.assert_allclose(plain, condensed_to_square(dtw_condensed(profiles, 3), 12))
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 2 and any("l2-zscore" in f for f in folders)


def test_the_sources_own_normalisation_reads_the_sources_matrix(tmp_path, profiles) -> None:
    store = open_dtw_store(DEFAULT_DTW_STORE, tmp_path)
    plain = Matrices(profiles, store, 3, "l2", "")("dtw")
    again = Matrices(profiles, store, 3, "l2", "", normalize="l2")("dtw")
    np.testing.assert_array_equal(again, plain)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1


@pytest.mark.parametrize("method", NORMALIZATIONS)
def test_every_normalisation_is_idempotent(profiles, method) -> None:
    """What lets ``Matrices`` read the source's matrix when both normalise alike."""
    once = normalize_values(profiles, method)
    np.testing.assert_allclose(normalize_values(once, method), once, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("params", [ClusteringParams, HarmonizationParams])
def test_a_window_in_slots_is_refused_with_the_fraction_it_means(params) -> None:
    with pytest.raises(
        ValidationError,
        match=r"dtw_window=3 looks like slots.*up to 2 slots, on a 24-slot day dtw_window=0.0833",
    ):
        params(dtw_window=3)


@pytest.mark.parametrize("window", [-0.5, float("nan"), "ten"])
def test_a_window_is_a_fraction_or_minus_one(window) -> None:
    with pytest.raises(ValidationError, match="dtw_window"):
        ClusteringParams(dtw_window=window)


def test_window_and_normalize_options_as_the_command_line_gives_them() -> None:
    opts = ClusteringParams(dtw_window="0.05", normalize="max")
    assert (opts.dtw_window, opts.normalize) == (0.05, "max")
    assert (
        ClusteringParams().dtw_window == -1 and HarmonizationParams(dtw_window="1").dtw_window == 1
    )
    with pytest.raises(ValidationError, match="normalize"):
        ClusteringParams(normalize="unit")
