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
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Annotated

from msgspec import Meta, Struct

from sequencer.codec import encode
from sequencer.ids import GAS_PER_TX, gas, tx_id
from sequencer.types import Transaction

__all__ = ["AddResult", "AddStatus", "Dropped", "Mempool", "MempoolConfig", "PoolTx"]

Positive = Annotated[int, Meta(ge=1)]


class MempoolConfig(Struct, frozen=True, forbid_unknown_fields=True):
    chain_id: str
    slots_max: Positive = 100_000  # transactions in the pool, pending and queued
    queued_slots_max: Positive = 25_000  # of which queued (not yet executable)
    sender_slots_max: Positive = 256  # transactions of one sender
    tx_bytes_max: Positive = 128 * 1024  # encoded size of one transaction
    min_gas_price: Annotated[int, Meta(ge=0)] = 1
    price_bump_percent: Annotated[int, Meta(ge=0)] = 10
    queued_lifetime_ms: Positive = 10 * 60 * 1_000
    # Ids of acknowledged transactions the pool dropped (evicted, expired),
    # with why, for `GET /tx/{id}`: at most this many, the oldest forgotten.
    dropped_log_max: Positive = 65_536


class Dropped(Struct, frozen=True):
    """Why the pool let go of a transaction it had accepted."""

    status: str  # "evicted" or "expired"
    reason: str


class _DroppedLog:
    """Dropped ids, bounded: a dict keeps insertion order, the oldest goes first.
    (Only added to at the end and trimmed at the front in bulk, so the dict's
    dead front slots are reclaimed by its resizes.)"""

    __slots__ = ("_entries", "_max")

    def __init__(self, entries_max: int) -> None:
        self._max = entries_max
        self._entries: dict[bytes, Dropped] = {}

    def add(self, tx_id: bytes, dropped: Dropped) -> None:
        self._entries.pop(tx_id, None)
        self._entries[tx_id] = dropped
        if len(self._entries) > self._max + self._max // 8:
            for old in list(itertools.islice(self._entries, len(self._entries) - self._max)):
                del self._entries[old]

    def forget(self, tx_id: bytes) -> None:
        self._entries.pop(tx_id, None)

    def get(self, tx_id: bytes) -> Dropped | None:
        return self._entries.get(tx_id)

    def __len__(self) -> int:
        return len(self._entries)


class AddStatus(Enum):
    ACCEPTED = "accepted"
    REPLACED = "replaced"
    DUPLICATE = "duplicate"
    NONCE_TOO_LOW = "nonce_too_low"
    UNDERPRICED_REPLACEMENT = "underpriced_replacement"
    BELOW_MIN_GAS_PRICE = "below_min_gas_price"
    POOL_FULL = "pool_full"
    SENDER_SLOTS_FULL = "sender_slots_full"
    TOO_LARGE = "too_large"
    WRONG_CHAIN = "wrong_chain"


class PoolTx:
    """A verified transaction in the pool, with what the pool needs about it."""

    __slots__ = ("gas", "gas_price", "nonce", "sender", "seq", "size", "time_ms", "tx", "tx_id")

    def __init__(self, tx: Transaction, tx_id: bytes, seq: int, time_ms: int, size: int) -> None:
        self.tx = tx
        self.tx_id = tx_id
        self.sender = tx.sender
        self.nonce = tx.nonce
        self.gas_price = tx.gas_price
        self.gas = gas(tx)
        self.seq = seq  # arrival order at this node (FIFO among equal prices)
        self.time_ms = time_ms
        self.size = size

    def __repr__(self) -> str:
        return f"PoolTx(nonce={self.nonce}, price={self.gas_price}, seq={self.seq})"


class AddResult(Struct, frozen=True):
    status: AddStatus
    tx_id: bytes
    added: PoolTx | None = None  # the entry to journal (accepted or replacing)
    queued: bool = False
    removed: list[PoolTx] = []  # the replaced or evicted entries, to unjournal

    @property
    def ok(self) -> bool:
        return self.status in (AddStatus.ACCEPTED, AddStatus.REPLACED)


class _Sender:
    """One sender's transactions: nonce -> entry, the pending run, the tail."""

    __slots__ = ("next_nonce", "pending", "top", "txs")

    def __init__(self, next_nonce: int) -> None:
        self.next_nonce = next_nonce  # committed: the next executable nonce
        self.txs: dict[int, PoolTx] = {}
        self.pending = 0  # txs[next_nonce .. next_nonce + pending - 1] exist
        self.top = -1  # the highest nonce held: the tail

    def tail(self) -> PoolTx:
        return self.txs[self.top]

    def tail_is_queued(self) -> bool:
        return len(self.txs) > self.pending

    def is_queued(self, nonce: int) -> bool:
        return nonce >= self.next_nonce + self.pending

    def forget(self, nonce: int) -> PoolTx:
        entry = self.txs.pop(nonce)
        if nonce == self.top:
            self.top = max(self.txs, default=-1)
        return entry


class Mempool:
    """See the module docstring. `committed_nonce(sender)` is the chain's next
    nonce for a sender the pool has not seen (the node reads its store)."""

    def __init__(self, config: MempoolConfig, committed_nonce: Callable[[bytes], int]) -> None:
        self.config = config
        self._committed_nonce = committed_nonce
        self._senders: dict[bytes, _Sender] = {}
        self._by_id: dict[bytes, PoolTx] = {}
        self._pending_count = 0
        self._seq = 0
        # Lazy heaps of sender tails, (price, -seq, sender, nonce): eviction candidates.
        self._tails_pending: list[tuple[int, int, bytes, int]] = []
        self._tails_queued: list[tuple[int, int, bytes, int]] = []
        # Lazy heap of senders by queued count, (-count, tail seq, sender): when
        # the queued slots are full at one price, the sender holding the most
        # gives way (see `_fair_share_victim`).
        self._hoarders: list[tuple[int, int, bytes]] = []
        self._queued_by_time: deque[PoolTx] = deque()  # for expiry, lazily pruned
        self._dropped = _DroppedLog(config.dropped_log_max)
        self.counters: Counter[str] = Counter()

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

    def is_stale(self, tx: Transaction) -> bool:
        """Its nonce is below the chain's: `add` would refuse it (NONCE_TOO_LOW)."""
        account = self._senders.get(tx.sender)
        committed = self._committed_nonce(tx.sender) if account is None else account.next_nonce
        return tx.nonce < committed

    def statistics(self) -> dict[str, int]:
        return {
            "pending": self._pending_count,
            "queued": len(self._by_id) - self._pending_count,
            "senders": len(self._senders),
            **self.counters,
        }

    # ------------------------------------------------------------ adding

    def add(
        self, tx: Transaction, now_ms: int, *, id: bytes | None = None, size: int | None = None
    ) -> AddResult:
        """Admit a verified transaction. `id` and `size` save recomputing them."""
        self.expire(now_ms)
        return self._admit(tx, id, size, now_ms, None)

    def _admit(
        self, tx: Transaction, id: bytes | None, size: int | None, time_ms: int, seq: int | None
    ) -> AddResult:
        id = tx_id(tx) if id is None else id
        size = len(encode(tx)) if size is None else size
        status = self._refusal(tx, id, size)
        if status is not None:
            return self._refused(status, id)
        account = self._account(tx.sender)
        if tx.nonce < account.next_nonce:
            return self._refused(AddStatus.NONCE_TOO_LOW, id, tx.sender)
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
        self.counters["accepted"] += 1
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
        return None

    def _refused(self, status: AddStatus, id: bytes, sender: bytes | None = None) -> AddResult:
        self.counters[f"rejected_{status.value}"] += 1
        if sender is not None and not self._senders[sender].txs:
            del self._senders[sender]  # a refused newcomer leaves no record behind
        return AddResult(status, id)

    def _account(self, sender: bytes) -> _Sender:
        account = self._senders.get(sender)
        if account is None:
            account = self._senders[sender] = _Sender(self._committed_nonce(sender))
        return account

    def _replace(self, account: _Sender, old: PoolTx, entry: PoolTx) -> AddResult:
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
        self._push_tail(account)
        self.counters["replaced"] += 1
        return AddResult(AddStatus.REPLACED, entry.tx_id, entry, queued, [old])

    def _insert(self, account: _Sender, entry: PoolTx) -> None:
        self._dropped.forget(entry.tx_id)  # sent again, and taken
        account.txs[entry.nonce] = entry
        account.top = max(account.top, entry.nonce)
        self._by_id[entry.tx_id] = entry
        if entry.nonce == account.next_nonce + account.pending:
            self._extend_pending(account)
        else:
            self._track_queued(entry)
        self._push_tail(account)

    def _extend_pending(self, account: _Sender) -> None:
        """Grow the pending run over consecutive nonces (promotes filled gaps)."""
        nonce = account.next_nonce + account.pending
        while nonce in account.txs:
            account.pending += 1
            self._pending_count += 1
            nonce += 1

    # ------------------------------------------------------------ eviction

    def _push_tail(self, account: _Sender) -> None:
        tail = account.tail()
        queued = account.tail_is_queued()
        heap = self._tails_queued if queued else self._tails_pending
        heapq.heappush(heap, (tail.gas_price, -tail.seq, tail.sender, tail.nonce))
        if queued:
            heapq.heappush(self._hoarders, (-_queued_count(account), tail.seq, tail.sender))
        if len(heap) > 4 * len(self._senders) + 1_024 or (
            len(self._hoarders) > 4 * len(self._senders) + 1_024
        ):
            self._rebuild_tails()

    def _rebuild_tails(self) -> None:
        self._tails_pending, self._tails_queued, self._hoarders = [], [], []
        for account in self._senders.values():
            self._push_tail(account)

    def _fair_share_victim(self, tx: Transaction) -> tuple[int, int, bytes, int] | None:
        """The queued tail of the sender holding the most queued transactions,
        if it holds more than `tx`'s sender would with `tx`, and pays no more.

        Without it, whoever fills the queued slots first at the top price keeps
        everyone else out for the queued lifetime: keys cost nothing, so a few
        of them could deny the pool to all. With it, a sender holding more
        than its share gives way to one holding less, the oldest first."""
        account = self._senders.get(tx.sender)
        mine = 1 + (_queued_count(account) if account is not None else 0)
        heap = self._hoarders
        while heap:
            neg_count, seq, sender = heap[0]
            other = self._senders.get(sender)
            if other is None or _queued_count(other) != -neg_count or other.tail().seq != seq:
                heapq.heappop(heap)  # stale: the sender's count or tail changed since
                if other is not None and other.tail_is_queued():
                    current = (-_queued_count(other), other.tail().seq, sender)
                    if current != (neg_count, seq, sender):
                        heapq.heappush(heap, current)
                continue
            if sender == tx.sender:
                return None  # the newcomer's own sender holds the most
            if -neg_count <= mine:
                return None
            tail = other.tail()
            if tail.gas_price > tx.gas_price:
                return None  # never evict a better-priced transaction
            return (tail.gas_price, -tail.seq, sender, tail.nonce)
        return None

    def _valid_tail(self, entry: tuple[int, int, bytes, int], queued: bool) -> bool:
        _, neg_seq, sender, nonce = entry
        account = self._senders.get(sender)
        if account is None or account.top != nonce:
            return False
        return account.txs[nonce].seq == -neg_seq and account.tail_is_queued() == queued

    def _cheapest(self, queued: bool, exclude: bytes) -> tuple[int, int, bytes, int] | None:
        """The cheapest valid tail in one heap, not of sender `exclude` (left in place)."""
        heap = self._tails_queued if queued else self._tails_pending
        skipped = []
        found = None
        while heap:
            entry = heap[0]
            if not self._valid_tail(entry, queued):
                heapq.heappop(heap)
            elif entry[2] == exclude:
                skipped.append(heapq.heappop(heap))
            else:
                found = entry
                break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

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
        candidates = [self._cheapest(True, tx.sender)]
        if not only_queued:
            candidates.append(self._cheapest(False, tx.sender))
        victims = [c for c in candidates if c is not None]
        if not victims:
            return None
        victim = min(victims)
        reason = (
            f"the pool was full: evicted for a transaction paying {tx.gas_price} (this one paid %d)"
        )
        if victim[0] >= tx.gas_price:
            # No cheaper one: among queued ones, the biggest holder gives way.
            fair = self._fair_share_victim(tx) if only_queued else None
            if fair is None:
                return None  # never evict a better- or equally-priced transaction
            victim = fair
            held = _queued_count(self._senders[victim[2]])
            reason = (
                f"the queued slots were full: its sender held {held} queued transactions,"
                f" more than the newcomer's (it paid %d)"
            )
        account = self._senders[victim[2]]
        entry = account.txs[victim[3]]
        self._remove(account, entry)
        reason %= entry.gas_price
        self._dropped.add(entry.tx_id, Dropped("evicted", reason))
        self.counters["evicted"] += 1
        return [entry]

    # ------------------------------------------------------------ removing

    def _remove(self, account: _Sender, entry: PoolTx) -> None:
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
            self._push_tail(account)
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
        self.counters["expired"] += len(expired)
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
                self._push_tail(account)
            else:
                del self._senders[sender]
        self.counters["committed_or_stale"] += len(removed)
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


def _queued_count(account: _Sender) -> int:
    return len(account.txs) - account.pending
