"""The anchor: the last finalized block, what the next height builds on."""

from __future__ import annotations

from msgspec import Struct

from sequencer.ids import commit_id
from sequencer.types import ZERO_ID, CommitCertificate

__all__ = ["Anchor"]


class Anchor(Struct, frozen=True):
    """The last finalized block: what the next height builds on."""

    height: int
    block_id: bytes
    timestamp_ms: int
    certificate: CommitCertificate | None  # None at genesis

    @property
    def commit_id(self) -> bytes:
        return ZERO_ID if self.certificate is None else commit_id(self.certificate)
