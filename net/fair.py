"""A queue that serves its sources in turn, each within its own bound.

A node reads datagrams and hands deliveries to subscribers on behalf of
every peer at once. With one first-in first-out queue, a peer that sends
ten times as much gets ten times the turns, and what honest peers send
waits behind it (or is dropped when the queue is full). Here every source
has its own bounded queue and `get` takes one item from each non-empty
queue in turn: a flooding peer fills and loses only its own queue, and
never delays another peer by more than one item per turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["FairQueue"]

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Round-robin over sources; per source at most `per_source` items and
    `bytes_per_source` bytes (each item's size as `put` is told) queued.

    Sources must come from a bounded set (configured peers): each one that
    has items holds a queue."""

    __slots__ = ("_bytes", "_bytes_max", "_per_source", "_queues", "_ready", "dropped", "size")

    def __init__(self, per_source: int, bytes_per_source: int | None = None) -> None:
        assert per_source > 0
        self._per_source = per_source
        self._bytes_max = bytes_per_source
        self._queues: dict[Hashable, deque[tuple[T, int]]] = {}
        self._bytes: dict[Hashable, int] = {}
        self._ready: deque[Hashable] = deque()  # sources with items, in turn order
        self.size = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self.size

    def put(self, source: Hashable, item: T, size: int = 0) -> bool:
        """Queue `item`; False (and counted in `dropped`) when its source's queue is full.

        An item larger than the byte bound still fits an empty queue: the
        bound limits what waits, not what one item may be."""
        queue = self._queues.get(source)
        if queue is None:
            queue = self._queues[source] = deque()
            self._bytes[source] = 0
            self._ready.append(source)
        elif len(queue) >= self._per_source or (
            self._bytes_max is not None and self._bytes[source] + size > self._bytes_max
        ):
            self.dropped += 1
            return False
        queue.append((item, size))
        self._bytes[source] += size
        self.size += 1
        return True

    def get(self) -> T:
        """The next item in turn; IndexError when empty."""
        source = self._ready.popleft()
        queue = self._queues[source]
        item, size = queue.popleft()
        self.size -= 1
        if queue:
            self._bytes[source] -= size
            self._ready.append(source)
        else:
            del self._queues[source]  # an idle source holds nothing
            del self._bytes[source]
        return item
