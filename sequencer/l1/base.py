"""The L1 sink interface: where batch commitments are posted.

A sink posts the encoding of a batch and reads back everything
posted, so that a restarted builder neither repeats nor skips a batch and
`sequencer l1 verify` can check the L1 against the chain. Sinks are async
(trio, through anyio-neutral libraries such as httpx) and raise only
`L1Error`s: `L1UnavailableError` when trying again later may work (the L1 is
down, a timeout), `L1ConflictError` when the L1 already holds a different
batch under the same number (never retried: a human must look).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from sequencer.errors import SequencerError
from sequencer.types import BatchCommitment

__all__ = ["L1ConflictError", "L1Error", "L1UnavailableError", "PostedBatch", "Sink"]


class L1Error(SequencerError):
    """A failure talking to, or a problem found on, the L1."""


class L1UnavailableError(L1Error):
    """The L1 cannot be reached or did not answer in time: retry with backoff."""


class L1ConflictError(L1Error):
    """The L1 holds something else under a batch number we meant to post."""


@dataclasses.dataclass(frozen=True, slots=True)
class PostedBatch:
    """A batch as read back from the L1."""

    batch: BatchCommitment
    encoding: bytes  # exactly the bytes on L1 (without Ethereum's 0x01 prefix)
    reference: str  # where it is: "file:<line>" or the L1 transaction hash
    confirmed: bool


class Sink(Protocol):
    name: str

    async def post(self, batch: BatchCommitment, encoding: bytes) -> str:
        """Put `encoding` on the L1; returns its reference. Idempotent: when the
        same batch is already there, returns its reference and posts nothing."""
        ...

    async def wait_confirmed(self, reference: str) -> None:
        """Return once the posted batch is final by this sink's rule."""
        ...

    async def posted(self) -> list[PostedBatch]:
        """Every batch on the L1 from this sequencer, in batch-number order."""
        ...

    async def aclose(self) -> None: ...
