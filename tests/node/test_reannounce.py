"""A node cut off from every peer announces its pool again when they return.

Validator 3 is cut off (chaos control drops its datagrams both ways) right
after it acknowledged a transaction, which therefore reached nobody. When
the cut heals (the node counts it in `/status` as an isolation, however
short the cut), it announces its pooled transactions again, and the
transaction is committed. A cut shorter than the one-second poll is not
missed: the gossip core counts isolations as they happen.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from sequencer.client import Wallet
from sequencer.crypto import PrivateKey
from tests.node.cluster import Cluster, running, wait_until

CUT = 3
PEER_TIMEOUT_MS = 2_000


def _control_on(cluster: Cluster) -> None:
    for index in range(cluster.size):
        config = cluster.home(index) / "config.toml"
        text = config.read_text()
        text = text.replace(
            "[p2p.gossip]\n", f"[p2p.gossip]\npeer_timeout_ms = {PEER_TIMEOUT_MS}.0\n", 1
        )
        if index == CUT:
            assert "[chaos]\ncontrol = false\n" in text
            text = text.replace("[chaos]\ncontrol = false\n", "[chaos]\ncontrol = true\n")
        config.write_text(text)


def status(url: str) -> dict:
    return httpx.get(f"{url}/status", timeout=5).json()


def set_faults(cluster: Cluster, faults: dict) -> None:
    home: Path = cluster.home(CUT)
    (home / "chaos.json").write_text(json.dumps({"faults": faults}))
    process = cluster.processes[CUT]
    assert process is not None
    process.send_signal(signal.SIGUSR1)


def test_a_node_back_from_a_cut_announces_its_pool_again(tmp_path: Path) -> None:
    with running(tmp_path / "devnet", before_start=_control_on) as cluster:
        others = [i for i in range(cluster.size) if i != CUT]
        wallet = Wallet(PrivateKey(b"\x72" * 32), cluster.layout.chain_id)
        log = cluster.home(CUT) / "node.log"
        wait_until(lambda: status(cluster.url(CUT))["peers_alive"] == 3, 30, "every peer")
        set_faults(cluster, {"blocked_to": others, "blocked_from": others})
        wait_until(lambda: "blocked_to 3 peers" in log.read_text(), 10, "the faults applied")
        with cluster.client(CUT) as client:
            tx_id = client.send(wallet, b"acknowledged, then cut off", nonce=0)
        wait_until(lambda: status(cluster.url(CUT))["p2p"]["isolations"] == 1, 30, "the cut")
        assert status(cluster.url(CUT))["peers_alive"] == 0
        with httpx.Client(base_url=cluster.url(0), timeout=5) as http:
            assert http.get(f"/tx/{tx_id.hex()}").status_code == 404  # it reached nobody
        set_faults(cluster, {})
        wait_until(lambda: status(cluster.url(CUT))["peers_alive"] >= 2, 30, "peers back")
        with cluster.client(0) as observer:
            assert observer.wait_final(tx_id, timeout=30).status == "committed"
        # Announced within a poll of the return (by then perhaps committed
        # already by validator 3's own proposal, so the count may be 0).
        announced = "peers are back: announcing the"
        wait_until(lambda: announced in log.read_text(), 10, "the pool announced again")
