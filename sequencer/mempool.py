"""A gas-priced mempool with per-sender nonce order.

Pure: time is an argument, nothing is read from a clock or a disk. The rules
follow geth's legacypool:

- Each sender has *pending* transactions (consecutive nonces from its next
  committed nonce: executable now) and *queued* ones (after a nonce gap).
  Queued ones are promoted when the gap fills and expire after
  `queued_lifetime_ms`.
- A transaction with the nonce of one already in the pool replaces it only if
  it pays at least `price_bump_percent` more.
- Limits: all slots, queued slots, slots per sender, transaction size, minimum
  gas price. When the pool is full, a newcomer evicts the cheapest sender
  *tail* (a sender's highest nonce, so eviction never opens a nonce gap) if it
  pays strictly more; a newcomer that would only be queued may evict only
  queued transactions, never executable ones (geth's rule against future
  transactions pushing out pending ones).
- `select(max_gas, max_txs)` returns the block order: highest gas
  price first, arrival order among equals, each sender's nonces in order
  (geth's price-and-nonce heap).

Signatures and chain ids are checked by the caller once, on entry; the pool
trusts what it is given. Every change reports the entries it added or removed
(`PoolTx.seq` keys the store's journal, see `storage`).

This module holds the rules; the records it passes around are in
`sequencer.mempool_types` (re-exported here, where they are imported from)
and the structures that index the pool in `sequencer.mempool_index`.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping

from sequencer.codec import encode
from sequencer.ids import GAS_PER_TX, tx_id
from sequencer.mempool_index import DroppedLog, SenderTxs, TailIndex, queued_count
from sequencer.mempool_types import (
    AddResult,
    AddStatus,
    Dropped,
    MempoolConfig,
    MempoolStatistics,
    PoolTx,
)
from sequencer.types import Transaction

__all__ = [
    "AddResult",
    "AddStatus",
    "Dropped",
    "Mempool",
    "MempoolConfig",
    "MempoolStatistics",
    "PoolTx",
]


class Mempool:
    """See the module docstring. `committed_nonce(sender)` is the chain's next
    nonce for a sender the pool has not seen (the node reads its store)."""

    def __init__(self, config: MempoolConfig, committed_nonce: Callable[[bytes], int]) -> None:
        self.config = config
        self._committed_nonce = committed_nonce
        self._senders: dict[bytes, SenderTxs] = {}
        self._by_id: dict[bytes, PoolTx] = {}
        self._pending_count = 0
        self._seq = 0
        self._tails = TailIndex(self._senders)  # eviction candidates
        self._queued_by_time: deque[PoolTx] = deque()  # for expiry, lazily pruned
        self._dropped = DroppedLog(config.dropped_log_max)
        # Counts since start, as `MempoolStatistics` names them.
        self._accepted = self._replaced = self._evicted = self._expired = 0
        self._committed_or_stale = 0
        self._rejected: Counter[AddStatus] = Counter()

    # ------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._by_id

    def get(self, tx_id: bytes) -> PoolTx | None:
        return self._by_id.get(tx_id)

    def state(self, tx_id: bytes) -> str | None:
        """ "pending" (executable), "queued" (behind a nonce gap), or None."""
        entry = self._by_id.get(tx_id)
        if entry is None:
            return None
        return "queued" if self._senders[entry.sender].is_queued(entry.nonce) else "pending"

    def dropped(self, tx_id: bytes) -> Dropped | None:
        """Why the pool dropped this accepted transaction, if it did (and recalls it)."""
        return self._dropped.get(tx_id)

    def transactions(self, limit: int) -> list[Transaction]:
        """Up to `limit` pooled transactions, oldest first (to announce them again)."""
        oldest = sorted(self._by_id.values(), key=lambda entry: entry.seq)
        return [entry.tx for entry in oldest[:limit]]

    def next_nonce(self, sender: bytes) -> int:
        """The nonce a sender's next transaction should carry (pool included)."""
        account = self._senders.get(sender)
        if account is None:
            return self._committed_nonce(sender)
        return account.next_nonce + account.pending

    def committed_nonce(self, sender: bytes) -> int:
        """The chain's next nonce for a sender (what a block may take next)."""
        account = self._senders.get(sender)
        return self._committed_nonce(sender) if account is None else account.next_nonce

    def has_pending(self) -> bool:
        """Does the pool hold executable transactions (a block could take them)?"""
        return self._pending_count > 0

    def is_stale(self, tx: Transaction) -> bool:
        """Its nonce is below the chain's: `add` would refuse it (NONCE_TOO_LOW)."""
        account = self._senders.get(tx.sender)
        committed = self._committed_nonce(tx.sender) if account is None else account.next_nonce
        return tx.nonce < committed

    def check(self, tx: Transaction, id: bytes, size: int) -> AddStatus | None:
        """The refusals decidable before the caller pays for a signature check
        (chain, size, price floor, duplicate, stale nonce): the status `add`
        would return, counted as its refusal; None if `add(..., checked=True)`
        may take it (with no change to the pool in between)."""
        status = self._refusal(tx, id, size)
        if status is not None:
            self._refused(status, id)
        return status

    def statistics(self) -> MempoolStatistics:
        return MempoolStatistics(
            pending=self._pending_count,
            queued=len(self._by_id) - self._pending_count,
            senders=len(self._senders),
            accepted=self._accepted,
            replaced=self._replaced,
            evicted=self._evicted,
            expired=self._expired,
            committed_or_stale=self._committed_or_stale,
            rejected=dict(self._rejected),
        )

    # ------------------------------------------------------------ adding

    def add(
        self,
        tx: Transaction,
        now_ms: int,
        *,
        id: bytes | None = None,
        size: int | None = None,
        checked: bool = False,
    ) -> AddResult:
        """Admit a verified transaction. `id` and `size` save recomputing them;
        `checked`: `check` passed it just before, so its refusals are not
        decided twice."""
        self.expire(now_ms)  # removes queued entries only: what `check` found stays true
        return self._admit(tx, id, size, now_ms, None, checked)

    def _admit(
        self,
        tx: Transaction,
        id: bytes | None,
        size: int | None,
        time_ms: int,
        seq: int | None,
        checked: bool = False,
    ) -> AddResult:
        id = tx_id(tx) if id is None else id
        size = len(encode(tx)) if size is None else size
        if not checked:
            status = self._refusal(tx, id, size)
            if status is not None:
                return self._refused(status, id)
        account = self._account(tx.sender)
        existing = account.txs.get(tx.nonce)
        if existing is not None:
            bump = 100 + self.config.price_bump_percent
            if tx.gas_price * 100 < existing.gas_price * bump:
                return self._refused(AddStatus.UNDERPRICED_REPLACEMENT, id)
            entry = PoolTx(tx, id, self._next_seq(seq), time_ms, size)
            return self._replace(account, existing, entry)
        if len(account.txs) >= self.config.sender_slots_max:
            return self._refused(AddStatus.SENDER_SLOTS_FULL, id)
        # A newcomer at the end of the pending run is executable, not queued.
        evicted = self._make_room(tx, tx.nonce != account.next_nonce + account.pending)
        if evicted is None:
            return self._refused(AddStatus.POOL_FULL, id, tx.sender)
        entry = PoolTx(tx, id, self._next_seq(seq), time_ms, size)
        self._insert(account, entry)
        self._accepted += 1
        return AddResult(AddStatus.ACCEPTED, id, entry, account.is_queued(tx.nonce), evicted)

    def _next_seq(self, seq: int | None) -> int:
        """A new arrival sequence, or a restored one (later arrivals stay above it)."""
        if seq is None:
            self._seq += 1
            return self._seq
        self._seq = max(self._seq, seq)
        return seq

    def _refusal(self, tx: Transaction, id: bytes, size: int) -> AddStatus | None:
        config = self.config
        if tx.chain_id != config.chain_id:
            return AddStatus.WRONG_CHAIN
        if size > config.tx_bytes_max:
            return AddStatus.TOO_LARGE
        if tx.gas_price < config.min_gas_price:
            return AddStatus.BELOW_MIN_GAS_PRICE
        if id in self._by_id:
            return AddStatus.DUPLICATE
        if self.is_stale(tx):
            return AddStatus.NONCE_TOO_LOW
        return None

    def _refused(self, status: AddStatus, id: bytes, sender: bytes | None = None) -> AddResult:
        self._rejected[status] += 1
        if sender is not None and not self._senders[sender].txs:
            del self._senders[sender]  # a refused newcomer leaves no record behind
        return AddResult(status, id)

    def _account(self, sender: bytes) -> SenderTxs:
        account = self._senders.get(sender)
        if account is None:
            account = self._senders[sender] = SenderTxs(self._committed_nonce(sender))
        return account

    def _replace(self, account: SenderTxs, old: PoolTx, entry: PoolTx) -> AddResult:
        """Same sender and nonce, paid at least the bump more (checked by the caller)."""
        del self._by_id[old.tx_id]
        reason = f"replaced by {entry.tx_id.hex()}, same sender and nonce, paying more"
        self._dropped.add(old.tx_id, Dropped("evicted", reason))
        self._dropped.forget(entry.tx_id)
        account.txs[entry.nonce] = entry
        self._by_id[entry.tx_id] = entry
        queued = account.is_queued(entry.nonce)
        if queued:
            self._track_queued(entry)
        self._tails.push(account)
        self._replaced += 1
        return AddResult(AddStatus.REPLACED, entry.tx_id, entry, queued, [old])

    def _insert(self, account: SenderTxs, entry: PoolTx) -> None:
        self._dropped.forget(entry.tx_id)  # sent again, and taken
        account.txs[entry.nonce] = entry
        account.top = max(account.top, entry.nonce)
        self._by_id[entry.tx_id] = entry
        if entry.nonce == account.next_nonce + account.pending:
            self._extend_pending(account)
        else:
            self._track_queued(entry)
        self._tails.push(account)

    def _extend_pending(self, account: SenderTxs) -> None:
        """Grow the pending run over consecutive nonces (promotes filled gaps)."""
        nonce = account.next_nonce + account.pending
        while nonce in account.txs:
            account.pending += 1
            self._pending_count += 1
            nonce += 1

    # ------------------------------------------------------------ eviction

    def _make_room(self, tx: Transaction, queued: bool) -> list[PoolTx] | None:
        """Evict cheaper tails until `tx` fits; None (and nothing evicted) if it cannot."""
        config = self.config
        queued_total = len(self._by_id) - self._pending_count
        need_all = len(self._by_id) + 1 - config.slots_max
        need_queued = queued_total + 1 - config.queued_slots_max if queued else 0
        if need_all <= 0 and need_queued <= 0:
            return []
        # One eviction frees one slot: enough, since we add one transaction.
        only_queued = queued or need_queued > 0
        candidates = [self._tails.cheapest(True, tx.sender)]
        if not only_queued:
            candidates.append(self._tails.cheapest(False, tx.sender))
        victims = [c for c in candidates if c is not None]
        if not victims:
            return None
        victim = min(victims)
        reason = (
            f"the pool was full: evicted for a transaction paying {tx.gas_price} (this one paid %d)"
        )
        if victim.gas_price >= tx.gas_price:
            # No cheaper one: among queued ones, the biggest holder gives way.
            fair = self._tails.fair_share_victim(tx) if only_queued else None
            if fair is None:
                return None  # never evict a better- or equally-priced transaction
            victim = fair
            held = queued_count(self._senders[victim.sender])
            reason = (
                f"the queued slots were full: its sender held {held} queued transactions,"
                f" more than the newcomer's (it paid %d)"
            )
        account = self._senders[victim.sender]
        entry = account.txs[victim.nonce]
        self._remove(account, entry)
        reason %= entry.gas_price
        self._dropped.add(entry.tx_id, Dropped("evicted", reason))
        self._evicted += 1
        return [entry]

    # ------------------------------------------------------------ removing

    def _remove(self, account: SenderTxs, entry: PoolTx) -> None:
        """Remove one entry; pending ones only as the sender's tail or below next_nonce."""
        account.forget(entry.nonce)
        del self._by_id[entry.tx_id]
        end = account.next_nonce + account.pending
        if account.next_nonce <= entry.nonce < end:
            # Only a tail leaves the pending run from inside (eviction): shorten it.
            assert entry.nonce == end - 1, "removing inside a pending run would open a gap"
            account.pending -= 1
            self._pending_count -= 1
        if account.txs:
            self._tails.push(account)
        else:
            del self._senders[entry.sender]

    def _track_queued(self, entry: PoolTx) -> None:
        """Remember a queued arrival for expiry. Entries that leave the queue
        otherwise (promoted, replaced, committed, evicted) stay until pruned;
        compact when they outnumber the live ones, so churn cannot grow it."""
        self._queued_by_time.append(entry)
        if len(self._queued_by_time) > 2 * self.config.queued_slots_max + 1_024:
            self._queued_by_time = deque(
                sorted(
                    (e for e in self._queued_by_time if self._is_live_queued(e)),
                    key=lambda e: e.time_ms,
                )
            )

    def _is_live_queued(self, entry: PoolTx) -> bool:
        account = self._senders.get(entry.sender)
        return (
            account is not None
            and account.txs.get(entry.nonce) is entry
            and account.is_queued(entry.nonce)
        )

    def expire(self, now_ms: int) -> list[PoolTx]:
        """Drop queued transactions older than the queued lifetime."""
        expired = []
        deadline = now_ms - self.config.queued_lifetime_ms
        while self._queued_by_time and self._queued_by_time[0].time_ms <= deadline:
            entry = self._queued_by_time.popleft()
            if not self._is_live_queued(entry):
                continue  # gone already, or promoted since: executable, not expired
            self._remove(self._senders[entry.sender], entry)
            reason = (
                f"queued {self.config.queued_lifetime_ms} ms behind a nonce gap"
                " without becoming executable"
            )
            self._dropped.add(entry.tx_id, Dropped("expired", reason))
            expired.append(entry)
        self._expired += len(expired)
        return expired

    def on_committed(self, next_nonces: Mapping[bytes, int]) -> list[PoolTx]:
        """A block was finalized: advance senders' nonces, drop what it made stale
        (its own transactions, and any other with a used nonce), promote the rest."""
        removed = []
        for sender, next_nonce in next_nonces.items():
            account = self._senders.get(sender)
            if account is None:
                continue
            self._pending_count -= account.pending
            stale = [n for n in account.txs if n < next_nonce]
            for nonce in stale:
                entry = account.forget(nonce)
                del self._by_id[entry.tx_id]
                removed.append(entry)
            account.next_nonce = max(account.next_nonce, next_nonce)
            account.pending = 0
            self._extend_pending(account)
            if account.txs:
                self._tails.push(account)
            else:
                del self._senders[sender]
        self._committed_or_stale += len(removed)
        return removed

    # ------------------------------------------------------------ block building

    def select(self, max_gas: int, max_txs: int) -> list[PoolTx]:
        """Executable transactions in block order, within the gas and count limits."""
        heads = [
            (-a.txs[a.next_nonce].gas_price, a.txs[a.next_nonce].seq, a.next_nonce, a)
            for a in self._senders.values()
            if a.pending
        ]
        heapq.heapify(heads)
        chosen: list[PoolTx] = []
        gas_left = max_gas
        while heads and len(chosen) < max_txs and gas_left >= GAS_PER_TX:
            _, _, nonce, account = heapq.heappop(heads)
            entry = account.txs[nonce]
            if entry.gas > gas_left:
                continue  # this sender's later nonces cannot come before it: skip the sender
            chosen.append(entry)
            gas_left -= entry.gas
            following = nonce + 1
            if following < account.next_nonce + account.pending:
                after = account.txs[following]
                heapq.heappush(heads, (-after.gas_price, after.seq, following, account))
        return chosen

    # ------------------------------------------------------------ restoring

    def restore(
        self, entries: Iterable[tuple[int, int, Transaction]], now_ms: int
    ) -> list[tuple[int, AddResult]]:
        """Re-add journaled (seq, time_ms, tx) keeping each one's seq and arrival
        time, so block order (price, then arrival) is as before; then expire
        what has grown too old. Returns (seq, result) per entry: what was not
        re-admitted (made stale by commits) is for the caller to unjournal.

        Each sender's entries go in nonce order: arrival order could open
        nonce gaps that a replacement later closed, and the transient queued
        transactions could hit the queued limit the final pool respects."""
        ordered = sorted(entries, key=lambda e: (e[2].sender, e[2].nonce, e[0]))
        results = [(seq, self._admit(tx, None, None, time_ms, seq)) for seq, time_ms, tx in ordered]
        self._queued_by_time = deque(sorted(self._queued_by_time, key=lambda e: e.time_ms))
        self.expire(now_ms)
        return results
