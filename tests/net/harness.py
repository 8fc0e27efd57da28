"""Gossip cores wired together in memory, with a seeded lossy network and a
virtual clock: the no-socket tier of the network tests."""

from __future__ import annotations

import heapq
import random
from collections import defaultdict

from net.config import GossipConfig
from net.gossip import Delivery, Gossip, PeerAddress
from sequencer.crypto import PrivateKey


def node_keys(count: int) -> list[PrivateKey]:
    return [PrivateKey(bytes([index + 1]) * 32) for index in range(count)]


def address(index: int) -> tuple[str, int]:
    return ("127.0.0.1", 20_000 + index)


class Network:
    """`count` gossip cores; datagrams cross a network that drops a fraction
    `loss` and delays each by up to `jitter_ms` (reordering them)."""

    def __init__(
        self,
        count: int,
        *,
        loss: float = 0.0,
        jitter_ms: float = 0.0,
        seed: int = 0,
        config: GossipConfig | None = None,
    ) -> None:
        self.config = config or GossipConfig()
        self.keys = node_keys(count)
        self.now_ms = 0.0
        self.loss = loss
        self.jitter_ms = jitter_ms
        self.rng = random.Random(seed)
        entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(self.keys)]
        self.nodes = [
            Gossip(k.seed, k.public_key, entries, self.config, session=1, now_ms=0.0)
            for k in self.keys
        ]
        self.by_address = {address(i): node for i, node in enumerate(self.nodes)}
        self.in_transit: list[tuple[float, int, tuple[str, int], bytes, tuple[str, int]]] = []
        self.sequence = 0
        self.delivered: dict[int, list[Delivery]] = defaultdict(list)
        self.blocked: set[tuple[int, int]] = set()  # (from, to) links that drop everything
        self.wire: list[tuple[int, bytes]] = []  # every datagram sent, by sender index

    def index_of(self, node: Gossip) -> int:
        return self.nodes.index(node)

    def flush(self) -> None:
        for index, node in enumerate(self.nodes):
            for datagram, destination, _key in node.datagrams_to_send(self.now_ms):
                self.wire.append((index, datagram))
                target = int(destination[1]) - 20_000
                if (index, target) in self.blocked or self.rng.random() < self.loss:
                    continue
                arrive = self.now_ms + self.rng.uniform(0.05, 0.05 + self.jitter_ms)
                self.sequence += 1
                heapq.heappush(
                    self.in_transit,
                    (arrive, self.sequence, destination, datagram, address(index)),
                )

    def step(self) -> bool:
        """Advance to the next event; False when nothing is left to do."""
        self.flush()
        next_timer = min(node.get_timer() for node in self.nodes)
        next_arrival = self.in_transit[0][0] if self.in_transit else float("inf")
        self.now_ms = max(self.now_ms, min(next_timer, next_arrival))
        while self.in_transit and self.in_transit[0][0] <= self.now_ms:
            _at, _seq, destination, datagram, source = heapq.heappop(self.in_transit)
            node = self.by_address[destination]
            node.receive_datagram(datagram, source, self.now_ms)
        for index, node in enumerate(self.nodes):
            node.handle_timer(self.now_ms)
            self.delivered[index].extend(node.deliveries())
        return True

    def run_for(self, duration_ms: float) -> None:
        end = self.now_ms + duration_ms
        while self.now_ms < end:
            self.step()

    def inject(self, target: int, datagram: bytes, source: tuple[str, int]) -> None:
        self.nodes[target].receive_datagram(datagram, source, self.now_ms)
        self.delivered[target].extend(self.nodes[target].deliveries())
