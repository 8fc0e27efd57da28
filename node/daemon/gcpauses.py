"""How long the cyclic garbage collector stops the node, per collection.

A collection of the oldest generation walks every live container object,
and the event loop (consensus, gossip, every RPC answer) waits for it. Its
cost grows with what the node holds, so a pause that is invisible on a
fresh node can become the tail of finality latency on a long-running one:
`sequencer_gc_pause_seconds` makes it visible. The timing is two clock
reads per collection (Python calls `gc.callbacks` at its start and end).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["GcPauses"]


class GcPauses:
    """While entered, `observe(generation, seconds)` is called after each collection."""

    def __init__(
        self,
        observe: Callable[[int, float], None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._observe = observe
        self._clock = clock
        self._started: float | None = None

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
        elif self._started is not None:
            # A collection already under way when we were entered has no start.
            self._observe(info["generation"], self._clock() - self._started)
            self._started = None
