"""`/events` over WebSocket: the SSE stream's blocks as text messages.

The same query as the SSE stream (`from`, `namespace`, `full`, and a
`Last-Event-ID` header to resume after a height); each message is the JSON
an SSE `block` event carries as its data, so its height is in it
(`header.height`, or `height` of a namespace view). A client resumes by
reconnecting with `from` one past the last height it read.

A subscriber that does not read is never skipped ahead, and never holds the
node's memory: a message that cannot be sent within `send_timeout_s` closes
the connection with code 1008 and a reason naming the height to resume
from. Bad queries close it with code 1008 and the error's message; the
subscribers of one node are bounded (`subscribers_max`, code 1013).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import anyio
import anyio.abc
from starlette.websockets import WebSocket, WebSocketDisconnect

from node.api.backend import Backend, Finalized
from node.api.events import namespace_view
from node.api.requests import parse_uint, query_flag, query_namespace
from node.api.responses import ENCODER, ApiError, block_json

__all__ = ["EventSocket"]

log = logging.getLogger("node.api.rpc")

POLICY = 1008  # RFC 6455: the endpoint received something that violates its policy
TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001
REASON_BYTES_MAX = 123  # what a close frame can carry
# Rendered messages waiting for the writer: a few, since a full block's JSON
# may be megabytes; the socket's own buffer holds more.
QUEUE_MESSAGES = 4


def _reason(text: str) -> str:
    return text.encode()[:REASON_BYTES_MAX].decode(errors="ignore")


class EventSocket:
    """The WebSocket endpoint of `/events`."""

    def __init__(
        self,
        backend: Backend,
        *,
        send_timeout_s: float = 10.0,
        subscribers_max: int = 256,
    ) -> None:
        self.backend = backend
        self.send_timeout_s = send_timeout_s
        self.subscribers_max = subscribers_max
        self.subscribers = 0

    async def __call__(self, websocket: WebSocket) -> None:
        await websocket.accept()
        if self.subscribers >= self.subscribers_max:
            await websocket.close(TRY_AGAIN_LATER, f"{self.subscribers_max} subscribers already")
            return
        try:
            start, render = self._query(websocket)
        except ApiError as error:
            await websocket.close(POLICY, _reason(error.message))
            return
        self.subscribers += 1
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._until_closed, websocket, tasks.cancel_scope)
                await self._send_blocks(websocket, start, render)
                tasks.cancel_scope.cancel()
        finally:
            self.subscribers -= 1

    def _query(self, websocket: WebSocket) -> tuple[int, Callable[[Finalized], str]]:
        namespace = query_namespace(websocket)  # type: ignore[arg-type]  # same query API
        full = query_flag(websocket, "full", default=True)  # type: ignore[arg-type]
        last_id = websocket.headers.get("last-event-id")
        if last_id:
            start = parse_uint(last_id, "Last-Event-ID") + 1
        elif "from" in websocket.query_params:
            start = max(1, parse_uint(websocket.query_params["from"], "from"))
        else:
            start = self.backend.store.height() + 1

        def render(item: Finalized) -> str:
            if namespace is None:
                data = block_json(item.block, item.certificate, full=full)
            else:
                data = namespace_view(item.block, item.certificate, namespace)
            return ENCODER.encode(data).decode()

        return start, render

    async def _send_blocks(
        self, websocket: WebSocket, start: int, render: Callable[[Finalized], str]
    ) -> None:
        """Read blocks into a short queue that a second task writes out. A
        queue that stays full for `send_timeout_s` means the client reads
        slower than it asks: the writer finishes the message it is on, then
        closes with the reason. (A client that reads nothing at all is cut
        by the server's write deadline instead; no reason can reach it.)"""
        send, receive = anyio.create_memory_object_stream[str](QUEUE_MESSAGES)
        closing: list[tuple[int, str]] = []
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._write, websocket, receive, closing)
            next_height = start
            async with send, contextlib.aclosing(self.backend.finalized(start)) as blocks:
                try:
                    async for item in blocks:
                        with anyio.move_on_after(self.send_timeout_s) as waiting:
                            await send.send(render(item))
                        if waiting.cancelled_caught:
                            reason = (
                                f"too slow: block {next_height} waited {self.send_timeout_s:g} s;"
                                f" reconnect with from={next_height}"
                            )
                            closing.append((POLICY, reason))
                            return
                        next_height = item.block.header.height + 1
                    # The node's stream of blocks ends only when it stops.
                    closing.append(
                        (GOING_AWAY, f"the node stops; reconnect with from={next_height}")
                    )
                except anyio.BrokenResourceError:
                    return  # the writer ended: the client went away
                except Exception:
                    log.exception("RPC /events (WebSocket): reading finalized blocks failed")
                    closing.append(
                        (1011, f"reading blocks failed; reconnect with from={next_height}")
                    )

    async def _write(
        self,
        websocket: WebSocket,
        receive: anyio.abc.ObjectReceiveStream[str],
        closing: list[tuple[int, str]],
    ) -> None:
        async with receive:
            try:
                async for text in receive:
                    await websocket.send_text(text)
            except (WebSocketDisconnect, OSError, RuntimeError):
                return  # the client went away (or the server cut it)
        if closing:
            await self._close(websocket, *closing[0])

    async def _close(self, websocket: WebSocket, code: int, reason: str) -> None:
        with anyio.move_on_after(1.0), contextlib.suppress(Exception):
            await websocket.close(code, _reason(reason))

    async def _until_closed(self, websocket: WebSocket, scope: anyio.CancelScope) -> None:
        """Read (and drop) what the client sends, so its close is seen at once."""
        with contextlib.suppress(Exception):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        scope.cancel()
