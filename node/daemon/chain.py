"""The finalized chain as the node sees it: committing decided blocks and
publishing each commit, one per height in height order.

A commit is published twice over. Its `Committed` record goes to the
`on_commit` subscribers, synchronously and in the order they subscribed,
before anything else runs (the node's are its metrics, then `PoolPruner`,
which clears the block's transactions and the ones it made stale from the
pool and the journal). And `finalized` wakes: streaming subscribers (an SSE
client, the batcher) read from the store, not from a queue, so a slow one
falls behind without holding memory and catches up by reading, and one that
starts late replays from any height.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable

import trio

from consensus.blocks import next_nonces
from consensus.core import Anchor
from node.api.backend import Finalized
from sequencer.ids import BlockFacts, block_facts, genesis_state_root
from sequencer.mempool import Mempool
from sequencer.types import ZERO_ID, Block, CommitCertificate, Genesis
from storage.store import Store

__all__ = ["Chain", "Committed", "PoolPruner"]

log = logging.getLogger("sequencer.chain")


@dataclasses.dataclass(frozen=True, slots=True)
class Committed:
    """What one commit published to its subscribers."""

    block: Block
    certificate: CommitCertificate
    facts: BlockFacts  # the block's ids and next nonces, computed once
    synced: bool  # durable already (False: a catch-up block, synced with its response)


class PoolPruner:
    """A commit's subscriber that clears the pool: the block's transactions and
    any it made stale leave the mempool and the journal."""

    def __init__(self, mempool: Mempool, store: Store) -> None:
        self._mempool = mempool
        self._store = store

    def __call__(self, committed: Committed) -> None:
        nonces = committed.facts.next_nonces
        assert nonces is not None, "a published commit carries its nonce changes"
        removed = self._mempool.on_committed(nonces)
        if removed:
            self._store.remove_journal(entry.seq for entry in removed)


def _ignore(operation: str, seconds: float) -> None:
    """The default storage-timing hook: metrics replace it."""


class Chain:
    def __init__(self, genesis: Genesis, store: Store, mempool: Mempool) -> None:
        self.genesis = genesis
        self.store = store
        self.mempool = mempool
        self._committed = trio.Event()
        # Told of each commit, in height order.
        self.on_commit: list[Callable[[Committed], None]] = []
        self.on_storage_write: Callable[[str, float], None] = _ignore

    @property
    def height(self) -> int:
        return self.store.height()

    def state_root(self) -> bytes:
        tip = self.store.tip()
        return genesis_state_root(self.genesis.chain_id) if tip is None else tip.state_root

    def anchor(self) -> Anchor:
        """What the next height builds on."""
        tip = self.store.tip()
        if tip is None:
            return Anchor(0, ZERO_ID, self.genesis.genesis_time_ms, None)
        header = self.store.header(tip.height)
        assert header is not None
        return Anchor(
            tip.height, tip.block_id, header.timestamp_ms, self.store.certificate(tip.height)
        )

    def commit(
        self,
        block: Block,
        certificate: CommitCertificate,
        parent_certificate: CommitCertificate | None,
        *,
        sync: bool = True,
        facts: BlockFacts | None = None,
    ) -> None:
        """Store a decided block (durably, unless `sync` is False: block sync
        commits a response's blocks unsynced and then calls `sync`), then
        publish it. `facts`, when the consensus carried them, are the block's
        ids and, when it checked the block against this state, its nonce
        changes."""
        if facts is None:
            facts = block_facts(block)
        changed = facts.next_nonces
        if changed is None:
            changed = next_nonces(block.txs, self.store.next_nonce)
            assert changed is not None, "the core decided a block that does not apply"
        started = time.perf_counter()
        stored = self.store.commit_block(
            block, certificate, changed, parent_certificate, sync=sync, facts=facts
        )
        if not stored:
            return  # already stored (a replay)
        if sync:  # the metric is of synced writes; `sync` reports the catch-up ones
            self.on_storage_write("commit_block", time.perf_counter() - started)
        committed = Committed(block, certificate, facts._replace(next_nonces=changed), sync)
        for subscriber in self.on_commit:
            subscriber(committed)
        self._committed.set()
        self._committed = trio.Event()
        if not sync:
            return  # fetched by block sync: the driver logs one line per response
        # Latency: from the proposer's timestamp to finality here.
        latency_ms = max(0, time.time_ns() // 1_000_000 - block.header.timestamp_ms)
        log.info(
            "finalized height=%d txs=%d round=%d latency_ms=%d block=%s",
            block.header.height,
            len(block.txs),
            certificate.round,
            latency_ms,
            facts.block_id.hex()[:16],
        )

    def sync(self) -> None:
        """Make the blocks committed with `sync=False` durable."""
        started = time.perf_counter()
        self.store.sync()
        self.on_storage_write("sync", time.perf_counter() - started)

    async def finalized(self, from_height: int) -> AsyncIterator[Finalized]:
        """Finalized blocks from `from_height` on: stored ones, then each new one."""
        height = max(1, from_height)
        while True:
            committed = self._committed  # taken before reading: no commit is missed
            while height <= self.store.height():
                sized = self.store.sized_block(height)
                certificate = self.store.certificate(height)
                assert sized is not None
                assert certificate is not None
                yield Finalized(sized[0], certificate, sized[1])
                height += 1
            await committed.wait()
