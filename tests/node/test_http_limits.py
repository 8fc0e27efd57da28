"""What an anonymous HTTP client can hold on a real node: connections,
descriptors, response memory. A one-validator devnet with small limits:

- a request that declares a body and sends none gets 408 `request_timeout`
  within `body_timeout_s`, and the node's storage keeps working;
- connections over `connections_per_client_max` from one address get 503
  `overloaded` as JSON, while another address still gets in;
- a client that asks for large responses and reads nothing loses each
  connection after `send_timeout_s`, and the response it held is freed;
- a block range stops at `response_bytes_max` (never empty), and a client
  pages through the whole chain;
- a block range is streamed: a connection whose client reads nothing holds
  about one block's JSON, not the whole range, so many of them cost the node
  far less memory than the responses they asked for;
- a connection on which nothing moves either way is closed after
  `read_timeout_s`, but an event stream, whose client only reads, is not.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sequencer.client import Wallet
from sequencer.crypto import PrivateKey
from tests.node.cluster import Cluster, running, wait_until

PER_CLIENT = 12
BODY_TIMEOUT_S = 1.0
SEND_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 3.0  # below Hypercorn's keep-alive timeout (5 s): the idle close is ours
RESPONSE_BYTES_MAX = 1024 * 1024
BIG_PAYLOAD = 100_000  # bytes per transaction: blocks of several MB
BIG_TXS = 48
STREAM_BLOCKS = 8
STREAM_SOURCES = 10  # addresses of PER_CLIENT connections each


def _limits(cluster: Cluster) -> None:
    settings = {
        "connections_per_client_max": PER_CLIENT,
        "body_timeout_s": BODY_TIMEOUT_S,
        "send_timeout_s": SEND_TIMEOUT_S,
        "read_timeout_s": READ_TIMEOUT_S,
        "response_bytes_max": RESPONSE_BYTES_MAX,
    }
    cluster.set_config(0, settings)
    # These tests read megabytes from one address on purpose.
    cluster.lift_rate_limit()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("http-limits") / "devnet"
    with running(root, validators=1, before_start=_limits) as cluster:
        yield cluster


def address(cluster: Cluster) -> tuple[str, int]:
    host, port = cluster.url(0).removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def connect(cluster: Cluster, source: str = "127.0.0.1", rcvbuf: int | None = None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(address(cluster))
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one response, then the socket is done."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65_536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65_536)
        assert chunk
        rest += chunk
    return status, headers, json.loads(rest[:length])


def metric(cluster: Cluster, name: str) -> float:
    # From an address of its own: the tests fill 127.0.0.1's connection slots.
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(transport=transport, timeout=10) as http:
        text = http.get(f"{cluster.url(0)}/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_a_declared_body_that_never_comes_gets_408_and_storage_keeps_working(
    cluster: Cluster,
) -> None:
    request = (
        b"POST /tx HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\n"
        b"content-length: 1000000\r\n\r\n"
    )
    socks = []
    started = time.monotonic()
    for _ in range(PER_CLIENT):
        sock = connect(cluster, source="127.0.0.5")
        sock.sendall(request)
        socks.append(sock)
    for sock in socks:
        with contextlib.closing(sock):
            status, headers, body = read_response(sock)
            assert status == 408
            assert body["error"]["code"] == "request_timeout"
            assert headers.get("connection") == "close"
    assert time.monotonic() - started < BODY_TIMEOUT_S + 5
    # Nothing stuck: the node takes and finalizes a transaction at once.
    wallet = Wallet(PrivateKey(b"\x51" * 32), cluster.layout.chain_id)
    with cluster.client(0) as client:
        tx_id = client.send(wallet, b"after the idle bodies", nonce=0)
        assert client.wait_final(tx_id, timeout=20).status == "committed"
    assert metric(cluster, "sequencer_storage_failed") == 0


def test_connections_over_the_per_client_cap_get_503_overloaded(cluster: Cluster) -> None:
    process = cluster.processes[0]
    assert process is not None
    held = [connect(cluster, source="127.0.0.6") for _ in range(PER_CLIENT)]
    try:
        wait_until(
            lambda: metric(cluster, "sequencer_rpc_connections") >= PER_CLIENT,
            10,
            "the held connections",
        )
        fds = descriptors(process.pid)
        refused = []
        for _ in range(30):
            sock = connect(cluster, source="127.0.0.6")
            with contextlib.closing(sock):
                sock.sendall(b"GET /status HTTP/1.1\r\nhost: node\r\n\r\n")
                refused.append(read_response(sock))
        assert {status for status, _h, _b in refused} == {503}
        assert {body["error"]["code"] for _s, _h, body in refused} == {"overloaded"}
        assert descriptors(process.pid) <= fds + 2  # refused ones hold nothing
        # Another address is another client.
        other = connect(cluster, source="127.0.0.2")
        with contextlib.closing(other):
            other.sendall(b"GET /status HTTP/1.1\r\nhost: node\r\n\r\n")
            assert read_response(other)[0] == 200
        assert metric(cluster, "sequencer_rpc_connections_refused_total") >= 30
    finally:
        for sock in held:
            sock.close()
    # Closed connections free their slots.
    wait_until(lambda: httpx.get(f"{cluster.url(0)}/status", timeout=5).status_code == 200, 10, "")


def big_chain(cluster: Cluster) -> None:
    wallets = [
        Wallet(PrivateKey(bytes([0x60 + i]) * 32), cluster.layout.chain_id) for i in range(4)
    ]
    with cluster.client(0) as client:
        ids = [
            client.send(wallets[n % 4], bytes([n]) * BIG_PAYLOAD, nonce=n // 4)
            for n in range(BIG_TXS)
        ]
        for id_ in ids:
            client.wait_final(id_, timeout=30)


def test_a_block_range_stops_at_the_byte_cap_and_pages_through(cluster: Cluster) -> None:
    big_chain(cluster)
    height = cluster.height(0)
    seen = 0
    pages = 0
    with httpx.Client(base_url=cluster.url(0), timeout=30) as http:
        while seen < height:
            response = http.get(f"/blocks?from={seen + 1}&limit=100&full=true")
            assert response.status_code == 200
            blocks = response.json()["blocks"]
            assert blocks, "a page is never empty before the tip"
            assert [b["header"]["height"] for b in blocks] == list(
                range(seen + 1, seen + 1 + len(blocks))
            )
            # The cap, or over it by one block alone.
            assert len(response.content) <= RESPONSE_BYTES_MAX or len(blocks) == 1
            seen += len(blocks)
            pages += 1
    assert pages > 1


def test_a_client_that_reads_nothing_loses_its_connections(cluster: Cluster) -> None:
    process = cluster.processes[0]
    assert process is not None
    if cluster.height(0) < BIG_TXS // 4:
        big_chain(cluster)
    timeouts_before = metric(cluster, "sequencer_rpc_send_timeouts_total")
    request = b"GET /blocks?from=1&limit=100&full=true HTTP/1.1\r\nhost: node\r\n\r\n"
    # Many requests on each of PER_CLIENT connections, none read: the
    # responses pile up in the node until its writes block.
    socks = [connect(cluster, source="127.0.0.4", rcvbuf=4096) for _ in range(PER_CLIENT)]
    try:
        for sock in socks:
            sock.sendall(request * 8)
        deadline = time.monotonic() + SEND_TIMEOUT_S + 20
        while time.monotonic() < deadline:
            timeouts = metric(cluster, "sequencer_rpc_send_timeouts_total") - timeouts_before
            if timeouts >= PER_CLIENT:
                break
            time.sleep(0.2)
        assert timeouts >= PER_CLIENT, f"{timeouts} of {PER_CLIENT} connections timed out"
    finally:
        for sock in socks:
            sock.close()
    # Their slots are free again, and the node serves.
    assert httpx.get(f"{cluster.url(0)}/status", timeout=5).status_code == 200
    wait_until(lambda: metric(cluster, "sequencer_rpc_connections") <= 2, 30, "freed slots")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_unread_block_ranges_hold_one_block_each_not_the_range(cluster: Cluster) -> None:
    process = cluster.processes[0]
    assert process is not None
    # One large transaction per block: blocks of about 200 KB of JSON, ranges
    # of about RESPONSE_BYTES_MAX (five blocks).
    wallet = Wallet(PrivateKey(bytes([0x70]) * 32), cluster.layout.chain_id)
    first = cluster.height(0) + 1
    with cluster.client(0) as client:
        for nonce in range(STREAM_BLOCKS):
            client.wait_final(client.send(wallet, bytes([nonce]) * BIG_PAYLOAD, nonce=nonce), 30)
    path = f"/blocks?from={first}&limit=100&full=true"
    with httpx.Client(base_url=cluster.url(0), timeout=30) as http:
        assert len(http.get(path).content) > RESPONSE_BYTES_MAX * 0.75
    # Measure the peak from here on (Linux's clear_refs resets it).
    Path(f"/proc/{process.pid}/clear_refs").write_text("5")
    before = peak_rss_mib(process.pid)
    sources = [f"127.0.1.{i}" for i in range(1, STREAM_SOURCES + 1)]
    socks = [
        connect(cluster, source=source, rcvbuf=4096)
        for source in sources
        for _ in range(PER_CLIENT)
    ]
    try:
        for sock in socks:
            sock.sendall(f"GET {path} HTTP/1.1\r\nhost: node\r\n\r\n".encode())
        wait_until(
            lambda: metric(cluster, "sequencer_rpc_connections") >= len(socks), 10, "all connected"
        )
        time.sleep(SEND_TIMEOUT_S / 2)  # each response as far as its client's window lets it
        grown = peak_rss_mib(process.pid) - before
    finally:
        for sock in socks:
            sock.close()
    # Whole responses would hold len(socks) MiB at once (measured: a little
    # more); a block and a slice each, about a third of that.
    held = len(socks) * RESPONSE_BYTES_MAX / 2**20
    assert grown < held / 2, f"peak RSS grew {grown:.0f} MiB for {len(socks)} unread ranges"


def test_an_event_stream_outlives_the_read_timeout(cluster: Cluster) -> None:
    """Its client sends nothing after the request; the node's writes (blocks,
    keepalive comments) keep the connection alive, for as long as it reads."""
    wallet = Wallet(PrivateKey(bytes([0x71]) * 32), cluster.layout.chain_id)
    start = cluster.height(0) + 1
    transport = httpx.HTTPTransport(local_address="127.0.0.12")
    with (
        httpx.Client(transport=transport, base_url=cluster.url(0), timeout=30) as http,
        http.stream("GET", "/events", params={"from": str(start)}) as events,
    ):
        assert events.status_code == 200
        lines = events.iter_lines()
        quiet_until = time.monotonic() + 3 * READ_TIMEOUT_S
        while time.monotonic() < quiet_until:
            next(lines)  # a keepalive comment (the chain is idle); StopIteration if cut
        with cluster.client(0) as client:
            client.send(wallet, b"after a quiet stream", nonce=0)
        for line in lines:
            if line.startswith("id: "):
                assert int(line[4:]) == start
                break
        else:
            raise AssertionError("the event stream ended")


def test_a_connection_on_which_nothing_moves_is_closed(cluster: Cluster) -> None:
    before = metric(cluster, "sequencer_rpc_idle_closes_total")
    sock = connect(cluster, source="127.0.0.13")
    with contextlib.closing(sock):
        assert sock.recv(1) == b""  # closed by the node, not timed out here (10 s)
    # Hypercorn's keep-alive timer (5 s) would close it too, later, uncounted.
    assert metric(cluster, "sequencer_rpc_idle_closes_total") == before + 1


def raw_exchange(cluster: Cluster, request: bytes, source: str) -> tuple[int, dict, dict]:
    sock = connect(cluster, source=source)
    with contextlib.closing(sock):
        sock.sendall(request)
        return read_response(sock)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET /status HTTP/1.1\r\nhost: node\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "malformed"),
        (b"GET /status HTTP/1.1\r\nhost: node\r\nbad header line\r\n\r\n", 400, "malformed"),
    ],
    ids=["huge headers", "not HTTP", "a bad header line"],
)
def test_the_servers_own_refusals_carry_the_error_json(
    cluster: Cluster, request_bytes: bytes, status: int, code: str
) -> None:
    got_status, headers, body = raw_exchange(cluster, request_bytes, "127.0.0.7")
    assert got_status == status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_headers_dripped_byte_by_byte_lose_the_connection(cluster: Cluster) -> None:
    sock = connect(cluster, source="127.0.0.8")
    started = time.monotonic()
    closed_after = None
    with contextlib.closing(sock):
        for byte in b"GET /status HTTP/1.1\r\nhost: node\r\nx-slow: " + b"z" * 60:
            try:
                sock.sendall(bytes([byte]))
                time.sleep(0.25)
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        closed_after = time.monotonic() - started
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
            except OSError:
                closed_after = time.monotonic() - started
                break
    # Hypercorn's keep-alive timeout (5 s) runs until a request's headers are whole.
    assert closed_after is not None, "a slow drip of headers held the connection"
    assert closed_after < 12


def test_a_refused_large_body_closes_its_connection_and_says_so(cluster: Cluster) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(base_url=cluster.url(0), transport=transport, timeout=10) as http:
        response = http.post(
            "/tx", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["connection"] == "close"
        assert response.json()["error"]["code"] == "body_too_large"
        # The client knew to open a new connection: its next request works.
        assert http.get("/status").status_code == 200


def test_http2_requests_multiplexed_on_one_connection_pass_the_guards(cluster: Cluster) -> None:
    # HTTP/2 with prior knowledge, through the same listener: many requests
    # multiplexed on one connection are each charged and answered.
    transport = httpx.HTTPTransport(local_address="127.0.0.10", http1=False, http2=True)
    with httpx.Client(base_url=cluster.url(0), transport=transport, timeout=10) as http:
        responses = [http.get("/status") for _ in range(300)]
        assert {r.http_version for r in responses} == {"HTTP/2"}
        assert {r.status_code for r in responses} <= {200, 429}
    assert httpx.get(f"{cluster.url(0)}/status", timeout=5).status_code == 200
