"""What the `ethereum` sink sent: its nonces, every version signed for each, and
the references that follow a batch.

A reference is a transaction hash `post` returned. The batch behind it may
travel in other transactions later (a replacement with higher fees, a
re-send with a fresh nonce), so every hash maps to the record of the batch's
current nonce, old references included. The ledger is bounded: beyond
`TRACKED_NONCES_MAX` nonces the lowest are forgotten (a forgotten reference
is looked up on the L1 again). Apart from `sequencer.l1.ethereum` because
keeping the two maps consistent is bookkeeping, not the sink's policy.
"""

from __future__ import annotations

import dataclasses

from sequencer.l1.jsonrpc import Fees

__all__ = ["TRACKED_NONCES_MAX", "Sent", "SentLedger"]

TRACKED_NONCES_MAX = 1024  # transactions remembered for wait_confirmed


@dataclasses.dataclass(slots=True)
class Sent:
    """One nonce of ours carrying one batch, and every version signed for it."""

    nonce: int
    batch_number: int
    encoding: bytes
    gas: int
    fees: Fees
    hashes: list[str]  # oldest first; any one of them may be mined
    sent_at: float  # anyio clock, when the newest version was sent (or adopted)
    bumps: int = 0
    mined: str | None = None


class SentLedger:
    """The `Sent` records by nonce, and by every hash that refers to one."""

    __slots__ = ("by_hash", "by_nonce")

    def __init__(self) -> None:
        self.by_nonce: dict[int, Sent] = {}
        self.by_hash: dict[str, Sent] = {}  # every version, and references that moved

    def of_batch(self, number: int) -> Sent | None:
        return next((s for s in self.by_nonce.values() if s.batch_number == number), None)

    def track(self, sent: Sent) -> None:
        self.by_nonce[sent.nonce] = sent
        for tx_hash in sent.hashes:
            self.by_hash.setdefault(tx_hash, sent)
        while len(self.by_nonce) > TRACKED_NONCES_MAX:
            self.forget(self.by_nonce[min(self.by_nonce)])

    def forget(self, sent: Sent) -> None:
        if self.by_nonce.get(sent.nonce) is sent:
            del self.by_nonce[sent.nonce]
        for tx_hash in [h for h, s in self.by_hash.items() if s is sent]:
            del self.by_hash[tx_hash]

    def move(self, old: Sent, new: Sent) -> None:
        """The batch of `old` now travels in `new`: every reference to `old` follows."""
        references = [h for h, s in self.by_hash.items() if s is old]
        self.forget(old)
        self.track(new)
        for tx_hash in references:
            self.by_hash[tx_hash] = new
