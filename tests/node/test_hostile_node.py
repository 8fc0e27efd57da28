"""Hostile input against a real 4-node devnet (`tests.node.cluster`).

UDP: garbage, oversized, forged (a configured peer's sender tag with a body
nobody sealed), unknown-peer and replayed datagrams (genuine ones captured
off the loopback interface, then sent again) hit node 0's gossip port from a
socket on 127.0.0.1. Each kind is dropped and counted under its reason in
`/metrics`, and the devnet keeps finalizing.

HTTP: one client floods node 3, whose config allows 50 requests/s with a
burst of 100: it gets 429 `rate_limited` with a Retry-After, the node keeps
finalizing, and its resident memory stays bounded.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from net.multiaddr import parse_multiaddr
from net.wire import HEADER, VERSION
from sequencer.crypto import PrivateKey, sign_transaction
from tests.node.cluster import Cluster, running, wait_until

WALLET = PrivateKey(b"\x43" * 32)
FLOODED = 3
RATE_PER_S, BURST = 50, 100
FLOOD_REQUESTS = 6_000
FLOOD_SECONDS = 3.0
FLOOD_SECONDS_MAX = 30.0
FLOOD_LIMITED_MIN = 200
FLOOD_THREADS = 24
RSS_GROWTH_KIB_MAX = 64 * 1024
ETH_P_ALL = 0x0003


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("hostile") / "devnet"
    with running(root, before_start=_limit_rpc) as cluster:
        yield cluster


def _limit_rpc(cluster: Cluster) -> None:
    config = cluster.home(FLOODED) / "config.toml"
    text = config.read_text()
    text = re.sub(r"(?m)^requests_per_s = .*$", f"requests_per_s = {RATE_PER_S}.0", text)
    text = re.sub(r"(?m)^burst = .*$", f"burst = {BURST}", text)
    config.write_text(text)


class Nonces:
    def __init__(self) -> None:
        self.next = 0

    def tx(self, chain_id: str) -> object:
        tx = sign_transaction(
            WALLET, chain_id=chain_id, namespace=0, nonce=self.next, gas_price=1, payload=b"h"
        )
        self.next += 1
        return tx


NONCES = Nonces()


def finalize_one(cluster: Cluster, via: int, timeout_s: float = 20.0) -> None:
    """Submit a transaction through node `via`; every node must finalize it."""
    tx = NONCES.tx(cluster.layout.chain_id)
    tx_id = cluster.client(via).submit(tx)  # type: ignore[arg-type]
    for index in range(cluster.size):
        cluster.client(index).wait_final(tx_id, timeout=timeout_s)


def dropped(cluster: Cluster, index: int) -> dict[str, float]:
    text = httpx.get(f"{cluster.url(index)}/metrics", timeout=5).text
    pattern = r'^sequencer_gossip_datagrams_dropped_total\{reason="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


def p2p_address(cluster: Cluster, index: int) -> tuple[str, int]:
    address = parse_multiaddr(cluster.layout.nodes[index].p2p)
    return str(address.host), address.port


# ------------------------------------------------------------------ UDP


@contextlib.contextmanager
def capture(ports: tuple[int, int]) -> Iterator[list[bytes]]:
    """UDP payloads from port ports[0] to port ports[1] seen on `lo` (needs root)."""
    try:
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except (PermissionError, AttributeError):
        pytest.skip("capturing on lo needs root (AF_PACKET): the replay case cannot run")
    sniffer.bind(("lo", 0))
    sniffer.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def sniff() -> None:
        while not stop.is_set() and len(seen) < 50:
            try:
                frame = sniffer.recv(70_000)
            except TimeoutError:
                continue
            ip = frame[14:]  # lo frames carry a zeroed Ethernet header
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            udp = ip[(ip[0] & 0x0F) * 4 :]
            source, destination = struct.unpack(">HH", udp[:4])
            if (source, destination) == ports:
                seen.append(udp[8:])

    thread = threading.Thread(target=sniff, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()
        sniffer.close()


def test_hostile_datagrams_are_dropped_counted_and_harmless(cluster: Cluster) -> None:
    finalize_one(cluster, 0)
    target = p2p_address(cluster, 0)
    with capture((p2p_address(cluster, 1)[1], target[1])) as genuine:
        finalize_one(cluster, 1)  # traffic from node 1 to node 0 to capture
        deadline = time.monotonic() + 5
        while len(genuine) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(genuine) >= 5, "no datagram from node 1 to node 0 was captured"
    before = dropped(cluster, 0)
    rng = random.Random(2026)
    tag_of_node1 = cluster.layout.nodes[1].public_key[:8]
    session = int(time.time() * 1e6)
    kinds = {
        "malformed": [rng.randbytes(rng.randrange(0, 49)) for _ in range(100)]
        + [bytes([VERSION + 1]) + rng.randbytes(60) for _ in range(50)],  # wrong version
        "oversized": [rng.randbytes(65_400) for _ in range(20)],
        "unknown_peer": [
            HEADER.pack(VERSION, rng.randbytes(8), session, 0, n + 1, 1) + rng.randbytes(64)
            for n in range(100)
        ],
        "unauthenticated": [
            HEADER.pack(VERSION, tag_of_node1, session + 10**9, 0, n + 1, 1) + rng.randbytes(200)
            for n in range(100)
        ],
        "replayed": genuine * 4,
    }
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.bind(("127.0.0.1", 0))
        for datagrams in kinds.values():
            for datagram in datagrams:
                attacker.sendto(datagram, target)
                time.sleep(0.0005)  # stay within the kernel's receive buffer
    time.sleep(0.5)
    after = dropped(cluster, 0)
    for reason, datagrams in kinds.items():
        rose = after.get(reason, 0) - before.get(reason, 0)
        assert rose >= len(datagrams), (reason, rose, len(datagrams))
    # A burst of garbage changes nothing for the chain: it keeps finalizing,
    # through the attacked node and through the others.
    finalize_one(cluster, 0)
    finalize_one(cluster, 2)
    assert httpx.get(f"{cluster.url(0)}/ready", timeout=5).status_code == 200


# ------------------------------------------------------------------ HTTP


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)[1])  # type: ignore[index]


def metric(cluster: Cluster, index: int, name: str) -> float:
    """A gauge from `/metrics`, whose rate limit is apart from the API's."""
    text = httpx.get(f"{cluster.url(index)}/metrics", timeout=5).text
    return float(re.search(rf"^{name} (\S+)$", text, re.MULTILINE)[1])  # type: ignore[index]


def flood(url: str, seconds: float) -> list[httpx.Response]:
    """GET /status from FLOOD_THREADS clients for at least `seconds`, then on
    until FLOOD_LIMITED_MIN answers were 429 (a slow, shared machine may need
    longer to go past the budget), for at most FLOOD_SECONDS_MAX and
    FLOOD_REQUESTS requests."""
    responses: list[httpx.Response] = []
    limited = 0
    lock = threading.Lock()
    started = time.monotonic()

    def more() -> bool:
        elapsed = time.monotonic() - started
        if elapsed >= FLOOD_SECONDS_MAX or len(responses) >= FLOOD_REQUESTS:
            return False
        return elapsed < seconds or limited < FLOOD_LIMITED_MIN

    def worker() -> None:
        nonlocal limited
        with httpx.Client(base_url=url, timeout=10) as client:
            while more():
                response = client.get("/status")
                with lock:
                    responses.append(response)
                    limited += response.status_code == 429

    workers = [threading.Thread(target=worker) for _ in range(FLOOD_THREADS)]
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join()
    return responses


def test_an_rpc_flood_is_rate_limited_and_the_node_keeps_finalizing(cluster: Cluster) -> None:
    process = cluster.processes[FLOODED]
    assert process is not None
    finalize_one(cluster, FLOODED)
    rss_before = rss_kib(process.pid)
    height_before = metric(cluster, FLOODED, "sequencer_height")
    started = time.monotonic()
    finished = threading.Event()
    finalized: list[int] = []

    def finalize_meanwhile() -> None:
        # Through another node: the flooded node's HTTP answers this test's
        # address with 429 too. It follows the chain through gossip.
        while not finished.is_set():
            tx_id = cluster.client(0).submit(NONCES.tx(cluster.layout.chain_id))  # type: ignore[arg-type]
            finalized.append(cluster.client(0).wait_final(tx_id, timeout=20).height or 0)

    background = threading.Thread(target=finalize_meanwhile)
    background.start()
    try:
        responses = flood(cluster.url(FLOODED), FLOOD_SECONDS)
    finally:
        finished.set()
        background.join()
    elapsed = time.monotonic() - started
    statuses = [r.status_code for r in responses]
    limited = [r for r in responses if r.status_code == 429]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    # At most the burst plus the refill could pass; the rest was refused.
    assert statuses.count(200) <= BURST + RATE_PER_S * (elapsed + 1)
    assert len(limited) >= len(responses) - BURST - RATE_PER_S * (elapsed + 1)
    assert len(limited) >= FLOOD_LIMITED_MIN, f"{len(limited)} of {len(responses)} refused"
    for response in limited[:20]:
        assert response.json()["error"]["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
    assert finalized, "nothing finalized during the flood"
    # The flooded node followed the chain meanwhile (its /metrics says so).
    cluster_wait(lambda: metric(cluster, FLOODED, "sequencer_height") >= max(finalized))
    assert metric(cluster, FLOODED, "sequencer_height") > height_before
    growth = rss_kib(process.pid) - rss_before
    assert growth < RSS_GROWTH_KIB_MAX, f"RSS grew by {growth} KiB during the flood"
    # Once the bucket refills, it serves this client again.
    time.sleep(BURST / RATE_PER_S)
    assert httpx.get(f"{cluster.url(FLOODED)}/status", timeout=5).status_code == 200


def cluster_wait(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    wait_until(condition, timeout_s, "the flooded node to follow the chain")
