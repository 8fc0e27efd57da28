"""A second process runs with validator 3's key (a copied home on other
ports): its newer gossip session takes over, and the original is cut off.

Before, nothing said so: the original went to 0 live peers with nothing in
its log, kept answering 202 for transactions it could not gossip, and stayed
cut off after the duplicate stopped. Now the peers count and log the
conflict (`p2p.session_conflicts` in /status, a metric), the cut-off
original is not ready (503 for transactions, not a 202 it cannot gossip),
and it rejoins under a new session once the duplicate is gone.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from node.ops.procs import ChildProcess, free_base_port, node_argv
from sequencer.client import Client, Wallet
from sequencer.crypto import PrivateKey
from sequencer.errors import ClientError
from tests.node.cluster import Cluster, running, wait_until

ORIGINAL, OBSERVER = 3, 0
PEER_TIMEOUT_MS, REJOIN_AFTER_MS = 2_000, 4_000


def _fast_sessions(cluster: Cluster) -> None:
    for index in range(cluster.size):
        config = cluster.home(index) / "config.toml"
        text = config.read_text()
        lines = f"peer_timeout_ms = {PEER_TIMEOUT_MS}.0\nrejoin_after_ms = {REJOIN_AFTER_MS}.0\n"
        config.write_text(text.replace("[p2p.gossip]\n", "[p2p.gossip]\n" + lines, 1))


def status(url: str) -> dict:
    return httpx.get(f"{url}/status", timeout=5).json()


def twin_home(cluster: Cluster, root: Path) -> tuple[Path, str]:
    """A copy of the original's home, on ports of its own; its RPC URL."""
    home = root / "twin"
    shutil.copytree(cluster.home(ORIGINAL), home, ignore=shutil.ignore_patterns("node.log"))
    base = free_base_port(1)
    config = home / "config.toml"
    text = config.read_text()
    text = re.sub(r'(?m)^listen = "127\.0\.0\.1:\d+"$', f'listen = "127.0.0.1:{base}"', text)
    text = re.sub(
        r'(?m)^listen = "/ip4/127\.0\.0\.1/udp/\d+"$',
        f'listen = "/ip4/127.0.0.1/udp/{base + 1}"',
        text,
    )
    config.write_text(text)
    return home, f"http://127.0.0.1:{base}"


def test_a_duplicate_validator_is_detected_and_the_original_recovers(tmp_path: Path) -> None:
    with running(tmp_path / "devnet", before_start=_fast_sessions) as cluster:
        home, twin_url = twin_home(cluster, tmp_path)
        original_url = cluster.url(ORIGINAL)
        twin = ChildProcess(node_argv(home), output=home / "node.log").start()
        try:
            wait_until(lambda: status(twin_url)["peers_alive"] >= 1, 30, "the twin to join")
            # The peers see the original's older session still sending.
            wait_until(
                lambda: status(cluster.url(OBSERVER))["p2p"]["session_conflicts"] > 0,
                30,
                "a peer to notice two sessions of one key",
            )
            wait_until(lambda: status(original_url)["peers_alive"] == 0, 30, "the cut-off")
            # Cut off, it is not ready: it refuses transactions clearly (503)
            # rather than acknowledge what it cannot gossip.
            wallet = Wallet(PrivateKey(b"\x71" * 32), cluster.layout.chain_id)
            wait_until(lambda: not status(original_url)["ready"], 30, "the original not ready")
            with Client(original_url) as client, pytest.raises(ClientError, match="not_ready"):
                client.send(wallet, b"sent while cut off", nonce=0)
        finally:
            twin.kill()
        log_text = (cluster.home(OBSERVER) / "node.log").read_text()
        assert "sends from two sessions at once" in log_text
        # The original rejoins under a new session, and is heard again.
        wait_until(lambda: status(original_url)["peers_alive"] >= 2, 60, "the original back")
        assert status(original_url)["p2p"]["session_restarts"] >= 1
        assert "rejoining under a new session" in (cluster.home(ORIGINAL) / "node.log").read_text()
        wait_until(lambda: status(original_url)["ready"], 60, "the original ready again")
        with cluster.client(OBSERVER) as observer:
            fresh = cluster.client(ORIGINAL).send(wallet, b"after the twin", nonce=0)
            assert observer.wait_final(fresh, timeout=60).status == "committed"
