"""The signing state written off the event loop, and what waits for it.

A validator must have its signing state (the last height, round and step it
signed at) on disk before a signature made under it leaves the node, or a
crash and restart could make it sign twice. Written on the event loop's
thread, each of those synced writes (two or more per height) stopped the
whole node, consensus and RPC alike, for the length of an fsync, a quarter of
its time at 1,000 tx/s, and longer while LevelDB compacted.

Here the consensus host's `save_signing_state` only hands the state over; a
task writes it on a worker thread, and every consensus message the host
broadcasts is held until each state handed over before it is durable. The
order the host relies on (durable, then sent) is kept; the loop keeps
running while the disk works. States handed over while a write is under way
are coalesced: only the newest is written, since each replaces the last and
a held message waits for the newest anyway.

A failed write fails the node: the held messages are dropped, never sent.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import trio

from sequencer.types import SigningState
from storage.errors import StorageError

__all__ = ["HELD_MAX", "SigningStateWriter"]

# Messages held for one write: a step broadcasts a few; a rebroadcast every
# second adds some. Past this the oldest is dropped (rebroadcast repairs it).
HELD_MAX = 1_024


class SigningStateWriter:
    """Writes handed-over signing states in order; runs sends once durable."""

    def __init__(
        self,
        save: Callable[[SigningState], None],
        on_written: Callable[[float], None] = lambda seconds: None,
        on_failure: Callable[[SigningState, StorageError], None] = lambda state, error: None,
        held_max: int = HELD_MAX,
    ) -> None:
        """`save` writes a state durably (it runs on a worker thread);
        `on_written` gets each write's duration; `on_failure` the state whose
        write failed and the error, after which nothing held is sent."""
        self._save = save
        self._on_written = on_written
        self._on_failure = on_failure
        self._held_max = held_max
        self._newest: SigningState | None = None
        self._handed = 0  # states handed over
        self._durable = 0  # of which this many are on disk (or superseded by one that is)
        self._held: collections.deque[tuple[int, Callable[[], None]]] = collections.deque()
        self._wake = trio.Event()
        self.failed = False
        self.dropped = 0  # held sends dropped for room

    @property
    def pending(self) -> bool:
        """A state is handed over and not yet durable."""
        return self._durable < self._handed

    @property
    def held(self) -> int:
        return len(self._held)

    def save(self, state: SigningState) -> None:
        """Hand a state over (the host's chain port): it is written soon."""
        if self.failed:
            return
        self._newest = state
        self._handed += 1
        self._wake.set()

    def when_durable(self, send: Callable[[], None]) -> None:
        """Call `send` now if every state handed over is durable, else once it is."""
        if self.failed:
            return
        if not self.pending:
            send()
            return
        if len(self._held) >= self._held_max:
            self._held.popleft()
            self.dropped += 1
        self._held.append((self._handed, send))

    async def run(self) -> None:
        while not self.failed:
            await self._wake.wait()
            self._wake = trio.Event()
            state, handed = self._newest, self._handed
            if state is None:
                continue
            self._newest = None
            started = time.perf_counter()
            try:
                # Not abandoned on cancellation: a write under way finishes.
                await trio.to_thread.run_sync(self._save, state)
            except StorageError as error:
                self.failed = True
                self._held.clear()
                self._on_failure(state, error)
                return
            self._on_written(time.perf_counter() - started)
            self._durable = handed
            while self._held and self._held[0][0] <= handed:
                self._held.popleft()[1]()
