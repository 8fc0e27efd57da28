"""`WriteBatch`: typed writes collected in memory, applied atomically by the store.

A batch is obtained from `Store.batch()` and lives for one `with` block. It
checks each finalized block against the chain tip *as the batch sees it*
(the stored tip plus the blocks already put in this batch), so block sync can
put many consecutive blocks in one batch. Reads on the store do not see a
batch's writes until the block ends.

What the batch checks is the shape of the stored chain (heights contiguous,
parent and last-commit links, certificate names the block). It does not
verify signatures, transaction roots, nonces or state roots: the caller
(consensus, block sync) has done that before a block counts as finalized.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import msgspec

from sequencer.codec import encode
from sequencer.ids import BlockFacts, block_facts, commit_id
from sequencer.types import (
    ZERO_ID,
    Block,
    BlockHeader,
    ChainTip,
    CommitCertificate,
    SigningState,
    Transaction,
)
from storage.errors import StoreConflictError
from storage.kv import WriteOp
from storage.schema import (
    SIGNING_STATE_KEY,
    TIP_KEY,
    batch_key,
    block_id_key,
    block_key,
    certificate_key,
    encode_tx_location,
    encode_u64,
    journal_key,
    nonce_key,
    sender_tx_key,
    tx_key,
)

__all__ = ["WriteBatch", "check_certificate", "check_extends", "journal_entry"]

_USED_AFTER_END = "write batch used after its `with` block ended"


def check_certificate(header: BlockHeader, header_id: bytes, cert: CommitCertificate) -> None:
    """The certificate must be for this very block (its signatures are the caller's)."""
    if cert.height != header.height:
        raise StoreConflictError(
            f"certificate is for height {cert.height}, not for the block at height {header.height}"
        )
    if cert.block_id != header_id:
        raise StoreConflictError(
            f"certificate at height {header.height} is for block {cert.block_id.hex()}, "
            f"not for block {header_id.hex()}"
        )


def check_extends(tip: ChainTip | None, header: BlockHeader) -> None:
    """The block must be the next one on top of `tip` (None: an empty store)."""
    tip_height = 0 if tip is None else tip.height
    parent_id = ZERO_ID if tip is None else tip.block_id
    last_commit_id = ZERO_ID if tip is None else tip.commit_id
    if header.height != tip_height + 1:
        raise StoreConflictError(
            f"block at height {header.height} does not follow the stored tip at height "
            f"{tip_height}: the next block must be at height {tip_height + 1}"
        )
    if header.parent_id != parent_id:
        raise StoreConflictError(
            f"block at height {header.height} has parent {header.parent_id.hex()}, "
            f"but the block stored at height {tip_height} is {parent_id.hex()}"
        )
    if header.last_commit_id != last_commit_id:
        raise StoreConflictError(
            f"block at height {header.height} has last_commit_id {header.last_commit_id.hex()}, "
            f"but the stored certificate of height {tip_height} is {last_commit_id.hex()}"
        )


class WriteBatch:
    """Typed writes for one atomic `KV.write` (see the module docstring).

    `chain_id` (None when the store has none recorded) and `tip` are the
    store's as the batch opens; `stored_height_of` looks a block id up in the
    store, to recognise a replay of an already stored block.
    """

    __slots__ = ("_chain_id", "_open", "_ops", "_pending_ids", "_stored_height_of", "_tip")

    def __init__(
        self,
        *,
        chain_id: str | None,
        tip: ChainTip | None,
        stored_height_of: Callable[[bytes], int | None],
    ) -> None:
        self._chain_id = chain_id
        self._tip = tip
        self._stored_height_of = stored_height_of
        # Keyed by key: a later write to the same key (the tip) replaces the earlier.
        self._ops: dict[bytes, bytes | None] = {}
        self._pending_ids: dict[int, bytes] = {}
        self._open = True

    @property
    def tip(self) -> ChainTip | None:
        """The chain tip once this batch is applied."""
        return self._tip

    def put_finalized(
        self,
        block: Block,
        certificate: CommitCertificate,
        next_nonces: Mapping[bytes, int],
        parent_certificate: CommitCertificate | None = None,
        facts: BlockFacts | None = None,
    ) -> bool:
        """Put a finalized block, its certificate, tx index, nonces and the new tip.

        `facts`, when the caller has them, are the block's ids (`block_facts`),
        so that they are not computed again here.

        `next_nonces` maps each sender the block changed to its next nonce.
        `parent_certificate`, when given and not the stored one, replaces the
        certificate of the tip height: the block's `last_commit_id` names it,
        which makes it the canonical certificate of that height (nodes build
        different certificates for one block from the precommits they saw).
        Returns False, putting nothing, when this very block is already at its
        height (a replay; the stored certificate is kept). Raises
        `StoreConflictError`, putting nothing, when the block does not extend
        the tip or its height holds another block.
        """
        assert self._open, _USED_AFTER_END
        header = block.header
        if facts is None:
            facts = block_facts(block)
        header_id = facts.block_id
        if self._chain_id is not None and header.chain_id != self._chain_id:
            raise StoreConflictError(
                f"block at height {header.height} is for chain {header.chain_id!r}, "
                f"this store holds chain {self._chain_id!r}"
            )
        check_certificate(header, header_id, certificate)
        if self._tip is not None and header.height <= self._tip.height:
            self._check_replay(header.height, header_id)
            return False
        tip = self._with_parent_certificate(parent_certificate)
        check_extends(tip, header)
        if tip is not self._tip:
            assert parent_certificate is not None
            assert tip is not None
            self._ops[certificate_key(tip.height)] = encode(parent_certificate)
        self._add_finalized(block, facts, certificate, next_nonces)
        return True

    def _with_parent_certificate(self, parent: CommitCertificate | None) -> ChainTip | None:
        """The tip as it will be with `parent` as its certificate (checked)."""
        tip = self._tip
        if parent is None or tip is None or commit_id(parent) == tip.commit_id:
            return tip
        if parent.height != tip.height or parent.block_id != tip.block_id:
            raise StoreConflictError(
                f"parent certificate is for height {parent.height}, block "
                f"{parent.block_id.hex()}, not for the tip at height {tip.height}"
            )
        return msgspec.structs.replace(tip, commit_id=commit_id(parent))

    def put_signing_state(self, state: SigningState) -> None:
        assert self._open, _USED_AFTER_END
        self._ops[SIGNING_STATE_KEY] = encode(state)

    def put_journal(self, seq: int, time_ms: int, tx: Transaction) -> None:
        """Journal an accepted mempool transaction under its arrival sequence."""
        assert self._open, _USED_AFTER_END
        key, value = journal_entry(seq, time_ms, tx)
        self._ops[key] = value

    def put_batch_record(self, number: int, record: bytes) -> None:
        assert self._open, _USED_AFTER_END
        self._ops[batch_key(number)] = record

    def delete_journal(self, seq: int) -> None:
        assert self._open, _USED_AFTER_END
        self._ops[journal_key(seq)] = None

    def _check_replay(self, height: int, header_id: bytes) -> None:
        pending_id = self._pending_ids.get(height)
        if pending_id is not None:
            same = pending_id == header_id
        else:
            same = self._stored_height_of(header_id) == height
        if not same:
            raise StoreConflictError(
                f"refusing to overwrite finalized block at height {height}: "
                f"the store holds another block there than {header_id.hex()}"
            )

    def _add_finalized(
        self,
        block: Block,
        facts: BlockFacts,
        certificate: CommitCertificate,
        next_nonces: Mapping[bytes, int],
    ) -> None:
        height = block.header.height
        header_id = facts.block_id
        # Build this block's ops apart first: a bad argument (a 31-byte
        # sender) then leaves the batch as it was, not half a block in it.
        ops: dict[bytes, bytes | None] = {
            block_key(height): encode(block),
            certificate_key(height): encode(certificate),
            block_id_key(header_id): encode_u64(height),
        }
        for index, (tx, id_) in enumerate(zip(block.txs, facts.tx_ids, strict=True)):
            ops[tx_key(id_)] = encode_tx_location(height, index)
            ops[sender_tx_key(tx.sender, tx.nonce)] = id_
        for sender, nonce in next_nonces.items():
            ops[nonce_key(sender)] = encode_u64(nonce)
        tip = ChainTip(height, header_id, block.header.state_root, commit_id(certificate))
        ops[TIP_KEY] = encode(tip)
        self._ops.update(ops)
        self._pending_ids[height] = header_id
        self._tip = tip

    def seal(self) -> list[WriteOp]:
        """End the batch and hand over its ops (called by the store only)."""
        assert self._open, _USED_AFTER_END
        self._open = False
        return list(self._ops.items())


class JournalEntry(NamedTuple):
    """One journaled transaction, under its arrival order and time."""

    seq: int
    time_ms: int
    tx: Transaction


def journal_entry(seq: int, time_ms: int, tx: Transaction) -> tuple[bytes, bytes]:
    """The key and value of one journaled transaction."""
    return journal_key(seq), encode_u64(time_ms) + encode(tx)
