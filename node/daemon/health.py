"""Whether the node's storage still works: once a write fails, the node is
failed until it is restarted.

A validator must not act on state it could not persist: a vote whose signing
state is not on disk could be signed differently after a restart (an
equivocation), a block it could not commit leaves its store behind its
votes, and a transaction it could not journal would be lost by a crash after
its 202. So the first `StorageError` on a write path (signing state, block
commit, mempool journal, batch record) fails the node for good:

- consensus stops at once: the vote or proposal that depended on the failed
  write is never sent, and no later input steps the core (no votes,
  proposals, rebroadcasts or commits);
- `/health` and `/ready` answer 503 `storage_failed`, new transactions 503
  `storage_failed`; `/status` carries `storage_failed` (the message) and the
  metric `sequencer_storage_failed` is 1;
- the failure is logged once, at ERROR.

The process stays up, so operators and Prometheus see why it stopped;
restarting it (once the disk is fixed) recovers from what is on disk.

Why not retry: a failed write or fsync says nothing reliable about what
reached the disk (on Linux a failed fsync may drop the dirty pages and report
success next time), and LevelDB itself refuses every later write once a log
write or sync has failed (its "background error" is sticky until the
database is reopened). A journal failure alone fails the node too, for the
same reason: the next write would fail anyway, and a node that keeps voting
while it cannot journal would acknowledge nothing and could lose state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from storage.errors import StorageError

__all__ = ["StorageHealth"]

log = logging.getLogger("sequencer.node")


class StorageHealth:
    """The node's one storage-failure flag, shared by the subsystems that write."""

    __slots__ = ("_on_failed", "failure")

    def __init__(self) -> None:
        self.failure: str | None = None  # what failed, for /health and /status
        self._on_failed: list[Callable[[], None]] = []

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def on_failed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the storage fails."""
        self._on_failed.append(callback)

    def fail(self, what: str, error: StorageError) -> None:
        """Record that `what` (e.g. "persisting the signing state") failed; first one wins."""
        if self.failure is not None:
            return
        self.failure = f"{what} failed: {error}"
        log.error(
            "storage failed: %s; this node no longer votes, proposes or accepts transactions; "
            "fix the disk and restart it",
            self.failure,
        )
        for callback in self._on_failed:
            callback()
