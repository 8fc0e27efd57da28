"""Identifiers and derived values (normative: wallets and rollups recompute them).

All hashes are BLAKE3-256 over canonical encodings (`codec.encode`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple

from blake3 import blake3

from sequencer.codec import decode, encode
from sequencer.merkle import merkle_root
from sequencer.types import (
    U64,
    BatchCommitment,
    Block,
    BlockHeader,
    Bytes32,
    ChainId,
    CommitCertificate,
    Height,
    Transaction,
)

__all__ = [
    "BATCH_TAG",
    "BlockFacts",
    "TxFacts",
    "batch_commitment",
    "block_facts",
    "block_id",
    "commit_id",
    "decode_batch",
    "encode_batch",
    "gas",
    "genesis_state_root",
    "hash32",
    "state_root",
    "tx_facts",
    "tx_id",
    "tx_root",
]

BATCH_TAG = "seq/batch/v1"
GAS_PER_TX = 1000
GAS_PER_PAYLOAD_BYTE = 16


def hash32(data: bytes) -> bytes:
    return blake3(data).digest()


def tx_id(tx: Transaction) -> bytes:
    return blake3(encode(tx)).digest()


class TxFacts(NamedTuple):
    """What a transaction's canonical encoding says of it, computed once on
    entry and carried from there: its id, and the encoding's size."""

    id: bytes
    size: int


def tx_facts(tx: Transaction) -> TxFacts:
    encoded = encode(tx)
    return TxFacts(blake3(encoded).digest(), len(encoded))


class BlockFacts(NamedTuple):
    """What a block's encoding says of it, computed once where the block is
    first met (a peer's proposal, our own build, a block from catch-up) and
    carried from there through the checks, the commit, the store (its tx
    index), the metrics, the log and the batcher.

    `next_nonces` is each sender's next nonce after the block, known once the
    block was checked against the chain state it applies to (None before)."""

    block_id: bytes
    tx_ids: list[bytes]
    next_nonces: Mapping[bytes, int] | None = None


def block_facts(block: Block, tx_ids: list[bytes] | None = None) -> BlockFacts:
    """`tx_ids`, when the caller holds them (a pool entry carries its id)."""
    ids = [tx_id(tx) for tx in block.txs] if tx_ids is None else tx_ids
    return BlockFacts(block_id(block.header), ids)


def gas(tx: Transaction) -> int:
    return GAS_PER_TX + GAS_PER_PAYLOAD_BYTE * len(tx.payload)


def tx_root(tx_ids: Iterable[bytes]) -> bytes:
    """Merkle root over a block's transaction ids in block order."""
    return merkle_root(list(tx_ids))


def block_id(header: BlockHeader) -> bytes:
    return blake3(encode(header)).digest()


def commit_id(certificate: CommitCertificate) -> bytes:
    return blake3(encode(certificate)).digest()


def genesis_state_root(chain_id: str) -> bytes:
    return blake3(b"seq/genesis/" + chain_id.encode()).digest()


def state_root(parent_state_root: bytes, next_nonces: Mapping[bytes, int]) -> bytes:
    """Chain the parent root with the (sender, next_nonce) pairs a block changed.

    The pairs are sorted by sender bytes; a block without transactions still
    advances the root (it hashes an empty list).
    """
    pairs = [[sender, next_nonces[sender]] for sender in sorted(next_nonces)]
    return blake3(parent_state_root + encode(pairs)).digest()


# ------------------------------------------------------------------ batches

_BatchArray = tuple[Literal["seq/batch/v1"], ChainId, U64, Height, Height, Bytes32, Bytes32]


def encode_batch(batch: BatchCommitment) -> bytes:
    """The bytes posted to L1: msgpack([tag, chain_id, number, first, last, root, qc])."""
    return encode(
        [
            BATCH_TAG,
            batch.chain_id,
            batch.batch_number,
            batch.first_height,
            batch.last_height,
            batch.blocks_root,
            batch.last_commit_id,
        ]
    )


def decode_batch(data: bytes) -> BatchCommitment:
    """Parse an encoding read back from L1 (raises `DecodeError`)."""
    fields = decode(data, _BatchArray)
    return decode(encode(list(fields[1:])), BatchCommitment)


def batch_commitment(batch: BatchCommitment) -> bytes:
    return blake3(encode_batch(batch)).digest()
