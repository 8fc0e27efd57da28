"""`node.lab.chainbuild`: a built chain is one consensus could have finalized, and real
nodes accept it, catch up on it and extend it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from node.errors import ConfigError
from node.lab.chainbuild import build_chain, genesis_time_for, main, sender_keys
from node.ops.devnet import DevnetLayout, init_devnet
from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.crypto import verify_transaction
from sequencer.genesis import load_genesis
from sequencer.ids import block_id, commit_id, genesis_state_root, state_root
from sequencer.types import ZERO_ID, SignStep
from storage.store import Store
from tests.node.cluster import Cluster, wait_until
from tests.node.test_devnet import assert_same_chain, wallets

BUILT = 50


def devnet(root: Path, blocks: int = BUILT) -> DevnetLayout:
    return init_devnet(root, 4, base_port=30000, genesis_time_ms=genesis_time_for(blocks))


def test_the_built_chain_is_valid_block_by_block(tmp_path: Path) -> None:
    layout = devnet(tmp_path / "net", 30)
    result = build_chain(layout.root, 30, txs_per_block=5, nodes=[0, 2], senders=3, progress=None)
    assert (result.blocks, result.txs, result.nodes) == (30, 150, (0, 2))
    genesis = load_genesis(layout.nodes[0].home / "genesis.json")
    validators = ValidatorSet.from_genesis(genesis)
    senders = {key.public_key for key in sender_keys(3)}
    now_ms = time.time_ns() // 1_000_000
    for index in (0, 2):
        with Store.open(layout.nodes[index].home / "data", create=False) as store:
            assert store.height() == 30
            parent_id, last_commit, root = ZERO_ID, ZERO_ID, genesis_state_root(genesis.chain_id)
            timestamp = genesis.genesis_time_ms
            nonces: dict[bytes, int] = {}
            for block, certificate in store.finalized(1, 30):
                header = block.header
                verify_certificate(
                    certificate,
                    validators,
                    genesis.chain_id,
                    height=header.height,
                    block_id=block_id(header),
                )
                assert (header.parent_id, header.last_commit_id) == (parent_id, last_commit)
                assert timestamp < header.timestamp_ms < now_ms
                assert header.proposer == header.height % 4
                changed = {}
                for tx in block.txs:
                    assert tx.sender in senders
                    assert verify_transaction(tx)
                    assert len(tx.payload) == 200
                    assert tx.nonce == changed.get(tx.sender, nonces.get(tx.sender, 0))
                    changed[tx.sender] = tx.nonce + 1
                assert header.state_root == state_root(root, changed)
                nonces.update(changed)
                parent_id, last_commit, root = (
                    block_id(header),
                    commit_id(certificate),
                    header.state_root,
                )
                timestamp = header.timestamp_ms
            for sender, nonce in nonces.items():
                assert store.next_nonce(sender) == nonce
            # Its own precommit at the last height: it never signs below it.
            state = store.signing_state()
            assert state is not None
            assert (state.height, state.step, state.block_id) == (30, SignStep.PRECOMMIT, parent_id)
    assert not (layout.nodes[1].home / "data").exists()


def test_refusals(tmp_path: Path) -> None:
    layout = devnet(tmp_path / "net", 10)
    with pytest.raises(ConfigError, match=r"nodes 0\.\.3, not node 7"):
        build_chain(layout.root, 10, nodes=[7], progress=None)
    with pytest.raises(ConfigError, match="at least 1"):
        build_chain(layout.root, 0, progress=None)
    with pytest.raises(ConfigError, match="more than a block takes"):
        build_chain(layout.root, 10, txs_per_block=100_000, progress=None)
    with pytest.raises(ConfigError, match="too recent"):
        build_chain(layout.root, 1_000_000, progress=None)
    build_chain(layout.root, 10, nodes=[1], progress=None)
    with pytest.raises(ConfigError, match="not empty"):
        build_chain(layout.root, 10, nodes=[1], progress=None)
    with pytest.raises(ConfigError, match="holds no devnet"):
        build_chain(tmp_path / "nothing", 10, progress=None)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = devnet(tmp_path / "net", 20)
    assert main([str(layout.root), "--blocks", "20", "--nodes", "3"]) == 0
    assert "20/20 blocks" in capsys.readouterr().out
    assert main([str(layout.root), "--blocks", "20", "--nodes", "3"]) == 1
    assert "error: node3's store" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(layout.root), "--blocks", "20", "--nodes", "x"])


def test_nodes_accept_a_built_chain_and_an_empty_node_catches_up(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "devnet", genesis_time_ms=genesis_time_for(BUILT))
    build_chain(cluster.root, BUILT, txs_per_block=2, nodes=[0, 1, 2], progress=None)
    try:
        cluster.start_all()
        # Node 3 starts empty and fetches the built chain (the core verifies
        # every certificate against the genesis).
        cluster.wait_height(3, BUILT, timeout_s=30)
        assert assert_same_chain(cluster, [0, 1, 2, 3], up_to=BUILT) == BUILT
        # Everyone goes on finalizing on top of it, including transactions
        # from the built chain's senders at their next nonces.
        wallet = wallets(cluster.layout.chain_id, 1)[0]
        with cluster.client(3) as client:
            height = client.wait_final(client.send(wallet, b"after"), timeout=30).height
        assert height > BUILT
        wait_until(
            lambda: min(cluster.height(i) for i in range(4)) >= height, 30, "all nodes extend it"
        )
        assert_same_chain(cluster, [0, 1, 2, 3], up_to=height)
        for index in range(4):
            assert cluster.client(index).status()["equivocations"] == 0
    finally:
        cluster.stop_all()
