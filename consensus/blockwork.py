"""The host's work on blocks against the chain: build ours, check peers', commit.

The core asks for a block to propose (`RequestValue`), for the state check of
a peer's block (`ValidateBlock`) and for a commit (`Commit`); this answers
them over the chain, mempool and transaction ports. What one of them computes
about a block (its ids, each sender's next nonce after it) is carried to the
next in the block's `BlockFacts`, so that a block is hashed once and its
nonce changes are computed once per node.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from consensus.blocks import build_block, state_check
from consensus.messages import BlockValidated, Commit, RequestValue, ValidateBlock, ValueReady
from consensus.ports import ChainPort, MempoolPort, TransactionsPort
from sequencer.ids import BlockFacts
from sequencer.types import Block, Transaction

__all__ = ["BlockWork"]


class BlockWork:
    def __init__(
        self,
        chain_id: str,
        chain: ChainPort,
        mempool: MempoolPort,
        transactions: TransactionsPort,
        counts: collections.Counter[str],
        rejected: Callable[[Block, str], None],
    ) -> None:
        """`counts` are the host's; `rejected` hears of each block the state check refused."""
        self._chain_id = chain_id
        self._chain = chain
        self._mempool = mempool
        self._transactions = transactions
        self._counts = counts
        self._rejected = rejected
        # Each sender's next nonce after a block the state check passed, by
        # block id, for its commit (this height's blocks only).
        self._checked_nonces: dict[bytes, dict[bytes, int]] = {}

    def build(self, request: RequestValue, now_ms: int) -> ValueReady:
        """A block of the pool's best transactions, with its facts."""
        chain = self._chain
        pooled = self._mempool.select(request.max_gas, request.max_txs)
        block, facts = build_block(
            chain_id=self._chain_id,
            height=request.height,
            round=request.round,
            proposer=request.proposer,
            timestamp_ms=max(now_ms, request.timestamp_ms_min),
            parent_id=request.parent_id,
            last_commit_id=request.last_commit_id,
            parent_state_root=chain.state_root(),
            txs=[entry.tx for entry in pooled],
            next_nonce=chain.next_nonce,
            tx_ids=[entry.tx_id for entry in pooled],
        )
        return ValueReady(request.height, request.round, block, facts)

    def validate(self, action: ValidateBlock) -> BlockValidated:
        """The state check of a block the core admitted (nonces, state root,
        signatures of transactions not verified before)."""
        block, facts = action.block, action.facts
        problem, changed = state_check(
            block,
            parent_state_root=self._chain.state_root(),
            next_nonce=self._chain.next_nonce,
            is_verified=self._transactions.is_verified,
            verify=self._verify_transaction,
            tx_ids=facts.tx_ids,
        )
        if problem is not None:
            self._counts[f"block_rejected_{problem}"] += 1
            self._rejected(block, problem)
        elif changed is not None:
            self._checked_nonces[facts.block_id] = changed
        return BlockValidated(facts.block_id, problem is None, problem or "")

    def commit(self, action: Commit, *, sync: bool) -> None:
        facts = self._with_nonces(action.facts)
        self._checked_nonces.clear()  # the next height's blocks are checked anew
        self._chain.commit(
            action.block, action.certificate, action.parent_certificate, sync=sync, facts=facts
        )

    def _with_nonces(self, facts: BlockFacts) -> BlockFacts:
        """The facts with the nonce changes the state check computed, if it did."""
        if facts.next_nonces is not None:
            return facts  # ours: computed while building it
        changed = self._checked_nonces.get(facts.block_id)
        return facts if changed is None else facts._replace(next_nonces=changed)

    def _verify_transaction(self, tx: Transaction, tx_id: bytes) -> bool:
        self._counts["block_txs_verified"] += 1
        return self._transactions.verify(tx, tx_id)
