"""One client connection as Hypercorn handles it (its trio `TCPServer`), with
less work per request: what a profile of single `POST /tx` requests showed
Hypercorn spending besides parsing and the app.

- One write per response. Hypercorn writes a response in three: the head,
  the body, and the end of the body, which for a Content-Length body is
  nothing at all; each write takes the connection's send lock (a trip
  through the scheduler), a shielded cancel scope and, below, the stream's
  deadline and a syscall. Here an empty write is skipped, and a head with a
  Content-Length is held back and goes out with what comes next (its body,
  or the end of a HEAD answer): the same bytes in the same order, in one
  write and one packet. A body over `COALESCE_BYTES_MAX` is not copied to
  join its head; a held head is dropped with its connection if the body
  never comes (a response the client could not have used).
- One keep-alive timer per connection. Hypercorn closes a connection idle
  for `keep_alive_timeout` between requests (which also bounds how long a
  request's headers may drip in) with a task it starts after each request
  and cancels when the next begins; here one task per connection does it,
  and a request moves its deadline. (Hypercorn's timer also ends on its
  worker's `terminated` event, which `node.api.server.serve` never sets: it
  stops by cancellation.)
- No cancel scope around each read when no `read_timeout` is set (the
  guarded stream of `node.api.server` closes connections idle either way).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer

__all__ = ["COALESCE_BYTES_MAX", "Connection", "KeepAliveTimer", "holds_back"]

# A body up to this size goes out in one write with its head.
COALESCE_BYTES_MAX = 65_536
# A response head with a Content-Length, as h11 writes it: a body (or, for a
# HEAD request, the end of the response) follows at once.
_SIZED_HEAD = re.compile(rb"\r\ncontent-length: [0-9]+\r\n")


def holds_back(data: bytes | bytearray | memoryview) -> bool:
    """Whether `data` is an HTTP/1.1 response head with a Content-Length."""
    return (
        isinstance(data, bytes)
        and data.startswith(b"HTTP/1.1 ")
        and data.endswith(b"\r\n\r\n")
        and _SIZED_HEAD.search(data) is not None
    )


class KeepAliveTimer:
    """Hypercorn's idle task (`SingleTask`) as one task per connection whose
    deadline `restart` sets `timeout_s` ahead and `stop` lifts; at the
    deadline it runs `on_expiry`, shielded, and ends."""

    def __init__(self, timeout_s: float, on_expiry: Callable[[], Awaitable[None]]) -> None:
        self._timeout_s = timeout_s
        self._on_expiry = on_expiry
        self._scope: trio.CancelScope | None = None  # the running task's

    async def restart(self, task_group: Any, action: Callable[..., Any]) -> None:
        """Expire `timeout_s` from now. (`action`, Hypercorn's own timer, is not run.)"""
        deadline = trio.current_time() + self._timeout_s
        if self._scope is None:
            self._scope = trio.CancelScope(deadline=deadline)
            task_group._nursery.start_soon(self._run)
        else:
            self._scope.deadline = deadline

    async def stop(self) -> None:
        """Do not expire (a request is in progress)."""
        if self._scope is not None:
            self._scope.deadline = math.inf

    def end(self) -> None:
        """The connection reads no more: a stopped timer ends now (an armed
        one still expires, as Hypercorn's would)."""
        scope = self._scope
        if scope is not None and scope.deadline == math.inf:
            self._scope = None
            scope.cancel()

    async def _run(self) -> None:
        while (scope := self._scope) is not None:
            with scope:
                await trio.sleep_forever()
            if self._scope is not scope:
                return  # ended
            if trio.current_time() >= scope.deadline:
                self._scope = None
                with trio.CancelScope(shield=True):
                    await self._on_expiry()
                return
            # The deadline moved on (or off) after it passed, before this ran.
            self._scope = trio.CancelScope(deadline=scope.deadline)


class Connection(TCPServer):
    """Hypercorn's handler of one connection, with one write per response and
    one keep-alive timer (see the module docstring)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._timer = KeepAliveTimer(self.config.keep_alive_timeout, self._expire)
        self.idle_task = self._timer  # type: ignore[assignment]  # Hypercorn's SingleTask
        self._head: bytes | None = None

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            data = event.data
            if self._head is not None:
                head, self._head = self._head, None
                if len(data) > COALESCE_BYTES_MAX:
                    await super().protocol_send(RawData(head))
                else:
                    event = RawData(head + data)
            elif not data:
                return
            elif holds_back(data):
                self._head = data
                return
        await super().protocol_send(event)

    async def _read_data(self) -> None:
        if self.config.read_timeout is not None:
            await super()._read_data()
        else:  # Hypercorn's loop, without a deadline per read
            while True:
                try:
                    data = await self.stream.receive_some(MAX_RECV)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    break
                await self.protocol.handle(RawData(bytes(data)))
                if data == b"":
                    break
            await self.protocol.handle(Closed())
        self._timer.end()

    async def _expire(self) -> None:
        """What Hypercorn's timer does when it runs out: close the connection."""
        await self._initiate_server_close()
