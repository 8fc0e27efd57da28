"""The garbage collector's pauses (node/daemon/gcpauses.py) and their metric."""

from __future__ import annotations

import gc
import itertools

from node.daemon.gcpauses import GcPauses


def test_each_collection_is_observed_with_its_generation_and_duration() -> None:
    ticks = itertools.count(start=10.0, step=0.25)  # each clock read 0.25 s later
    seen: list[tuple[int, float]] = []
    with GcPauses(
        lambda generation, seconds: seen.append((generation, seconds)), lambda: next(ticks)
    ):
        gc.collect(2)
        gc.collect(0)
    assert (2, 0.25) in seen
    assert (0, 0.25) in seen


def test_leaving_stops_observing() -> None:
    seen: list[tuple[int, float]] = []
    pauses = GcPauses(lambda generation, seconds: seen.append((generation, seconds)))
    with pauses:
        gc.collect()
    count = len(seen)
    gc.collect()
    assert count >= 1
    assert len(seen) == count
    assert pauses._on_gc not in gc.callbacks


def test_an_end_without_a_start_is_not_a_pause() -> None:
    seen: list[tuple[int, float]] = []
    pauses = GcPauses(lambda generation, seconds: seen.append((generation, seconds)))
    pauses._on_gc("stop", {"generation": 2})  # entered while a collection ran
    assert seen == []
