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
    WS   /events?from=&namespace=             the same blocks as WebSocket text messages
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

`POST /tx` and `POST /txs` are answered first by `node.api.fastpath` (plain
ASGI, the same steps through the same functions, byte-identical answers);
every other request, and the OpenAPI document, is the Starlette app's.

Every endpoint is `async`: Starlette would run a plain function in a worker
thread, and the store and mempool belong to the node's one trio thread. Only
anyio is used, so the app runs on trio (Hypercorn) and in asyncio test clients.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from node.api.backend import HTTP_STATUS, Backend, ErrorCode, SubmitResult
from node.api.events import KEEPALIVE_S, EventStream, namespace_view, sse_block
from node.api.events_ws import EventSocket
from node.api.fastpath import FastPath
from node.api.limits import RpcLimits
from node.api.openapi import WAIT_TIMEOUT_MS_DEFAULT, WAIT_TIMEOUT_MS_MAX, build_openapi
from node.api.ratelimit import RateLimit, TokenBuckets
from node.api.requests import (
    bad_request,
    decode_batch,
    decode_item,
    decode_tx,
    parse_hex32,
    parse_uint,
    query_flag,
    query_namespace,
    query_uint,
    read_body,
)
from node.api.responses import (
    ENCODER,
    ApiError,
    Guard,
    accepted_body,
    block_json,
    error_body,
    json_response,
    on_api_error,
    on_http_error,
    on_storage_error,
    result_body,
)
from node.api.search import Search
from sequencer.codec import to_builtins
from sequencer.ids import block_id, tx_id
from sequencer.merkle import MerkleTree
from sequencer.types import Block, CommitCertificate, Transaction, TxLocation
from storage.errors import StorageError, StoreCorruptError

__all__ = ["Api", "build_app"]

METRICS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STREAM_SLICE_BYTES = 65_536
DEFAULT_LIMITS = RpcLimits()  # frozen: safe to share


class Api:
    """The endpoints, over one backend."""

    def __init__(self, backend: Backend, limits: RpcLimits, keepalive_s: float) -> None:
        self.backend = backend
        self.limits = limits
        self.keepalive_s = keepalive_s
        self.openapi = ENCODER.encode(build_openapi(limits))
        self.events_socket = EventSocket(backend)
        self.search = Search(backend, limits)

    # -------------------------------------------------------------- writes

    def _require_working(self) -> None:
        """A node whose storage failed is out of service until restarted (`node.daemon.health`)."""
        failure = self.backend.failure()
        if failure is not None:
            message = f"the node's storage failed, it stopped until restarted: {failure}"
            raise ApiError(ErrorCode.STORAGE_FAILED, message)

    def require_ready(self) -> None:
        self._require_working()
        if not self.backend.ready():
            message = "the node is not ready (syncing or not connected); retry later"
            raise ApiError(ErrorCode.NOT_READY, message)

    async def _submit(self, txs: list[Transaction]) -> list[SubmitResult]:
        results = await self.backend.submit(txs) if txs else []
        if len(results) != len(txs):
            raise RuntimeError(f"backend gave {len(results)} results for {len(txs)} transactions")
        return results

    # POST /tx and POST /txs: the routes below, and the fast path
    # (`node.api.fastpath`) that serves them first, answer through these.

    async def tx_answer(self, body: bytes) -> tuple[bytes, int]:
        """POST /tx's answer to a body read in full: (JSON, status)."""
        return _tx_answer(await self._tx_result(body))

    async def _tx_result(self, body: bytes) -> SubmitResult:
        (result,) = await self._submit([decode_tx(body)])
        return result

    async def txs_answer(self, body: bytes) -> tuple[bytes, int]:
        """POST /txs's answer to a body read in full: (JSON, 200)."""
        decoded = [decode_item(raw) for raw in decode_batch(body, self.limits.batch_txs_max)]
        txs = [item for item in decoded if isinstance(item, Transaction)]
        submitted = iter(await self._submit(txs))
        results = [
            error_body(item.code, item.message)
            if isinstance(item, ApiError)
            else result_body(next(submitted))
            for item in decoded
        ]
        return ENCODER.encode({"results": results}), 200

    async def submit_tx(self, request: Request) -> Response:
        self.require_ready()
        wait = request.query_params.get("wait")
        if wait not in (None, "final"):
            raise bad_request(f"`wait` must be final, got {wait[:40]!r}")
        timeout_ms = query_uint(request, "timeout_ms", WAIT_TIMEOUT_MS_DEFAULT)
        if timeout_ms > WAIT_TIMEOUT_MS_MAX:
            raise bad_request(
                f"`timeout_ms` must be at most {WAIT_TIMEOUT_MS_MAX}, got {timeout_ms}"
            )
        first = self.backend.store.height() + 1  # before it can commit: no block missed
        body = await read_body(request, self.limits.body_bytes_max, self.limits.body_timeout_s)
        result = await self._tx_result(body)
        if wait is None or result.error is not None:
            content, status = _tx_answer(result)
            return Response(content, status, media_type="application/json")
        return await self._wait_committed(result.tx_id, first, timeout_ms / 1000)

    async def _wait_committed(self, id_: bytes, first: int, timeout_s: float) -> Response:
        """200 with its status once committed (or dropped from the pool), else
        202 with its status after `timeout_s` (like CometBFT's broadcast_tx_commit)."""
        with anyio.move_on_after(timeout_s):
            async with contextlib.aclosing(self.backend.finalized(first)) as blocks:
                if (answer := self._settled(id_)) is not None:
                    return json_response(answer)
                async for _ in blocks:
                    if (answer := self._settled(id_)) is not None:
                        return json_response(answer)
        state = self.backend.mempool.state(id_) or "pending"
        return json_response({"tx_id": id_.hex(), "status": state}, 202)

    def _settled(self, id_: bytes) -> dict[str, Any] | None:
        location = self.backend.store.tx_location(id_)
        if location is not None:
            return self._committed(id_, location)
        dropped = self.backend.mempool.dropped(id_)
        if dropped is not None:
            return {"tx_id": id_.hex(), "status": dropped.status, "reason": dropped.reason}
        return None

    async def submit_txs(self, request: Request) -> Response:
        self.require_ready()
        body = await read_body(request, self.limits.body_bytes_max, self.limits.body_timeout_s)
        content, status = await self.txs_answer(body)
        return Response(content, status, media_type="application/json")

    # -------------------------------------------------------------- transactions

    async def tx_status(self, request: Request) -> Response:
        id = parse_hex32(request.path_params["tx_id"], "tx_id")
        location = self.backend.store.tx_location(id)
        if location is not None:
            return json_response(self._committed(id, location))
        state = self.backend.mempool.state(id)
        if state is not None:
            return json_response({"tx_id": id.hex(), "status": state})
        dropped = self.backend.mempool.dropped(id)
        if dropped is not None:
            body = {"tx_id": id.hex(), "status": dropped.status, "reason": dropped.reason}
            return json_response(body)
        raise ApiError(ErrorCode.NOT_FOUND, f"transaction {id.hex()} is not known")

    def _committed(self, id: bytes, location: TxLocation) -> dict[str, Any]:
        block = self._stored_block(location.height)
        ids = [tx_id(tx) for tx in block.txs]
        if location.index >= len(ids) or ids[location.index] != id:
            raise StoreCorruptError(f"the tx index points {id.hex()} to {location}, wrongly")
        body = {
            "tx_id": id.hex(),
            "status": "committed",
            "height": location.height,
            "index": location.index,
            "block_id": block_id(block.header).hex(),
            "proof": to_builtins(MerkleTree(ids).proof(location.index)),
        }
        batch = self.backend.l1_batch_of(location.height)
        if batch is not None:
            body["l1"] = {"batch_number": batch[0], "commitment": batch[1].hex()}
        return body

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

    def _finalized(self, height: int) -> tuple[Block, CommitCertificate]:
        block = self._block(height)
        certificate = self.backend.store.certificate(height)
        if certificate is None:
            raise StoreCorruptError(f"the block at height {height} has no certificate")
        return block, certificate

    def _block_view(self, height: int, full: bool) -> dict[str, Any]:
        block, certificate = self._finalized(height)
        return block_json(block, certificate, full=full)

    async def block_latest(self, request: Request) -> Response:
        full = query_flag(request, "full")
        height = self.backend.store.height()
        if height == 0:
            raise ApiError(ErrorCode.NOT_FOUND, "no block has been finalized yet")
        return json_response(self._block_view(height, full))

    async def block_at(self, request: Request) -> Response:
        full = query_flag(request, "full")
        return json_response(
            self._block_view(parse_uint(request.path_params["height"], "height"), full)
        )

    async def block_range(self, request: Request) -> Response:
        range_max = self.limits.blocks_range_max
        first = query_uint(request, "from", 1, minimum=1)
        limit = query_uint(request, "limit", range_max, minimum=1)
        if limit > range_max:
            raise bad_request(f"`limit` must be at most {range_max}, got {limit}")
        full = query_flag(request, "full")
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
            part = ENCODER.encode(self._block_view(height, full))
            if size and size + len(part) > self.limits.response_bytes_max:
                break
            if size:
                yield b","
            # In slices: what the server copies for a write that blocks is a
            # slice, not the block.
            for offset in range(0, len(part), STREAM_SLICE_BYTES):
                yield part[offset : offset + STREAM_SLICE_BYTES]
            size += len(part) + 1
        yield b"]}"

    async def namespace_block(self, request: Request) -> Response:
        namespace = parse_uint(request.path_params["namespace"], "namespace")
        height = parse_uint(request.path_params["height"], "height")
        block, certificate = self._finalized(height)
        return json_response(namespace_view(block, certificate, namespace))

    # -------------------------------------------------------------- chain and node

    async def account(self, request: Request) -> Response:
        sender = parse_hex32(request.path_params["sender"], "sender")
        return json_response(
            {
                "sender": sender.hex(),
                "committed_nonce": self.backend.store.next_nonce(sender),
                "next_nonce": self.backend.mempool.next_nonce(sender),
            }
        )

    async def status(self, request: Request) -> Response:
        return json_response(self.backend.status())

    async def validators(self, request: Request) -> Response:
        genesis = self.backend.genesis
        validators = [{"index": i, **to_builtins(v)} for i, v in enumerate(genesis.validators)]
        return json_response(
            {
                "chain_id": genesis.chain_id,
                "total_power": sum(v.power for v in genesis.validators),
                "validators": validators,
            }
        )

    async def peers(self, request: Request) -> Response:
        return json_response({"peers": self.backend.peers()})

    async def batches(self, request: Request) -> Response:
        range_max = self.limits.blocks_range_max
        first = query_uint(request, "from", 0, minimum=0)
        limit = query_uint(request, "limit", range_max, minimum=1)
        if limit > range_max:
            raise bad_request(f"`limit` must be at most {range_max}, got {limit}")
        return json_response({"batches": self.backend.batches(first, limit)})

    async def batch(self, request: Request) -> Response:
        number = parse_uint(request.path_params["number"], "number")
        record = self.backend.batch(number)
        if record is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no batch {number} posted by this node")
        return json_response(record)

    async def events(self, request: Request) -> Response:
        namespace = query_namespace(request)
        full = query_flag(request, "full", default=True)
        source = self.backend.finalized(self._events_start(request))
        render = partial(sse_block, namespace=namespace, full=full)
        return EventStream(source, render, self.keepalive_s)

    async def events_websocket(self, websocket: WebSocket) -> None:
        await self.events_socket(websocket)

    def _events_start(self, request: Request) -> int:
        """After the client's Last-Event-ID (a resume), else `from`, else the next block."""
        last_id = request.headers.get("last-event-id")
        if last_id:
            return parse_uint(last_id, "Last-Event-ID") + 1
        if "from" in request.query_params:
            return query_uint(request, "from", 1, minimum=1)
        return self.backend.store.height() + 1

    # -------------------------------------------------------------- operations

    async def health(self, request: Request) -> Response:
        self._require_working()
        return json_response({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        self.require_ready()
        return json_response({"status": "ready"})

    async def metrics(self, request: Request) -> Response:
        return Response(self.backend.metrics(), media_type=METRICS_MEDIA_TYPE)

    async def openapi_json(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")


def _tx_answer(result: SubmitResult) -> tuple[bytes, int]:
    if result.error is None:
        return accepted_body(result.tx_id), 202
    return ENCODER.encode(result_body(result)), HTTP_STATUS[result.error]


def _routes(api: Api) -> list[BaseRoute]:
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
        Route("/accounts/{sender}/txs", api.search.sender_txs, methods=get),
        Route("/namespaces/{namespace}/txs", api.search.namespace_txs, methods=get),
        Route("/status", api.status, methods=get),
        Route("/validators", api.validators, methods=get),
        Route("/peers", api.peers, methods=get),
        Route("/batches", api.batches, methods=get),
        Route("/batches/{number}", api.batch, methods=get),
        Route("/events", api.events, methods=get),
        WebSocketRoute("/events", api.events_websocket),
        Route("/health", api.health, methods=get),
        Route("/ready", api.ready, methods=get),
        Route("/metrics", api.metrics, methods=get),
        Route("/openapi.json", api.openapi_json, methods=get),
    ]


def build_app(
    backend: Backend,
    limits: RpcLimits = DEFAULT_LIMITS,
    *,
    clock: Callable[[], float] = time.monotonic,
    keepalive_s: float = KEEPALIVE_S,
) -> FastPath:
    """The app serving `backend`: POST /tx and POST /txs on the fast path,
    every other request by the Starlette app (its `app`). `clock` (seconds)
    drives the rate limiter; `keepalive_s` is the idle time before an SSE
    keepalive comment."""
    buckets = TokenBuckets(limits.requests_per_s, limits.burst, clock)
    probes = TokenBuckets(limits.probe_requests_per_s, limits.probe_burst, clock)
    api = Api(backend, limits, keepalive_s)
    app = Starlette(
        routes=_routes(api),
        middleware=[Middleware(Guard), Middleware(RateLimit, buckets=buckets, probes=probes)],
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            StorageError: on_storage_error,
        },
    )
    # No 307 to the path without its trailing slash: `/tx/%2F` (a tx id of "/")
    # would be sent to POST-only /tx. An unknown path is 404 `not_found`, always.
    app.router.redirect_slashes = False
    return FastPath(app, api, buckets)
