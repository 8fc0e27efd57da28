"""The light client's checks, pure: what a node's answer must prove.

Everything a node serves is checked against genesis.json alone: a header is
hashed to its block id, the certificate must be valid for that id with the
genesis validators, tx ids must hash to the header's `tx_root`, a
transaction's audit path must reach it, a namespace's proof must reach
`namespace_root`, and consecutive blocks must link (`parent_id`, and
`last_commit_id` naming a valid certificate of the parent). Nothing the
node says about itself is believed: a field that is not covered by a hash or
a signature is only used to ask for the next thing.

Every failure is a `VerificationError`: `CertificateError` (the certificate)
or `ProofError` (a hash, a proof or a link), whose `reason` says which rule
broke and whose message says where. An answer that does not even parse is a
`ProofError` with reason `malformed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.codec import from_builtins, parse_hex
from sequencer.errors import CertificateError, DecodeError, ProofError
from sequencer.ids import block_id, commit_id, tx_id, tx_root
from sequencer.merkle import verify_inclusion
from sequencer.namespaces import verify_absence, verify_presence
from sequencer.types import (
    BlockHeader,
    CommitCertificate,
    Genesis,
    InclusionProof,
    NamespaceAbsence,
    NamespaceEntry,
    Transaction,
)

__all__ = [
    "Linker",
    "Trust",
    "VerifiedBlock",
    "VerifiedNamespace",
    "check_inclusion",
    "verify_block",
    "verify_namespace",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedBlock:
    """A finalized block as proven: its header, id and certificate, and the
    transaction ids (and transactions, when served) that its tx_root covers."""

    header: BlockHeader
    block_id: bytes
    certificate: CommitCertificate
    tx_ids: tuple[bytes, ...] | None = None
    txs: tuple[Transaction, ...] | None = None

    @property
    def height(self) -> int:
        return self.header.height


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedNamespace:
    """All of one namespace's transactions in a finalized block (possibly none)."""

    namespace: int
    block: VerifiedBlock
    txs: tuple[Transaction, ...]
    tx_ids: tuple[bytes, ...]


class Trust:
    """What the light client trusts: a genesis file, nothing else."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.validators = ValidatorSet.from_genesis(genesis)


def _parse(value: Any, cls: type[T], where: str) -> T:
    try:
        return from_builtins(value, cls)
    except DecodeError as exc:
        raise ProofError("malformed", f"{where}: {exc}") from None


def _field(answer: Mapping[str, Any], name: str, where: str) -> Any:
    if not isinstance(answer, Mapping) or name not in answer:
        raise ProofError("malformed", f"{where}: the answer has no `{name}`")
    return answer[name]


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProofError("malformed", f"{where}: not a list")
    return value


def _hex32(value: Any, where: str) -> bytes:
    if isinstance(value, str):
        with contextlib.suppress(DecodeError):
            return parse_hex(value, length=32, path=where)
    raise ProofError("malformed", f"{where}: not 32 bytes of hex: {value!r:.80}")


def _header_and_certificate(
    trust: Trust, answer: Mapping[str, Any], height: int | None, where: str
) -> tuple[BlockHeader, bytes, CommitCertificate]:
    header = _parse(_field(answer, "header", where), BlockHeader, f"{where}: header")
    if header.chain_id != trust.chain_id:
        raise ProofError(
            "wrong_chain",
            f"{where}: the header is of chain {header.chain_id!r}, not {trust.chain_id!r}",
        )
    if height is not None and header.height != height:
        raise ProofError("wrong_height", f"{where}: the header is of height {header.height}")
    id_ = block_id(header)
    if "block_id" in answer and _hex32(answer["block_id"], f"{where}: block_id") != id_:
        raise ProofError(
            "wrong_block_id", f"{where}: the header does not hash to the block_id served"
        )
    certificate = _parse(
        _field(answer, "certificate", where), CommitCertificate, f"{where}: certificate"
    )
    try:
        verify_certificate(
            certificate, trust.validators, trust.chain_id, height=header.height, block_id=id_
        )
    except CertificateError as exc:
        raise CertificateError(exc.reason, f"{where}: the certificate: {exc}") from None
    return header, id_, certificate


def verify_block(trust: Trust, answer: Mapping[str, Any], height: int | None) -> VerifiedBlock:
    """A `GET /blocks/{h}` answer (or one item of `/blocks`, or an event)."""
    where = f"block {height if height is not None else '?'}"
    header, id_, certificate = _header_and_certificate(trust, answer, height, where)
    where = f"block {header.height}"
    ids = tuple(
        _hex32(h, f"{where}: tx_ids[{i}]")
        for i, h in enumerate(_list(_field(answer, "tx_ids", where), f"{where}: tx_ids"))
    )
    if tx_root(ids) != header.tx_root:
        raise ProofError("wrong_tx_root", f"{where}: the tx_ids served do not hash to tx_root")
    txs = None
    if answer.get("txs") is not None:
        txs = tuple(
            _parse(tx, Transaction, f"{where}: txs[{i}]")
            for i, tx in enumerate(_list(answer["txs"], f"{where}: txs"))
        )
        if tuple(tx_id(tx) for tx in txs) != ids:
            raise ProofError(
                "wrong_txs", f"{where}: the transactions served are not the ones tx_ids name"
            )
    return VerifiedBlock(header, id_, certificate, ids, txs)


def check_inclusion(block: VerifiedBlock, tx_id_: bytes, proof: InclusionProof) -> None:
    """`tx_id_` is in `block` at `proof.index` (the block already verified)."""
    if not verify_inclusion(tx_id_, proof, block.header.tx_root):
        raise ProofError(
            "not_included",
            f"transaction {tx_id_.hex()}: the audit path does not reach block "
            f"{block.height}'s tx_root",
        )


def verify_namespace(
    trust: Trust, answer: Mapping[str, Any], namespace: int, height: int | None
) -> VerifiedNamespace:
    """A `GET /namespaces/{N}/blocks/{h}` answer, or a namespace-filtered event."""
    where = f"namespace {namespace} at height {height if height is not None else '?'}"
    header, id_, certificate = _header_and_certificate(trust, answer, height, where)
    where = f"namespace {namespace} at height {header.height}"
    block = VerifiedBlock(header, id_, certificate)
    served_txs = _list(_field(answer, "txs", where), f"{where}: txs")
    txs = []
    for i, item in enumerate(served_txs):
        if not isinstance(item, Mapping):
            raise ProofError("malformed", f"{where}: txs[{i}] is not an object")
        fields = {k: v for k, v in item.items() if k != "tx_id"}
        txs.append(_parse(fields, Transaction, f"{where}: txs[{i}]"))
    try:
        ids = _namespace_proof(answer, namespace, header.namespace_root, txs, where)
    except ProofError as exc:
        if str(exc).startswith(where):
            raise
        raise ProofError(exc.reason, f"{where}: {exc}") from None
    for i, item in enumerate(served_txs):
        if "tx_id" in item and _hex32(item["tx_id"], f"{where}: txs[{i}].tx_id") != ids[i]:
            raise ProofError(
                "wrong_tx_id", f"{where}: txs[{i}] is not the transaction its tx_id names"
            )
    return VerifiedNamespace(namespace, block, tuple(txs), tuple(ids))


def _namespace_proof(
    answer: Mapping[str, Any], namespace: int, root: bytes, txs: list[Transaction], where: str
) -> list[bytes]:
    """The presence proof (when an entry is served) or the absence proof; the tx ids."""
    entry, entry_proof = answer.get("entry"), answer.get("entry_proof")
    if entry is not None or entry_proof is not None:
        return verify_presence(
            namespace,
            root,
            _parse(entry, NamespaceEntry, f"{where}: entry"),
            _parse(entry_proof, InclusionProof, f"{where}: entry_proof"),
            txs,
        )
    if txs:
        raise ProofError("malformed", f"{where}: transactions served without their entry")
    absence = _parse(_field(answer, "absence", where), NamespaceAbsence, f"{where}: absence")
    verify_absence(namespace, root, absence)
    return []


class Linker:
    """Checks that verified blocks form one chain, block after block.

    Each block must be the next height and name the previous one as its
    parent. Its `last_commit_id` must name a valid certificate of the
    previous block: honest validators may hold different valid certificates
    for one block, and the node serves its own for its newest block until
    the next block settles which one is canonical, so a `last_commit_id`
    that names none known yet is settled by asking the node for the parent
    again (`link` returns False; pass the answer to `add_certificate`, then
    `link` again). Resuming from a stored (height, block_id) works the same
    way, with no certificate known yet."""

    def __init__(self, height: int | None = None, block_id_: bytes | None = None) -> None:
        self.height = height
        self.block_id = block_id_
        self._commit_ids: set[bytes] = set()

    def link(self, block: VerifiedBlock) -> bool:
        """Raises `ProofError` if `block` cannot follow; False if its
        last_commit_id needs the parent's certificate; True once linked."""
        if self.height is not None:
            where = f"block {block.height}"
            if block.height != self.height + 1:
                raise ProofError(
                    "not_next", f"{where} does not follow block {self.height}: heights skip"
                )
            if block.header.parent_id != self.block_id:
                assert self.block_id is not None
                raise ProofError(
                    "wrong_parent",
                    f"{where}: parent_id {block.header.parent_id.hex()} is not block "
                    f"{self.height}'s id {self.block_id.hex()}",
                )
            if block.header.last_commit_id not in self._commit_ids:
                return False
        self.height, self.block_id = block.height, block.block_id
        self._commit_ids = {commit_id(block.certificate)}
        return True

    def add_certificate(self, parent: VerifiedBlock) -> None:
        """The parent, as the node serves it now (its certificate verified)."""
        if parent.height != self.height or parent.block_id != self.block_id:
            raise ProofError(
                "wrong_parent",
                f"block {parent.height} {parent.block_id.hex()} is not the block followed",
            )
        self._commit_ids.add(commit_id(parent.certificate))

    def unsettled(self, block: VerifiedBlock) -> ProofError:
        return ProofError(
            "wrong_last_commit",
            f"block {block.height}: last_commit_id {block.header.last_commit_id.hex()} names "
            f"no valid certificate of block {self.height} that the node serves",
        )
