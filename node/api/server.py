"""Serving the RPC app: Hypercorn's HTTP/1.1 and HTTP/2 machinery behind a
listener of our own, which bounds what clients can hold.

Hypercorn accepts every connection and writes every response to the end,
however slowly the client reads: a client that opens connections and reads
nothing holds descriptors and response memory without bound. Here

- connections are capped in all (`connections_max`, kept below the
  descriptor limit with a reserve for storage) and per client address
  (`connections_per_client_max`); one over a cap gets 503 `overloaded` as
  JSON and is closed;
- every write must finish within `send_timeout_s`: a client that stops
  reading loses its connection, and the response it held is freed;
- a connection on which nothing moved either way for `idle_timeout_s` is
  closed. Hypercorn's own `read_timeout` counts reads only, so it cut every
  event stream (whose client only reads) after that long; here a write
  counts too, and an idle event stream writes a keepalive comment.

Each connection is Hypercorn's handler with less work per request
(`node.api.connection`: one write per response, one keep-alive timer).
Headers are bounded by Hypercorn's keep-alive timeout and the request body
by the app (`node.api.rpc`). Hypercorn's own answers to requests it cannot
parse (400, 431) get the error JSON body every other answer has.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import re
import resource
from functools import partial

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp

from node.api.backend import ErrorCode
from node.api.connection import Connection
from storage.leveldb import MAX_OPEN_FILES

__all__ = [
    "DESCRIPTOR_RESERVE",
    "ConnectionCaps",
    "connection_cap",
    "http_config",
    "raise_descriptor_limit",
    "serve",
]

log = logging.getLogger(__name__)

# Descriptors kept free of client connections: LevelDB's open table files
# (`storage.leveldb.MAX_OPEN_FILES`), its log and manifest, the journal, the
# UDP socket, log files, pipes.
DESCRIPTOR_RESERVE = MAX_OPEN_FILES + 256
_REFUSAL_BODY = b'{"error":{"code":"overloaded","message":"too many connections; retry later"}}'
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
    b"retry-after: 1\r\n"
    b"content-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)
_REFUSAL_SEND_S = 0.5


def http_config(listen: str) -> HypercornConfig:
    """How the RPC is served (the benchmark serves its bare handler the same way)."""
    config = HypercornConfig()
    config.bind = [listen]
    config.accesslog = None
    config.errorlog = logging.getLogger("sequencer.rpc")
    return config


def raise_descriptor_limit() -> int:
    """Raise the soft descriptor limit to the hard one; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass  # some systems refuse RLIM_INFINITY: keep what we have
    return int(soft)


def connection_cap(configured: int, descriptor_limit: int) -> int:
    """`configured`, or less so that `DESCRIPTOR_RESERVE` descriptors stay free."""
    return max(1, min(configured, descriptor_limit - DESCRIPTOR_RESERVE))


class ConnectionCaps:
    """Open connections, in all and per client address."""

    def __init__(self, total_max: int, per_client_max: int) -> None:
        self.total_max = total_max
        self.per_client_max = per_client_max
        self.open = 0
        self.refused = 0
        self.timed_out = 0
        self.idle_closed = 0
        self._by_client: collections.Counter[str] = collections.Counter()

    def admit(self, client: str) -> bool:
        if self.open >= self.total_max or self._by_client[client] >= self.per_client_max:
            self.refused += 1
            return False
        self.open += 1
        self._by_client[client] += 1
        return True

    def release(self, client: str) -> None:
        self.open -= 1
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]


# Hypercorn answers a request it cannot parse (bad syntax 400, headers over
# its limit 431, ...) itself, with an empty body: exactly this head.
_SERVER_ERROR = re.compile(
    rb"HTTP/1\.1 ([45]\d\d) [^\r]*\r\ncontent-length: 0\r\nconnection: close\r\n"
)


def with_json_body(data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """Hypercorn's own error answers, given the error JSON every other answer has."""
    if not (
        isinstance(data, bytes) and data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n")
    ):
        return data
    match = _SERVER_ERROR.match(data)
    if match is None:
        return data
    status = int(match[1])
    code = ErrorCode.HEADERS_TOO_LARGE if status == 431 else ErrorCode.MALFORMED
    message = _SERVER_MESSAGES.get(status, "the request is not valid HTTP/1.1")
    body = json.dumps({"error": {"code": str(code), "message": message}}).encode()
    rest = data[match.end() :]
    head = (
        data[: match.start(0)]
        + f"HTTP/1.1 {status} \r\ncontent-type: application/json\r\n".encode()
        + f"content-length: {len(body)}\r\nconnection: close\r\n".encode()
    )
    return head + rest + body


_SERVER_MESSAGES = {
    400: "the request is not valid HTTP/1.1",
    431: "the request headers are too large",
}


class _GuardedStream(trio.abc.HalfCloseableStream):
    """A client's socket stream: writes under a deadline, closed when nothing
    moved either way for `idle_s`, its slot freed on close."""

    def __init__(
        self,
        stream: trio.SocketStream,
        caps: ConnectionCaps,
        client: str,
        send_s: float,
        idle_s: float,
    ) -> None:
        self._stream = stream
        self._caps = caps
        self._client = client
        self._send_s = send_s
        self._idle_s = idle_s
        self._moved_at = trio.current_time()
        self._released = False
        self.socket = stream.socket  # Hypercorn reads the addresses from it

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data = with_json_body(data)
        # Hypercorn shields its writes from cancellation; this scope is inside
        # the shield, so its deadline still applies.
        with trio.move_on_after(self._send_s) as scope:
            await self._stream.send_all(data)
        if scope.cancelled_caught:
            self._caps.timed_out += 1
            await self.aclose()
            raise trio.BrokenResourceError("the client read nothing for too long")
        self._moved_at = trio.current_time()

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        # Each wait ends at the idle deadline as it stands; a write meanwhile
        # pushed it on, so wait again. (A receive cancelled before data came
        # loses nothing.)
        while trio.current_time() < self._moved_at + self._idle_s:
            with trio.move_on_at(self._moved_at + self._idle_s):
                data = await self._stream.receive_some(max_bytes)
                self._moved_at = trio.current_time()
                return data
        self._caps.idle_closed += 1
        await self.aclose()  # now: Hypercorn would wait out its keep-alive timer first
        raise trio.BrokenResourceError("nothing moved on the connection for too long")

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._caps.release(self._client)
        await self._stream.aclose()


class _GuardedListener(trio.abc.Listener[_GuardedStream]):
    def __init__(
        self, listener: trio.SocketListener, caps: ConnectionCaps, send_s: float, idle_s: float
    ) -> None:
        self._listener = listener
        self._caps = caps
        self._send_s = send_s
        self._idle_s = idle_s

    async def accept(self) -> _GuardedStream:
        while True:
            stream = await self._listener.accept()
            try:
                client = str(stream.socket.getpeername()[0])
            except OSError:
                await stream.aclose()  # gone already
                continue
            if self._caps.admit(client):
                return _GuardedStream(stream, self._caps, client, self._send_s, self._idle_s)
            # A one-line answer the kernel's buffer takes at once, then close.
            with (
                trio.move_on_after(_REFUSAL_SEND_S),
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
            ):
                await stream.send_all(_REFUSAL)
            await stream.aclose()

    async def aclose(self) -> None:
        await self._listener.aclose()


async def serve(
    app: ASGIApp,
    config: HypercornConfig,
    caps: ConnectionCaps,
    send_timeout_s: float,
    idle_timeout_s: float,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `config.bind` until cancelled; `task_status` gets the
    bound addresses. (Hypercorn's lifespan events are not run: the app has
    no startup or shutdown handlers.)"""
    sockets = config.create_sockets()
    listeners = []
    binds = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        listeners.append(_GuardedListener(listener, caps, send_timeout_s, idle_timeout_s))
        host, port = sock.getsockname()[:2]
        binds.append(f"http://{host}:{port}")
    handler = partial(
        Connection,
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        WorkerContext(None),
        ConnectionState({}),
    )
    async with trio.open_nursery() as nursery:
        task_status.started(binds)
        await trio.serve_listeners(handler, listeners, handler_nursery=nursery)
