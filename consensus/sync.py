"""Catch-up: when a node is behind, fetch finalized blocks from a peer (DESIGN 4).

`CatchUp` is sans-IO: the driver tells it the heights peers work on
(`observe`, from the messages they send) and polls it on a timer; it answers
with a `SyncRequest` for one peer when this node has been behind for a while
(a peer one height ahead is normal for a moment, not a reason to fetch). The
peer answers with finalized blocks and their certificates (`serve`), which
the driver feeds to the core as `DecidedBlock`s, in order. The core verifies
every certificate against the genesis validators before it commits anything.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Annotated

from msgspec import Meta

from sequencer.types import U64, Block, CommitCertificate, Height, Wire

__all__ = ["SYNC_BLOCKS_MAX", "CatchUp", "SyncRequest", "SyncResponse", "serve"]

# Blocks in one response: bounded so that a response is a bounded message.
SYNC_BLOCKS_MAX = 64


class SyncRequest(Wire):
    """`nonce` makes each request a message of its own. Gossip drops a message
    whose content it has seen in the last `seen_ttl_ms` (direct ones too), so
    without it a repeated request for the same height (a node stuck there,
    retrying; or restarted at a height it, or any node, asked for before) is
    dropped by every peer that saw it, and catch-up stalls for minutes.
    The driver fills it in; the pure `CatchUp` leaves it 0."""

    from_height: Height
    max_blocks: Annotated[int, Meta(ge=1, le=SYNC_BLOCKS_MAX)]
    nonce: U64 = 0


class SyncResponse(Wire):
    """Blocks from `from_height` on, each with the certificate the peer stores.

    `parent_certificate` is the peer's certificate of `from_height - 1`: the
    first block's `last_commit_id` names it, and it may not be the one the
    requester assembled itself.
    """

    parent_certificate: CommitCertificate | None
    blocks: Annotated[list[tuple[Block, CommitCertificate]], Meta(max_length=SYNC_BLOCKS_MAX)]


class CatchUp:
    """Tracks how far ahead peers are and decides when, and whom, to ask."""

    __slots__ = ("_behind_since_ms", "_heights", "_patience_ms", "_rng", "requests")

    def __init__(self, rng: random.Random, *, patience_ms: int) -> None:
        self._rng = rng
        self._patience_ms = patience_ms
        self._heights: dict[int, int] = {}  # peer -> highest height it works on
        self._behind_since_ms: int | None = None
        self.requests = 0

    def observe(self, peer: int, height: int) -> None:
        """A message shows `peer` working on `height` (so it has every block below)."""
        if height > self._heights.get(peer, 0):
            self._heights[peer] = height

    def poll(
        self, height: int, now_ms: int, *, max_blocks: int = SYNC_BLOCKS_MAX
    ) -> tuple[int, SyncRequest] | None:
        """(peer, request) if this node, working on `height`, should fetch blocks now."""
        ahead = sorted(peer for peer, h in self._heights.items() if h > height)
        if not ahead:
            self._behind_since_ms = None
            return None
        if self._behind_since_ms is None:
            self._behind_since_ms = now_ms
            return None
        if now_ms - self._behind_since_ms < self._patience_ms:
            return None
        self._behind_since_ms = now_ms  # space further requests by the patience too
        self.requests += 1
        return self._rng.choice(ahead), SyncRequest(height, max_blocks)


def serve(
    request: SyncRequest,
    tip_height: int,
    block_at: Callable[[int], tuple[Block, CommitCertificate]],
) -> SyncResponse | None:
    """The answer of a node whose chain ends at `tip_height` (None: nothing to give)."""
    if request.from_height > tip_height:
        return None
    last = min(tip_height, request.from_height + min(request.max_blocks, SYNC_BLOCKS_MAX) - 1)
    blocks = [block_at(h) for h in range(request.from_height, last + 1)]
    parent = block_at(request.from_height - 1)[1] if request.from_height > 1 else None
    return SyncResponse(parent, blocks)
