"""The wallet path on plain ASGI: `POST /tx` and `POST /txs` answered from
the raw `receive` and `send`, in front of the Starlette app, which serves
every other request (and these two whenever the fast path does not take
them: a request under a `root_path`).

A wallet's request otherwise passes Starlette's error middleware, `Guard`,
`RateLimit`, the exception middleware, the router (matching every route
before it), a `Request`, the body's async generator and a `Response`. Here
it is one dictionary lookup, then the same steps through the same code:

- `guarded` (`Guard`'s own function): an unexpected exception is logged and
  answered 500 `internal`, a client gone mid-request gets nothing;
- `limited` (`RateLimit`'s own function): the client's bucket, 429
  `rate_limited` with Retry-After, the bytes moved charged after;
- `Api.require_ready`, `receive_body` (what `read_body` runs: the same 413,
  408 and 400 answers, `Connection: close` where the body is left unread),
  `Api.tx_answer` / `Api.txs_answer` (decoding and `Backend.submit`);
- an `ApiError` answered as `on_api_error` answers it, a `StorageError` as
  `on_storage_error` does (both are the same functions underneath);
- the answer sent as the messages `Response` sends, header for header.

So the answers are byte for byte those of the Starlette routes
(tests/node/test_fastpath.py sends the same requests to both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

from node.api.limits import RpcLimits
from node.api.ratelimit import TokenBuckets, limited
from node.api.requests import content_length, receive_body
from node.api.responses import (
    ApiError,
    api_error_response,
    guarded,
    send_json,
    storage_error_response,
)
from storage.errors import StorageError

__all__ = ["FastPath", "Submissions"]


class Submissions(Protocol):
    """What the fast path needs of `node.api.rpc.Api`."""

    limits: RpcLimits

    def require_ready(self) -> None: ...

    async def tx_answer(self, body: bytes) -> tuple[bytes, int]: ...

    async def txs_answer(self, body: bytes) -> tuple[bytes, int]: ...


Answer = Callable[[bytes], Awaitable[tuple[bytes, int]]]  # a body's (JSON, status)


class FastPath:
    """ASGI app: `POST /tx` and `POST /txs` here, everything else to `app`.

    `routes` and `router` are the Starlette app's: what the API serves is
    still described by its routes (the OpenAPI tests walk them)."""

    def __init__(self, app: Starlette, api: Submissions, buckets: TokenBuckets) -> None:
        self.app = app
        self.api = api
        self.buckets = buckets
        self._limit = api.limits.body_bytes_max
        self._timeout_s = api.limits.body_timeout_s
        # Each handler under the rate limit, as `RateLimit` runs the routes.
        self._handlers = {
            "/tx": partial(limited, buckets, partial(self._answer, api.tx_answer)),
            "/txs": partial(limited, buckets, partial(self._answer, api.txs_answer)),
        }

    @property
    def routes(self) -> list[BaseRoute]:
        return self.app.routes

    @property
    def router(self) -> Router:
        return self.app.router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A query (POST /tx?wait=final) goes the Starlette way: it waits anyway.
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("root_path")
            and not scope.get("query_string")
        ):
            handler = self._handlers.get(scope["path"])
            if handler is not None:
                await guarded(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self.api.require_ready()
            body = await receive_body(receive, content_length(scope), self._limit, self._timeout_s)
            content, status = await answer(body)
        except ApiError as exc:
            await api_error_response(exc)(scope, receive, send)
            return
        except StorageError as exc:
            await storage_error_response(scope["method"], scope["path"], exc)(scope, receive, send)
            return
        await send_json(send, content, status)
