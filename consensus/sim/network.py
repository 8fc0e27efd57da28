"""The simulated network: per-link loss, duplication, latency (which reorders),
partitions and one-way cuts, and each node's seen-cache.

The seen-cache is the node's gossip behaviour that matters to consensus: a
node drops a message whose bytes it delivered within `SEEN_TTL_MS`, so a
re-sent copy of a message its core once dropped (too early, say) does not
come back for minutes. A crash empties it. Catch-up messages carry a nonce
or are fresh objects, so only consensus messages are deduplicated.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from consensus.messages import ProposalMessage
from sequencer.types import Vote

__all__ = ["SEEN_TTL_MS", "Links", "Network"]

SEEN_TTL_MS = 120_000  # the node's gossip default
SEEN_PRUNE_AT = 50_000


class Links:
    """What goes wrong on the links right now (changed by the fault plan)."""

    __slots__ = ("blocked", "duplicate", "latency_ms", "loss", "spike", "spike_ms")

    def __init__(self) -> None:
        self.loss = 0.0
        self.duplicate = 0.0
        self.latency_ms = (1, 5)
        self.spike = 0.0  # the chance of a latency spike ...
        self.spike_ms = 0  # ... of up to this much
        self.blocked: set[tuple[int, int]] = set()  # (source, destination) cut


def message_key(message: object) -> object | None:
    """What the seen-cache knows a consensus message by (None: not deduplicated).

    A vote is its own key; a proposal carries a block (unhashable lists), so
    it is known by its signature and the object (re-sends re-use the object,
    which the cache holds, so the identity stays unique)."""
    if isinstance(message, Vote):
        return message
    if isinstance(message, ProposalMessage):
        return (message.proposal.signature, id(message))
    return None


class _Bundle:
    __slots__ = ("messages",)

    def __init__(self, messages: list[object]) -> None:
        self.messages = messages


class Network:
    """Links between `size` nodes; `receivers[i](source, message)` delivers to node i."""

    def __init__(self, queue: Any, rng: random.Random, size: int) -> None:
        self._queue = queue
        self._rng = rng
        self.size = size
        self.links = Links()
        self.receivers: list[Callable[[int, Any], None]] = []
        self._seen: list[dict[object, tuple[int, object]]] = [{} for _ in range(size)]
        # key -> (epoch, oldest sighting): every node had it then (a crash starts
        # a new epoch). Spares a lookup per destination on every re-send.
        self._everywhere: dict[object, tuple[int, int]] = {}
        self._epoch = 0
        self.sent = 0
        self.dropped = 0
        self.deduplicated = 0

    def partition(self, links: Iterable[tuple[int, int]]) -> None:
        self.links.blocked = set(links)

    def forget(self, node: int) -> None:
        """A crash: the node's seen-cache is gone (and with it every "everywhere")."""
        self._seen[node] = {}
        self._epoch += 1

    def send(self, source: int, destination: int, message: object) -> None:
        key = message_key(message)
        if key is not None and self._has(destination, key):
            self.deduplicated += 1
            return
        self._send(source, destination, message, key)

    def broadcast(self, source: int, message: object) -> None:
        """To every other node. Like gossip's publish, the sender notes the
        message as seen, so copies relayed back to it are dropped."""
        key = message_key(message)
        if key is None:
            for destination in range(self.size):
                if destination != source:
                    self._send(source, destination, message, None)
            return
        now = self._queue.now_ms
        full = self._everywhere.get(key)
        if full is not None and full[0] == self._epoch and now - full[1] < SEEN_TTL_MS:
            self.deduplicated += self.size - 1
            return  # every node has it: the usual fate of a re-sent vote
        if not self._has(source, key):
            self._note(source, key, message)
        oldest: int | None = now
        for destination in range(self.size):
            if destination == source:
                continue
            entry = self._seen[destination].get(key)
            if entry is not None and now - entry[0] < SEEN_TTL_MS:
                self.deduplicated += 1
                if oldest is not None:
                    oldest = min(oldest, entry[0])
                continue
            oldest = None  # this copy flies: not everywhere yet
            self._send(source, destination, message, key)
        if oldest is not None:
            self._everywhere[key] = (self._epoch, min(oldest, self._seen[source][key][0]))

    def broadcast_fresh(self, source: int, messages: list[object]) -> None:
        """Messages in one fresh envelope (a vote bundle): the seen-caches
        neither drop them nor learn them, as gossip treats the bundle's
        inner votes. Lost, duplicated and delayed as one message."""
        for destination in range(self.size):
            if destination != source:
                self._send(source, destination, _Bundle(messages), None)

    def _has(self, node: int, key: object) -> bool:
        entry = self._seen[node].get(key)
        return entry is not None and self._queue.now_ms - entry[0] < SEEN_TTL_MS

    def _note(self, node: int, key: object, message: object) -> None:
        seen = self._seen[node]
        now = self._queue.now_ms
        seen[key] = (now, message)
        if len(seen) > SEEN_PRUNE_AT:
            self._seen[node] = {k: e for k, e in seen.items() if now - e[0] < SEEN_TTL_MS}
            if len(self._everywhere) > SEEN_PRUNE_AT:
                self._everywhere = {}

    def _send(self, source: int, destination: int, message: object, key: object) -> None:
        self.sent += 1
        links = self.links
        rng = self._rng
        if links.blocked and (source, destination) in links.blocked:
            self.dropped += 1
            return
        if links.loss and rng.random() < links.loss:
            self.dropped += 1
            return
        copies = 2 if links.duplicate and rng.random() < links.duplicate else 1
        low, high = links.latency_ms
        for _ in range(copies):
            delay = low + int(rng.random() * (high - low + 1))
            if links.spike and rng.random() < links.spike:
                delay += int(rng.random() * links.spike_ms)
            self._queue.after(delay, self._deliver, (source, destination, message, key))

    def _deliver(self, packet: tuple[int, int, object, object]) -> None:
        source, destination, message, key = packet
        if isinstance(message, _Bundle):
            for inner in message.messages:
                self.receivers[destination](source, inner)
            return
        if key is not None:
            if self._has(destination, key):
                self.deduplicated += 1
                return
            self._note(destination, key, message)
        self.receivers[destination](source, message)
