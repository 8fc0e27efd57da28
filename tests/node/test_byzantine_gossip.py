"""One byzantine validator floods one honest node with authenticated gossip.

A 4-validator devnet on loopback; validator 3 is stopped and its key speaks
through `tests.node.byzantine_peer`, under a fresh session, to node 0 at
about 5 MB/s (a tenth of what a peer may send): datagrams of tiny relayed
messages under random origins on the sync topic, of 1-byte fragments
under fresh ids, or of vote bundles whose signatures do not verify (each
vote a signature check: before, that stood the chain still for the whole
flood; now the peer is muted after a few). With f = 1 that must not matter: nodes 0, 1 and 2 keep
finalizing (every height needs node 0's vote), node 0's memory stays
bounded, and node 0 passes none of the junk on.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from net.multiaddr import parse_multiaddr
from sequencer.crypto import PrivateKey, sign_transaction
from tests.node.cluster import Cluster, running

FLOODED, BYZANTINE, OBSERVER = 0, 3, 1
FLOOD_SECONDS = 12.0
FLOOD_BYTES_PER_S = 5e6
# Heights come every 200 ms when idle; a pause of this long is a stall.
STALL_MAX_S = 8.0
RSS_GROWTH_KIB_MAX = 150 * 1024
# Junk the flooded node may have passed on (none is relayed; a little
# background sync traffic is normal).
RELAYED_MAX = 200
WALLET = PrivateKey(b"\x47" * 32)
NONCES = itertools.count()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("byzantine") / "devnet"
    with running(root, consensus={"empty_block_interval_ms": 200}) as cluster:
        assert cluster.stop(BYZANTINE) == 0  # its key is the attacker's now
        yield cluster


def metrics(cluster: Cluster, index: int) -> str:
    return httpx.get(f"{cluster.url(index)}/metrics", timeout=10).text


def sample(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{name}(?:\{{{selector}\}})? (\S+)$" if labels else rf"^{name} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)[1])  # type: ignore[index]


class HeightWatch(threading.Thread):
    """Samples the chain's height through `index` every 100 ms; the longest
    time it stood still."""

    def __init__(self, cluster: Cluster, index: int) -> None:
        super().__init__(daemon=True)
        self.url = f"{cluster.url(index)}/status"
        self.stop = threading.Event()
        self.longest_s = 0.0
        self.heights: list[int] = []

    def run(self) -> None:
        last_height, since = -1, time.monotonic()
        with httpx.Client(timeout=5) as client:
            while not self.stop.wait(0.1):
                try:
                    height = int(client.get(self.url).json()["height"])
                except (httpx.HTTPError, ValueError, KeyError):
                    continue
                now = time.monotonic()
                if height != last_height:
                    last_height, since = height, now
                    self.heights.append(height)
                self.longest_s = max(self.longest_s, now - since)


def flood(cluster: Cluster, kind: str) -> dict:
    target = parse_multiaddr(cluster.layout.nodes[FLOODED].p2p)
    command = [
        sys.executable,
        "-m",
        "tests.node.byzantine_peer",
        "--key",
        str(cluster.home(BYZANTINE) / "key.json"),
        "--peer-key",
        cluster.layout.nodes[FLOODED].public_key.hex(),
        "--to",
        f"{target.host}:{target.port}",
        "--kind",
        kind,
        "--seconds",
        str(FLOOD_SECONDS),
        "--bytes-per-s",
        str(FLOOD_BYTES_PER_S),
        "--chain-id",
        cluster.layout.chain_id,
        "--height",
        str(cluster.height(FLOODED) + 1),
        "--validators",
        str(cluster.size),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", ["relayed-junk", "fragments", "junk-votes"])
def test_a_byzantine_validator_flooding_gossip_cannot_stall_the_chain(
    cluster: Cluster, kind: str
) -> None:
    process = cluster.processes[FLOODED]
    assert process is not None
    rss_before = rss_kib(process.pid)
    relayed_before = sample(
        metrics(cluster, OBSERVER), "sequencer_gossip_messages_total", topic="sync", direction="in"
    )
    watch = HeightWatch(cluster, OBSERVER)
    watch.start()
    try:
        sent = flood(cluster, kind)
        # The wallet path of the flooded node works meanwhile, and after.
        tx = sign_transaction(
            WALLET,
            chain_id=cluster.layout.chain_id,
            namespace=0,
            nonce=next(NONCES),
            gas_price=1,
            payload=kind.encode(),
        )
        tx_id = cluster.client(FLOODED).submit(tx)  # type: ignore[arg-type]
        assert cluster.client(OBSERVER).wait_final(tx_id, timeout=20).status == "committed"
    finally:
        watch.stop.set()
        watch.join()
    assert sent["bytes"] >= FLOOD_BYTES_PER_S * FLOOD_SECONDS * 0.3, sent  # it did flood
    assert watch.heights, "no height was read"
    assert watch.longest_s <= STALL_MAX_S, (
        f"the chain stood still {watch.longest_s:.1f} s under a {kind} flood ({sent})"
    )
    growth = rss_kib(process.pid) - rss_before
    # The figures of docs/reliability.md's attack table (pytest -s shows them).
    print(f"{kind}: {sent}; longest stall {watch.longest_s:.2f} s; RSS +{growth} KiB")
    assert growth <= RSS_GROWTH_KIB_MAX, f"RSS of the flooded node grew by {growth} KiB"
    text = metrics(cluster, FLOODED)
    if kind == "junk-votes":
        log = (cluster.home(FLOODED) / "node.log").read_text()
        assert "signatures do not verify: its consensus messages are dropped" in log
    if kind == "relayed-junk":
        refused = sample(text, "sequencer_gossip_datagrams_dropped_total", reason="not_relayable")
        assert refused > 0
    relayed = sample(
        metrics(cluster, OBSERVER), "sequencer_gossip_messages_total", topic="sync", direction="in"
    )
    assert relayed - relayed_before <= RELAYED_MAX, "the flooded node passed junk on"
