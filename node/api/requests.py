"""Reading requests: path and query parameters, bodies within their size and
deadline, transactions decoded from JSON. Each refusal is an `ApiError`."""

from __future__ import annotations

import re

import anyio
import msgspec
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.types import Receive, Scope

from node.api.backend import ErrorCode
from node.api.responses import ApiError
from sequencer.codec import from_json, parse_hex, refuse_duplicate_keys
from sequencer.errors import DecodeError
from sequencer.limits import U64_MAX
from sequencer.types import Transaction

__all__ = [
    "bad_request",
    "content_length",
    "decode_batch",
    "decode_item",
    "decode_tx",
    "parse_hex32",
    "parse_uint",
    "query_flag",
    "query_namespace",
    "query_uint",
    "read_body",
    "receive_body",
]

UINT = re.compile(r"[0-9]{1,20}")


def bad_request(message: str) -> ApiError:
    return ApiError(ErrorCode.BAD_REQUEST, message)


def parse_uint(text: str, name: str, minimum: int = 0) -> int:
    if UINT.fullmatch(text) is None or not minimum <= int(text) <= U64_MAX:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise bad_request(f"`{name}` must be an integer in {minimum}..{U64_MAX}, got {shown!r}")
    return int(text)


def query_uint(request: Request, name: str, default: int, minimum: int = 0) -> int:
    text = request.query_params.get(name)
    return default if text is None else parse_uint(text, name, minimum)


def query_namespace(request: HTTPConnection) -> int | None:
    text = request.query_params.get("namespace")
    return None if text is None else parse_uint(text, "namespace")


def query_flag(request: HTTPConnection, name: str, default: bool = False) -> bool:
    text = request.query_params.get(name, "true" if default else "false")
    if text not in ("true", "false"):
        raise bad_request(f"`{name}` must be true or false, got {text[:40]!r}")
    return text == "true"


def parse_hex32(text: str, name: str) -> bytes:
    try:
        return parse_hex(text, length=32, path=name)
    except DecodeError as exc:
        raise bad_request(f"`{name}` must be 32 bytes of hex: {exc}") from None


def too_large(limit: int) -> ApiError:
    # The rest of the body is never read, so the connection cannot carry
    # another request: say so, or the client's next request on it fails.
    message = f"the request body exceeds {limit} bytes"
    return ApiError(ErrorCode.BODY_TOO_LARGE, message, headers={"Connection": "close"})


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refused as soon as it is known to exceed `limit` bytes, or
    when it has not all arrived within `timeout_s` (a client that declares a
    body and sends nothing must not hold a connection, and its descriptor)."""
    declared = request.headers.get("content-length")
    return await receive_body(request.receive, declared, limit, timeout_s)


def content_length(scope: Scope) -> str | None:
    """The request's Content-Length as `Request.headers` gives it: the first, or None."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


async def receive_body(
    receive: Receive, declared: str | None, limit: int, timeout_s: float
) -> bytes:
    """`read_body` on the raw ASGI messages (as `Request.stream` reads them),
    given the declared Content-Length: the fast path reads bodies with this."""
    if declared is not None:
        if UINT.fullmatch(declared) is None:
            raise ApiError(ErrorCode.MALFORMED, "invalid Content-Length")
        if int(declared) > limit:
            raise too_large(limit)
    chunks, size = [], 0
    with anyio.move_on_after(timeout_s) as scope:
        while True:
            event = await receive()
            kind = event["type"]
            if kind == "http.request":
                chunk = event.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise too_large(limit)
                    chunks.append(chunk)
                if not event.get("more_body", False):
                    break
            elif kind == "http.disconnect":
                raise ClientDisconnect()
    if scope.cancelled_caught:
        message = f"the request body did not arrive within {timeout_s:g} s"
        raise ApiError(ErrorCode.REQUEST_TIMEOUT, message, headers={"Connection": "close"})
    return b"".join(chunks)


def decode_tx(data: bytes) -> Transaction:
    try:
        tx = from_json(data, Transaction)
        # A signed object must mean one thing to every reader.
        refuse_duplicate_keys(data, "Transaction")
    except DecodeError as exc:
        raise ApiError(ErrorCode.MALFORMED, str(exc)) from None
    return tx


def decode_batch(data: bytes, limit: int) -> list[msgspec.Raw]:
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


def decode_item(raw: msgspec.Raw) -> Transaction | ApiError:
    try:
        return decode_tx(bytes(raw))
    except ApiError as exc:
        return exc
