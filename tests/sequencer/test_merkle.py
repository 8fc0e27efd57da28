"""Merkle trees: fixed vectors, agreement with RFC 6962's recursive definition,
every audit path verifies, and a wrong leaf, index or path never does."""

from __future__ import annotations

import pytest
from blake3 import blake3
from hypothesis import assume, given
from hypothesis import strategies as st

from sequencer.merkle import EMPTY_ROOT, MerkleTree, merkle_root, verify_inclusion
from sequencer.types import InclusionProof


def H(data: bytes) -> bytes:
    return blake3(data).digest()


def reference_root(items: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, literally: split at the largest power of two < n."""
    if not items:
        return H(b"")
    if len(items) == 1:
        return H(b"\x00" + items[0])
    k = 1 << ((len(items) - 1).bit_length() - 1)
    return H(b"\x01" + reference_root(items[:k]) + reference_root(items[k:]))


def reference_path(index: int, items: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n])."""
    if len(items) <= 1:
        return []
    k = 1 << ((len(items) - 1).bit_length() - 1)
    if index < k:
        return [*reference_path(index, items[:k]), reference_root(items[k:])]
    return [*reference_path(index - k, items[k:]), reference_root(items[:k])]


def items_of(n: int, salt: bytes = b"") -> list[bytes]:
    return [salt + i.to_bytes(4, "big") for i in range(n)]


def test_fixed_vectors() -> None:
    a, b, c = b"a", b"b", b"c"
    la, lb, lc = H(b"\x00a"), H(b"\x00b"), H(b"\x00c")
    assert EMPTY_ROOT.hex() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert merkle_root([]) == H(b"")
    assert merkle_root([a]) == la
    assert merkle_root([a, b]) == H(b"\x01" + la + lb)
    assert merkle_root([a, b, c]) == H(b"\x01" + H(b"\x01" + la + lb) + lc)
    tree = MerkleTree([a, b, c])
    assert tree.proof(2).path == [H(b"\x01" + la + lb)]
    assert tree.proof(0).path == [lb, lc]


def test_pinned_root_of_ten_tx_ids() -> None:
    # Pinned once from this implementation and cross-checked by reference_root;
    # wallets can use it to test their own verifier.
    ids = [H(i.to_bytes(1, "big")) for i in range(10)]
    assert merkle_root(ids) == reference_root(ids)
    assert merkle_root(ids).hex() == PINNED_ROOT_OF_TEN


PINNED_ROOT_OF_TEN = "65fb92e89e94cd113da61c7a2a6a8db530aa5b044df5083057a598085e80e32d"


@pytest.mark.parametrize("n", range(201))
def test_every_audit_path_verifies(n: int) -> None:
    items = items_of(n, salt=b"x")
    tree = MerkleTree(items)
    assert tree.root == merkle_root(items) == reference_root(items)
    for index in range(n):
        proof = tree.proof(index)
        assert proof.path == reference_path(index, items)
        assert verify_inclusion(items[index], proof, tree.root)


def test_proof_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        MerkleTree(items_of(3)).proof(3)
    with pytest.raises(IndexError):
        MerkleTree([]).proof(0)


trees = st.integers(1, 200).flatmap(
    lambda n: st.tuples(st.just(items_of(n)), st.integers(0, n - 1))
)


@given(trees, st.binary(max_size=8))
def test_wrong_leaf_never_verifies(tree_and_index: tuple[list[bytes], int], other: bytes) -> None:
    items, index = tree_and_index
    assume(other != items[index])
    tree = MerkleTree(items)
    assert not verify_inclusion(other, tree.proof(index), tree.root)


@given(trees, st.data())
def test_wrong_index_never_verifies(
    tree_and_index: tuple[list[bytes], int], data: st.DataObject
) -> None:
    items, index = tree_and_index
    tree = MerkleTree(items)
    proof = tree.proof(index)
    wrong = data.draw(st.integers(0, 2**64 - 1).filter(lambda i: i != index))
    moved = InclusionProof(wrong, proof.size, proof.path)
    assert not verify_inclusion(items[index], moved, tree.root)


@given(trees, st.data())
def test_wrong_path_never_verifies(
    tree_and_index: tuple[list[bytes], int], data: st.DataObject
) -> None:
    items, index = tree_and_index
    tree = MerkleTree(items)
    path = list(tree.proof(index).path)
    action = data.draw(st.sampled_from(["flip", "drop", "add", "swap", "replace"]))
    if action == "flip":
        assume(path)
        i = data.draw(st.integers(0, len(path) - 1))
        bit = data.draw(st.integers(0, 255))
        path[i] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(path[i]))
    elif action == "drop":
        assume(path)
        del path[data.draw(st.integers(0, len(path) - 1))]
    elif action == "add":
        extra = data.draw(st.binary(min_size=32, max_size=32))
        path.insert(data.draw(st.integers(0, len(path))), extra)
    elif action == "swap":
        assume(len(path) >= 2 and len(set(path)) == len(path))
        positions = st.lists(st.integers(0, len(path) - 1), min_size=2, max_size=2, unique=True)
        i, j = data.draw(positions)
        path[i], path[j] = path[j], path[i]
    else:
        assume(path)
        i = data.draw(st.integers(0, len(path) - 1))
        replacement = data.draw(st.binary(min_size=32, max_size=32))
        assume(replacement != path[i])
        path[i] = replacement
    proof = InclusionProof(index, len(items), path)
    assert not verify_inclusion(items[index], proof, tree.root)


@given(
    st.binary(max_size=40),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.lists(st.binary(max_size=40), max_size=70),
    st.binary(max_size=40),
)
def test_hostile_proofs_never_raise(
    item: bytes, index: int, size: int, path: list[bytes], root: bytes
) -> None:
    proof = InclusionProof(index, size, path)
    assert verify_inclusion(item, proof, root) in (True, False)


def test_proof_does_not_verify_against_other_root() -> None:
    items = items_of(9)
    tree = MerkleTree(items)
    other = MerkleTree(items_of(9, salt=b"y"))
    assert not verify_inclusion(items[4], tree.proof(4), other.root)
