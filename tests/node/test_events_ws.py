"""`/events` over WebSocket (`node.api.events_ws`): the SSE stream's blocks, the
same query and resume semantics, refusals with a reason, and a subscriber too
slow to keep up closed with a reason naming where to resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from starlette.websockets import WebSocketDisconnect

from node.api.events_ws import POLICY, TRY_AGAIN_LATER, EventSocket
from tests.node.rpc_backend import CHAIN, RpcBackend
from tests.node.rpc_harness import Api


def messages(api: Api, path: str, headers: dict[str, str] | None = None) -> Iterator[Any]:
    """Every message until the node closes the socket; then its close code."""
    with api.client.websocket_connect(path, headers=headers or {}) as socket:
        while True:
            try:
                yield json.loads(socket.receive_text())
            except WebSocketDisconnect as closed:
                yield ("closed", closed.code, closed.reason)
                return


def test_the_same_blocks_as_the_sse_stream(api: Api) -> None:
    *blocks, closed = messages(api, "/events?from=5")
    assert blocks == [api.get(f"/blocks/{h}?full=true").json() for h in (5, 6, 7)]
    assert closed == ("closed", 1001, "the node stops; reconnect with from=8")  # as if it stopped
    *light, _ = messages(api, "/events?from=6&full=false")
    assert light == [api.get(f"/blocks/{h}").json() for h in (6, 7)]


def test_a_namespace_filter_sends_the_namespace_views(api: Api) -> None:
    *views, _ = messages(api, "/events?from=5&namespace=9")
    assert views == [api.get(f"/namespaces/9/blocks/{h}").json() for h in (5, 6, 7)]


@pytest.mark.parametrize(
    ("path", "headers", "heights"),
    [
        ("/events?from=3", {"Last-Event-ID": "5"}, [6, 7]),
        ("/events?from=7", {}, [7]),
        ("/events", {"Last-Event-ID": "7"}, []),
    ],
    ids=["Last-Event-ID wins", "from", "up to date"],
)
def test_resume(api: Api, path: str, headers: dict[str, str], heights: list[int]) -> None:
    *blocks, _ = messages(api, path, headers)
    assert [b["header"]["height"] for b in blocks] == heights


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("namespace=x", "`namespace` must be"),
        ("from=-1", "`from` must be"),
        ("full=maybe", "`full` must be true or false"),
    ],
)
def test_a_bad_query_closes_with_the_reason(api: Api, query: str, reason: str) -> None:
    ((_, code, said),) = list(messages(api, f"/events?{query}"))
    assert code == POLICY
    assert said.startswith(reason)


# ------------------------------------------------------------------ slow subscribers


class StuckSocket:
    """A WebSocket whose client takes each message only after `read_s`."""

    def __init__(self, query: dict[str, str], read_s: float) -> None:
        self.query_params = query
        self.headers: dict[str, str] = {}
        self.read_s = read_s
        self.sent: list[int] = []
        self.closed: tuple[int, str] | None = None

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        await trio.sleep(self.read_s)
        self.sent.append(json.loads(text)["header"]["height"])

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    async def receive(self) -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError


def run_socket(endpoint: EventSocket, socket: StuckSocket) -> None:
    async def main() -> None:
        with trio.fail_after(60):
            await endpoint(socket)  # type: ignore[arg-type]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_subscriber_too_slow_to_keep_up_is_closed_with_where_to_resume() -> None:
    backend = RpcBackend(height=1)
    backend.live = list(CHAIN[1:])  # blocks 2..7 arrive live, one every 0.1 s
    backend.live_delay_s = 0.1
    backend.endless = True
    endpoint = EventSocket(backend, send_timeout_s=2.0)
    socket = StuckSocket({"from": "1"}, read_s=5.0)
    run_socket(endpoint, socket)
    assert socket.closed is not None
    code, reason = socket.closed
    assert code == POLICY
    resume = int(reason.rsplit("from=", 1)[1])
    # Nothing skipped: what was sent is 1.. in order, and the reason names the next.
    assert socket.sent == list(range(1, len(socket.sent) + 1))
    assert resume > len(socket.sent)
    assert reason.startswith(f"too slow: block {resume} waited 2 s")
    assert endpoint.subscribers == 0


def test_a_subscriber_that_keeps_up_is_not_closed() -> None:
    backend = RpcBackend(height=1)
    backend.live = list(CHAIN[1:])
    backend.live_delay_s = 1.0
    endpoint = EventSocket(backend, send_timeout_s=2.0)
    socket = StuckSocket({"from": "1"}, read_s=0.5)
    run_socket(endpoint, socket)
    assert socket.sent == list(range(1, len(CHAIN) + 1))
    assert socket.closed == (1001, f"the node stops; reconnect with from={len(CHAIN) + 1}")


def test_subscribers_are_bounded() -> None:
    endpoint = EventSocket(RpcBackend(), subscribers_max=0)
    socket = StuckSocket({}, read_s=0)
    run_socket(endpoint, socket)
    assert socket.closed == (TRY_AGAIN_LATER, "0 subscribers already")
