"""The seen-cache: ids of messages already delivered, bounded in count and age."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["SeenCache"]


class SeenCache:
    """Remembers ids for `ttl_ms` and at most `capacity` of them, oldest out first.

    Every operation is O(1). An `OrderedDict` is a linked list over a hash
    table, so finding and removing its oldest entry costs the same however
    many entries went before. (A plain dict does not: deleting from its front
    leaves dead slots that every later "first key" lookup walks over, so a
    full cache under churn, which a peer flooding fresh ids causes, cost tens
    of microseconds per id.)"""

    __slots__ = ("_capacity", "_ids", "_ttl_ms", "evicted")

    def __init__(self, capacity: int, ttl_ms: float) -> None:
        assert capacity > 0
        self._capacity = capacity
        self._ttl_ms = ttl_ms
        # Insertion order is arrival order: the first entry is the oldest.
        self._ids: OrderedDict[bytes, float] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id_: bytes) -> bool:
        return id_ in self._ids

    def add(self, id_: bytes, now_ms: float) -> bool:
        """Record `id_`; False if it was already there (a duplicate)."""
        ids = self._ids
        if id_ in ids:
            return False
        ids[id_] = now_ms
        if len(ids) > self._capacity:
            ids.popitem(last=False)
            self.evicted += 1
        self._expire(now_ms)
        return True

    def _expire(self, now_ms: float) -> None:
        ids = self._ids
        cutoff = now_ms - self._ttl_ms
        while ids:
            oldest, added_ms = next(iter(ids.items()))
            if added_ms >= cutoff:
                return
            del ids[oldest]
