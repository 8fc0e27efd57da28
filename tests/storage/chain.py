"""Realistic finalized chains for the storage tests.

Blocks carry transactions signed by real keys, correct tx roots, state roots
and parent links; each certificate holds real precommit signatures of three
of four validators (more than 2/3 of the power), so it verifies against
`VALIDATOR_SET` like one made by consensus.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from consensus.blocks import block_namespace_root
from sequencer.certificate import ValidatorSet
from sequencer.crypto import PrivateKey, sign_transaction, sign_vote
from sequencer.ids import block_id, commit_id, genesis_state_root, state_root, tx_id, tx_root
from sequencer.types import (
    ZERO_ID,
    Block,
    BlockHeader,
    CommitCertificate,
    SigningState,
    SignStep,
    Transaction,
    ValidatorInfo,
    VoteKind,
)

CHAIN_ID = "storage-test"
VALIDATOR_KEYS = tuple(PrivateKey(bytes([i]) * 32) for i in range(1, 5))
VALIDATOR_SET = ValidatorSet(
    [ValidatorInfo(f"v{i}", key.public_key, 1, "", "") for i, key in enumerate(VALIDATOR_KEYS)]
)
USER_KEYS = tuple(PrivateKey(bytes([100 + i]) * 32) for i in range(3))
QUORUM = (0, 1, 2)
SIGNING_STATE = SigningState(
    height=5,
    round=2,
    step=SignStep.PRECOMMIT,
    block_id=bytes(range(32)),
    signature=bytes(64),
    locked_round=1,
    locked_block_id=bytes(range(32)),
)


@dataclass(frozen=True)
class Finalized:
    """A block with its certificate and what a caller of `commit_block` knows."""

    block: Block
    certificate: CommitCertificate
    next_nonces: Mapping[bytes, int]
    nonces_after: Mapping[bytes, int]  # every sender's next nonce after this block

    @property
    def height(self) -> int:
        return self.block.header.height

    @property
    def block_id(self) -> bytes:
        return block_id(self.block.header)

    @property
    def commit_id(self) -> bytes:
        return commit_id(self.certificate)

    @property
    def tx_ids(self) -> list[bytes]:
        return [tx_id(tx) for tx in self.block.txs]

    def args(self) -> tuple[Block, CommitCertificate, Mapping[bytes, int]]:
        return self.block, self.certificate, self.next_nonces


def certify(
    header: BlockHeader, *, round: int = 0, signers: Sequence[int] = QUORUM
) -> CommitCertificate:
    """A certificate of real precommits by `signers` for this header's block."""
    header_id = block_id(header)
    signatures = []
    for index in sorted(signers):
        vote = sign_vote(
            VALIDATOR_KEYS[index],
            chain_id=header.chain_id,
            kind=VoteKind.PRECOMMIT,
            height=header.height,
            round=round,
            block_id=header_id,
            validator=index,
        )
        signatures.append((index, vote.signature))
    return CommitCertificate(header.height, round, header_id, signatures)


def _transactions(
    chain_id: str, height: int, count: int, nonces: Mapping[bytes, int]
) -> list[Transaction]:
    txs = []
    next_nonces = dict(nonces)
    for i in range(count):
        key = USER_KEYS[(height + i) % len(USER_KEYS)]
        nonce = next_nonces.get(key.public_key, 0)
        next_nonces[key.public_key] = nonce + 1
        payload = f"height {height} tx {i}".encode()
        txs.append(
            sign_transaction(
                key, chain_id=chain_id, namespace=7, nonce=nonce, gas_price=10 + i, payload=payload
            )
        )
    return txs


def next_block(
    parent: Finalized | None,
    *,
    chain_id: str = CHAIN_ID,
    tx_count: int = 2,
    timestamp_ms: int | None = None,
) -> Finalized:
    """The block after `parent` (None: height 1), certified by a quorum."""
    height = 1 if parent is None else parent.height + 1
    nonces = {} if parent is None else parent.nonces_after
    txs = _transactions(chain_id, height, tx_count, nonces)
    changed: dict[bytes, int] = {}
    for tx in txs:
        changed[tx.sender] = tx.nonce + 1
    parent_root = genesis_state_root(chain_id) if parent is None else parent.block.header.state_root
    header = BlockHeader(
        chain_id=chain_id,
        height=height,
        round=0,
        timestamp_ms=1_700_000_000_000 + height * 1000 if timestamp_ms is None else timestamp_ms,
        parent_id=ZERO_ID if parent is None else parent.block_id,
        tx_root=tx_root(tx_id(tx) for tx in txs),
        namespace_root=block_namespace_root(txs, [tx_id(tx) for tx in txs]),
        state_root=state_root(parent_root, changed),
        proposer=height % len(VALIDATOR_KEYS),
        last_commit_id=ZERO_ID if parent is None else parent.commit_id,
    )
    block = Block(header, txs)
    return Finalized(block, certify(header), changed, {**nonces, **changed})


@functools.cache
def build_chain(length: int, chain_id: str = CHAIN_ID) -> tuple[Finalized, ...]:
    """Heights 1..length; block h holds h % 4 transactions (some are empty)."""
    chain: list[Finalized] = []
    for height in range(1, length + 1):
        parent = chain[-1] if chain else None
        chain.append(next_block(parent, chain_id=chain_id, tx_count=height % 4))
    return tuple(chain)


def with_header(item: Finalized, **changes: object) -> Finalized:
    """`item` with header fields changed, re-certified for the new block."""
    header = msgspec.structs.replace(item.block.header, **changes)
    block = Block(header, item.block.txs)
    return Finalized(block, certify(header), item.next_nonces, item.nonces_after)
