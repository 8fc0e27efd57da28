"""The API's answers: JSON bodies, the error JSON, and the handlers and
middleware that turn refusals, routing misses, storage failures and bugs
into it (never an HTML page or a traceback)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.api.backend import HTTP_STATUS, ErrorCode, SubmitResult
from node.api.openapi import INTERNAL_ERROR
from sequencer.codec import to_builtins
from sequencer.ids import block_id, tx_id
from sequencer.types import Block, CommitCertificate

__all__ = [
    "ENCODER",
    "ApiError",
    "Guard",
    "accepted_body",
    "api_error_response",
    "block_json",
    "error_body",
    "error_response",
    "guarded",
    "json_response",
    "on_api_error",
    "on_http_error",
    "on_storage_error",
    "result_body",
    "send_json",
    "storage_error_response",
]

log = logging.getLogger("node.api.rpc")

ENCODER = msgspec.json.Encoder()


class ApiError(Exception):
    """A refusal with a stable code; the app answers it as the error JSON."""

    def __init__(
        self, code: ErrorCode, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(ENCODER.encode(content), status, headers, media_type="application/json")


async def send_json(send: Send, content: bytes, status: int = 200) -> None:
    """`content` (JSON) answered as `json_response` answers it, message for
    message and header for header, without building a `Response`."""
    headers = [(b"content-length", str(len(content)).encode()), _JSON_TYPE]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


_JSON_TYPE = (b"content-type", b"application/json")


def accepted_body(tx_id: bytes) -> bytes:
    """`{"tx_id": "<hex>"}` as `ENCODER` writes it (hex needs no escaping)."""
    return b'{"tx_id":"' + tx_id.hex().encode() + b'"}'


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": str(code), "message": message}}


def error_response(
    code: str,
    message: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error JSON, with the status of `code` unless `status` is given."""
    if status is None:
        status = HTTP_STATUS.get(code, 500)  # type: ignore[call-overload]  # StrEnum keys
    return json_response(error_body(code, message), status, headers)


def result_body(result: SubmitResult) -> dict[str, Any]:
    if result.ok:
        return {"tx_id": result.tx_id.hex()}
    assert result.error is not None
    return error_body(result.error, result.message or result.error.replace("_", " "))


def block_json(block: Block, certificate: CommitCertificate, *, full: bool) -> dict[str, Any]:
    body = {
        "block_id": block_id(block.header).hex(),
        "header": to_builtins(block.header),
        "tx_ids": [tx_id(tx).hex() for tx in block.txs],
        "certificate": to_builtins(certificate),
    }
    if full:
        body["txs"] = to_builtins(block.txs)
    return body


class Guard:
    """ASGI middleware: an unexpected exception becomes 500 `internal` JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await guarded(self.app, scope, receive, send)


async def guarded(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """`app` answering one HTTP request, an unexpected exception logged and
    answered 500 `internal` (unless the answer had started); a client gone
    mid-request gets nothing. `Guard` and the fast path both run this."""
    started = False

    async def watched_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, watched_send)
    except ClientDisconnect:
        return
    except Exception:
        log.exception("RPC %s %s failed", scope["method"], scope["path"])
        if not started:
            message = "unexpected failure; see the node's log"
            await error_response(INTERNAL_ERROR, message)(scope, receive, send)


def api_error_response(exc: ApiError) -> Response:
    return error_response(exc.code, exc.message, headers=exc.headers)


def storage_error_response(method: str, path: str, exc: Exception) -> Response:
    log.error("RPC %s %s: storage failed: %s", method, path, exc)
    message = "the node's storage failed; see its log"
    return error_response(ErrorCode.STORAGE_FAILED, message)


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    target = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        return error_response(ErrorCode.NOT_FOUND, f"no route for {target}")
    message = f"{exc.detail}: {target}"
    return error_response(
        ErrorCode.BAD_REQUEST, message, status=exc.status_code, headers=exc.headers
    )


async def on_storage_error(request: Request, exc: Exception) -> Response:
    return storage_error_response(request.method, request.url.path, exc)
