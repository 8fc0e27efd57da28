"""The mempool's vocabulary: its configuration, its entries, what `add` answers.

These are the names the node uses; `sequencer.mempool` re-exports them, and
they are imported from there. Apart from it so that the pool's rules read
without the records they pass around.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated

from msgspec import Meta, Struct

from sequencer.ids import gas
from sequencer.types import Transaction

__all__ = ["AddResult", "AddStatus", "Dropped", "MempoolConfig", "MempoolStatistics", "PoolTx"]

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


class MempoolStatistics(Struct, frozen=True):
    """What `Mempool.statistics()` reports: its size now, and counts since start."""

    pending: int = 0  # executable now
    queued: int = 0  # behind a nonce gap
    senders: int = 0
    accepted: int = 0
    replaced: int = 0  # by the same sender and nonce, paying more
    evicted: int = 0  # for a better-paying newcomer
    expired: int = 0  # queued too long
    committed_or_stale: int = 0  # removed by commits: included in a block, or made stale
    rejected: Mapping[AddStatus, int] = {}  # refused, by why

    def as_json(self) -> dict[str, int]:
        """The /status shape: sizes and counts by name, and `rejected_<status>`
        for each reason that has refused a transaction."""
        return {
            "pending": self.pending,
            "queued": self.queued,
            "senders": self.senders,
            "accepted": self.accepted,
            "replaced": self.replaced,
            "evicted": self.evicted,
            "expired": self.expired,
            "committed_or_stale": self.committed_or_stale,
            **{f"rejected_{status.value}": n for status, n in self.rejected.items() if n},
        }
