"""L1 batch commitments from a real devnet: the file L1 (and Ethereum in test_l1_anvil)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from sequencer.client import Wallet
from sequencer.crypto import PrivateKey, save_key
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


def test_a_transaction_shows_its_l1_batch_once_a_confirmed_batch_holds_it(tmp_path: Path) -> None:
    """`GET /tx/{id}` adds `l1` (batch number and commitment, as `/batches`
    lists them) once the batching node's L1 holds the block; `wait_final`
    with level "l1" and `tx send --wait l1` wait for it."""
    with running(tmp_path / "devnet") as cluster:
        wallet = Wallet(PrivateKey(bytes([9]) * 32), cluster.layout.chain_id)
        client = cluster.client(0)
        first = client.send(wallet, b"first", nonce=0)
        committed = client.wait_final(first, timeout=60)
        # Its block is batched once the next block names its certificate.
        client.wait_final(client.send(wallet, b"second", nonce=1), timeout=60)
        held = client.wait_final(first, timeout=60, level="l1")
        assert held.l1 is not None
        (batch,) = [
            b
            for b in client.get_json("/batches")["batches"]
            if b["first_height"] <= committed.height <= b["last_height"]
        ]
        assert (held.l1.batch_number, held.l1.commitment.hex()) == (
            batch["batch_number"],
            batch["commitment"],
        )
        assert batch["state"] == "confirmed"
        # A node that posts no batches never says so.
        other = cluster.client(1).tx_status(first)
        assert other is not None
        assert other.committed
        assert other.l1 is None
        key = tmp_path / "wallet.json"
        save_key(PrivateKey(bytes([9]) * 32), key)

        def send(payload: str, nonce: int, *wait: str) -> subprocess.Popen[str]:
            argv = [str(SEQUENCER), "tx", "send", "--rpc", cluster.url(0), "--key", str(key)]
            argv += ["--payload", payload, "--nonce", str(nonce), *wait, "--json"]
            return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        out, err = send("third", 2, "--wait", "final").communicate(timeout=60)
        assert "l1_batch" not in json.loads(out), err
        # Nothing comes after "fourth" for 3 s: its block waits for the next
        # one's certificate, and the wait says what is missing.
        waiting = send("fourth", 3, "--wait", "l1", "--timeout", "3")
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 1
        assert "committed, in no confirmed L1 batch yet" in err
        waiting = send("fifth", 4, "--wait", "l1", "--timeout", "60")

        def fifth_committed() -> bool:
            return client.get_json(f"/accounts/{wallet.sender.hex()}")["committed_nonce"] == 5

        wait_until(fifth_committed, 60, "the fifth transaction committed")
        client.wait_final(client.send(wallet, b"sixth", nonce=5), timeout=60)
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, err
        assert json.loads(out)["l1_batch"] >= batch["batch_number"]
