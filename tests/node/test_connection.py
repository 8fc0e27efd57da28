"""`node.api.connection.Connection`, Hypercorn's connection handler with one
write per response and one keep-alive timer, against Hypercorn's own
`TCPServer` on the same requests over real loopback connections: the same
bytes, in fewer writes, and the same keep-alive behaviour."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from node.api.connection import COALESCE_BYTES_MAX, Connection, KeepAliveTimer, holds_back

KEEP_ALIVE_S = 0.5
SLOW_S = 1.2
BIG = b"x" * (COALESCE_BYTES_MAX + 1)
STREAMED = (b"one", b"two", b"three")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    path = scope["path"]
    if path == "/stream":  # no Content-Length: chunked, its head at once
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in STREAMED:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/slow":
        await trio.sleep(SLOW_S)
    body = {"/big": BIG, "/empty": b""}.get(path, b"hello")
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Recording(trio.abc.HalfCloseableStream):
    """A server-side socket stream that records each write."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self.socket = stream.socket
        self.writes: list[bytes] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


Client = Callable[[trio.SocketStream, Recording], Awaitable[None]]


def serve_one(handler: type[TCPServer], client: Client) -> Recording:
    """One connection served by `handler` while `client` runs; the server's writes."""
    config = Config()
    config.include_date_header = False  # the bytes of two runs compare equal
    config.keep_alive_timeout = KEEP_ALIVE_S

    async def main() -> Recording:
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listener.socket.getsockname()[1]
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                recording = Recording(await listener.accept())
                server = handler(
                    wrap_app(app, config.wsgi_max_body_size, "asgi"),
                    config,
                    WorkerContext(None),
                    ConnectionState({}),
                    recording,
                )
                nursery.start_soon(server.run)
                await client(stream, recording)
                await stream.aclose()
        await listener.aclose()
        return recording

    return trio.run(main)


async def read_response(stream: trio.SocketStream, buffer: bytearray, head_only: bool) -> bytes:
    """One response (its head and body, framed by Content-Length or chunks)."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        buffer += await stream.receive_some()
    head = bytes(buffer[: end + 4])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    if head_only:
        size = end + 4
    elif length is not None:
        size = end + 4 + length
        while len(buffer) < size:
            buffer += await stream.receive_some()
    else:
        while (last := buffer.find(b"\r\n0\r\n\r\n", end)) < 0:
            buffer += await stream.receive_some()
        size = last + 7
    response = bytes(buffer[:size])
    del buffer[:size]
    return response


REQUESTS = (
    (b"POST /small HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello", False),
    (b"GET /small HTTP/1.1\r\nhost: a\r\n\r\n", False),
    (b"HEAD /small HTTP/1.1\r\nhost: a\r\n\r\n", True),
    (b"GET /empty HTTP/1.1\r\nhost: a\r\n\r\n", False),
    (b"GET /big HTTP/1.1\r\nhost: a\r\n\r\n", False),
    (b"GET /stream HTTP/1.1\r\nhost: a\r\n\r\n", False),
    (b"GET /small HTTP/1.1\r\nhost: a\r\n\r\n", False),
)


def exchange(handler: type[TCPServer]) -> tuple[list[bytes], list[list[bytes]]]:
    """REQUESTS one by one on one connection: the responses, and the server's
    writes for each."""
    responses: list[bytes] = []
    writes: list[list[bytes]] = []

    async def client(stream: trio.SocketStream, recording: Recording) -> None:
        buffer = bytearray()
        for request, head_only in REQUESTS:
            before = len(recording.writes)
            await stream.send_all(request)
            responses.append(await read_response(stream, buffer, head_only))
            await trio.sleep(0.05)  # the end of the response written too
            writes.append([w for w in recording.writes[before:] if w])

    serve_one(handler, client)
    return responses, writes


def test_one_write_per_response_and_the_same_bytes() -> None:
    hypercorn_responses, hypercorn_writes = exchange(TCPServer)
    responses, writes = exchange(Connection)
    assert responses == hypercorn_responses
    assert [b"".join(w) for w in writes] == [b"".join(w) for w in hypercorn_writes]
    assert [len(w) for w in hypercorn_writes] == [2, 2, 1, 1, 2, 5, 2]
    # Head and body together; a body over the cap and a chunked one as before.
    assert [len(w) for w in writes] == [1, 1, 1, 1, 2, 5, 1]
    assert writes[0][0].endswith(b"\r\n\r\nhello")
    assert writes[4][1] == BIG


def test_holds_back_only_heads_with_a_content_length() -> None:
    assert holds_back(b"HTTP/1.1 202 \r\ncontent-length: 76\r\nserver: h\r\n\r\n")
    assert not holds_back(b"HTTP/1.1 200 \r\ntransfer-encoding: chunked\r\n\r\n")
    assert not holds_back(b"HTTP/1.1 100 \r\n\r\n")
    assert not holds_back(b"HTTP/1.1 202 \r\ncontent-length: 76\r\n\r\n{}")
    assert not holds_back(b'{"tx_id": "HTTP/1.1 \r\ncontent-length: 1\r\n\r\n"}')


@pytest.mark.parametrize("handler", [TCPServer, Connection], ids=["hypercorn", "connection"])
def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    handler: type[TCPServer],
) -> None:
    async def client(stream: trio.SocketStream, recording: Recording) -> None:
        await stream.send_all(REQUESTS[1][0])
        await read_response(stream, bytearray(), False)
        started = trio.current_time()
        assert await stream.receive_some() == b""
        assert KEEP_ALIVE_S * 0.8 <= trio.current_time() - started <= KEEP_ALIVE_S + 1.5

    serve_one(handler, client)


@pytest.mark.parametrize("handler", [TCPServer, Connection], ids=["hypercorn", "connection"])
def test_headers_that_never_end_lose_the_connection(handler: type[TCPServer]) -> None:
    async def client(stream: trio.SocketStream, recording: Recording) -> None:
        started = trio.current_time()
        await stream.send_all(b"GET /small HTTP/1.1\r\nhost: a\r\n")
        assert await stream.receive_some() == b""
        assert trio.current_time() - started <= KEEP_ALIVE_S + 1.5

    serve_one(handler, client)


@pytest.mark.parametrize("handler", [TCPServer, Connection], ids=["hypercorn", "connection"])
def test_a_request_longer_than_the_keep_alive_timeout_is_answered(
    handler: type[TCPServer],
) -> None:
    async def client(stream: trio.SocketStream, recording: Recording) -> None:
        await stream.send_all(b"GET /slow HTTP/1.1\r\nhost: a\r\n\r\n")
        assert (await read_response(stream, bytearray(), False)).endswith(b"hello")
        # and the next request on the same connection too
        await stream.send_all(REQUESTS[1][0])
        assert (await read_response(stream, bytearray(), False)).endswith(b"hello")

    serve_one(handler, client)


@pytest.mark.parametrize("handler", [TCPServer, Connection], ids=["hypercorn", "connection"])
def test_a_client_gone_mid_request_ends_the_handler(handler: type[TCPServer]) -> None:
    """The timer, stopped for the request, does not keep the handler alive."""

    async def client(stream: trio.SocketStream, recording: Recording) -> None:
        await stream.send_all(b"GET /slow HTTP/1.1\r\nhost: a\r\n\r\n")
        await stream.aclose()

    serve_one(handler, client)  # returns: the handler ended (within serve_one's limit)


class Nursery:
    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery


def test_the_keep_alive_timer_moves_one_deadline() -> None:
    expired: list[float] = []

    async def on_expiry() -> None:
        expired.append(trio.current_time())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            group = Nursery(nursery)
            timer = KeepAliveTimer(5.0, on_expiry)
            await timer.restart(group, None)
            await trio.sleep(3)
            await timer.restart(group, None)  # moved on: expires at 8, not 5
            await trio.sleep(4)
            assert expired == []
            await trio.sleep(2)
            assert expired == [8.0]
            await timer.restart(group, None)  # a new task after expiry
            await timer.stop()
            await trio.sleep(100)
            assert expired == [8.0]  # stopped: never
            timer.end()  # a stopped timer ends at once
        assert trio.current_time() == 109.0
        async with trio.open_nursery() as nursery:
            group = Nursery(nursery)
            timer = KeepAliveTimer(5.0, on_expiry)
            await timer.restart(group, None)
            timer.end()  # an armed timer still expires
        assert expired == [8.0, 114.0]
        assert math.isclose(trio.current_time(), 114.0)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
