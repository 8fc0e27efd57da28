"""The wallet client's protocol, pure: one function per call of the node's API.

Each `*_op` function builds a `Request` and the parser of its `Response`
into a result; `sequencer.client`'s `Client` and `AsyncClient` only move the
bytes between them, so the sync and the async client cannot disagree on what
an answer means. Parsing is strict about the fields the client reads (types,
hex lengths, required keys, consistency with the request) and ignores fields
it does not know, so a newer node can add some. An answer that does not parse
is a `ClientError` with code `bad_response`.

Apart from `sequencer.client` because it holds no I/O: no httpx, no clock.
The names that users import (`TxStatus`, the error codes) are re-exported
there; the rest serves the two clients only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from sequencer import ids
from sequencer.codec import from_builtins, parse_hex, to_builtins
from sequencer.errors import ClientError, DecodeError
from sequencer.limits import MERKLE_PATH_HASHES_MAX, U64_MAX
from sequencer.merkle import verify_inclusion
from sequencer.types import BlockHeader, InclusionProof, Transaction
from sequencer.wallet import check_u64

__all__ = [
    "BAD_PROOF",
    "BAD_RESPONSE",
    "TIMEOUT",
    "UNREACHABLE",
    "WAIT_LEVELS",
    "L1Batch",
    "Op",
    "Request",
    "Response",
    "TxStatus",
    "WaitLevel",
    "block_op",
    "check_inclusion",
    "check_wait",
    "final_status",
    "get_json_op",
    "next_nonce_op",
    "retry_wait_s",
    "status_op",
    "submit_many_op",
    "submit_op",
    "timed_out",
    "tx_status_op",
]

T = TypeVar("T")

# The client's own error codes; the node's are in `node.api.backend.ErrorCode`.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
BAD_RESPONSE = "bad_response"
BAD_PROOF = "bad_proof"

_SNIPPET_CHARS_MAX = 200
# A 429 or an overloaded 503 is asked again this many times, each after the
# wait the node names (at most this long), before it is the caller's error.
RETRIES = 3
RETRY_AFTER_S_MAX = 5.0


# ------------------------------------------------------------------ results


WaitLevel = Literal["final", "l1"]
WAIT_LEVELS: tuple[WaitLevel, ...] = ("final", "l1")


@dataclasses.dataclass(frozen=True, slots=True)
class L1Batch:
    batch_number: int
    commitment: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a transaction stands. Only a committed one has a location and proof."""

    tx_id: bytes
    status: Literal["pending", "queued", "evicted", "expired", "committed"]
    height: int | None = None
    index: int | None = None
    block_id: bytes | None = None
    proof: InclusionProof | None = None
    reason: str | None = None  # why an evicted or expired one was dropped
    l1: L1Batch | None = None  # the confirmed L1 batch holding its block, once there is one

    @property
    def committed(self) -> bool:
        return self.status == "committed"

    def reached(self, level: WaitLevel) -> bool:
        """Final (committed), or also held by a confirmed L1 batch."""
        return self.committed and (level == "final" or self.l1 is not None)

    @property
    def dropped(self) -> bool:
        """Acknowledged, then dropped from the pool: it will not commit unless sent again."""
        return self.status in ("evicted", "expired")


# ------------------------------------------------------------------ response bodies
# Unknown fields are allowed (msgspec's default) for forward compatibility.
# Hex stays `str` here and is checked (length, digits) when converted.

_U64 = Annotated[int, Meta(ge=0)]  # the upper bound is checked by `_u64`


class _ErrorInfo(Struct):
    code: Annotated[str, Meta(min_length=1, max_length=64)]
    message: str = ""


class _ErrorBody(Struct):
    error: _ErrorInfo


class _AcceptedBody(Struct):
    tx_id: str


class _BatchItem(Struct):
    tx_id: str | None = None
    error: _ErrorInfo | None = None


class _BatchBody(Struct):
    results: list[_BatchItem]


class _ProofBody(Struct):
    index: _U64
    size: _U64
    path: Annotated[list[str], Meta(max_length=MERKLE_PATH_HASHES_MAX)]


class _TxStatusBody(Struct):
    tx_id: str
    status: Literal["pending", "queued", "evicted", "expired", "committed"]
    reason: str | None = None
    height: _U64 | None = None
    index: _U64 | None = None
    block_id: str | None = None
    proof: _ProofBody | None = None
    l1: _L1Body | None = None


class _L1Body(Struct):
    batch_number: _U64
    commitment: str


class _AccountBody(Struct):
    next_nonce: _U64


class _BlockBody(Struct):
    block_id: str
    header: dict[str, Any]
    tx_ids: list[str]
    certificate: dict[str, Any]
    txs: list[dict[str, Any]] | None = None


# ------------------------------------------------------------------ protocol (pure)


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    method: Literal["GET", "POST"]
    path: str
    params: dict[str, str] | None = None
    content: bytes | None = None

    @property
    def what(self) -> str:
        return f"{self.method} {self.path}"


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    request: Request
    status: int
    body: bytes
    retry_after: str | None = None  # the Retry-After header, when the node sent one

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def retry_wait_s(response: Response, attempt: int) -> float | None:
    """A 429 `rate_limited` or 503 `overloaded` (too many connections) answer
    names how long to wait (Retry-After): the seconds to wait before asking
    again, or None to give the answer to the caller (another answer, one
    without Retry-After, or the `attempt`s allowed are spent). The node
    refused such a request before doing anything, so asking again is safe."""
    if response.status not in (429, 503) or response.retry_after is None:
        return None
    if attempt >= RETRIES:
        return None
    try:
        wait_s = float(response.retry_after)
    except ValueError:
        return None
    return min(max(wait_s, 0.0), RETRY_AFTER_S_MAX)


Op = tuple[Request, Callable[[Response], T]]


def _bad_response(response: Response, problem: str) -> ClientError:
    return ClientError(BAD_RESPONSE, f"{response.request.what}: {problem}", status=response.status)


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET_CHARS_MAX].decode("utf-8", errors="replace")
    return text + ("..." if len(body) > _SNIPPET_CHARS_MAX else "")


def _decode(response: Response, body_type: type[T]) -> T:
    try:
        return msgspec.json.decode(response.body, type=body_type)
    except msgspec.MsgspecError as exc:
        raise _bad_response(response, f"unexpected answer: {exc}") from None


def _error_of(response: Response) -> ClientError:
    """The node's error, from a non-2xx answer."""
    try:
        info = msgspec.json.decode(response.body, type=_ErrorBody).error
    except msgspec.MsgspecError:
        problem = f"HTTP {response.status} without an error object: {_snippet(response.body)!r}"
        return _bad_response(response, problem)
    return ClientError(info.code, info.message, status=response.status)


def _success(response: Response, body_type: type[T]) -> T:
    if not response.ok:
        raise _error_of(response)
    return _decode(response, body_type)


def _hex32(response: Response, text: str, path: str) -> bytes:
    try:
        return parse_hex(text, length=32, path=path)
    except DecodeError as exc:
        raise _bad_response(response, str(exc)) from None


def _u64(response: Response, value: int, path: str) -> int:
    # msgspec bounds ints at int64 in `Meta` only; larger JSON numbers decode.
    if value > U64_MAX:
        raise _bad_response(response, f"{path} is above 2^64-1")
    return value


def _tx_id_of(response: Response, accepted: str, tx: Transaction) -> bytes:
    got = _hex32(response, accepted, "$.tx_id")
    if got != ids.tx_id(tx):
        raise _bad_response(response, f"tx_id {got.hex()} is not the id of the transaction sent")
    return got


def submit_op(tx: Transaction) -> Op[bytes]:
    request = Request("POST", "/tx", content=msgspec.json.encode(to_builtins(tx)))

    def parse(response: Response) -> bytes:
        return _tx_id_of(response, _success(response, _AcceptedBody).tx_id, tx)

    return request, parse


def submit_many_op(txs: Sequence[Transaction]) -> Op[list[bytes | ClientError]]:
    content = msgspec.json.encode([to_builtins(tx) for tx in txs])
    request = Request("POST", "/txs", content=content)

    def parse(response: Response) -> list[bytes | ClientError]:
        results = _success(response, _BatchBody).results
        if len(results) != len(txs):
            raise _bad_response(response, f"{len(results)} results for {len(txs)} transactions")
        pairs = enumerate(zip(results, txs, strict=True))
        return [_batch_item(response, item, tx, i) for i, (item, tx) in pairs]

    return request, parse


def _batch_item(
    response: Response, item: _BatchItem, tx: Transaction, i: int
) -> bytes | ClientError:
    # An error wins over a tx_id (a node may name the refused transaction).
    if item.error is not None:  # no HTTP status of its own: the batch's is 200
        return ClientError(item.error.code, item.error.message)
    if item.tx_id is None:
        raise _bad_response(response, f"$.results[{i}] holds neither tx_id nor error")
    return _tx_id_of(response, item.tx_id, tx)


def tx_status_op(tx_id: bytes) -> Op[TxStatus | None]:
    request = Request("GET", f"/tx/{_hex_arg('tx_id', tx_id)}")

    def parse(response: Response) -> TxStatus | None:
        if response.status == 404:
            error = _error_of(response)
            if error.code == "not_found":
                return None
            raise error
        return _tx_status_of(response, _success(response, _TxStatusBody), tx_id)

    return request, parse


def _tx_status_of(response: Response, body: _TxStatusBody, tx_id: bytes) -> TxStatus:
    if _hex32(response, body.tx_id, "$.tx_id") != tx_id:
        raise _bad_response(response, f"the answer is about transaction {body.tx_id}")
    if body.status in ("pending", "queued"):  # a location, if any, is not final: drop it
        return TxStatus(tx_id, body.status)
    if body.status in ("evicted", "expired"):
        return TxStatus(tx_id, body.status, reason=body.reason or "")
    height, index, block_id, proof = body.height, body.index, body.block_id, body.proof
    if height is None or index is None or block_id is None or proof is None:
        raise _bad_response(response, "a committed status needs height, index, block_id, proof")
    if height < 1:
        raise _bad_response(response, f"height {height} is not a block height")
    if proof.index != index:
        raise _bad_response(response, f"the proof is for index {proof.index}, not {index}")
    inclusion = InclusionProof(
        index=_u64(response, proof.index, "$.proof.index"),
        size=_u64(response, proof.size, "$.proof.size"),
        path=[_hex32(response, h, f"$.proof.path[{i}]") for i, h in enumerate(proof.path)],
    )
    l1 = None
    if body.l1 is not None:
        l1 = L1Batch(
            _u64(response, body.l1.batch_number, "$.l1.batch_number"),
            _hex32(response, body.l1.commitment, "$.l1.commitment"),
        )
    return TxStatus(
        tx_id,
        "committed",
        height=_u64(response, height, "$.height"),
        index=index,
        block_id=_hex32(response, block_id, "$.block_id"),
        proof=inclusion,
        l1=l1,
    )


def next_nonce_op(sender: bytes) -> Op[int]:
    request = Request("GET", f"/accounts/{_hex_arg('sender', sender)}")

    def parse(response: Response) -> int:
        if response.status == 404:  # a node may not know a sender it never saw
            error = _error_of(response)
            if error.code == "not_found":
                return 0
            raise error
        body = _success(response, _AccountBody)
        return _u64(response, body.next_nonce, "$.next_nonce")

    return request, parse


def status_op() -> Op[dict[str, Any]]:
    return get_json_op("/status")


def get_json_op(path: str, params: dict[str, str] | None = None) -> Op[dict[str, Any]]:
    """Any GET whose answer is a JSON object (the light client checks it)."""
    request = Request("GET", path, params=params)
    return request, lambda response: _success(response, dict[str, Any])


def block_op(height: int | Literal["latest"], full: bool) -> Op[dict[str, Any]]:
    if height != "latest" and (isinstance(height, bool) or not isinstance(height, int)):
        raise ValueError(f"height must be an integer or 'latest', got {height!r}")
    if height != "latest":
        check_u64("height", height)
    request = Request("GET", f"/blocks/{height}", params={"full": "true"} if full else None)

    def parse(response: Response) -> dict[str, Any]:
        raw = _success(response, dict[str, Any])
        try:
            body = msgspec.convert(raw, _BlockBody)
        except msgspec.MsgspecError as exc:
            raise _bad_response(response, f"unexpected block: {exc}") from None
        if full and (body.txs is None or len(body.txs) != len(body.tx_ids)):
            raise _bad_response(response, "a full block needs txs, one per tx_id")
        return raw

    return request, parse


def _hex_arg(name: str, value: bytes) -> str:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")
    return value.hex()


def check_inclusion(status: TxStatus, block: dict[str, Any]) -> None:
    """The proof chain: tx_id in tx_root, tx_root in the header, header hashes to
    the status' block_id. (Whether that block is final is the certificate's
    business: `sequencer.certificate`, with the genesis validators.)"""
    assert status.proof is not None
    assert status.block_id is not None
    where = f"transaction {status.tx_id.hex()} at height {status.height}"
    try:  # strict, unlike the other bodies: the header is hashed, every field counts
        header = from_builtins(block["header"], BlockHeader)
    except DecodeError as exc:
        raise ClientError(BAD_RESPONSE, f"{where}: block header: {exc}") from None
    if ids.block_id(header) != status.block_id or header.height != status.height:
        raise ClientError(BAD_PROOF, f"{where}: the block served is not the one named")
    if not verify_inclusion(status.tx_id, status.proof, header.tx_root):
        raise ClientError(BAD_PROOF, f"{where}: the proof does not reach the block's tx_root")


def check_wait(timeout: float, poll_s: float) -> None:
    if not timeout >= 0:
        raise ValueError(f"timeout must be >= 0, got {timeout!r}")
    if not poll_s > 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s!r}")


def final_status(status: TxStatus | None, level: WaitLevel = "final") -> TxStatus | None:
    """One look of `wait_final`: the status that ends the wait (committed, and
    for `level` "l1" held by a confirmed L1 batch), or None to look again. A
    dropped transaction raises, since it will not commit."""
    if level not in WAIT_LEVELS:
        raise ValueError(f"level must be one of {', '.join(WAIT_LEVELS)}, got {level!r}")
    if status is not None and status.reached(level):
        return status
    if status is not None and status.dropped:
        raise _dropped(status)
    return None


def _dropped(status: TxStatus) -> ClientError:
    return ClientError(
        status.status, f"transaction {status.tx_id.hex()} was {status.status}: {status.reason}"
    )


def timed_out(tx_id: bytes, timeout: float, last: TxStatus | None) -> ClientError:
    seen = "unknown to the node" if last is None else last.status
    if last is not None and last.committed:
        seen = "committed, in no confirmed L1 batch yet"
    return ClientError(TIMEOUT, f"transaction {tx_id.hex()} still {seen} after {timeout} s")
