"""The gossip core, with no sockets: cores wired through a seeded lossy
in-memory network (`tests.net.harness`) on a virtual clock."""

from __future__ import annotations

import os

import pytest

from net.config import GossipConfig
from net.errors import MessageTooLargeError, NetConfigError
from net.gossip import Gossip, PeerAddress
from net.peer import PeerState
from net.wire import Topic
from sequencer.crypto import PrivateKey
from tests.net.harness import Network, address

SETTLE_MS = 1_500  # long enough for a round of liveness reports


def publish_round_robin(network: Network, count: int, spacing_ms: float = 1.0) -> list[bytes]:
    ids = []
    for number in range(count):
        node = network.nodes[number % len(network.nodes)]
        ids.append(node.publish(Topic.TX, b"tx %06d " % number + bytes(150), network.now_ms))
        network.run_for(spacing_ms)
    return ids


def expected_at(network: Network, ids: list[bytes], index: int) -> list[bytes]:
    return [id_ for number, id_ in enumerate(ids) if number % len(network.nodes) != index]


def assert_exactly_once(network: Network, ids: list[bytes]) -> None:
    for index in range(len(network.nodes)):
        got = [delivery.id for delivery in network.delivered[index]]
        assert len(got) == len(set(got)), f"node {index} got a message twice"
        assert sorted(got) == sorted(expected_at(network, ids, index)), f"node {index}"


@pytest.mark.parametrize(
    ("nodes", "loss", "seed"),
    [(4, 0.0, 1), (4, 0.1, 2), (4, 0.3, 3), (16, 0.0, 4), (16, 0.1, 5)],
    ids=["4-lossless", "4-loss10", "4-loss30", "16-lossless", "16-loss10"],
)
def test_every_node_gets_every_message_exactly_once(nodes: int, loss: float, seed: int) -> None:
    network = Network(nodes, loss=loss, jitter_ms=2.0, seed=seed)
    network.run_for(SETTLE_MS)
    ids = publish_round_robin(network, 300)
    network.run_for(5_000)
    assert_exactly_once(network, ids)
    if loss:
        assert sum(node.counts["frames_retransmitted"] for node in network.nodes) > 0


def test_a_complete_mesh_sends_each_message_once_per_node() -> None:
    # Four nodes: the origin reaches everyone and nobody relays, once the
    # liveness reports say so; without loss no copy is wasted.
    network = Network(4, seed=7)
    network.run_for(SETTLE_MS)
    ids = publish_round_robin(network, 200)
    network.run_for(1_000)
    assert_exactly_once(network, ids)
    assert sum(node.counts["messages_duplicate"] for node in network.nodes) == 0
    assert sum(node.counts["messages_relayed"] for node in network.nodes) == 0


def test_relays_cover_a_cut_link() -> None:
    # 0 and 1 cannot talk: 1 does not report hearing 0, so 2 and 3 relay 0's messages.
    network = Network(4, seed=8)
    network.blocked |= {(0, 1), (1, 0)}
    network.run_for(SETTLE_MS * 4)
    ids = publish_round_robin(network, 100)
    network.run_for(2_000)
    assert_exactly_once(network, ids)
    assert network.nodes[1].statistics().peers[PeerState.DOWN] == 1


@pytest.mark.parametrize("cut", [(0, 1), (1, 0)], ids=["origin-cannot-send", "origin-cannot-hear"])
def test_relays_cover_a_one_way_cut(cut: tuple[int, int]) -> None:
    # Whichever direction fails, node 1 still gets node 0's messages through
    # relays: coverage is assumed only for links both ends report working.
    network = Network(4, seed=18)
    network.blocked.add(cut)
    network.run_for(network.config.peer_timeout_ms * 2)
    ids = [network.nodes[0].publish(Topic.TX, b"%d" % n, network.now_ms) for n in range(50)]
    network.run_for(2_000)
    assert sorted(d.id for d in network.delivered[1]) == sorted(ids)


def test_a_large_message_arrives_whole_under_loss() -> None:
    network = Network(4, loss=0.1, jitter_ms=1.0, seed=9)
    network.run_for(SETTLE_MS)
    data = os.urandom(1024 * 1024)
    id_ = network.nodes[0].publish(Topic.CONSENSUS, data, network.now_ms)
    network.run_for(10_000)
    for index in (1, 2, 3):
        (delivery,) = network.delivered[index]
        assert delivery.id == id_
        assert delivery.data == data
    assert network.nodes[0].counts["messages_fragmented"] == 1


def test_direct_messages_reach_one_peer_only() -> None:
    network = Network(4, seed=10)
    network.run_for(SETTLE_MS)
    target = network.keys[2].public_key
    assert network.nodes[0].send(target, Topic.SYNC, b"request", network.now_ms)
    network.run_for(100)
    assert [d.data for d in network.delivered[2]] == [b"request"]
    assert network.delivered[1] == network.delivered[3] == []


def test_publishing_an_oversized_message_raises() -> None:
    network = Network(2, config=GossipConfig(message_bytes_max=1_000))
    with pytest.raises(MessageTooLargeError, match="1001 bytes"):
        network.nodes[0].publish(Topic.TX, bytes(1_001), 0.0)


def sealed_for(network: Network, sender: int, to: int) -> bytes:
    """A fresh datagram from `sender` to `to`, captured off the wire."""
    network.wire.clear()
    network.nodes[sender].send(network.keys[to].public_key, Topic.SYNC, b"probe", network.now_ms)
    network.flush()
    (datagram,) = [d for index, d in network.wire if index == sender]
    return datagram


def test_forged_datagrams_are_dropped_and_counted() -> None:
    network = Network(2, seed=11)
    network.run_for(SETTLE_MS)
    datagram = sealed_for(network, 0, 1)
    for position in (36, len(datagram) // 2, len(datagram) - 1):  # horizon, body, tag
        forged = bytearray(datagram)
        forged[position] ^= 0x01
        network.inject(1, bytes(forged), address(0))
    assert network.nodes[1].dropped["unauthenticated"] == 3
    assert network.delivered[1] == []
    network.inject(1, datagram, address(0))  # the genuine one still works
    assert [d.data for d in network.delivered[1]] == [b"probe"]


def test_replayed_datagrams_are_dropped_and_counted() -> None:
    network = Network(2, seed=12)
    network.run_for(SETTLE_MS)
    datagram = sealed_for(network, 0, 1)
    network.inject(1, datagram, address(0))
    network.inject(1, datagram, address(0))
    assert [d.data for d in network.delivered[1]] == [b"probe"]
    assert network.nodes[1].dropped["replayed"] == 1


def outsider_publishes(network: Network, seed: bytes, public_key: bytes, data: bytes) -> None:
    """A core outside the network, which knows node 1, publishes `data` to it."""
    outsider = Gossip(
        seed,
        public_key,
        [PeerAddress(network.keys[1].public_key, address(1))],
        GossipConfig(),
        session=5,
        now_ms=0.0,
    )
    outsider.publish(Topic.TX, data, 0.0)
    for datagram, _address, _key in outsider.datagrams_to_send(10.0):
        network.inject(1, datagram, address(0))


def test_an_unknown_peer_cannot_inject_messages() -> None:
    network = Network(2, seed=13)
    stranger = PrivateKey(b"\x77" * 32)
    outsider_publishes(network, stranger.seed, stranger.public_key, b"let me in")
    assert network.nodes[1].dropped["unknown_peer"] >= 1
    assert network.delivered[1] == []


def test_an_impostor_using_a_known_key_prefix_is_unauthenticated() -> None:
    network = Network(2, seed=14)
    impostor = PrivateKey(b"\x66" * 32)
    # Same 8-byte tag as node 0, different key: it cannot seal for node 1.
    claimed = network.keys[0].public_key[:8] + impostor.public_key[8:]
    outsider_publishes(network, impostor.seed, claimed, b"i am node 0")
    assert network.nodes[1].dropped["unauthenticated"] >= 1
    assert network.delivered[1] == []


def test_a_restarted_peer_is_accepted_and_its_old_datagrams_are_not() -> None:
    network = Network(2, seed=15)
    network.run_for(SETTLE_MS)
    old = sealed_for(network, 0, 1)
    network.inject(1, old, address(0))
    key = network.keys[0]
    entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(network.keys)]
    network.nodes[0] = Gossip(
        key.seed, key.public_key, entries, network.config, session=2, now_ms=network.now_ms
    )
    network.by_address[address(0)] = network.nodes[0]
    fresh = sealed_for(network, 0, 1)
    network.inject(1, fresh, address(0))
    network.inject(1, old, address(0))
    assert [d.data for d in network.delivered[1]] == [b"probe"]  # same bytes: seen once
    assert network.nodes[1].counts["peer_sessions"] == 2
    assert network.nodes[1].dropped["replayed"] == 1


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", "malformed"),
        (b"\x01" + bytes(30), "malformed"),
        (b"\x02" + bytes(60), "malformed"),  # unknown version
        (bytes(70_000), "oversized"),
    ],
    ids=["empty", "short", "version", "oversized"],
)
def test_malformed_datagrams_are_dropped_and_counted(datagram: bytes, reason: str) -> None:
    network = Network(2)
    network.inject(1, datagram, address(0))
    assert network.nodes[1].dropped[reason] == 1
    assert network.delivered[1] == []


def test_a_flooding_peer_is_rate_limited_and_nothing_is_lost() -> None:
    config = GossipConfig(peer_bytes_per_s=200_000, peer_burst_bytes=20_000)
    network = Network(2, config=config, seed=16)
    network.run_for(SETTLE_MS)
    ids = [
        network.nodes[0].publish(Topic.TX, bytes([n % 256]) * 900 + b"%d" % n, 0.0)
        for n in range(300)
    ]
    network.run_for(10_000)
    assert network.nodes[1].dropped["rate_limited"] > 0
    assert sorted(d.id for d in network.delivered[1]) == sorted(ids)


def test_a_silent_peer_goes_down_and_nothing_queues_for_it() -> None:
    network = Network(3, seed=17)
    network.run_for(SETTLE_MS)
    network.blocked |= {(2, 0), (2, 1), (0, 2), (1, 2)}
    network.run_for(network.config.peer_timeout_ms + 500)
    publish_round_robin(network, 20)
    network.run_for(100)
    states = {p.public_key: p.state.value for p in network.nodes[0].peers()}
    assert states[network.keys[2].public_key] == "down"
    assert states[network.keys[1].public_key] == "alive"
    assert network.nodes[0].backlog_bytes() == 0


def test_duplicate_peer_prefixes_are_refused() -> None:
    key = PrivateKey(b"\x01" * 32)
    twin = key.public_key[:8] + bytes(24)
    entries = [PeerAddress(b"\x02" * 8 + bytes(24), address(1)), PeerAddress(twin, address(2))]
    with pytest.raises(NetConfigError):
        Gossip(key.seed, key.public_key, entries, GossipConfig(), session=1, now_ms=0.0)
