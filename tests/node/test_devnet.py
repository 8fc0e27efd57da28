"""A 4-validator devnet of real node processes on loopback."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import httpx
import pytest

from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.client import Client, Wallet
from sequencer.codec import from_builtins, parse_hex
from sequencer.crypto import PrivateKey, verify_transaction
from sequencer.genesis import load_genesis
from sequencer.ids import block_id
from sequencer.types import BlockHeader, CommitCertificate, Transaction
from tests.node.cluster import Cluster, running, wait_until

SENDERS = 20
# Several catch-up batches (64 blocks each) long.
LONG_CHAIN_BLOCKS = 400


def wallets(chain_id: str, count: int = SENDERS) -> list[Wallet]:
    return [Wallet(PrivateKey(bytes([index + 100]) * 32), chain_id) for index in range(count)]


def all_blocks(client: Client, height: int) -> list[dict]:
    return [client.block(h, full=True) for h in range(1, height + 1)]


def committed_txs(cluster: Cluster, index: int) -> list[Transaction]:
    client = cluster.client(index)
    height = cluster.height(index)
    blocks = all_blocks(client, height)
    return [from_builtins(tx, Transaction) for block in blocks for tx in block["txs"]]


def block_ids(cluster: Cluster, index: int, last: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < last:
        response = httpx.get(
            f"{cluster.url(index)}/blocks",
            params={"from": len(ids) + 1, "limit": min(100, last - len(ids))},
            timeout=10,
        )
        ids += [block["block_id"] for block in response.json()["blocks"]]
    return ids


def assert_same_chain(cluster: Cluster, nodes: list[int], up_to: int | None = None) -> int:
    """Every node in `nodes` has identical blocks at every common height."""
    height = min(cluster.height(index) for index in nodes)
    height = height if up_to is None else min(height, up_to)
    first = block_ids(cluster, nodes[0], height)
    for index in nodes[1:]:
        assert block_ids(cluster, index, height) == first, f"node {index} differs"
    return height


def test_a_devnet_finalizes_transactions_posted_to_any_node(tmp_path: Path) -> None:
    with running(tmp_path / "devnet") as cluster:
        chain_id = cluster.layout.chain_id
        wallet = wallets(chain_id, 1)[0]
        ids = []
        for index in range(cluster.size):
            with cluster.client(index) as client:
                ids.append(client.send(wallet, b"to node %d" % index, nonce=index))
        with cluster.client(0) as client:
            for id_ in ids:
                assert client.wait_final(id_, timeout=30, verify=True).status == "committed"
        wait_until(lambda: min(cluster.height(i) for i in range(4)) >= 1, 20, "all nodes")
        height = assert_same_chain(cluster, [0, 1, 2, 3])
        # Certificates verify with nothing but the genesis file.
        genesis = load_genesis(cluster.home(2) / "genesis.json")
        validators = ValidatorSet.from_genesis(genesis)
        with cluster.client(3) as client:
            for block in all_blocks(client, height):
                certificate = from_builtins(block["certificate"], CommitCertificate)
                header = from_builtins(block["header"], BlockHeader)
                assert block_id(header) == parse_hex(block["block_id"])
                verify_certificate(certificate, validators, chain_id=chain_id)
                assert certificate.block_id == block_id(header)


def test_a_thousand_transactions_from_twenty_senders(tmp_path: Path) -> None:
    rng = random.Random(6)
    with running(tmp_path / "devnet") as cluster:
        chain_id = cluster.layout.chain_id
        senders = wallets(chain_id)
        txs = [
            wallet.sign(nonce, b"payload %d" % nonce, rng.randint(1, 1_000))
            for wallet in senders
            for nonce in range(50)
        ]
        rng.shuffle(txs)  # nonces arrive out of order
        # A replacement: same sender and nonce, price bumped by 10%, before the original lands.
        original = senders[0].sign(50, b"original", 1_000)
        replacement = senders[0].sign(50, b"replacement", 1_100)
        clients = [cluster.client(index) for index in range(cluster.size)]
        accepted = []
        for start in range(0, len(txs), 100):
            results = clients[(start // 100) % 4].submit_many(txs[start : start + 100])
            accepted += [r for r in results if isinstance(r, bytes)]
        assert len(accepted) == len(txs)
        # In one request, so no block can take the original in between.
        assert all(isinstance(r, bytes) for r in clients[1].submit_many([original, replacement]))
        last = clients[2].send(senders[1], b"last", nonce=50)
        clients[0].wait_final(last, timeout=60)
        for id_ in accepted:
            assert clients[3].tx_status(id_).status == "committed"
        committed = committed_txs(cluster, 3)
        keys = [(tx.sender, tx.nonce) for tx in committed]
        assert len(keys) == len(set(keys)) == len(txs) + 2  # each exactly once
        assert all(verify_transaction(tx) for tx in committed)
        winner = next(tx for tx in committed if tx.sender == senders[0].sender and tx.nonce == 50)
        assert winner.payload == b"replacement"
        # Within a block, among transactions whose order nonces do not force,
        # higher gas price goes first: each sender's first tx in a block is
        # placed by price.
        for block in all_blocks(clients[0], cluster.height(0)):
            heads, seen = [], set()
            for tx in block["txs"]:
                if tx["sender"] not in seen:
                    seen.add(tx["sender"])
                    heads.append(tx["gas_price"])
            assert heads == sorted(heads, reverse=True), block["header"]["height"]
        assert_same_chain(cluster, [0, 1, 2, 3])
        for client in clients:
            client.close()


@pytest.mark.parametrize("victim", [1, 0], ids=["validator", "first-proposer"])
def test_kill_nine_loses_nothing_and_the_node_rejoins(tmp_path: Path, victim: int) -> None:
    with running(tmp_path / "devnet") as cluster:
        chain_id = cluster.layout.chain_id
        senders = wallets(chain_id, 4)
        acknowledged: list[bytes] = []
        with cluster.client(victim) as client:
            for nonce in range(20):  # acknowledged by the victim just before it dies
                for wallet in senders[:2]:
                    acknowledged.append(client.send(wallet, b"before %d" % nonce, nonce=nonce))
        cluster.kill(victim)
        survivors = [i for i in range(cluster.size) if i != victim]
        with cluster.client(survivors[0]) as client:
            for nonce in range(10):
                acknowledged.append(client.send(senders[2], b"during %d" % nonce, nonce=nonce))
            client.wait_final(acknowledged[-1], timeout=60)
        before = cluster.height(survivors[0])
        cluster.start(victim)  # restarts from its store, journal and signing state
        cluster.wait_height(victim, before, timeout_s=60)
        with cluster.client(victim) as client:
            for nonce in range(10):
                acknowledged.append(client.send(senders[3], b"after %d" % nonce, nonce=nonce))
        with cluster.client(survivors[1]) as client:
            client.wait_final(acknowledged[-1], timeout=60)
            for id_ in acknowledged:
                status = client.wait_final(id_, timeout=60)
                assert status.status == "committed"
        assert_same_chain(cluster, list(range(cluster.size)))
        assert_signs_again(cluster, victim, senders[0], nonce=20)
        # Nobody saw two different signed votes from one validator.
        for index in range(cluster.size):
            assert cluster.client(index).status()["equivocations"] == 0


def assert_signs_again(cluster: Cluster, victim: int, wallet: Wallet, nonce: int) -> None:
    """New blocks until one's certificate carries the victim's precommit."""
    client = cluster.client((victim + 1) % cluster.size)
    for attempt in range(30):
        id_ = client.send(wallet, b"probe %d" % attempt, nonce=nonce + attempt)
        height = client.wait_final(id_, timeout=30).height
        certificate = client.block(height)["certificate"]
        if victim in {index for index, _signature in certificate["signatures"]}:
            return
    raise AssertionError(f"validator {victim} signed none of 30 new certificates")


def test_a_node_started_after_hundreds_of_blocks_catches_up(tmp_path: Path) -> None:
    # Empty blocks every few milliseconds make a long chain quickly; then node 3
    # starts again with an empty store, as a new node would.
    with running(tmp_path / "devnet", consensus={"empty_block_interval_ms": 5}) as cluster:
        cluster.wait_height(0, LONG_CHAIN_BLOCKS, timeout_s=240)
        assert cluster.stop(3) == 0
        shutil.rmtree(cluster.home(3) / "data")
        target = cluster.height(0)
        cluster.start(3)
        cluster.wait_height(3, target, timeout_s=120)
        assert assert_same_chain(cluster, [0, 3], up_to=target) == target
        with cluster.client(3) as client:
            id_ = client.send(wallets(cluster.layout.chain_id, 1)[0], b"after catch-up")
            assert client.wait_final(id_, timeout=30).status == "committed"


def test_acknowledged_transactions_survive_kill_nine_through_the_journal(tmp_path: Path) -> None:
    # The victim hears its peers but cannot send to them, so the transactions
    # it acknowledges exist only in its journal when it is killed.
    cluster = Cluster(tmp_path / "devnet")
    victim = 2
    config = cluster.home(victim) / "config.toml"
    original = config.read_text()
    others = [node.peer_id for i, node in enumerate(cluster.layout.nodes) if i != victim]
    blocked = "blocked_to = [" + ", ".join(f'"{peer}"' for peer in others) + "]\n"
    config.write_text(original.replace("[p2p.faults]\n", "[p2p.faults]\n" + blocked))
    try:
        cluster.start_all()
        wait_until(
            lambda: httpx.get(f"{cluster.url(victim)}/ready", timeout=2).status_code == 200,
            30,
            "the victim ready",
        )
        wallet = wallets(cluster.layout.chain_id, 1)[0]
        with cluster.client(victim) as client:
            ids = [client.send(wallet, b"journal %d" % n, nonce=n) for n in range(20)]
        with cluster.client(0) as client:
            assert all(client.tx_status(id_) is None for id_ in ids)  # nobody else has them
        cluster.kill(victim)
        config.write_text(original)
        cluster.start(victim)
        with cluster.client(1) as client:
            for id_ in ids:
                assert client.wait_final(id_, timeout=60).status == "committed"
    finally:
        cluster.stop_all()
