"""The mempool's indexes: each sender's transactions, the eviction candidates,
the dropped ids.

`Mempool` (`sequencer.mempool`) decides what to admit, evict, expire; these
structures answer its questions quickly: which nonces a sender holds and
which of them run without a gap (`SenderTxs`), which sender tail is the
cheapest or which sender hoards the queued slots (`TailIndex`, lazy heaps),
why an acknowledged transaction left (`DroppedLog`). Apart from the pool so
that its rules read without the bookkeeping of heaps and bounds.
"""

from __future__ import annotations

import heapq
import itertools
from typing import NamedTuple

from sequencer.mempool_types import Dropped, PoolTx
from sequencer.types import Transaction

__all__ = ["DroppedLog", "Hoarder", "SenderTxs", "Tail", "TailIndex", "queued_count"]


class Tail(NamedTuple):
    """A heap entry for a sender's tail: the cheapest comes first and, among
    equals, the latest arrival."""

    gas_price: int
    neg_seq: int  # -seq
    sender: bytes
    nonce: int


class Hoarder(NamedTuple):
    """A heap entry for a sender holding queued transactions: the one holding
    the most comes first and, among equals, the oldest tail."""

    neg_queued: int  # -its queued count
    tail_seq: int
    sender: bytes


class SenderTxs:
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


def queued_count(account: SenderTxs) -> int:
    return len(account.txs) - account.pending


class DroppedLog:
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


class TailIndex:
    """The eviction candidates of the pool's senders, in lazy heaps: entries
    are pushed on every change and the stale ones discarded when met (or all
    rebuilt when they pile up), which keeps each change O(log n).

    `senders` is the pool's own dict, read as it changes."""

    __slots__ = ("_hoarders", "_senders", "_tails_pending", "_tails_queued")

    def __init__(self, senders: dict[bytes, SenderTxs]) -> None:
        self._senders = senders
        # Sender tails, pending or queued.
        self._tails_pending: list[Tail] = []
        self._tails_queued: list[Tail] = []
        # Senders by queued count, (-count, tail seq, sender): when the queued
        # slots are full at one price, the sender holding the most gives way
        # (see `fair_share_victim`).
        self._hoarders: list[Hoarder] = []

    def push(self, account: SenderTxs) -> None:
        """Index the current tail of `account` (after any change to it)."""
        tail = account.tail()
        queued = account.tail_is_queued()
        heap = self._tails_queued if queued else self._tails_pending
        heapq.heappush(heap, Tail(tail.gas_price, -tail.seq, tail.sender, tail.nonce))
        if queued:
            heapq.heappush(self._hoarders, Hoarder(-queued_count(account), tail.seq, tail.sender))
        if len(heap) > 4 * len(self._senders) + 1_024 or (
            len(self._hoarders) > 4 * len(self._senders) + 1_024
        ):
            self._rebuild()

    def _rebuild(self) -> None:
        self._tails_pending, self._tails_queued, self._hoarders = [], [], []
        for account in self._senders.values():
            self.push(account)

    def fair_share_victim(self, tx: Transaction) -> Tail | None:
        """The queued tail of the sender holding the most queued transactions,
        if it holds more than `tx`'s sender would with `tx`, and pays no more.

        Without it, whoever fills the queued slots first at the top price keeps
        everyone else out for the queued lifetime: keys cost nothing, so a few
        of them could deny the pool to all. With it, a sender holding more
        than its share gives way to one holding less, the oldest first."""
        account = self._senders.get(tx.sender)
        mine = 1 + (queued_count(account) if account is not None else 0)
        heap = self._hoarders
        while heap:
            neg_count, seq, sender = heap[0]
            other = self._senders.get(sender)
            if other is None or queued_count(other) != -neg_count or other.tail().seq != seq:
                heapq.heappop(heap)  # stale: the sender's count or tail changed since
                if other is not None and other.tail_is_queued():
                    current = Hoarder(-queued_count(other), other.tail().seq, sender)
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
            return Tail(tail.gas_price, -tail.seq, sender, tail.nonce)
        return None

    def _valid(self, entry: Tail, queued: bool) -> bool:
        _, neg_seq, sender, nonce = entry
        account = self._senders.get(sender)
        if account is None or account.top != nonce:
            return False
        return account.txs[nonce].seq == -neg_seq and account.tail_is_queued() == queued

    def cheapest(self, queued: bool, exclude: bytes) -> Tail | None:
        """The cheapest valid tail in one heap, not of sender `exclude` (left in place)."""
        heap = self._tails_queued if queued else self._tails_pending
        skipped = []
        found = None
        while heap:
            entry = heap[0]
            if not self._valid(entry, queued):
                heapq.heappop(heap)
            elif entry.sender == exclude:
                skipped.append(heapq.heappop(heap))
            else:
                found = entry
                break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found
