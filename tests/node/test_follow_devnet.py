"""`sequencer follow` on a devnet of real node processes under load: every
transaction of the namespace exactly once, in order, across a restart of the
node it follows (graceful) and of itself (kill -9, resumed from its file)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sequencer.crypto import PrivateKey
from sequencer.genesis import load_genesis
from sequencer.light import LightClient
from sequencer.wallet import Wallet
from tests.node.cluster import running, wait_until

SEQUENCER = Path(sys.executable).parent / "sequencer"
NAMESPACE = 5
WALLETS = 8
TXS_PER_WALLET = 60  # half in NAMESPACE, half in another


def _load(url: str, chain_id: str, done: threading.Event, sent: list[bytes]) -> None:
    """Batches of 4 per wallet, alternating namespaces, until all are sent."""
    from sequencer.client import Client

    keys = [PrivateKey(bytes([200 + i]) * 32) for i in range(WALLETS)]
    with Client(url, timeout=10.0) as client:
        for start in range(0, TXS_PER_WALLET, 4):
            for key in keys:
                txs = [
                    Wallet(key, chain_id, NAMESPACE if n % 2 else 6).sign(n, b"x" * 20, 1)
                    for n in range(start, start + 4)
                ]
                while True:
                    try:
                        results = client.submit_many(txs)
                    except Exception:  # the node it posts to does not restart; others may lag
                        time.sleep(0.2)
                        continue
                    if all(isinstance(r, bytes) for r in results):
                        break
                    time.sleep(0.2)
                sent.extend(r for r in results if isinstance(r, bytes))
            time.sleep(0.05)
    done.set()


def _follow(url: str, genesis: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [str(SEQUENCER), "follow", "--namespace", str(NAMESPACE), "--rpc", url]
    argv += ["--genesis", str(genesis), "--out", str(out)]
    with log.open("ab") as stderr:  # the child holds its own descriptor
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)


def _tx_ids(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [
        json.loads(line)["tx_id"] for line in out.read_text().splitlines() if line.endswith("}")
    ]


def test_follow_prints_every_namespace_tx_once_in_order_across_restarts(tmp_path: Path) -> None:
    with running(tmp_path / "devnet") as cluster:
        cluster.lift_rate_limit()
        genesis = cluster.home(0) / "genesis.json"
        chain_id = load_genesis(genesis).chain_id
        out, log = tmp_path / "follow.jsonl", tmp_path / "follow.log"
        done, sent = threading.Event(), []
        loader = threading.Thread(target=_load, args=(cluster.url(0), chain_id, done, sent))
        loader.start()
        follower = _follow(cluster.url(1), genesis, out, log)
        try:
            wait_until(lambda: len(_tx_ids(out)) >= 20, 60, "the follower's first lines")
            cluster.stop(1)  # the node it follows, gracefully
            time.sleep(1.0)
            cluster.start(1)
            wait_until(lambda: len(_tx_ids(out)) >= 80, 60, "lines after the node's restart")
            follower.send_signal(signal.SIGKILL)  # itself, with no chance to tidy up
            follower.wait(10)
            follower = _follow(cluster.url(1), genesis, out, log)
            loader.join(120)
            assert done.is_set(), "the load did not finish"
            client = cluster.client(0)

            def committed() -> bool:
                return all(
                    (status := client.tx_status(tx_id)) is not None and status.committed
                    for tx_id in sent
                )

            wait_until(committed, 60, "every transaction committed")
            tip = cluster.height(0)
            with LightClient(cluster.url(0), load_genesis(genesis)) as light:
                expected = [
                    tx_id.hex()
                    for height in range(1, tip + 1)
                    for tx_id in light.namespace(NAMESPACE, height).tx_ids
                ]
            wait_until(lambda: len(_tx_ids(out)) >= len(expected), 60, "the follower caught up")
        finally:
            follower.send_signal(signal.SIGTERM)
            follower.wait(10)
            loader.join(5)
    lines = _tx_ids(out)
    said = log.read_text()
    assert "reconnecting from height" in said  # it felt the node's restart ...
    assert "after block" in said  # ... and resumed from its file after its own
    assert len(expected) == WALLETS * TXS_PER_WALLET // 2
    assert lines == expected, log.read_text()[-2000:]
