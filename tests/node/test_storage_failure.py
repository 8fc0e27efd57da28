"""A node whose storage fails stops (`node.daemon.health`), in process: the consensus
driver over a real core and a store with injected write failures, the journal,
and the HTTP answers of a failed node."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from consensus.core import Core, CoreConfig
from consensus.messages import TimeoutElapsed, TimeoutKind
from net.wire import Topic
from node.daemon.chain import Chain
from node.daemon.consensus import ConsensusDriver
from node.daemon.health import StorageHealth
from node.daemon.ingest import Ingest, JournalWriter
from node.daemon.messages import VoteBundle, decode_consensus
from node.daemon.runtime import open_kv
from node.errors import ConfigError
from sequencer.crypto import sign_transaction
from sequencer.mempool import Mempool, MempoolConfig
from sequencer.types import Genesis, ValidatorInfo, Vote
from storage import MemoryKV, Store, StoreIOError
from storage.faults import FaultSpec, FaultyKV
from tests.consensus.harness import (
    CHAIN,
    GENESIS,
    GENESIS_MS,
    KEYS,
    PRECOMMIT,
    PREVOTE,
    VALIDATORS,
    proposal,
    votes,
)
from tests.node.rpc_backend import RpcBackend
from tests.node.rpc_harness import Node, body, error_of, serve

ME = 0  # not the proposer of height 1, round 0 (validator 1 is)


class Gossip:
    """Records what the driver publishes."""

    def __init__(self) -> None:
        self.published: list[object] = []

    def publish_nowait(self, topic: Topic, data: bytes) -> None:
        assert topic is Topic.CONSENSUS
        self.published.append(decode_consensus(data))

    def send_nowait(self, peer: bytes, topic: Topic, data: bytes) -> None:
        self.published.append(("sync", topic))


class Rig:
    def __init__(self) -> None:
        genesis = Genesis(
            chain_id=CHAIN,
            genesis_time_ms=GENESIS_MS,
            validators=[
                ValidatorInfo(f"v{i}", k.public_key, 1, "", "") for i, k in enumerate(KEYS)
            ],
        )
        self.kv = FaultyKV(MemoryKV(), FaultSpec(), crash=pytest.fail)
        self.store = Store(self.kv, chain_id=CHAIN)
        mempool = Mempool(MempoolConfig(CHAIN), self.store.next_nonce)
        self.chain = Chain(genesis, self.store, mempool)
        self.gossip = Gossip()
        self.health = StorageHealth()
        core = Core(
            chain_id=CHAIN,
            validators=VALIDATORS,
            params=genesis.consensus,
            anchor=GENESIS,
            key=KEYS[ME],
            signing_state=None,
            config=CoreConfig(),
        )
        peer_keys = [b"" if i == ME else k.public_key for i, k in enumerate(KEYS)]
        self.driver = ConsensusDriver(
            core,
            self.chain,
            self.gossip,  # type: ignore[arg-type]
            peer_keys,
            lambda _id: True,
            random.Random(1),
            self.health,
        )
        self.driver.start()

    def settle(self) -> None:
        """Let the signing-state writer (a task of the node) finish what it holds."""
        writer = self.driver.signing

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer.run)
                while writer.pending and not writer.failed:
                    await trio.sleep(0.001)
                nursery.cancel_scope.cancel()

        trio.run(main)

    def my_votes(self) -> list[tuple[str, int]]:
        return [
            (m.kind.name, m.round)
            for m in self.gossip.published
            if isinstance(m, Vote) and m.validator == ME
        ]


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_without_faults_the_rig_votes_and_commits(rig: Rig) -> None:
    rig.driver.feed(proposal("A"))
    rig.driver.feed(votes(PREVOTE, [1, 2], "A")[0])
    rig.driver.feed(votes(PREVOTE, [1, 2], "A")[1])
    for vote in votes(PRECOMMIT, [1, 2], "A"):
        rig.driver.feed(vote)
    assert rig.my_votes() == []  # held until the signing state is on disk
    rig.settle()
    assert rig.my_votes()[:2] == [("PREVOTE", 0), ("PRECOMMIT", 0)]
    assert rig.store.height() == 1
    assert rig.store.signing_state() is not None
    assert not rig.health.failed


def test_a_failed_signing_state_write_sends_no_vote_and_stops_consensus(rig: Rig) -> None:
    rig.kv.fail_now()
    rig.driver.feed(proposal("A"))  # would prevote A: persist, then broadcast
    rig.settle()
    assert rig.my_votes() == []
    assert rig.store.signing_state() is None
    assert rig.health.failure is not None
    assert "persisting the signing state (height 1, round 0) failed" in rig.health.failure
    assert "injected write failure" in rig.health.failure
    # Nothing steps the core any more: no vote, no rebroadcast, no timeout.
    step = rig.driver.core.round_step
    writes = rig.kv.writes
    for vote in votes(PREVOTE, [1, 2], "A"):
        rig.driver.feed(vote)
    rig.driver.feed(TimeoutElapsed(TimeoutKind.PROPOSE, 1, 0))
    rig.driver.feed(TimeoutElapsed(TimeoutKind.REBROADCAST, 1, 0))
    rig.driver.txs_available()
    assert rig.my_votes() == []
    assert rig.gossip.published == []
    assert rig.driver.core.round_step == step
    assert rig.kv.writes == writes  # no further write was even tried


def test_a_failed_block_commit_stops_consensus_before_the_next_height(rig: Rig) -> None:
    rig.driver.feed(proposal("A"))
    for vote in votes(PREVOTE, [1, 2], "A"):
        rig.driver.feed(vote)
    rig.settle()
    assert rig.my_votes() == [("PREVOTE", 0), ("PRECOMMIT", 0)]
    rig.kv.fail_now()
    sent = len(rig.gossip.published)
    for vote in votes(PRECOMMIT, [1, 2], "A"):
        rig.driver.feed(vote)  # the second one decides A: commit fails
    assert rig.health.failure is not None
    assert "committing the block at height 1 failed" in rig.health.failure
    assert rig.store.height() == 0
    assert rig.gossip.published[sent:] == []  # nothing for height 2
    rig.driver.feed(TimeoutElapsed(TimeoutKind.PROPOSE, 2, 0))
    assert rig.gossip.published[sent:] == []


def test_the_failure_is_logged_once_at_error(caplog: pytest.LogCaptureFixture) -> None:
    health = StorageHealth()
    called = []
    health.on_failed(lambda: called.append(1))
    health.fail("writing the mempool journal", StoreIOError("disk full"))
    health.fail("persisting the signing state", StoreIOError("again"))
    assert health.failure == "writing the mempool journal failed: disk full"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "disk full" in errors[0].getMessage()
    assert called == [1]


def test_a_failed_journal_write_refuses_the_transaction_and_fails_the_node() -> None:
    kv = FaultyKV(MemoryKV(), FaultSpec(fail_writes_from=2), crash=pytest.fail)
    store = Store(kv, chain_id=CHAIN)  # write 1: the meta keys
    mempool = Mempool(MempoolConfig(CHAIN), store.next_nonce)
    health = StorageHealth()
    published: list[object] = []
    journal = JournalWriter(store, published.append, health)
    ingest = Ingest(
        mempool, journal, Gossip(), lambda: 1_000, lambda: None, lambda tx: None, health
    )  # type: ignore[arg-type]
    key = KEYS[3]
    txs = [
        sign_transaction(key, chain_id=CHAIN, namespace=0, nonce=n, gas_price=1, payload=b"x")
        for n in range(2)
    ]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(journal.run)
            (first,) = await ingest.submit(txs[:1])
            assert first.error == "storage_failed"
            assert "injected write failure" in first.message
            assert health.failure is not None
            assert "writing the mempool journal failed" in health.failure
            pending = mempool.statistics().pending
            (second,) = await ingest.submit(txs[1:])
            assert second.error == "storage_failed"
            assert mempool.statistics().pending == pending  # refused before admission
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert published == []  # nothing gossiped that is not durable


@pytest.fixture
def failed_node() -> Iterator[Node]:
    backend = RpcBackend()
    backend.storage_failure = "persisting the signing state failed: disk full"
    with serve(backend) as node:
        yield node


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_a_failed_node_is_unhealthy_and_not_ready(failed_node: Node, path: str) -> None:
    response = failed_node.api.get(path)
    assert response.status_code == 503
    assert error_of(response) == "storage_failed"
    assert "disk full" in response.json()["error"]["message"]


def test_a_failed_node_refuses_transactions(failed_node: Node) -> None:
    response = failed_node.api.post("/tx", json=body())
    assert (response.status_code, error_of(response)) == (503, "storage_failed")
    response = failed_node.api.post("/txs", json=[body()])
    assert (response.status_code, error_of(response)) == (503, "storage_failed")
    assert failed_node.backend.submit_calls == 0


def test_a_malformed_fault_variable_stops_the_node_before_it_opens_the_store(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="SEQUENCER_FAULT_STORAGE: unknown fault 'crash_at'"):
        open_kv(tmp_path / "db", {"SEQUENCER_FAULT_STORAGE": "crash_at=3"})
    assert not (tmp_path / "db").exists()
    kv = open_kv(tmp_path / "db", {"SEQUENCER_FAULT_STORAGE": "fail_writes_from=1"})
    try:
        assert isinstance(kv, FaultyKV)
        with pytest.raises(StoreIOError):
            kv.write([(b"k", b"v")], sync=True)
    finally:
        kv.close()
    plain = open_kv(tmp_path / "db", {})
    plain.close()
    assert not isinstance(plain, FaultyKV)


def test_a_rebroadcast_goes_out_as_a_fresh_bundle_each_time(rig: Rig) -> None:
    """Gossip drops a message it delivered before, so re-sent votes must not
    be byte-identical to their first copies, nor to the last re-send."""
    rig.driver.feed(proposal("A"))
    rig.driver.feed(votes(PREVOTE, [1], "A")[0])
    rig.settle()
    first_copies = list(rig.gossip.published)
    rig.driver.feed(TimeoutElapsed(TimeoutKind.REBROADCAST, 1, 0))
    rig.driver.feed(TimeoutElapsed(TimeoutKind.REBROADCAST, 1, 0))
    bundles = [m for m in rig.gossip.published if isinstance(m, VoteBundle)]
    assert len(bundles) == 2
    assert bundles[0].nonce != bundles[1].nonce
    assert bundles[0].votes == bundles[1].votes
    resent = {(v.validator, v.kind.name) for v in bundles[0].votes}
    assert resent == {(ME, "PREVOTE"), (1, "PREVOTE")}  # ours and the one relayed
    assert not any(isinstance(m, VoteBundle) for m in first_copies)
