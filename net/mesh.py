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

import blake3

__all__ = ["build_mesh"]


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
