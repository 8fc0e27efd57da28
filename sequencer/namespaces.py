"""The namespace table of a block, and proofs that a rollup got all of its part.

For each namespace with transactions in a block, the table holds one entry
`[namespace, count, ns_tx_root]` (`ns_tx_root`: the Merkle root over that
namespace's tx_ids in block order), in ascending namespace order. The
header's `namespace_root` is the Merkle root whose items are the encoded
entries. A namespace's transactions are then proven complete by its entry
(presence), and a namespace with none by the two entries around where it
would be (absence): the table is sorted, so two neighbouring leaves that
straddle N leave no room for it.

Verification never trusts anything it was given beyond `namespace_root`:
tx_ids are recomputed from the transactions, each transaction's namespace is
checked, and a failure raises `ProofError` whose `reason` says which rule
broke. The Merkle audit paths bind both the index and the size of the table,
so a neighbour cannot pretend to be the first or the last entry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from sequencer.codec import encode
from sequencer.errors import ProofError
from sequencer.ids import tx_id
from sequencer.merkle import EMPTY_ROOT, MerkleTree, merkle_root, verify_inclusion
from sequencer.types import (
    InclusionProof,
    NamespaceAbsence,
    NamespaceEntry,
    ProvenEntry,
    Transaction,
)

__all__ = [
    "NamespaceTable",
    "namespace_entries",
    "namespace_root",
    "verify_absence",
    "verify_presence",
]


def namespace_entries(
    namespaces: Sequence[int], tx_ids: Sequence[bytes], tx_root: bytes | None = None
) -> list[NamespaceEntry]:
    """The table of a block whose i-th transaction has namespace `namespaces[i]`
    and id `tx_ids[i]`. `tx_root`, when the caller has it, is reused for a
    block whose transactions all share one namespace (the same leaves in the
    same order give the same root), which is the common case."""
    if not namespaces:
        return []
    first = namespaces[0]
    if all(ns == first for ns in namespaces):
        root = merkle_root(tx_ids) if tx_root is None else tx_root
        return [NamespaceEntry(first, len(tx_ids), root)]
    grouped: dict[int, list[bytes]] = {}
    for ns, id_ in zip(namespaces, tx_ids, strict=True):
        grouped.setdefault(ns, []).append(id_)
    return [NamespaceEntry(ns, len(ids), merkle_root(ids)) for ns, ids in sorted(grouped.items())]


def namespace_root(entries: Sequence[NamespaceEntry]) -> bytes:
    return merkle_root([encode(entry) for entry in entries])


class NamespaceTable:
    """A block's table with its tree, to answer presence and absence proofs."""

    def __init__(self, entries: Sequence[NamespaceEntry]) -> None:
        self.entries = list(entries)
        self._namespaces = [entry.namespace for entry in self.entries]
        self._tree = MerkleTree([encode(entry) for entry in self.entries])

    @classmethod
    def of_block(cls, txs: Sequence[Transaction], tx_ids: Sequence[bytes]) -> NamespaceTable:
        return cls(namespace_entries([tx.namespace for tx in txs], tx_ids))

    @property
    def root(self) -> bytes:
        return self._tree.root

    def find(self, namespace: int) -> int | None:
        """The entry index of `namespace`, None when the block has none of it."""
        index = bisect_left(self._namespaces, namespace)
        if index < len(self._namespaces) and self._namespaces[index] == namespace:
            return index
        return None

    def presence(self, namespace: int) -> ProvenEntry | None:
        index = self.find(namespace)
        if index is None:
            return None
        return ProvenEntry(self.entries[index], self._tree.proof(index))

    def absence(self, namespace: int) -> NamespaceAbsence:
        """The neighbours of an absent `namespace` (ValueError if present)."""
        if self.find(namespace) is not None:
            raise ValueError(f"namespace {namespace} is in the table")
        right = bisect_left(self._namespaces, namespace)
        left = right - 1
        return NamespaceAbsence(
            ProvenEntry(self.entries[left], self._tree.proof(left)) if left >= 0 else None,
            ProvenEntry(self.entries[right], self._tree.proof(right))
            if right < len(self.entries)
            else None,
        )


def _check_entry(proven: ProvenEntry, root: bytes, side: str) -> None:
    if not verify_inclusion(encode(proven.entry), proven.proof, root):
        raise ProofError(
            "entry_not_in_table",
            f"the {side}entry of namespace {proven.entry.namespace} is not in the "
            "table the header's namespace_root commits to",
        )


def verify_presence(
    namespace: int,
    root: bytes,
    entry: NamespaceEntry,
    entry_proof: InclusionProof,
    txs: Sequence[Transaction],
) -> list[bytes]:
    """Check that `txs` are all of `namespace`'s transactions, in block order,
    in the block whose header has `namespace_root == root`. Returns their
    tx_ids (recomputed); raises `ProofError`."""
    if entry.namespace != namespace:
        raise ProofError(
            "wrong_namespace", f"the entry is for namespace {entry.namespace}, not {namespace}"
        )
    _check_entry(ProvenEntry(entry, entry_proof), root, "")
    if entry.count != len(txs):
        raise ProofError(
            "wrong_count",
            f"the table says namespace {namespace} has {entry.count} transactions, "
            f"the proof carries {len(txs)}",
        )
    for position, tx in enumerate(txs):
        if tx.namespace != namespace:
            raise ProofError(
                "tx_wrong_namespace",
                f"transaction {position} has namespace {tx.namespace}, not {namespace}",
            )
    ids = [tx_id(tx) for tx in txs]
    if merkle_root(ids) != entry.ns_tx_root:
        raise ProofError(
            "wrong_ns_tx_root",
            f"the transactions of namespace {namespace} (their ids, in this order) do not "
            "hash to the entry's ns_tx_root",
        )
    return ids


def verify_absence(namespace: int, root: bytes, absence: NamespaceAbsence) -> None:
    """Check that the block whose header has `namespace_root == root` has no
    transaction of `namespace`; raises `ProofError`."""
    left, right = absence.left, absence.right
    if left is None and right is None:
        if root != EMPTY_ROOT:
            raise ProofError(
                "table_not_empty",
                "the proof claims an empty table, but namespace_root is not empty",
            )
        return
    if left is not None:
        _check_entry(left, root, "left ")
        if not left.entry.namespace < namespace:
            raise ProofError(
                "left_not_below",
                f"the left neighbour is namespace {left.entry.namespace}, not below {namespace}",
            )
    if right is not None:
        _check_entry(right, root, "right ")
        if not namespace < right.entry.namespace:
            raise ProofError(
                "right_not_above",
                f"the right neighbour is namespace {right.entry.namespace}, not above {namespace}",
            )
    if left is None:
        assert right is not None
        if right.proof.index != 0:
            raise ProofError(
                "not_adjacent", "without a left neighbour the right one must be the first entry"
            )
    elif right is None:
        if left.proof.index != left.proof.size - 1:
            raise ProofError(
                "not_adjacent", "without a right neighbour the left one must be the last entry"
            )
    elif left.proof.size != right.proof.size or right.proof.index != left.proof.index + 1:
        raise ProofError("not_adjacent", "the two neighbours are not adjacent entries of one table")
