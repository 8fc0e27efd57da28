"""RFC 6962 Merkle trees with BLAKE3.

    empty tree   blake3(b"")
    leaf         blake3(0x00 || item)
    node         blake3(0x01 || left || right)

RFC 6962 splits n items at the largest power of two below n. Building level
by level and carrying an unpaired last node up unchanged gives the same tree,
which lets `MerkleTree` keep every level and answer each audit path in
O(log n) without rehashing (a block's namespace view asks for many).
Verification is the algorithm of RFC 9162 section 2.1.3.2.
"""

from __future__ import annotations

from collections.abc import Sequence

from blake3 import blake3

from sequencer.types import InclusionProof

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "verify_inclusion",
]

EMPTY_ROOT = blake3(b"").digest()


def leaf_hash(item: bytes) -> bytes:
    return blake3(b"\x00" + item).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return blake3(b"\x01" + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def merkle_root(items: Sequence[bytes]) -> bytes:
    if not items:
        return EMPTY_ROOT
    level = [leaf_hash(item) for item in items]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


class MerkleTree:
    """All levels of the tree over `items`, for the root and audit paths."""

    def __init__(self, items: Sequence[bytes]) -> None:
        self.size = len(items)
        self._levels = [[leaf_hash(item) for item in items]]
        while len(self._levels[-1]) > 1:
            self._levels.append(_next_level(self._levels[-1]))

    @property
    def root(self) -> bytes:
        return self._levels[-1][0] if self.size else EMPTY_ROOT

    def proof(self, index: int) -> InclusionProof:
        """The audit path of item `index`, leaf level first."""
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} outside a tree of {self.size} items")
        path = []
        position = index
        for level in self._levels[:-1]:
            sibling = position ^ 1
            if sibling < len(level):  # an unpaired last node has no sibling here
                path.append(level[sibling])
            position //= 2
        return InclusionProof(index=index, size=self.size, path=path)


def verify_inclusion(item: bytes, proof: InclusionProof, root: bytes) -> bool:
    """True iff `proof` shows `item` at `proof.index` in the tree with `root`.

    Never raises on hostile input: any inconsistency is simply False.
    """
    if not 0 <= proof.index < proof.size:
        return False
    fn, sn = proof.index, proof.size - 1
    node = leaf_hash(item)
    for sibling in proof.path:
        if sn == 0 or len(sibling) != 32:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while fn and not fn & 1:  # skip levels where this node was carried up
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root
