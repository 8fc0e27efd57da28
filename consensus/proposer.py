"""Proposer selection: weighted round-robin over the genesis order.

The proposer of (height, round) is entry `(height + round) % total_power` of
one cycle of a smooth weighted round-robin (each validator appears `power`
times per cycle, spread out rather than in runs). With equal powers the cycle
is the genesis order, so the proposer is `validators[(height + round) % n]`.

A cycle is precomputed when it is small; for huge total powers the cycle is
instead cut into contiguous runs (cumulative power ranges), which is still
weighted and deterministic but not interleaved.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate

__all__ = ["CYCLE_STEPS_MAX", "ProposerSchedule"]

# Precomputing costs cycle length x validators steps; beyond this, use runs.
CYCLE_STEPS_MAX = 1 << 20


class ProposerSchedule:
    __slots__ = ("_cumulative", "_cycle", "total_power")

    def __init__(self, powers: Sequence[int]) -> None:
        assert powers, "a validator set is never empty"
        assert all(p > 0 for p in powers), powers
        self.total_power = sum(powers)
        self._cumulative = list(accumulate(powers))
        self._cycle: list[int] | None = None
        if self.total_power * len(powers) <= CYCLE_STEPS_MAX:
            self._cycle = _smooth_cycle(powers)

    def proposer(self, height: int, round: int) -> int:
        slot = (height + round) % self.total_power
        if self._cycle is not None:
            return self._cycle[slot]
        return bisect.bisect_right(self._cumulative, slot)


def _smooth_cycle(powers: Sequence[int]) -> list[int]:
    """nginx's smooth weighted round-robin for one full cycle; ties go to the lower index."""
    total = sum(powers)
    current = [0] * len(powers)
    cycle = []
    for _ in range(total):
        for i, power in enumerate(powers):
            current[i] += power
        chosen = max(range(len(powers)), key=lambda i: (current[i], -i))
        current[chosen] -= total
        cycle.append(chosen)
    return cycle
