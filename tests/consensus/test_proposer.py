"""Proposer selection: weighted round-robin over the genesis order."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.proposer import CYCLE_STEPS_MAX, ProposerSchedule


@pytest.mark.parametrize("n", [1, 4, 7])
def test_equal_powers_rotate_by_height_plus_round(n: int) -> None:
    schedule = ProposerSchedule([1] * n)
    for height in range(1, 20):
        for round in range(5):
            assert schedule.proposer(height, round) == (height + round) % n


def test_weighted_cycle_is_interleaved() -> None:
    schedule = ProposerSchedule([3, 1, 1])
    cycle = [schedule.proposer(h, 0) for h in range(5)]
    assert Counter(cycle) == {0: 3, 1: 1, 2: 1}
    assert cycle == [0, 1, 0, 2, 0]  # smooth: never the heavy validator three times in a row


@given(st.lists(st.integers(1, 20), min_size=1, max_size=12))
def test_each_validator_proposes_in_proportion_to_its_power(powers: list[int]) -> None:
    schedule = ProposerSchedule(powers)
    total = sum(powers)
    counts = Counter(schedule.proposer(h, 0) for h in range(total))
    assert counts == {i: p for i, p in enumerate(powers)}
    assert schedule.proposer(7, 3) == schedule.proposer(10, 0)  # a function of height + round


def test_huge_powers_use_contiguous_runs() -> None:
    powers = [CYCLE_STEPS_MAX, 1]
    schedule = ProposerSchedule(powers)
    assert schedule.proposer(0, 0) == 0
    assert schedule.proposer(CYCLE_STEPS_MAX - 1, 0) == 0
    assert schedule.proposer(CYCLE_STEPS_MAX, 0) == 1
