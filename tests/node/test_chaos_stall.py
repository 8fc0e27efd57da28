"""The in-run liveness check of chaos runs (`node.lab.chaos_run.StallWatch`)."""

from __future__ import annotations

import pytest

from node.lab.chaos_run import StallWatch

# (now, owed, height) observations -> the indices at which a stall is reported
CASES = [
    ("a growing height never stalls", [(t, True, t) for t in range(30)], []),
    (
        "stuck past the bound while owed: reported once",
        [(0, True, 5), (10, True, 5), (21, True, 5), (30, True, 5)],
        [2],
    ),
    (
        "time not owed does not count",
        [(0, True, 5), (15, False, 5), (30, False, 5), (31, True, 5), (45, True, 5)],
        [],
    ),
    (
        "the clock restarts when owed again",
        [(0, True, 5), (15, False, 5), (16, True, 5), (37, True, 5)],
        [3],
    ),
    (
        "growth resets it, and a second stall is reported again",
        [(0, True, 1), (21, True, 1), (22, True, 2), (43, True, 2)],
        [1, 3],
    ),
    ("a height that goes down is no growth", [(0, True, 9), (10, True, 3), (21, True, 8)], [2]),
]


@pytest.mark.parametrize(("name", "observations", "reported"), CASES, ids=[c[0] for c in CASES])
def test_stalls_are_reported_while_liveness_is_owed(
    name: str, observations: list[tuple[int, bool, int]], reported: list[int]
) -> None:
    watch = StallWatch(20.0)
    got = [
        i
        for i, (now, owed, height) in enumerate(observations)
        if watch.observe(float(now), owed=owed, height=height)
    ]
    assert got == reported


def test_the_longest_stall_is_kept() -> None:
    watch = StallWatch(20.0)
    for now, height in [(0, 1), (4, 1), (5, 2), (12, 2), (13, 3)]:
        watch.observe(float(now), owed=True, height=height)
    assert watch.longest_s == 7.0
