"""What the RPC layer needs from a running node, and the stable error codes.

The Starlette app (`node.api.rpc`) is written against `Backend`; the node runtime
implements it. Error codes are part of the API: wallets match on
`error.code`, so a code is never renamed and its HTTP status never changes.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator
from typing import Any, Protocol

from sequencer.genesis import Genesis
from sequencer.mempool import Mempool
from sequencer.types import Block, CommitCertificate, Transaction
from storage.store import Store

__all__ = ["HTTP_STATUS", "Backend", "ErrorCode", "Finalized", "SubmitResult"]


class ErrorCode(enum.StrEnum):
    # 400: the request can never succeed as sent.
    MALFORMED = "malformed"  # not JSON, wrong shape, unknown field, bad hex
    BAD_SIGNATURE = "bad_signature"
    WRONG_CHAIN = "wrong_chain"
    BELOW_MIN_GAS_PRICE = "below_min_gas_price"
    BAD_REQUEST = "bad_request"  # a bad path or query parameter
    # 408: the request body did not arrive within the deadline.
    REQUEST_TIMEOUT = "request_timeout"
    # 404
    NOT_FOUND = "not_found"
    # 409: conflicts with the node's state.
    DUPLICATE = "duplicate"
    NONCE_TOO_LOW = "nonce_too_low"
    UNDERPRICED_REPLACEMENT = "underpriced_replacement"
    # 413
    TOO_LARGE = "too_large"  # one transaction above the mempool's size limit
    BODY_TOO_LARGE = "body_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    # 431: the HTTP server's own refusal of oversized request headers.
    HEADERS_TOO_LARGE = "headers_too_large"
    # 429: try again later.
    MEMPOOL_FULL = "mempool_full"
    SENDER_SLOTS_FULL = "sender_slots_full"
    RATE_LIMITED = "rate_limited"
    # 503
    NOT_READY = "not_ready"
    STORAGE_FAILED = "storage_failed"
    OVERLOADED = "overloaded"  # too many connections, in all or from this client
    # 500: a bug in the node, never the client's fault.
    INTERNAL = "internal"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED: 400,
    ErrorCode.BAD_SIGNATURE: 400,
    ErrorCode.WRONG_CHAIN: 400,
    ErrorCode.BELOW_MIN_GAS_PRICE: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.DUPLICATE: 409,
    ErrorCode.NONCE_TOO_LOW: 409,
    ErrorCode.UNDERPRICED_REPLACEMENT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.BATCH_TOO_LARGE: 413,
    ErrorCode.HEADERS_TOO_LARGE: 431,
    ErrorCode.MEMPOOL_FULL: 429,
    ErrorCode.SENDER_SLOTS_FULL: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NOT_READY: 503,
    ErrorCode.STORAGE_FAILED: 503,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.INTERNAL: 500,
}


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitResult:
    """The fate of one submitted transaction: accepted (durable) or refused."""

    tx_id: bytes
    error: ErrorCode | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass(frozen=True, slots=True)
class Finalized:
    """A finality event: one per height, in height order."""

    block: Block
    certificate: CommitCertificate
    size: int = 0  # of the block's canonical encoding, as stored (0: not told)


class Backend(Protocol):
    """The node as the RPC sees it. Reads go straight to `store` and `mempool`
    (single-threaded trio: no locking); writes go through `submit`."""

    genesis: Genesis
    store: Store
    mempool: Mempool

    def ready(self) -> bool:
        """Synced with peers and connected: accepting transactions."""
        ...

    def failure(self) -> str | None:
        """None while the node works; once its storage failed, what failed
        (`node.daemon.health`): it then answers 503 `storage_failed` until restarted."""
        ...

    async def submit(self, txs: list[Transaction]) -> list[SubmitResult]:
        """Verify, admit, journal (durably) and gossip; one result per transaction,
        in order. A result without error means the transaction is durable."""
        ...

    def status(self) -> dict[str, Any]:
        """JSON-ready node status: height, round, step, peers, mempool sizes."""
        ...

    def peers(self) -> list[dict[str, Any]]: ...

    def batches(self, first: int, limit: int) -> list[dict[str, Any]]:
        """L1 batch records from number `first` (empty when this node posts none)."""
        ...

    def batch(self, number: int) -> dict[str, Any] | None: ...

    def l1_batch_of(self, height: int) -> tuple[int, bytes] | None:
        """(batch number, commitment) of the confirmed L1 batch holding block
        `height`; None while none does (or this node posts no batches)."""
        ...

    def finalized(self, from_height: int) -> AsyncIterator[Finalized]:
        """Finalized blocks from `from_height` on, stored ones first, then live, forever."""
        ...

    def metrics(self) -> bytes:
        """The Prometheus text exposition of this node's registry."""
        ...
