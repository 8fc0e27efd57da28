"""The namespace table and its proofs (`sequencer.namespaces`).

Tables for what the table holds and what each proof shows, then hypothesis
attacks on the verifiers: a proof of a transaction set with one transaction
added, removed, reordered or moved to another namespace never verifies, an
absence proof for a namespace that is present never verifies, and mutated
proofs only ever raise `ProofError`.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequencer.codec import encode
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.errors import ProofError
from sequencer.ids import tx_id
from sequencer.merkle import EMPTY_ROOT, MerkleTree, merkle_root
from sequencer.namespaces import (
    NamespaceTable,
    namespace_entries,
    namespace_root,
    verify_absence,
    verify_presence,
)
from sequencer.types import InclusionProof, NamespaceAbsence, NamespaceEntry, ProvenEntry

KEY = PrivateKey(bytes(range(32)))


def txs_of(namespaces: Sequence[int]) -> list:
    return [
        sign_transaction(KEY, chain_id="c", namespace=ns, nonce=i, gas_price=1, payload=b"p")
        for i, ns in enumerate(namespaces)
    ]


def table_of(txs: Sequence) -> NamespaceTable:
    return NamespaceTable.of_block(txs, [tx_id(tx) for tx in txs])


# ------------------------------------------------------------------ the table


@pytest.mark.parametrize(
    ("namespaces", "expected"),
    [
        ([], []),
        ([7], [(7, [0])]),
        ([7, 7, 7], [(7, [0, 1, 2])]),
        ([9, 7, 9, 7, 11], [(7, [1, 3]), (9, [0, 2]), (11, [4])]),
        ([2**64 - 1, 0], [(0, [1]), (2**64 - 1, [0])]),
    ],
    ids=["empty", "one", "one namespace", "mixed", "extremes"],
)
def test_entries_are_sorted_with_counts_and_roots_in_block_order(
    namespaces: list[int], expected: list[tuple[int, list[int]]]
) -> None:
    txs = txs_of(namespaces)
    ids = [tx_id(tx) for tx in txs]
    entries = namespace_entries(namespaces, ids)
    assert entries == [
        NamespaceEntry(ns, len(positions), merkle_root([ids[i] for i in positions]))
        for ns, positions in expected
    ]
    assert table_of(txs).root == namespace_root(entries)


def test_one_namespace_reuses_the_tx_root_it_equals() -> None:
    ids = [tx_id(tx) for tx in txs_of([3, 3, 3, 3, 3])]
    (entry,) = namespace_entries([3] * 5, ids, tx_root=merkle_root(ids))
    assert entry.ns_tx_root == merkle_root(ids)
    assert namespace_entries([3] * 5, ids) == [entry]


def test_empty_table_has_the_empty_root() -> None:
    assert namespace_root([]) == EMPTY_ROOT


def test_root_is_the_merkle_root_of_encoded_entries_by_hand() -> None:
    """Leaf = blake3(0x00 || msgpack([ns, count, root])), node = blake3(0x01 || l || r)."""
    from blake3 import blake3

    a, b = NamespaceEntry(1, 2, b"\x0a" * 32), NamespaceEntry(5, 1, b"\x0b" * 32)
    leaf_a = blake3(b"\x00" + b"\x93\x01\x02\xc4\x20" + b"\x0a" * 32).digest()
    leaf_b = blake3(b"\x00" + b"\x93\x05\x01\xc4\x20" + b"\x0b" * 32).digest()
    assert namespace_root([a, b]) == blake3(b"\x01" + leaf_a + leaf_b).digest()


# ------------------------------------------------------------------ proofs that verify

BLOCK_NAMESPACES = [9, 7, 9, 7, 11, 3]


@pytest.mark.parametrize("namespace", [3, 7, 9, 11])
def test_presence_proof_of_each_present_namespace(namespace: int) -> None:
    txs = txs_of(BLOCK_NAMESPACES)
    table = table_of(txs)
    proven = table.presence(namespace)
    assert proven is not None
    mine = [tx for tx in txs if tx.namespace == namespace]
    assert verify_presence(namespace, table.root, proven.entry, proven.proof, mine) == [
        tx_id(tx) for tx in mine
    ]
    with pytest.raises(ValueError, match="is in the table"):
        table.absence(namespace)


@pytest.mark.parametrize(
    ("namespace", "left", "right"),
    [(0, None, 3), (5, 3, 7), (8, 7, 9), (10, 9, 11), (12, 11, None), (2**64 - 1, 11, None)],
)
def test_absence_proof_between_before_and_after(
    namespace: int, left: int | None, right: int | None
) -> None:
    table = table_of(txs_of(BLOCK_NAMESPACES))
    assert table.presence(namespace) is None
    absence = table.absence(namespace)
    assert (absence.left and absence.left.entry.namespace) == left
    assert (absence.right and absence.right.entry.namespace) == right
    verify_absence(namespace, table.root, absence)


def test_absence_in_an_empty_block() -> None:
    table = table_of([])
    absence = table.absence(7)
    assert absence == NamespaceAbsence(None, None)
    verify_absence(7, table.root, absence)
    with pytest.raises(ProofError) as caught:
        verify_absence(7, table_of(txs_of([7])).root, absence)
    assert caught.value.reason == "table_not_empty"


# ------------------------------------------------------------------ proofs that must not


def reason_of(check) -> str:
    with pytest.raises(ProofError) as caught:
        check()
    return caught.value.reason


def test_presence_refusals_name_the_broken_rule() -> None:
    txs = txs_of(BLOCK_NAMESPACES)
    table = table_of(txs)
    proven = table.presence(9)
    assert proven is not None
    mine = [tx for tx in txs if tx.namespace == 9]
    entry, proof, root = proven.entry, proven.proof, table.root
    cases = {
        "wrong_namespace": lambda: verify_presence(7, root, entry, proof, mine),
        "wrong_count": lambda: verify_presence(9, root, entry, proof, mine[:1]),
        "wrong_ns_tx_root": lambda: verify_presence(9, root, entry, proof, mine[::-1]),
        "tx_wrong_namespace": lambda: verify_presence(9, root, entry, proof, [mine[0], txs[1]]),
        "entry_not_in_table": lambda: verify_presence(
            9, root, msgspec.structs.replace(entry, count=1), proof, mine[:1]
        ),
    }
    assert {reason: reason_of(check) for reason, check in cases.items()} == {
        reason: reason for reason in cases
    }


def test_absence_refusals_name_the_broken_rule() -> None:
    table = table_of(txs_of(BLOCK_NAMESPACES))  # entries 3, 7, 9, 11
    root = table.root
    seven, nine, eleven = (table.presence(ns) for ns in (7, 9, 11))
    three = table.presence(3)
    cases = {
        # A gap that skips an entry: 7 and 11 are not neighbours.
        "not_adjacent": NamespaceAbsence(seven, eleven),
        "left_not_below": NamespaceAbsence(nine, eleven),
        "right_not_above": NamespaceAbsence(seven, nine),
        # Claiming 9 is last, or 3 is not first.
        "not_adjacent_end": NamespaceAbsence(nine, None),
        "not_adjacent_start": NamespaceAbsence(None, seven),
    }
    assert reason_of(lambda: verify_absence(9, root, cases["not_adjacent"])) == "not_adjacent"
    assert reason_of(lambda: verify_absence(9, root, cases["left_not_below"])) == "left_not_below"
    assert reason_of(lambda: verify_absence(9, root, cases["right_not_above"])) == (
        "right_not_above"
    )
    assert reason_of(lambda: verify_absence(10, root, cases["not_adjacent_end"])) == "not_adjacent"
    assert reason_of(lambda: verify_absence(5, root, cases["not_adjacent_start"])) == (
        "not_adjacent"
    )
    assert three is not None
    lying = ProvenEntry(msgspec.structs.replace(three.entry, namespace=2), three.proof)
    assert reason_of(lambda: verify_absence(1, root, NamespaceAbsence(None, lying))) == (
        "entry_not_in_table"
    )


# ------------------------------------------------------------------ attacks (hypothesis)

namespace_lists = st.lists(st.sampled_from([0, 1, 2, 5, 9, 2**64 - 1]), min_size=1, max_size=12)


def _only_proof_errors(check) -> bool:
    """True if `check` verified, False if it raised ProofError; anything else fails."""
    try:
        check()
    except ProofError:
        return False
    return True


def _drawn_presence(namespaces: list[int], data) -> tuple:
    """A block of `namespaces`, a namespace drawn from it, its proof and its txs."""
    txs = txs_of(namespaces)
    table = table_of(txs)
    namespace = data.draw(st.sampled_from(sorted(set(namespaces))))
    proven = table.presence(namespace)
    assert proven is not None
    return table, namespace, proven, [tx for tx in txs if tx.namespace == namespace]


@given(namespace_lists, st.data())
def test_a_changed_transaction_set_never_verifies(namespaces: list[int], data) -> None:
    table, namespace, proven, mine = _drawn_presence(namespaces, data)
    others = [tx for tx in txs_of([namespace] * 3)][1:]  # valid txs of N not in the block
    change = data.draw(st.sampled_from(["add", "remove", "reorder", "move"]))
    if change == "add":
        changed = list(mine)
        changed.insert(data.draw(st.integers(0, len(mine))), others[0])
    elif change == "remove":
        changed = list(mine)
        del changed[data.draw(st.integers(0, len(mine) - 1))]
    elif change == "reorder":
        if len(mine) < 2 or len(set(map(tx_id, mine))) < 2:
            return
        changed = data.draw(st.permutations(mine))
        if changed == mine:
            return
    else:
        moved = data.draw(st.integers(0, len(mine) - 1))
        other_ns = data.draw(st.integers(0, 2**64 - 1).filter(lambda n: n != namespace))
        changed = list(mine)
        changed[moved] = msgspec.structs.replace(mine[moved], namespace=other_ns)
    assert not _only_proof_errors(
        lambda: verify_presence(namespace, table.root, proven.entry, proven.proof, changed)
    )


@given(namespace_lists, st.data())
def test_no_absence_proof_for_a_present_namespace(namespaces: list[int], data) -> None:
    """Try every pair of real entries (and the ends) as neighbours, with any size."""
    table = table_of(txs_of(namespaces))
    namespace = data.draw(st.sampled_from(sorted(set(namespaces))))
    real = [table.presence(e.namespace) for e in table.entries]
    candidates = [None, *real]
    left = data.draw(st.sampled_from(candidates))
    right = data.draw(st.sampled_from(candidates))
    assert not _only_proof_errors(
        lambda: verify_absence(namespace, table.root, NamespaceAbsence(left, right))
    )


def _mutated_proof(data, proof: InclusionProof) -> InclusionProof:
    what = data.draw(st.sampled_from(["index", "size", "path", "drop", "extra"]))
    if what == "index":
        return msgspec.structs.replace(proof, index=data.draw(st.integers(0, 2**64 - 1)))
    if what == "size":
        return msgspec.structs.replace(proof, size=data.draw(st.integers(0, 2**64 - 1)))
    if what == "path" and proof.path:
        i = data.draw(st.integers(0, len(proof.path) - 1))
        path = list(proof.path)
        path[i] = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != path[i]))
        return msgspec.structs.replace(proof, path=path)
    if what == "drop" and proof.path:
        return msgspec.structs.replace(proof, path=proof.path[:-1])
    return msgspec.structs.replace(proof, path=[*proof.path, bytes(32)])


@given(namespace_lists, st.data())
def test_mutated_presence_proofs_raise_only_proof_error(namespaces: list[int], data) -> None:
    table, namespace, proven, mine = _drawn_presence(namespaces, data)
    entry, proof = proven.entry, _mutated_proof(data, proven.proof)
    if data.draw(st.booleans()):
        entry = NamespaceEntry(
            data.draw(st.integers(0, 2**64 - 1)),
            data.draw(st.integers(1, 100)),
            data.draw(st.binary(min_size=32, max_size=32)),
        )
    if (entry, proof) == (proven.entry, proven.proof):
        return
    assert not _only_proof_errors(
        lambda: verify_presence(namespace, table.root, entry, proof, mine)
    )


@given(namespace_lists, st.integers(0, 2**64 - 1), st.data())
def test_mutated_absence_proofs_raise_only_proof_error(
    namespaces: list[int], namespace: int, data
) -> None:
    table = table_of(txs_of(namespaces))
    if table.find(namespace) is not None:
        return
    absence = table.absence(namespace)
    sides = [s for s in ("left", "right") if getattr(absence, s) is not None]
    side = data.draw(st.sampled_from(sides))
    proven = getattr(absence, side)
    mutated = ProvenEntry(proven.entry, _mutated_proof(data, proven.proof))
    if mutated == proven:
        return
    attacked = msgspec.structs.replace(absence, **{side: mutated})
    assert not _only_proof_errors(lambda: verify_absence(namespace, table.root, attacked))


@given(st.lists(st.integers(0, 2**64 - 1), max_size=40, unique=True), st.data())
def test_table_tree_answers_every_entry(namespaces: list[int], data) -> None:
    entries = [NamespaceEntry(ns, 1, bytes(32)) for ns in sorted(namespaces)]
    table = NamespaceTable(entries)
    assert table.root == MerkleTree([encode(e) for e in entries]).root
    for index, entry in enumerate(entries):
        assert table.find(entry.namespace) == index
