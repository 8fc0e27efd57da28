"""The gossip mesh and the choice of peers a message is forwarded to.

The mesh is the union of `degree // 2` Hamiltonian cycles over all nodes,
each a permutation drawn from a `random.Random` seeded with the sorted node
tags. Every node computes the same graph from the same peer list, with no
negotiation; it is connected by construction (one cycle already is), every
node has at most `degree` neighbours, and a network of at most `degree + 1`
nodes is a complete graph.

Forwarding floods the mesh, minus the peers that already have the message
from someone upstream. A node that receives a message first from `sender`
skips, besides those two, each mesh neighbour of the origin or of the sender
that reports hearing from that node (liveness reports in `Ping`/`Pong`):
whoever holds a message forwards it to all its mesh neighbours except the
ones its own upstream already covers, so for every node Y some holder along
the path - the first one with Y as a neighbour - sends it to Y. Over reliable
links (`net.link`) every node reachable in the mesh gets each message, and in
a complete mesh it gets exactly one copy, from the origin.
"""

from __future__ import annotations

import random
from collections.abc import Container, Mapping

import blake3

from net.peer import Peer
from net.wire import DIRECT_TOPICS, Topic

__all__ = ["RelayRoutes", "build_mesh", "refused_origin"]


def build_mesh(tags: list[bytes], degree: int) -> dict[bytes, frozenset[bytes]]:
    """Neighbours of each node; `tags` are all nodes' sender tags, ours included."""
    nodes = sorted(set(tags))
    assert len(nodes) == len(tags), "duplicate node tags"
    assert degree >= 2
    neighbours: dict[bytes, set[bytes]] = {tag: set() for tag in nodes}
    if len(nodes) <= degree + 1:
        for tag in nodes:
            neighbours[tag].update(other for other in nodes if other != tag)
    else:
        rng = random.Random(blake3.blake3(b"".join(nodes)).digest())
        for _ in range(degree // 2):
            cycle = nodes[:]
            rng.shuffle(cycle)
            for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
                neighbours[a].add(b)
                neighbours[b].add(a)
    return {tag: frozenset(peers) for tag, peers in neighbours.items()}


class RelayRoutes:
    """The peers a message goes on to, by (origin, sender), cached until a
    peer's liveness reports change (`forget`)."""

    def __init__(self, own: bytes, peers: Mapping[bytes, Peer], degree: int) -> None:
        self._peers = peers  # the core's own table, by sender tag: not copied
        self._mesh = build_mesh([own, *peers], degree)
        self._neighbours = sorted(self._mesh[own])
        self._routes: dict[tuple[bytes, bytes], list[Peer]] = {}

    def neighbours(self) -> list[Peer]:
        """Where a message we publish goes: every mesh neighbour."""
        return [self._peers[tag] for tag in self._neighbours]

    def forget(self) -> None:
        self._routes.clear()

    def targets(self, origin: bytes, sender: bytes, now_ms: float) -> list[Peer]:
        """Our mesh neighbours minus those the origin and the sender reach."""
        route = self._routes.get((origin, sender))
        if route is not None:
            return route
        covered = {origin, sender}
        for upstream in (origin, sender):
            reporter = self._peers.get(upstream)
            if reporter is None:
                continue  # no reports from it: assume it covers nobody
            for tag in self._mesh.get(upstream, ()):
                peer = self._peers.get(tag)
                # Covered only if the link works both ways, as both ends say:
                # the upstream sends data only to peers it hears from.
                if (
                    peer is not None
                    and peer.reports_hearing(upstream, now_ms)
                    and reporter.reports_hearing(tag, now_ms)
                ):
                    covered.add(tag)
        route = [self._peers[tag] for tag in self._neighbours if tag not in covered]
        self._routes[(origin, sender)] = route
        return route


def refused_origin(
    own: bytes, known: Container[bytes], sender: bytes, topic: Topic, origin: bytes, relay: bool
) -> str | None:
    """Why a message may not come this way from `sender`, or None. A peer
    speaks for itself, or relays what a configured node published: nothing
    else is delivered or relayed on (a byzantine peer must not make us
    forward junk under invented origins)."""
    if not relay:
        return None if origin == sender else "forged_origin"
    if topic in DIRECT_TOPICS:
        return "not_relayable"
    if origin == own:
        return "own_origin"  # ours, come back: we published it
    if origin not in known:
        return "unknown_origin"
    return None
