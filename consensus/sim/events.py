"""Simulated time: callbacks run in (time, insertion) order from one heap.

Entries are plain tuples `(time_ms, sequence, callback, argument)`: the
simulator spends much of its time here, and tuples compare in C.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

__all__ = ["EventQueue"]


class EventQueue:
    __slots__ = ("_heap", "_sequence", "now_ms", "processed")

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._sequence = 0
        self.processed = 0

    def at(self, time_ms: int, callback: Callable[[Any], None], argument: Any = None) -> None:
        assert time_ms >= self.now_ms, (time_ms, self.now_ms)
        self._sequence += 1
        heapq.heappush(self._heap, (time_ms, self._sequence, callback, argument))

    def after(self, delay_ms: int, callback: Callable[[Any], None], argument: Any = None) -> None:
        self.at(self.now_ms + max(0, delay_ms), callback, argument)

    def run_until(self, deadline_ms: int, stop: Callable[[], bool], events_max: int) -> None:
        """Run events up to `deadline_ms`, until `stop()` or `events_max` events."""
        heap = self._heap
        pop = heapq.heappop
        while heap and self.processed < events_max:
            if heap[0][0] > deadline_ms:
                return
            time_ms, _sequence, callback, argument = pop(heap)
            self.now_ms = time_ms
            self.processed += 1
            callback(argument)
            if self.processed % 256 == 0 and stop():
                return
        if stop():
            return

    @property
    def pending(self) -> int:
        return len(self._heap)
