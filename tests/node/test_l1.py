"""L1 batch commitments from a real devnet: the file L1 (and Ethereum in test_l1_anvil)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from sequencer.client import Wallet
from sequencer.crypto import PrivateKey
from tests.node.cluster import Cluster, running, wait_until

SEQUENCER = Path(sys.executable).parent / "sequencer"


def load(cluster: Cluster, count: int, senders: int = 20, seed: int = 7) -> None:
    """`count` transactions from `senders` senders, spread over the nodes, all final."""
    rng = random.Random(seed)
    wallets = [
        Wallet(PrivateKey(bytes([index + 1, seed]) * 16), cluster.layout.chain_id)
        for index in range(senders)
    ]
    txs = [
        wallet.sign(nonce, b"l1 %d" % nonce, rng.randint(1, 50))
        for wallet in wallets
        for nonce in range(count // senders)
    ]
    clients = [cluster.client(index) for index in range(cluster.size)]
    for start in range(0, len(txs), 200):
        results = clients[(start // 200) % cluster.size].submit_many(txs[start : start + 200])
        assert all(isinstance(r, bytes) for r in results), results
    last = clients[0].send(wallets[0], b"last", nonce=count // senders)
    clients[0].wait_final(last, timeout=120)
    # A block after the loaded ones: the batcher posts a block once the next
    # one names its certificate, and "last" may share the loaded txs' block.
    after = clients[0].send(wallets[0], b"after", nonce=count // senders + 1)
    clients[0].wait_final(after, timeout=120)


def verify(cluster: Cluster, l1: str, *options: str) -> subprocess.CompletedProcess[str]:
    genesis = str(cluster.home(2) / "genesis.json")
    command = [str(SEQUENCER), "l1", "verify", "--rpc", cluster.url(1), "--l1", l1]
    return subprocess.run(
        [*command, *options, "--genesis", genesis], capture_output=True, text=True, timeout=120
    )


def covered(report: str) -> int:
    line = next(line for line in report.splitlines() if line.startswith("covered"))
    return int(line.split("1..")[1].split()[0])


def test_file_l1_covers_every_height_once_across_a_kill_nine(tmp_path: Path) -> None:
    with running(tmp_path / "devnet") as cluster:
        l1 = cluster.home(0) / "l1.jsonl"
        load(cluster, 1_000, seed=1)
        cluster.kill(0)  # the batching node, in the middle of the run
        cluster.start(0)
        load(cluster, 1_000, seed=2)
        tip = cluster.height(1)
        # Batches close by age once the next block exists: wait for heights up to the tip - 1.
        wait_until(lambda: covered(verify(cluster, f"file:{l1}").stdout) >= tip - 1, 30, "batches")
        result = verify(cluster, f"file:{l1}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "result       ok" in result.stdout
        numbers = [
            line.split('"batch_number":')[1].split(",")[0] for line in l1.read_text().splitlines()
        ]
        assert numbers == [str(n) for n in range(len(numbers))]  # none repeated or skipped


def test_verify_reports_a_tampered_l1(tmp_path: Path) -> None:
    with running(tmp_path / "devnet") as cluster:
        load(cluster, 200, seed=3)
        l1 = cluster.home(0) / "l1.jsonl"
        wait_until(lambda: l1.exists() and l1.read_text().strip() != "", 30, "a batch")
        cluster.stop(0)
        forged = tmp_path / "forged.jsonl"
        # Another batch 0 appended: a repeated number and overlapping heights.
        first = l1.read_text().splitlines()[0]
        forged.write_text(l1.read_text() + first + "\n")
        result = verify(cluster, f"file:{forged}")
        assert result.returncode == 1
        assert "number_repeated" in result.stdout
