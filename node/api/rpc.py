"""The node's HTTP API: a Starlette app over a `Backend`.

    POST /tx                                  one transaction object → 202 {"tx_id"}
    POST /txs                                 array of them → 200 {"results": [...]}, in order
    GET  /tx/{tx_id}                          pending or queued, evicted or expired (with
                                              the reason), or committed with a proof
    GET  /blocks/latest, /blocks/{height}     block, certificate (?full=true adds "txs")
    GET  /blocks?from=&limit=                 {"blocks": [...]}, at most `blocks_range_max`,
                                              and fewer past `response_bytes_max` bytes;
                                              streamed block by block
    GET  /namespaces/{namespace}/blocks/{height}   a namespace's txs, with proofs
    GET  /accounts/{sender}                   committed nonce and next nonce (with mempool)
    GET  /status, /validators, /peers         node, chain and peer state
    GET  /events?from=&namespace=             SSE: `event: block`, `id: <height>` per block
    GET  /health, /ready                      liveness; readiness (503 until ready); both
                                              503 `storage_failed` once the storage failed
    GET  /metrics                             Prometheus text format
    GET  /openapi.json                        OpenAPI 3.1 (`node.api.openapi`)

Every error is JSON `{"error": {"code": "<code>", "message": "..."}}` with the
status of `HTTP_STATUS[code]`: an unknown route is 404 `not_found` (a path
with a trailing slash, or a path parameter holding `/`, is not redirected), a
wrong method 405 `bad_request`, a failing store 503 `storage_failed`, and a
bug 500 `internal` (never an HTML page or a traceback).

Requests are refused before any state is touched: rate limit (a token bucket
per client IP; the probes /health, /ready and /metrics have buckets of their
own), readiness,
body size (Content-Length up front, and bytes counted while reading, so a
chunked body cannot bypass it), JSON shape. Only `Backend.submit` writes.

Every endpoint is `async`: Starlette would run a plain function in a worker
thread, and the store and mempool belong to the node's one trio thread. Only
anyio is used, so the app runs on trio (Hypercorn) and in asyncio test clients.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.api.backend import HTTP_STATUS, Backend, ErrorCode, Finalized, SubmitResult
from node.api.openapi import INTERNAL_ERROR, build_openapi
from sequencer.codec import from_json, parse_hex, refuse_duplicate_keys, to_builtins
from sequencer.errors import DecodeError
from sequencer.ids import block_id, tx_id
from sequencer.limits import U64_MAX
from sequencer.merkle import MerkleTree
from sequencer.types import Block, CommitCertificate, Transaction, TxLocation
from storage.errors import StorageError, StoreCorruptError

__all__ = [
    "BODY_COST_UNIT_BYTES",
    "KEEPALIVE_S",
    "RESPONSE_COST_UNIT_BYTES",
    "ApiError",
    "RpcLimits",
    "build_app",
    "request_tokens",
]

log = logging.getLogger(__name__)

METRICS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KEEPALIVE_S = 15.0
_PROBE_PATHS = frozenset({"/health", "/ready", "/metrics"})
# A request costs a rate-limit token, and one more per BODY_COST_UNIT_BYTES of
# body and per RESPONSE_COST_UNIT_BYTES of response: a token is about the
# node's CPU for one small request. Measured (scripts/bench_rpc.py): a body's
# transactions are decoded, verified and gossiped at about an eighth of a
# single POST /tx each, some 4 KiB of them; a full block range of 3.2 MB
# costs about 20 small requests, one per ~160 KB; 64 KiB also counts the
# bandwidth a real network pays.
BODY_COST_UNIT_BYTES = 4_096
RESPONSE_COST_UNIT_BYTES = 65_536
_STREAM_SLICE_BYTES = 65_536
_CLIENTS_MAX = 65_536  # token buckets kept; the least recently seen goes first
_UINT = re.compile(r"[0-9]{1,20}")
_encoder = msgspec.json.Encoder()


@dataclasses.dataclass(frozen=True, slots=True)
class RpcLimits:
    body_bytes_max: int = 1_048_576
    batch_txs_max: int = 1_000
    # Tokens per client IP, refilled continuously. A core serves 240-1,200
    # tokens a second, whatever they are spent on, on a 2-core machine whose
    # Ed25519 verification takes 130 us (scripts/bench_rpc.py): one address
    # takes at most about 40% of a core there, some 12% where it takes 38 us.
    requests_per_s: float = 100
    # Bucket size: what a quiet client may spend at once. At least the dearest
    # request (`dearest_request_tokens`), which may leave the bucket this far in debt.
    burst: int = 400
    # /health, /ready and /metrics, per client: scrapers and probes poll a few
    # times a second at most.
    probe_requests_per_s: float = 50
    probe_burst: int = 100
    blocks_range_max: int = 100
    # A block range stops before the block that would take its JSON past
    # this (it always holds one block): the client pages on from the last.
    response_bytes_max: int = 4 * 1024 * 1024
    # The whole request body must arrive within this, or 408 `request_timeout`.
    body_timeout_s: float = 10.0

    @property
    def body_cost_unit_bytes(self) -> int:
        return BODY_COST_UNIT_BYTES

    @property
    def response_cost_unit_bytes(self) -> int:
        return RESPONSE_COST_UNIT_BYTES

    @property
    def dearest_request_tokens(self) -> int:
        """A whole body in and a capped response out."""
        return request_tokens(self.body_bytes_max, self.response_bytes_max)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"RpcLimits.{field.name} must be positive")


class ApiError(Exception):
    """A refusal with a stable code; the app answers it as the error JSON."""

    def __init__(
        self, code: ErrorCode, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers


# ------------------------------------------------------------------ responses


def _json(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_encoder.encode(content), status, headers, media_type="application/json")


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": str(code), "message": message}}


def _error_response(
    code: str,
    message: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error JSON, with the status of `code` unless `status` is given."""
    if status is None:
        status = HTTP_STATUS.get(code, 500)  # type: ignore[call-overload]  # StrEnum keys
    return _json(_error_body(code, message), status, headers)


def _result_body(result: SubmitResult) -> dict[str, Any]:
    if result.ok:
        return {"tx_id": result.tx_id.hex()}
    assert result.error is not None
    return _error_body(result.error, result.message or result.error.replace("_", " "))


def _block_json(
    block: Block, certificate: CommitCertificate, *, full: bool, namespace: int | None = None
) -> dict[str, Any]:
    body = {
        "block_id": block_id(block.header).hex(),
        "header": to_builtins(block.header),
        "tx_ids": [tx_id(tx).hex() for tx in block.txs],
        "certificate": to_builtins(certificate),
    }
    if full:
        txs = [tx for tx in block.txs if namespace is None or tx.namespace == namespace]
        body["txs"] = to_builtins(txs)
    return body


# ------------------------------------------------------------------ request parsing


def _bad_request(message: str) -> ApiError:
    return ApiError(ErrorCode.BAD_REQUEST, message)


def _uint(text: str, name: str, minimum: int = 0) -> int:
    if _UINT.fullmatch(text) is None or not minimum <= int(text) <= U64_MAX:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise _bad_request(f"`{name}` must be an integer in {minimum}..{U64_MAX}, got {shown!r}")
    return int(text)


def _query_uint(request: Request, name: str, default: int, minimum: int = 0) -> int:
    text = request.query_params.get(name)
    return default if text is None else _uint(text, name, minimum)


def _query_namespace(request: Request) -> int | None:
    text = request.query_params.get("namespace")
    return None if text is None else _uint(text, "namespace")


def _flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "false")
    if text not in ("true", "false"):
        raise _bad_request(f"`{name}` must be true or false, got {text[:40]!r}")
    return text == "true"


def _hex32(text: str, name: str) -> bytes:
    try:
        return parse_hex(text, length=32, path=name)
    except DecodeError as exc:
        raise _bad_request(f"`{name}` must be 32 bytes of hex: {exc}") from None


def _too_large(limit: int) -> ApiError:
    # The rest of the body is never read, so the connection cannot carry
    # another request: say so, or the client's next request on it fails.
    message = f"the request body exceeds {limit} bytes"
    return ApiError(ErrorCode.BODY_TOO_LARGE, message, headers={"Connection": "close"})


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refused as soon as it is known to exceed `limit` bytes, or
    when it has not all arrived within `timeout_s` (a client that declares a
    body and sends nothing must not hold a connection, and its descriptor)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if _UINT.fullmatch(declared) is None:
            raise ApiError(ErrorCode.MALFORMED, "invalid Content-Length")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks, size = [], 0
    with anyio.move_on_after(timeout_s) as scope:
        async with contextlib.aclosing(request.stream()) as stream:
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    if scope.cancelled_caught:
        message = f"the request body did not arrive within {timeout_s:g} s"
        raise ApiError(ErrorCode.REQUEST_TIMEOUT, message, headers={"Connection": "close"})
    return b"".join(chunks)


def _decode_tx(data: bytes) -> Transaction:
    try:
        tx = from_json(data, Transaction)
        # A signed object must mean one thing to every reader.
        refuse_duplicate_keys(data, "Transaction")
    except DecodeError as exc:
        raise ApiError(ErrorCode.MALFORMED, str(exc)) from None
    return tx


def _decode_batch(data: bytes, limit: int) -> list[msgspec.Raw]:
    try:
        items = msgspec.json.decode(data, type=list[msgspec.Raw])
    except (msgspec.MsgspecError, RecursionError) as exc:
        # Skipping over an item to keep it raw recurses into it: msgspec raises
        # RecursionError (not a DecodeError) on an item nested too deeply.
        message = f"expected a JSON array of transactions: {exc}"
        raise ApiError(ErrorCode.MALFORMED, message) from None
    if len(items) > limit:
        message = f"{len(items)} transactions in one batch; at most {limit}"
        raise ApiError(ErrorCode.BATCH_TOO_LARGE, message)
    return items


def _decode_item(raw: msgspec.Raw) -> Transaction | ApiError:
    try:
        return _decode_tx(bytes(raw))
    except ApiError as exc:
        return exc


# ------------------------------------------------------------------ rate limiting


class _TokenBuckets:
    """One token bucket per client; `take` spends tokens or says how long to wait.

    An OrderedDict, least recently seen first: finding and dropping the
    oldest client is O(1) however many came and went (a plain dict's first
    key is found by walking the slots its deletions left)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, time)

    def take(self, client: str, cost: float = 1.0) -> float:
        """0.0 if the request may proceed (its `cost` spent), else the seconds until it could."""
        now = self._clock()
        tokens, then = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - then) * self._rate)
        allowed = tokens >= cost
        self._buckets[client] = (tokens - cost if allowed else tokens, now)
        self._buckets.move_to_end(client)
        if len(self._buckets) > _CLIENTS_MAX:  # a forgotten client starts with a full bucket
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (cost - tokens) / self._rate

    def charge(self, client: str, cost: float) -> None:
        """Spend `cost` more after the fact, into debt: the client waits it off."""
        if cost <= 0:
            return
        now = self._clock()
        tokens, then = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - then) * self._rate)
        self._buckets[client] = (max(tokens - cost, -self._burst), now)
        self._buckets.move_to_end(client)


def request_tokens(body_bytes: int, response_bytes: int) -> int:
    """Tokens the rate limit charges an admitted request moving these body bytes."""
    return 1 + body_bytes // BODY_COST_UNIT_BYTES + response_bytes // RESPONSE_COST_UNIT_BYTES


class _RateLimit:
    """ASGI middleware answering 429 `rate_limited` to a client over its rate.

    The probes (/health, /ready, /metrics) have buckets of their own: a
    flood of API requests does not blind the node's monitoring, and a flood
    of probes is limited too."""

    def __init__(self, app: ASGIApp, *, buckets: _TokenBuckets, probes: _TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets
        self.probes = probes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_address = scope.get("client")
        client = client_address[0] if client_address else ""
        buckets = self.probes if scope["path"] in _PROBE_PATHS else self.buckets
        wait = buckets.take(client)
        if wait:
            retry = {"Retry-After": str(math.ceil(wait))}
            message = "too many requests from this client; retry later"
            response = _error_response(ErrorCode.RATE_LIMITED, message, headers=retry)
            await response(scope, receive, send)
            return
        # The body (transactions to decode and verify) and the response (blocks
        # to encode and write) are charged once known, into debt if need be: a
        # client reading full block ranges runs out long before one sending
        # transactions one by one.
        received = sent = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def counted_send(message: Message) -> None:
            nonlocal sent
            sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counted_receive, counted_send)
        finally:
            buckets.charge(client, request_tokens(received, sent) - 1)


class _Guard:
    """ASGI middleware: an unexpected exception becomes 500 `internal` JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except ClientDisconnect:
            return
        except Exception:
            log.exception("RPC %s %s failed", scope["method"], scope["path"])
            if not started:
                message = "unexpected failure; see the node's log"
                await _error_response(INTERNAL_ERROR, message)(scope, receive, send)


# ------------------------------------------------------------------ exception handlers


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error_response(exc.code, exc.message, headers=exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    target = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        return _error_response(ErrorCode.NOT_FOUND, f"no route for {target}")
    message = f"{exc.detail}: {target}"
    return _error_response(
        ErrorCode.BAD_REQUEST, message, status=exc.status_code, headers=exc.headers
    )


async def _on_storage_error(request: Request, exc: Exception) -> Response:
    log.error("RPC %s %s: storage failed: %s", request.method, request.url.path, exc)
    message = "the node's storage failed; see its log"
    return _error_response(ErrorCode.STORAGE_FAILED, message)


# ------------------------------------------------------------------ server-sent events


class _EventStream(StreamingResponse):
    """SSE of finalized blocks: a producer task reads the backend's (endless)
    iterator into a channel; the body waits on the channel with a timeout, so
    an idle stream still sends a keepalive comment every `keepalive_s`."""

    def __init__(
        self,
        source: AsyncIterator[Finalized],
        render: Callable[[Finalized], bytes],
        keepalive_s: float,
    ) -> None:
        sender, receiver = anyio.create_memory_object_stream[Finalized | Exception](16)
        self._source = source
        self._sender = sender
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        body = _sse_body(receiver, render, keepalive_s)
        super().__init__(body, headers=headers, media_type="text/event-stream")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_produce, self._source, self._sender)
            try:
                await super().__call__(scope, receive, send)
            except (OSError, ClientDisconnect):
                pass  # the client went away
            finally:
                tasks.cancel_scope.cancel()


async def _produce(
    source: AsyncIterator[Finalized], sender: MemoryObjectSendStream[Finalized | Exception]
) -> None:
    async with sender:
        try:
            async for item in source:
                await sender.send(item)
        except anyio.BrokenResourceError:
            return  # the stream ended
        except Exception as exc:
            log.exception("RPC /events: reading finalized blocks failed")
            with contextlib.suppress(anyio.BrokenResourceError):
                await sender.send(exc)  # the body reports it as an error event


_IDLE = object()


async def _sse_body(
    receiver: MemoryObjectReceiveStream[Finalized | Exception],
    render: Callable[[Finalized], bytes],
    keepalive_s: float,
) -> AsyncIterator[bytes]:
    async with receiver:
        while True:
            item: object = _IDLE
            with anyio.move_on_after(keepalive_s):
                try:
                    item = await receiver.receive()
                except anyio.EndOfStream:
                    return
            if item is _IDLE:
                yield b": keepalive\n\n"
            elif isinstance(item, Exception):
                error = _error_body(ErrorCode.STORAGE_FAILED, "reading finalized blocks failed")
                yield b"event: error\ndata: " + _encoder.encode(error) + b"\n\n"
                return
            else:
                assert isinstance(item, Finalized)
                yield render(item)


def _namespace_txs(block: Block, namespace: int) -> list[dict[str, Any]]:
    """The namespace's transactions of `block`, each with its inclusion proof."""
    chosen = [i for i, tx in enumerate(block.txs) if tx.namespace == namespace]
    if not chosen:
        return []
    ids = [tx_id(tx) for tx in block.txs]
    tree = MerkleTree(ids)
    return [
        {
            "tx": to_builtins(block.txs[i]),
            "tx_id": ids[i].hex(),
            "index": i,
            "proof": to_builtins(tree.proof(i)),
        }
        for i in chosen
    ]


def _sse_block(item: Finalized, namespace: int | None) -> bytes:
    data = _block_json(item.block, item.certificate, full=True, namespace=namespace)
    head = f"event: block\nid: {item.block.header.height}\ndata: ".encode()
    return head + _encoder.encode(data) + b"\n\n"


# ------------------------------------------------------------------ endpoints


class _Api:
    """The endpoints, over one backend."""

    def __init__(self, backend: Backend, limits: RpcLimits, keepalive_s: float) -> None:
        self.backend = backend
        self.limits = limits
        self.keepalive_s = keepalive_s
        self.openapi = _encoder.encode(build_openapi(limits))

    # -------------------------------------------------------------- writes

    def _require_working(self) -> None:
        """A node whose storage failed is out of service until restarted (`node.daemon.health`)."""
        failure = self.backend.failure()
        if failure is not None:
            message = f"the node's storage failed, it stopped until restarted: {failure}"
            raise ApiError(ErrorCode.STORAGE_FAILED, message)

    def _require_ready(self) -> None:
        self._require_working()
        if not self.backend.ready():
            message = "the node is not ready (syncing or not connected); retry later"
            raise ApiError(ErrorCode.NOT_READY, message)

    async def _submit(self, txs: list[Transaction]) -> list[SubmitResult]:
        results = await self.backend.submit(txs) if txs else []
        if len(results) != len(txs):
            raise RuntimeError(f"backend gave {len(results)} results for {len(txs)} transactions")
        return results

    async def submit_tx(self, request: Request) -> Response:
        self._require_ready()
        tx = _decode_tx(
            await _read_body(request, self.limits.body_bytes_max, self.limits.body_timeout_s)
        )
        (result,) = await self._submit([tx])
        status = 202 if result.error is None else HTTP_STATUS[result.error]
        return _json(_result_body(result), status)

    async def submit_txs(self, request: Request) -> Response:
        self._require_ready()
        body = await _read_body(request, self.limits.body_bytes_max, self.limits.body_timeout_s)
        decoded = [_decode_item(raw) for raw in _decode_batch(body, self.limits.batch_txs_max)]
        txs = [item for item in decoded if isinstance(item, Transaction)]
        submitted = iter(await self._submit(txs))
        results = [
            _error_body(item.code, item.message)
            if isinstance(item, ApiError)
            else _result_body(next(submitted))
            for item in decoded
        ]
        return _json({"results": results})

    # -------------------------------------------------------------- transactions

    async def tx_status(self, request: Request) -> Response:
        id = _hex32(request.path_params["tx_id"], "tx_id")
        location = self.backend.store.tx_location(id)
        if location is not None:
            return _json(self._committed(id, location))
        state = self.backend.mempool.state(id)
        if state is not None:
            return _json({"tx_id": id.hex(), "status": state})
        dropped = self.backend.mempool.dropped(id)
        if dropped is not None:
            body = {"tx_id": id.hex(), "status": dropped.status, "reason": dropped.reason}
            return _json(body)
        raise ApiError(ErrorCode.NOT_FOUND, f"transaction {id.hex()} is not known")

    def _committed(self, id: bytes, location: TxLocation) -> dict[str, Any]:
        block = self._stored_block(location.height)
        ids = [tx_id(tx) for tx in block.txs]
        if location.index >= len(ids) or ids[location.index] != id:
            raise StoreCorruptError(f"the tx index points {id.hex()} to {location}, wrongly")
        return {
            "tx_id": id.hex(),
            "status": "committed",
            "height": location.height,
            "index": location.index,
            "block_id": block_id(block.header).hex(),
            "proof": to_builtins(MerkleTree(ids).proof(location.index)),
        }

    # -------------------------------------------------------------- blocks

    def _stored_block(self, height: int) -> Block:
        block = self.backend.store.block(height)
        if block is None:
            raise StoreCorruptError(f"the block at height {height} is missing")
        return block

    def _block(self, height: int) -> Block:
        block = self.backend.store.block(height) if height >= 1 else None
        if block is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no finalized block at height {height}")
        return block

    def _block_view(self, height: int, full: bool) -> dict[str, Any]:
        block = self._block(height)
        certificate = self.backend.store.certificate(height)
        if certificate is None:
            raise StoreCorruptError(f"the block at height {height} has no certificate")
        return _block_json(block, certificate, full=full)

    async def block_latest(self, request: Request) -> Response:
        full = _flag(request, "full")
        height = self.backend.store.height()
        if height == 0:
            raise ApiError(ErrorCode.NOT_FOUND, "no block has been finalized yet")
        return _json(self._block_view(height, full))

    async def block_at(self, request: Request) -> Response:
        full = _flag(request, "full")
        return _json(self._block_view(_uint(request.path_params["height"], "height"), full))

    async def block_range(self, request: Request) -> Response:
        range_max = self.limits.blocks_range_max
        first = _query_uint(request, "from", 1, minimum=1)
        limit = _query_uint(request, "limit", range_max, minimum=1)
        if limit > range_max:
            raise _bad_request(f"`limit` must be at most {range_max}, got {limit}")
        full = _flag(request, "full")
        last = min(first + limit - 1, self.backend.store.height())
        return StreamingResponse(self._range_body(first, last, full), media_type="application/json")

    async def _range_body(self, first: int, last: int, full: bool) -> AsyncIterator[bytes]:
        """The range block by block: a connection holds one block's JSON at a
        time, however slowly its client reads, and the range stops at the
        byte cap (never empty). Each height is read on its own, so a slow
        reader pins no LevelDB iterator."""
        yield b'{"blocks":['
        size = 0
        for height in range(first, last + 1):
            part = _encoder.encode(self._block_view(height, full))
            if size and size + len(part) > self.limits.response_bytes_max:
                break
            if size:
                yield b","
            # In slices: what the server copies for a write that blocks is a
            # slice, not the block.
            for offset in range(0, len(part), _STREAM_SLICE_BYTES):
                yield part[offset : offset + _STREAM_SLICE_BYTES]
            size += len(part) + 1
        yield b"]}"

    async def namespace_block(self, request: Request) -> Response:
        namespace = _uint(request.path_params["namespace"], "namespace")
        height = _uint(request.path_params["height"], "height")
        block = self._block(height)
        return _json(
            {
                "height": height,
                "block_id": block_id(block.header).hex(),
                "namespace": namespace,
                "txs": _namespace_txs(block, namespace),
            }
        )

    # -------------------------------------------------------------- chain and node

    async def account(self, request: Request) -> Response:
        sender = _hex32(request.path_params["sender"], "sender")
        return _json(
            {
                "sender": sender.hex(),
                "committed_nonce": self.backend.store.next_nonce(sender),
                "next_nonce": self.backend.mempool.next_nonce(sender),
            }
        )

    async def status(self, request: Request) -> Response:
        return _json(self.backend.status())

    async def validators(self, request: Request) -> Response:
        genesis = self.backend.genesis
        validators = [{"index": i, **to_builtins(v)} for i, v in enumerate(genesis.validators)]
        return _json(
            {
                "chain_id": genesis.chain_id,
                "total_power": sum(v.power for v in genesis.validators),
                "validators": validators,
            }
        )

    async def peers(self, request: Request) -> Response:
        return _json({"peers": self.backend.peers()})

    async def batches(self, request: Request) -> Response:
        range_max = self.limits.blocks_range_max
        first = _query_uint(request, "from", 0, minimum=0)
        limit = _query_uint(request, "limit", range_max, minimum=1)
        if limit > range_max:
            raise _bad_request(f"`limit` must be at most {range_max}, got {limit}")
        return _json({"batches": self.backend.batches(first, limit)})

    async def batch(self, request: Request) -> Response:
        number = _uint(request.path_params["number"], "number")
        record = self.backend.batch(number)
        if record is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no batch {number} posted by this node")
        return _json(record)

    async def events(self, request: Request) -> Response:
        namespace = _query_namespace(request)
        source = self.backend.finalized(self._events_start(request))
        render = partial(_sse_block, namespace=namespace)
        return _EventStream(source, render, self.keepalive_s)

    def _events_start(self, request: Request) -> int:
        """After the client's Last-Event-ID (a resume), else `from`, else the next block."""
        last_id = request.headers.get("last-event-id")
        if last_id:
            return _uint(last_id, "Last-Event-ID") + 1
        if "from" in request.query_params:
            return _query_uint(request, "from", 1, minimum=1)
        return self.backend.store.height() + 1

    # -------------------------------------------------------------- operations

    async def health(self, request: Request) -> Response:
        self._require_working()
        return _json({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        self._require_ready()
        return _json({"status": "ready"})

    async def metrics(self, request: Request) -> Response:
        return Response(self.backend.metrics(), media_type=METRICS_MEDIA_TYPE)

    async def openapi_json(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")


def _routes(api: _Api) -> list[Route]:
    post, get = ["POST"], ["GET"]
    return [
        Route("/tx", api.submit_tx, methods=post),
        Route("/txs", api.submit_txs, methods=post),
        Route("/tx/{tx_id}", api.tx_status, methods=get),
        Route("/blocks/latest", api.block_latest, methods=get),
        Route("/blocks/{height}", api.block_at, methods=get),
        Route("/blocks", api.block_range, methods=get),
        Route("/namespaces/{namespace}/blocks/{height}", api.namespace_block, methods=get),
        Route("/accounts/{sender}", api.account, methods=get),
        Route("/status", api.status, methods=get),
        Route("/validators", api.validators, methods=get),
        Route("/peers", api.peers, methods=get),
        Route("/batches", api.batches, methods=get),
        Route("/batches/{number}", api.batch, methods=get),
        Route("/events", api.events, methods=get),
        Route("/health", api.health, methods=get),
        Route("/ready", api.ready, methods=get),
        Route("/metrics", api.metrics, methods=get),
        Route("/openapi.json", api.openapi_json, methods=get),
    ]


def build_app(
    backend: Backend,
    limits: RpcLimits = RpcLimits(),  # frozen: safe to share
    *,
    clock: Callable[[], float] = time.monotonic,
    keepalive_s: float = KEEPALIVE_S,
) -> Starlette:
    """The Starlette app serving `backend`. `clock` (seconds) drives the rate
    limiter; `keepalive_s` is the idle time before an SSE keepalive comment."""
    buckets = _TokenBuckets(limits.requests_per_s, limits.burst, clock)
    probes = _TokenBuckets(limits.probe_requests_per_s, limits.probe_burst, clock)
    app = Starlette(
        routes=_routes(_Api(backend, limits, keepalive_s)),
        middleware=[Middleware(_Guard), Middleware(_RateLimit, buckets=buckets, probes=probes)],
        exception_handlers={
            ApiError: _on_api_error,
            HTTPException: _on_http_error,
            StorageError: _on_storage_error,
        },
    )
    # No 307 to the path without its trailing slash: `/tx/%2F` (a tx id of "/")
    # would be sent to POST-only /tx. An unknown path is 404 `not_found`, always.
    app.router.redirect_slashes = False
    return app
