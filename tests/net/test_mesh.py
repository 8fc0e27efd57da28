"""The gossip mesh: a symmetric, loop-free, degree-bounded, connected graph
that every node computes alike from the same peer list."""

from __future__ import annotations

import functools
import random
from collections import deque

import pytest

from net.mesh import build_mesh
from tests.net.harness import node_keys

SIZES = [2, 3, 5, 9, 10, 16, 50, 128]
DEGREES = [8, 4]


@functools.cache
def tags(n: int) -> tuple[bytes, ...]:
    return tuple(key.public_key[:8] for key in node_keys(n))


def reachable(mesh: dict[bytes, frozenset[bytes]], start: bytes, removed: bytes | None) -> set:
    found = {start}
    queue = deque([start])
    while queue:
        for other in mesh[queue.popleft()]:
            if other != removed and other not in found:
                found.add(other)
                queue.append(other)
    return found


CASES = [(n, degree) for degree in DEGREES for n in SIZES]
IDS = [f"n{n}-degree{degree}" for n, degree in CASES]


@pytest.mark.parametrize(("n", "degree"), CASES, ids=IDS)
def test_mesh_shape(n: int, degree: int) -> None:
    nodes = list(tags(n))
    mesh = build_mesh(nodes, degree)
    assert set(mesh) == set(nodes)
    for node, neighbours in mesh.items():
        assert node not in neighbours
        assert neighbours <= set(nodes)
        assert all(node in mesh[other] for other in neighbours)
        assert len(neighbours) <= degree
        assert len(neighbours) >= min(2, n - 1)
    assert reachable(mesh, nodes[0], None) == set(nodes)
    if n <= degree + 1:
        assert all(len(neighbours) == n - 1 for neighbours in mesh.values())


@pytest.mark.parametrize(("n", "degree"), CASES, ids=IDS)
def test_every_node_computes_the_same_mesh(n: int, degree: int) -> None:
    nodes = list(tags(n))
    mesh = build_mesh(nodes, degree)
    assert build_mesh(nodes, degree) == mesh
    for seed in range(3):
        shuffled = nodes[:]
        random.Random(seed).shuffle(shuffled)
        assert build_mesh(shuffled, degree) == mesh


def test_the_mesh_depends_on_the_node_set() -> None:
    nodes = list(tags(51))
    assert build_mesh(nodes[:50], 8) != build_mesh(nodes[1:], 8)


def test_connected_after_losing_any_one_node() -> None:
    nodes = list(tags(16))
    mesh = build_mesh(nodes, 8)
    for removed in nodes:
        rest = [node for node in nodes if node != removed]
        assert reachable(mesh, rest[0], removed) == set(rest), removed.hex()


def test_large_mesh_uses_its_degree() -> None:
    # Four random cycles over 128 nodes seldom share an edge.
    degrees = [len(n) for n in build_mesh(list(tags(128)), 8).values()]
    assert sum(degrees) / len(degrees) > 7.5


def test_duplicate_tags_are_refused() -> None:
    nodes = list(tags(3))
    with pytest.raises(AssertionError, match="duplicate"):
        build_mesh([*nodes, nodes[0]], 8)
