"""Transactions entering the node: from wallets (RPC) and from peers (gossip).

From a wallet: chain check, duplicate check, stale-nonce check, then one
signature verification (the cheap checks first, so that a retry or a late
gossip costs no verification), admission to the mempool, then a durable
journal write shared by everyone
who submitted meanwhile (group commit), and only then the acknowledgement
and the gossip. The journal is written in a worker thread (LevelDB releases
the GIL), so the event loop serves requests while the disk syncs; and the
transactions of one group commit go to the peers as one gossip message.
From a peer: the same checks without the journal (the node that
acknowledged it journaled it).

A failed journal write fails the node (`node.daemon.health`): its transactions get
503 `storage_failed`, and so does every later one, before it is admitted.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import trio

from net.driver import GossipNode
from net.errors import BacklogFullError
from net.wire import Topic
from node.api.backend import ErrorCode, SubmitResult
from node.daemon.health import StorageHealth
from node.daemon.messages import TX_BATCH_MAX, encode_txs
from sequencer.crypto import verify_transaction
from sequencer.ids import tx_facts, tx_id
from sequencer.mempool import AddResult, AddStatus, Mempool, PoolTx
from sequencer.types import Transaction
from storage.batch import JournalEntry
from storage.errors import StorageError
from storage.store import Store

__all__ = ["ADD_ERRORS", "Ingest", "JournalWriter"]

ADD_ERRORS: dict[AddStatus, ErrorCode] = {
    AddStatus.DUPLICATE: ErrorCode.DUPLICATE,
    AddStatus.NONCE_TOO_LOW: ErrorCode.NONCE_TOO_LOW,
    AddStatus.UNDERPRICED_REPLACEMENT: ErrorCode.UNDERPRICED_REPLACEMENT,
    AddStatus.BELOW_MIN_GAS_PRICE: ErrorCode.BELOW_MIN_GAS_PRICE,
    AddStatus.POOL_FULL: ErrorCode.MEMPOOL_FULL,
    AddStatus.SENDER_SLOTS_FULL: ErrorCode.SENDER_SLOTS_FULL,
    AddStatus.TOO_LARGE: ErrorCode.TOO_LARGE,
    AddStatus.WRONG_CHAIN: ErrorCode.WRONG_CHAIN,
}


class JournalWriter:
    """Group commit: writers wait, one synced write serves all who are waiting.

    `on_durable` gets each group's transactions once they are durable, before
    the writers wake (the node gossips them, together).
    """

    def __init__(
        self,
        store: Store,
        on_durable: Callable[[list[Transaction]], None],
        health: StorageHealth | None = None,
    ) -> None:
        self._store = store
        self._health = StorageHealth() if health is None else health
        # Set by the node to its cache of verified transaction ids.
        self.is_verified: Callable[[bytes], bool] = lambda id_: False
        self._on_durable = on_durable
        self._entries: list[JournalEntry] = []
        self._done = trio.Event()
        self._wake = trio.Event()
        self._error: StorageError | None = None
        self.writes = 0
        self.on_write: Callable[[str, float], None] = lambda operation, seconds: None

    async def write(self, entries: list[JournalEntry]) -> None:
        """Return once `entries` are durable (raises `StorageError` if they are not)."""
        self._entries.extend(entries)
        done = self._done
        self._wake.set()
        await done.wait()
        if self._error is not None:
            raise self._error

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            entries, self._entries = self._entries, []
            done, self._done = self._done, trio.Event()
            try:
                started = time.perf_counter()
                await trio.to_thread.run_sync(self._store.append_journal, entries)
                self.on_write("journal", time.perf_counter() - started)
                self._error = None
                self._on_durable([entry.tx for entry in entries])
            except StorageError as error:
                self._error = error
                self._health.fail("writing the mempool journal", error)
            self.writes += 1
            done.set()


class Ingest:
    def __init__(
        self,
        mempool: Mempool,
        journal: JournalWriter | None,
        gossip: GossipNode,
        now_ms: Callable[[], int],
        on_added: Callable[[], None],
        remember_verified: Callable[[bytes], None],
        health: StorageHealth | None = None,
    ) -> None:
        self._health = StorageHealth() if health is None else health
        # Set by the node to its cache of verified transaction ids.
        self.is_verified: Callable[[bytes], bool] = lambda id_: False
        self._mempool = mempool
        self._journal = journal
        self._gossip = gossip
        self._now_ms = now_ms
        self._on_added = on_added
        self._remember = remember_verified
        self.counts: collections.Counter[str] = collections.Counter()

    async def submit(self, txs: list[Transaction]) -> list[SubmitResult]:
        if self._health.failure is not None:
            message = f"the node's storage failed ({self._health.failure}); it accepts nothing"
            return [SubmitResult(tx_id(tx), ErrorCode.STORAGE_FAILED, message) for tx in txs]
        pooled: list[PoolTx] = []  # the pool entries made, to journal or gossip
        results: list[SubmitResult] = []
        for tx in txs:
            result, added = self._admit(tx)
            results.append(result)
            if added is not None and added.added is not None:
                pooled.append(added.added)
        if not pooled:
            return results
        if self._journal is not None:
            entries = [JournalEntry(entry.seq, entry.time_ms, entry.tx) for entry in pooled]
            try:
                await self._journal.write(entries)
            except StorageError as error:
                return [_unjournaled(r, error) for r in results]
        else:
            self.publish([entry.tx for entry in pooled])
        self._on_added()
        return results

    def _admit(self, tx: Transaction) -> tuple[SubmitResult, AddResult | None]:
        id_, size = tx_facts(tx)
        problem = self._precheck(tx, id_, size)
        if problem is not None:
            self.counts[problem.value] += 1
            return SubmitResult(id_, problem, self._explain(problem, tx)), None
        added = self._mempool.add(tx, self._now_ms(), id=id_, size=size, checked=True)
        if not added.ok:
            code = ADD_ERRORS[added.status]
            self.counts[code.value] += 1
            return SubmitResult(id_, code, self._explain(code, tx)), None
        self._remember(id_)
        self.counts["accepted"] += 1
        return SubmitResult(id_), added

    def _explain(self, code: ErrorCode, tx: Transaction) -> str:
        """The refusal's message; those about a sender's nonces name the limit
        and the nonce the node expects next, so a wallet knows what to send."""
        sender = tx.sender.hex()
        if code == ErrorCode.NONCE_TOO_LOW:
            return (
                f"nonce {tx.nonce} is below sender {sender}'s next nonce on the chain,"
                f" {self._mempool.committed_nonce(tx.sender)}; the node expects nonce"
                f" {self._mempool.next_nonce(tx.sender)} next"
            )
        if code == ErrorCode.SENDER_SLOTS_FULL:
            limit = self._mempool.config.sender_slots_max
            return (
                f"sender {sender} already has {limit} transactions in the pool (at most"
                f" mempool.sender_slots_max = {limit} per sender); the node expects nonce"
                f" {self._mempool.next_nonce(tx.sender)} next and takes more of this"
                " sender's as those commit"
            )
        return _message(code)

    def _precheck(self, tx: Transaction, id_: bytes, size: int) -> ErrorCode | None:
        # The mempool's own refusals first (a duplicate, an already committed
        # nonce: a peer's late gossip, a wallet's retry), decided once, before
        # paying for a signature check.
        status = self._mempool.check(tx, id_, size)
        if status is not None:
            return ADD_ERRORS[status]
        if self.is_verified(id_):
            return None  # these very bytes verified before (in a proposal)
        self.counts["signatures_verified"] += 1
        if not verify_transaction(tx):
            return ErrorCode.BAD_SIGNATURE
        return None

    def publish(self, txs: list[Transaction]) -> None:
        """Gossip `txs`, in messages of up to `TX_BATCH_MAX`."""
        for first in range(0, len(txs), TX_BATCH_MAX):
            batch = txs[first : first + TX_BATCH_MAX]
            try:
                self._gossip.publish_nowait(Topic.TX, encode_txs(batch))
            except BacklogFullError:
                self.counts["gossip_dropped"] += len(batch)  # peers get them in our block

    def from_peer(self, txs: list[Transaction]) -> None:
        """Transactions gossiped by a peer: admit those that are new and valid."""
        now_ms = self._now_ms()
        added = 0
        for tx in txs:
            id_, size = tx_facts(tx)
            if self._precheck(tx, id_, size) is not None:
                self.counts["peer_refused"] += 1
            elif self._mempool.add(tx, now_ms, id=id_, size=size, checked=True).ok:
                self._remember(id_)
                self.counts["peer_accepted"] += 1
                added += 1
        if added:
            self._on_added()


_MESSAGES = {
    ErrorCode.WRONG_CHAIN: "the transaction's chain_id is not this chain's",
    ErrorCode.DUPLICATE: "the transaction is already in the mempool",
    ErrorCode.BAD_SIGNATURE: "the signature does not verify against the sender's key",
}
_REFUSED_BY = {code: status for status, code in ADD_ERRORS.items()}


def _message(code: ErrorCode) -> str:
    message = _MESSAGES.get(code)
    return f"refused by the mempool: {_REFUSED_BY[code].value}" if message is None else message


def _unjournaled(result: SubmitResult, error: StorageError) -> SubmitResult:
    if not result.ok:
        return result
    return SubmitResult(result.tx_id, ErrorCode.STORAGE_FAILED, f"not durable: {error}")
