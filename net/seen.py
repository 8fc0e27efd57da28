"""The seen-cache: ids of messages already delivered, bounded in count and age."""

from __future__ import annotations

__all__ = ["SeenCache"]


class SeenCache:
    """Remembers ids for `ttl_ms` and at most `capacity` of them, oldest out first."""

    __slots__ = ("_capacity", "_ids", "_ttl_ms", "evicted")

    def __init__(self, capacity: int, ttl_ms: float) -> None:
        assert capacity > 0
        self._capacity = capacity
        self._ttl_ms = ttl_ms
        # A dict keeps insertion order, which is arrival order: the first key is the oldest.
        self._ids: dict[bytes, float] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id_: bytes) -> bool:
        return id_ in self._ids

    def add(self, id_: bytes, now_ms: float) -> bool:
        """Record `id_`; False if it was already there (a duplicate)."""
        if id_ in self._ids:
            return False
        self._ids[id_] = now_ms
        self._trim(now_ms)
        return True

    def _trim(self, now_ms: float) -> None:
        ids = self._ids
        while len(ids) > self._capacity:
            del ids[next(iter(ids))]
            self.evicted += 1
        cutoff = now_ms - self._ttl_ms
        while ids:
            oldest = next(iter(ids))
            if ids[oldest] >= cutoff:
                break
            del ids[oldest]
