"""The simulator's network and clock: one seeded event queue.

Everything that happens in a simulation is an event at a simulated time in
milliseconds, taken from one heap in (time, sequence) order, so a seed
replays exactly. The network delivers each message to each peer independently:
it may drop it (loss, partitions), deliver it twice (duplication) and delays
it by a random latency, which also reorders messages.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from consensus.errors import SimulationError

__all__ = ["FAULT_NAMES", "EventQueue", "Faults", "Network"]

FAULT_NAMES = ("loss", "duplicate", "delay", "partition", "crash", "byzantine")
LOSS_MAX = 0.30


@dataclass(frozen=True)
class Faults:
    """What goes wrong during a simulation's chaos phase (all heal afterwards,
    except byzantine validators, which stay byzantine)."""

    loss: float = 0.0
    duplicate: float = 0.0
    latency_ms: tuple[int, int] = (1, 5)
    partitions: bool = False
    crashes: bool = False
    byzantine: int = 0

    @classmethod
    def draw(cls, names: Iterable[str], rng: random.Random, *, byzantine: int) -> Faults:
        """Faults of the given kinds with strengths drawn from `rng` (one seed's run)."""
        names = set(names)
        unknown = names - set(FAULT_NAMES)
        if unknown:
            raise SimulationError(f"unknown faults: {', '.join(sorted(unknown))}")
        return cls(
            loss=rng.uniform(0.0, LOSS_MAX) if "loss" in names else 0.0,
            duplicate=rng.uniform(0.0, 0.2) if "duplicate" in names else 0.0,
            latency_ms=(1, rng.randint(10, 150)) if "delay" in names else (1, 5),
            partitions="partition" in names,
            crashes="crash" in names,
            byzantine=byzantine if "byzantine" in names or byzantine else 0,
        )

    def describe(self) -> str:
        parts = [f"loss {self.loss:.0%}", f"dup {self.duplicate:.0%}", f"latency {self.latency_ms}"]
        if self.partitions:
            parts.append("partitions")
        if self.crashes:
            parts.append("crashes")
        if self.byzantine:
            parts.append(f"byzantine {self.byzantine}")
        return ", ".join(parts)


@dataclass(order=True)
class _Event:
    time_ms: int
    sequence: int
    action: Callable[[], None] = field(compare=False)


class EventQueue:
    """Simulated time: run callbacks in (time, insertion) order."""

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms
        self._heap: list[_Event] = []
        self._sequence = 0
        self.processed = 0

    def at(self, time_ms: int, action: Callable[[], None]) -> None:
        assert time_ms >= self.now_ms, (time_ms, self.now_ms)
        self._sequence += 1
        heapq.heappush(self._heap, _Event(time_ms, self._sequence, action))

    def after(self, delay_ms: int, action: Callable[[], None]) -> None:
        self.at(self.now_ms + max(0, delay_ms), action)

    def run_until(self, deadline_ms: int, stop: Callable[[], bool], events_max: int) -> None:
        while self._heap and not stop():
            if self._heap[0].time_ms > deadline_ms or self.processed >= events_max:
                return
            event = heapq.heappop(self._heap)
            self.now_ms = event.time_ms
            self.processed += 1
            event.action()


class Network:
    """Lossy, duplicating, reordering links between `size` nodes, with partitions."""

    def __init__(self, queue: EventQueue, rng: random.Random, size: int) -> None:
        self._queue = queue
        self._rng = rng
        self.size = size
        self.faults = Faults()
        self.chaos = False
        self._blocked: set[tuple[int, int]] = set()  # (source, destination) links down
        self.sent = 0
        self.dropped = 0
        self.receivers: list[Callable[[int, Any], None]] = []

    def partition(self, links: Iterable[tuple[int, int]]) -> None:
        self._blocked = set(links)

    def heal(self) -> None:
        self._blocked = set()
        self.chaos = False

    def send(self, source: int, destination: int, message: Any) -> None:
        self.sent += 1
        if (source, destination) in self._blocked:
            self.dropped += 1
            return
        faults = self.faults if self.chaos else Faults()
        if faults.loss and self._rng.random() < faults.loss:
            self.dropped += 1
            return
        copies = 2 if faults.duplicate and self._rng.random() < faults.duplicate else 1
        low, high = faults.latency_ms
        receive = self.receivers[destination]
        for _ in range(copies):
            delay = self._rng.randint(low, high)
            self._queue.after(delay, lambda: receive(source, message))

    def broadcast(self, source: int, message: Any) -> None:
        for destination in range(self.size):
            if destination != source:
                self.send(source, destination, message)
