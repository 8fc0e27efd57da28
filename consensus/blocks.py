"""Building blocks and checking them.

Validity is split in two, by what the check needs:

- `structural_problem`: everything decidable from the block, the parent and
  the consensus parameters (chain, height, proposer, links, timestamps, tx
  and gas limits, tx root, namespace root). Pure; the core runs it on every proposal.
- `state_check`: what needs the chain state (each sender's next nonce, the
  state root) and the signatures of transactions the caller has not verified
  yet (a node verifies each transaction once, on entry). The
  driver runs it when the core asks (`ValidateBlock`).

Both return None for a valid block, or a short reason code (stable, for
metrics and logs). Bad blocks come from peers: they are never exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from sequencer.crypto import verify_transaction
from sequencer.ids import BlockFacts, block_id, gas, state_root, tx_id, tx_root
from sequencer.namespaces import namespace_entries, namespace_root
from sequencer.types import Block, BlockHeader, ConsensusParams, Transaction

__all__ = [
    "ParentInfo",
    "StateCheck",
    "block_namespace_root",
    "build_block",
    "next_nonces",
    "state_check",
    "state_problem",
    "structural_problem",
]

NonceLookup = Callable[[bytes], int]


class ParentInfo(NamedTuple):
    """The block a new block is checked against (the chain tip)."""

    height: int
    block_id: bytes
    timestamp_ms: int


def next_nonces(txs: Iterable[Transaction], next_nonce: NonceLookup) -> dict[bytes, int] | None:
    """The next nonce of each sender after `txs`, or None if a nonce is out of order.

    Each sender's transactions must carry consecutive nonces starting at its
    next nonce.
    """
    changed: dict[bytes, int] = {}
    for tx in txs:
        expected = changed.get(tx.sender)
        if expected is None:
            expected = next_nonce(tx.sender)
        if tx.nonce != expected:
            return None
        changed[tx.sender] = expected + 1
    return changed


def structural_problem(
    block: Block,
    *,
    chain_id: str,
    parent: ParentInfo,
    last_commit_id: bytes,
    proposal_round: int,
    proposer_of: Callable[[int], int],
    params: ConsensusParams,
    now_ms: int | None,
    clock_drift_ms_max: int,
    tx_ids: Sequence[bytes] | None = None,
) -> str | None:
    """Why `block` cannot be the next block after `parent`, or None.

    `now_ms` None leaves out the one check that depends on the clock (the
    timestamp not too far ahead), which the caller makes on its own.
    `tx_ids`, when the caller computed them, are the block's transaction ids."""
    header = block.header
    problem = _header_problem(
        header,
        chain_id,
        parent,
        last_commit_id,
        proposal_round,
        proposer_of,
        now_ms,
        clock_drift_ms_max,
    )
    if problem is not None:
        return problem
    ids = [tx_id(tx) for tx in block.txs] if tx_ids is None else tx_ids
    return _body_problem(block.txs, ids, header, chain_id, params)


def _header_problem(
    header: BlockHeader,
    chain_id: str,
    parent: ParentInfo,
    last_commit_id: bytes,
    proposal_round: int,
    proposer_of: Callable[[int], int],
    now_ms: int | None,
    clock_drift_ms_max: int,
) -> str | None:
    ahead_ok = now_ms is None or header.timestamp_ms <= now_ms + clock_drift_ms_max
    checks = [
        (header.chain_id == chain_id, "wrong_chain"),
        (header.height == parent.height + 1, "wrong_height"),
        (header.parent_id == parent.block_id, "wrong_parent"),
        (header.last_commit_id == last_commit_id, "wrong_last_commit"),
        # A block keeps the round it was first proposed in when re-proposed later.
        (header.round <= proposal_round, "round_from_the_future"),
        (header.proposer == proposer_of(header.round), "wrong_proposer"),
        (header.timestamp_ms > parent.timestamp_ms, "timestamp_not_after_parent"),
        (ahead_ok, "timestamp_in_the_future"),
    ]
    return next((reason for ok, reason in checks if not ok), None)


def _body_problem(
    txs: Sequence[Transaction],
    ids: Sequence[bytes],
    header: BlockHeader,
    chain_id: str,
    params: ConsensusParams,
) -> str | None:
    if len(txs) > params.max_block_txs:
        return "too_many_txs"
    if sum(gas(tx) for tx in txs) > params.max_block_gas:
        return "too_much_gas"
    if any(tx.chain_id != chain_id for tx in txs):
        return "tx_wrong_chain"
    if len(set(ids)) != len(ids):
        return "duplicate_tx"
    root = tx_root(ids)
    if root != header.tx_root:
        return "wrong_tx_root"
    if block_namespace_root(txs, ids, root) != header.namespace_root:
        return "wrong_namespace_root"
    return None


def block_namespace_root(
    txs: Sequence[Transaction], ids: Sequence[bytes], tx_root_: bytes | None = None
) -> bytes:
    """The namespace root of a body (`tx_root_` reused when one namespace has it all)."""
    return namespace_root(namespace_entries([tx.namespace for tx in txs], ids, tx_root_))


class StateCheck(NamedTuple):
    """The state-dependent verdict on a block, and what it computed on the way."""

    problem: str | None  # None: the block applies
    next_nonces: dict[bytes, int] | None  # each sender's next nonce after it (None: bad_nonce)


def state_check(
    block: Block,
    *,
    parent_state_root: bytes,
    next_nonce: NonceLookup,
    is_verified: Callable[[bytes], bool],
    verify: Callable[[Transaction, bytes], bool],
    tx_ids: Sequence[bytes] | None = None,
) -> StateCheck:
    """Does `block` apply to the state (after `structural_problem`)? `tx_ids`,
    when the caller computed them, are the block's transaction ids; `verify`
    checks a transaction's signature (given its id, to remember it by)."""
    changed = next_nonces(block.txs, next_nonce)
    if changed is None:
        return StateCheck("bad_nonce", None)
    if state_root(parent_state_root, changed) != block.header.state_root:
        return StateCheck("wrong_state_root", changed)
    ids = [tx_id(tx) for tx in block.txs] if tx_ids is None else tx_ids
    for tx, id_ in zip(block.txs, ids, strict=True):
        if not is_verified(id_) and not verify(tx, id_):
            return StateCheck("bad_tx_signature", changed)
    return StateCheck(None, changed)


def state_problem(
    block: Block,
    *,
    parent_state_root: bytes,
    next_nonce: NonceLookup,
    is_verified: Callable[[bytes], bool],
    verify: Callable[[Transaction], bool] = verify_transaction,
) -> str | None:
    """Why `block` does not apply to the state, or None (`state_check`'s verdict)."""
    return state_check(
        block,
        parent_state_root=parent_state_root,
        next_nonce=next_nonce,
        is_verified=is_verified,
        verify=lambda tx, _id: verify(tx),
    ).problem


def build_block(
    *,
    chain_id: str,
    height: int,
    round: int,
    proposer: int,
    timestamp_ms: int,
    parent_id: bytes,
    last_commit_id: bytes,
    parent_state_root: bytes,
    txs: Sequence[Transaction],
    next_nonce: NonceLookup,
    tx_ids: Sequence[bytes] | None = None,
) -> tuple[Block, BlockFacts]:
    """A block of `txs` (already in block order, nonces in order) and its facts
    (nonce changes included). `tx_ids`, when the caller holds them (a pool
    entry carries its id), are the transactions' ids."""
    changed = next_nonces(txs, next_nonce)
    assert changed is not None, "the caller selects transactions in nonce order"
    ids = [tx_id(tx) for tx in txs] if tx_ids is None else list(tx_ids)
    root = tx_root(ids)
    header = BlockHeader(
        chain_id=chain_id,
        height=height,
        round=round,
        timestamp_ms=timestamp_ms,
        parent_id=parent_id,
        tx_root=root,
        namespace_root=block_namespace_root(txs, ids, root),
        state_root=state_root(parent_state_root, changed),
        proposer=proposer,
        last_commit_id=last_commit_id,
    )
    return Block(header, list(txs)), BlockFacts(block_id(header), ids, changed)
