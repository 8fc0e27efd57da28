"""Catch-up: when a node is behind, fetch finalized blocks from peers.

`CatchUp` is sans-IO: the driver tells it the heights peers work on
(`observe`, from the messages they send), hands it each response
(`received`), and polls it; it answers with `SyncRequest`s to send. The peer
answers with finalized blocks and their certificates (`serve`, from their
stored encodings), which the
driver feeds to the core as `DecidedBlock`s, in order. The core verifies
every certificate against the genesis validators before it commits anything.

Requests are pipelined: up to `window` ranges of `max_blocks` heights are
asked at once, consecutive from the node's height, spread over the peers
that have them, and the driver polls again as soon as it has applied a
response, so the next range is already on its way while a response is being
verified and stored. A response that arrives before the ones below it is
held (at most `window` requests and held responses together, so memory is
bounded) until the node reaches its first height; only solicited responses
are held, so a peer cannot fill the buffer with junk. A request unanswered
after `request_timeout_ms` is given up, and its range asked again, of any
peer that has it.

Before the first request a node must have been behind for `patience_ms`:
a peer one height ahead is normal for a moment, not a reason to fetch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Annotated

import msgspec
from msgspec import Meta

from sequencer.types import U64, Block, CommitCertificate, Height, Wire

__all__ = [
    "SYNC_BLOCKS_MAX",
    "SYNC_REQUEST_TIMEOUT_MS",
    "SYNC_WINDOW",
    "CatchUp",
    "RawSyncResponse",
    "SyncRequest",
    "SyncResponse",
    "serve",
]

# Blocks in one response: bounded so that a response is a bounded message.
SYNC_BLOCKS_MAX = 64
# Requests in flight plus responses held: enough to keep a peer busy while
# this node verifies and stores the previous response.
SYNC_WINDOW = 4
SYNC_REQUEST_TIMEOUT_MS = 1_000


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


class RawSyncResponse(Wire):
    """A `SyncResponse` put together from stored canonical encodings: it encodes
    to the very bytes the typed one would, without decoding and re-encoding
    each block (the serving node's largest cost)."""

    parent_certificate: msgspec.Raw | None
    blocks: list[tuple[msgspec.Raw, msgspec.Raw]]


class _Request(msgspec.Struct, frozen=True):
    peer: int
    max_blocks: int
    sent_ms: int


class CatchUp:
    """Tracks how far ahead peers are and decides what to ask, and whom."""

    __slots__ = (
        "_behind_since_ms",
        "_heights",
        "_held",
        "_in_flight",
        "_max_blocks",
        "_patience_ms",
        "_rng",
        "_timeout_ms",
        "_window",
        "requests",
        "timeouts",
    )

    def __init__(
        self,
        rng: random.Random,
        *,
        patience_ms: int,
        window: int = SYNC_WINDOW,
        request_timeout_ms: int = SYNC_REQUEST_TIMEOUT_MS,
        max_blocks: int = SYNC_BLOCKS_MAX,
    ) -> None:
        assert window >= 1
        assert 1 <= max_blocks <= SYNC_BLOCKS_MAX
        self._rng = rng
        self._patience_ms = patience_ms
        self._window = window
        self._timeout_ms = request_timeout_ms
        self._max_blocks = max_blocks
        self._heights: dict[int, int] = {}  # peer -> highest height it works on
        self._behind_since_ms: int | None = None
        self._in_flight: dict[int, _Request] = {}  # from_height -> request
        # first height -> (the peer that sent it, the response)
        self._held: dict[int, tuple[int, SyncResponse]] = {}
        self.requests = 0
        self.timeouts = 0

    def observe(self, peer: int, height: int) -> None:
        """A message shows `peer` working on `height` (so it has every block below)."""
        if height > self._heights.get(peer, 0):
            self._heights[peer] = height

    def forget(self, peer: int) -> None:
        """Drop what `peer` claimed (its blocks did not verify); it counts again
        once it shows a height anew."""
        self._heights.pop(peer, None)

    def busy(self, height: int) -> bool:
        """Is anything to fetch or to wait for, for a node working on `height`?"""
        return bool(self._in_flight or self._held) or any(
            h > height for h in self._heights.values()
        )

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def held(self) -> int:
        return len(self._held)

    def poll(self, height: int, now_ms: int) -> list[tuple[int, SyncRequest]]:
        """The (peer, request) pairs to send now, for a node working on `height`."""
        self._forget(height, now_ms)
        if not any(h > height for h in self._heights.values()):
            self._behind_since_ms = None
            return []
        if self._behind_since_ms is None:
            self._behind_since_ms = now_ms
        if now_ms - self._behind_since_ms < self._patience_ms:
            return []
        wanted: list[tuple[int, SyncRequest]] = []
        cursor = height
        while len(self._in_flight) + len(self._held) < self._window:
            cursor = self._uncovered(cursor)
            peer = self._choose(cursor)
            if peer is None:
                break
            self._in_flight[cursor] = _Request(peer, self._max_blocks, now_ms)
            self.requests += 1
            wanted.append((peer, SyncRequest(cursor, self._max_blocks)))
            cursor += self._max_blocks
        return wanted

    def received(self, peer: int, response: SyncResponse, height: int) -> SyncResponse | None:
        """A response from `peer`, for a node working on `height`: returned if it is
        to be applied now; held if it was asked for and comes early; else dropped."""
        if not response.blocks:
            return None
        first = response.blocks[0][0].header.height
        last = response.blocks[-1][0].header.height
        # What the response claims (its heights) is not noted: the host notes
        # what verified (`observe`), or forgets the peer (`forget`).
        request = self._in_flight.get(first)
        solicited = request is not None and request.peer == peer
        if solicited:
            del self._in_flight[first]
        if last < height:
            return None  # nothing we lack
        if first <= height:
            return response
        if solicited:
            self._held[first] = (peer, response)
        return None

    def next_ready(self, height: int) -> tuple[int, SyncResponse] | None:
        """A held response that the node, now working on `height`, can apply,
        with the peer that sent it (which a response that does not verify
        costs its claims)."""
        for first in sorted(self._held):
            _peer, response = self._held[first]
            if response.blocks[-1][0].header.height < height:
                del self._held[first]  # overtaken
            elif first <= height:
                return self._held.pop(first)
            else:
                break
        return None

    def _forget(self, height: int, now_ms: int) -> None:
        """Drop requests answered by now (by any response) or timed out, and
        held responses overtaken."""
        for first, request in list(self._in_flight.items()):
            if first + request.max_blocks <= height:
                del self._in_flight[first]
            elif now_ms - request.sent_ms >= self._timeout_ms:
                del self._in_flight[first]
                self.timeouts += 1
        for first, (_peer, response) in list(self._held.items()):
            if response.blocks[-1][0].header.height < height:
                del self._held[first]

    def _choose(self, first: int) -> int | None:
        """A random peer ahead of `first`. Not the one that claims the most: a
        byzantine validator can claim any height, and spreading requests
        spreads the serving work; a short answer is followed up at once."""
        ahead = sorted(peer for peer, h in self._heights.items() if h > first)
        return self._rng.choice(ahead) if ahead else None

    def _uncovered(self, cursor: int) -> int:
        """The first height from `cursor` on that no request in flight or held
        response covers."""
        ranges = [(first, first + r.max_blocks - 1) for first, r in self._in_flight.items()]
        ranges += [(first, r.blocks[-1][0].header.height) for first, (_, r) in self._held.items()]
        for first, last in sorted(ranges):
            if first <= cursor <= last:
                cursor = last + 1
        return cursor


def serve(
    request: SyncRequest,
    tip_height: int,
    finalized_encoded: Callable[[int, int], Iterable[tuple[bytes, bytes]]],
    certificate_encoded: Callable[[int], bytes | None],
    bytes_max: int,
) -> RawSyncResponse | None:
    """The answer of a node whose chain ends at `tip_height` (None: nothing to
    give): up to `max_blocks` finalized blocks from `request.from_height`, at
    least one and no more than `bytes_max` of encodings after it, straight
    from their stored encodings (nothing decoded, nothing re-encoded), and the
    certificate of the height below the first (the one it links to)."""
    if request.from_height > tip_height:
        return None
    last = min(tip_height, request.from_height + min(request.max_blocks, SYNC_BLOCKS_MAX) - 1)
    blocks: list[tuple[msgspec.Raw, msgspec.Raw]] = []
    size = 0
    for block, certificate in finalized_encoded(request.from_height, last):
        size += len(block) + len(certificate)
        if blocks and size > bytes_max:
            break
        blocks.append((msgspec.Raw(block), msgspec.Raw(certificate)))
    parent = None
    if request.from_height > 1:
        raw = certificate_encoded(request.from_height - 1)
        assert raw is not None, "a stored block has a stored certificate below it"
        parent = msgspec.Raw(raw)
    return RawSyncResponse(parent, blocks)
