"""Minimal HTTP/1.1 keep-alive clients over trio streams, for measuring
request rates: a load generator that costs more per request than the server
under test would measure itself.

`RawConnection` posts, one request at a time, and returns each answer's
body. `Connection` (the RPC benchmark's) also sends GETs, binds its source
address (the limiter keys its buckets on it), reconnects when the server
closed, reads chunked answers, and counts a body's bytes without keeping
them, reading into a bytearray in large chunks: gluing 64 KiB `bytes` onto a
4 MiB response costs the client more CPU than the node spends making it.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import trio

__all__ = ["Connection", "HttpError", "RawConnection"]

RECEIVE_BYTES = 1 << 20


class HttpError(Exception):
    """The connection broke, or the answer is not HTTP/1.1 this client reads."""


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _head(method: str, path: str, host: str, port: int, body: bytes) -> bytes:
    """A request's head, its blank line included."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if body or method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n"


def _framing(header: bytes) -> tuple[int | None, bool]:
    """(Content-Length, None if chunked; whether the server closes after it)."""
    length: int | None = None
    chunked = closing = False
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value == b"chunked"
        elif name == b"connection":
            closing = value == b"close"
    if length is None and not chunked:
        raise HttpError("a response with neither Content-Length nor chunks")
    return length, closing


class RawConnection:
    """One keep-alive HTTP/1.1 connection; requests one at a time."""

    def __init__(self, url: str) -> None:
        self.host, self.port = _address(url)
        self._stream: trio.SocketStream | None = None
        self._buffer = b""

    async def __aenter__(self) -> RawConnection:
        self._stream = await trio.open_tcp_stream(self.host, self.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            await self._stream.aclose()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST."""
        assert self._stream is not None, "use the connection in `async with`"
        await self._stream.send_all(_head("POST", path, self.host, self.port, body) + body)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._receive()
        header, rest = self._buffer[:end], self._buffer[end + 4 :]
        length, _ = _framing(header)
        if length is None:
            raise HttpError("a response without Content-Length")
        while len(rest) < length:
            rest += await self._receive_some()
        self._buffer = rest[length:]
        return int(header[9:12]), rest[:length]

    async def _receive(self) -> None:
        self._buffer += await self._receive_some()

    async def _receive_some(self) -> bytes:
        assert self._stream is not None
        data = await self._stream.receive_some(65536)
        if not data:
            raise HttpError("the server closed the connection")
        return data


class Connection:
    """One keep-alive HTTP/1.1 connection from a chosen source address."""

    def __init__(self, url: str, source: str | None = None) -> None:
        self.host, self.port = _address(url)
        self.source = source
        self._stream: trio.SocketStream | None = None
        self._buffer = bytearray()

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            self._buffer.clear()
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.aclose()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, int]:
        """(status, response body bytes) of one request; (re)connects when needed."""
        try:
            if self._stream is None:
                self._stream = await trio.open_tcp_stream(
                    self.host, self.port, local_address=self.source
                )
            await self._stream.send_all(_head(method, path, self.host, self.port, body) + body)
            return await self._response()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, HttpError):
            await self.close()
            raise HttpError("the connection broke") from None

    async def _response(self) -> tuple[int, int]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._receive()
        header = bytes(self._buffer[:end])
        length, closing = _framing(header)
        if length is None:  # chunked: block ranges are streamed block by block
            length = await self._chunked(end + 4)
        else:
            while len(self._buffer) < end + 4 + length:
                await self._receive()
            del self._buffer[: end + 4 + length]
        if closing:  # e.g. 503 `overloaded`: the server closes after this answer
            await self.close()
        return int(header[9:12]), length

    async def _chunked(self, start: int) -> int:
        """Consume a chunked body starting at `start` in the buffer; its decoded
        size (what the limiter counts). Trailers are not expected."""
        del self._buffer[:start]  # CPython drops a bytearray's head in O(1)
        total = 0
        while True:
            while (eol := self._buffer.find(b"\r\n")) < 0:
                await self._receive()
            try:
                size = int(bytes(self._buffer[:eol]).split(b";")[0], 16)
            except ValueError:
                raise HttpError("a malformed chunk size") from None
            need = eol + 2 + size + 2
            while len(self._buffer) < need:
                await self._receive()
            del self._buffer[:need]
            if size == 0:
                return total
            total += size

    async def _receive(self) -> None:
        assert self._stream is not None
        data = await self._stream.receive_some(RECEIVE_BYTES)
        if not data:
            raise HttpError("the server closed the connection")
        self._buffer += data
