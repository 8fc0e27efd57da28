"""A small blocking WebSocket client (wsproto over a socket), for tests that
read a real node's `/events` over WebSocket."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)


def ws_messages(
    base_url: str, target: str, count: int, timeout_s: float = 30.0
) -> tuple[list[Any], tuple[int, str] | None]:
    """Up to `count` JSON messages from `target`; the close (code, reason) if
    the node closed first, else None (this client then closes)."""
    url = urlsplit(base_url)
    assert url.hostname is not None
    assert url.port is not None
    connection = WSConnection(ConnectionType.CLIENT)
    messages: list[Any] = []
    parts: list[str] = []
    with socket.create_connection((url.hostname, url.port), timeout=timeout_s) as sock:
        sock.sendall(connection.send(Request(host=url.netloc, target=target)))
        while len(messages) < count:
            data = sock.recv(65536)
            if not data:
                return messages, (1006, "connection closed without a close frame")
            connection.receive_data(data)
            for event in connection.events():
                if isinstance(event, RejectConnection):
                    raise AssertionError(f"the node refused the upgrade: {event.status_code}")
                if isinstance(event, AcceptConnection):
                    continue
                if isinstance(event, Ping):
                    sock.sendall(connection.send(event.response()))
                elif isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        messages.append(json.loads("".join(parts)))
                        parts = []
                elif isinstance(event, CloseConnection):
                    sock.sendall(connection.send(event.response()))
                    return messages, (event.code, event.reason or "")
        sock.sendall(connection.send(CloseConnection(code=1000)))
    return messages[:count], None  # one read may have brought more
