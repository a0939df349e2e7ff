"""model=auto's screening budget: short profiles are screened in full as before; longer ones on
fewer profiles (never below the floor) and without the most expensive candidates, the plan
shrinking as the profiles grow."""

from __future__ import annotations

import logging

import pytest

from meterflow.clustering.auto import AUTO_CANDIDATES, SCREEN_ROWS, Candidate
from meterflow.clustering.auto_budget import (
    FLOOR_ROWS,
    plan_screening,
    screening_cost,
)
from meterflow.profiles.dtw.window import window_slots

# the development sets' (profiles, slots)
SHORT = [(1096, 24), (363, 24), (3633, 24), (16637, 96), (360, 144)]


def plan_for(n: int, slots: int, fraction: float = 0.05, limit: int = SCREEN_ROWS):
    return plan_screening(n, slots, window_slots(fraction, slots), AUTO_CANDIDATES, limit)


@pytest.mark.parametrize(("n", "slots"), SHORT)
def test_short_profiles_are_screened_in_full_with_every_candidate(n, slots):
    plan = plan_for(n, slots)
    assert plan.rows == min(n, SCREEN_ROWS)
    assert plan.kept == AUTO_CANDIDATES and plan.dropped == ()
    assert plan.cost <= plan.budget


def test_a_96_slot_day_at_window_0_1_is_the_budget_itself():
    plan = plan_for(5000, 96, fraction=0.1)
    assert (plan.rows, plan.dropped) == (SCREEN_ROWS, ())
    assert plan.cost == pytest.approx(plan.budget)


@pytest.mark.parametrize("slots", [301, 720, 1440])
def test_long_profiles_are_cut_to_the_budget_never_below_the_floor(slots):
    plan = plan_for(2000, slots)
    full = screening_cost(AUTO_CANDIDATES, SCREEN_ROWS, slots, window_slots(0.05, slots))
    assert full > plan.budget >= plan.cost
    assert FLOOR_ROWS <= plan.rows <= SCREEN_ROWS
    assert len(plan.kept) + len(plan.dropped) == len(AUTO_CANDIDATES)


def test_the_plan_shrinks_as_the_profiles_grow():
    previous = plan_for(1000, 24)
    for slots in range(48, 1441, 24):
        plan = plan_for(1000, slots)
        assert set(plan.kept) <= set(previous.kept), slots
        if plan.kept == previous.kept:
            assert plan.rows <= previous.rows, slots
        previous = plan


def test_the_most_expensive_candidates_are_dropped_first():
    plan = plan_for(1000, 720)
    assert plan.dropped, "720 slots are over the budget with every candidate"
    band = window_slots(0.05, 720)

    def saving(state: list[Candidate], c: Candidate) -> float:
        rest = [other for other in state if other is not c]
        return screening_cost(state, FLOOR_ROWS, 720, band) - screening_cost(
            rest, FLOOR_ROWS, 720, band
        )

    state = list(AUTO_CANDIDATES)
    for name in plan.dropped:  # each one, when dropped, saved the most of those left
        gone = next(c for c in state if c.name == name)
        assert all(saving(state, gone) >= saving(state, c) for c in state)
        state.remove(gone)
    assert tuple(state) == plan.kept


def test_a_small_limit_or_few_profiles_set_the_floor():
    assert plan_screening(60, 720, 37, AUTO_CANDIDATES, SCREEN_ROWS).rows <= 60
    assert plan_screening(5000, 720, 37, AUTO_CANDIDATES, 40).rows <= 40


def test_one_candidate_is_always_kept():
    plan = plan_screening(5000, 20_000, 0, [Candidate("kmedoids", "dtw")], SCREEN_ROWS)
    assert [c.name for c in plan.kept] == ["kmedoids/dtw"]


def test_a_cut_is_logged_in_one_info_line(caplog):
    with caplog.at_level(logging.INFO, logger="meterflow.clustering.auto_budget"):
        plan_screening(1000, 96, 5, AUTO_CANDIDATES, SCREEN_ROWS)
        assert not caplog.records
        plan = plan_screening(1000, 720, 37, AUTO_CANDIDATES, SCREEN_ROWS)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert f"{plan.rows} of 1000 profiles" in message
    assert all(name in message for name in plan.dropped)
