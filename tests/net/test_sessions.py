"""Sessions when a key runs twice, or a peer's datagrams are replayed.

A second process with node 0's key (the twin) starts a newer session: node 1
follows it, and node 0's datagrams are refused as replayed. Node 1 counts
the conflict (genuine datagrams of node 0's older session, well after the
newer began); node 0, cut off, rejoins under a new session once every peer
has been silent for `rejoin_after_ms`, and is heard again once the twin is
gone. A replayed datagram never moves a peer's address.
"""

from __future__ import annotations

from net.config import GossipConfig
from net.gossip import SESSION_OVERLAP_MS, Gossip, PeerAddress
from net.peer import PeerState
from net.wire import Topic
from tests.net.harness import address, node_keys

CONFIG = GossipConfig(peer_timeout_ms=1_000.0, rejoin_after_ms=6_000.0)
STEP_MS = 5.0


class World:
    def __init__(self) -> None:
        keys = node_keys(2)
        self.keys = keys
        entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(keys)]
        self.original = Gossip(keys[0].seed, keys[0].public_key, entries, CONFIG, 1, 0.0)
        self.other = Gossip(keys[1].seed, keys[1].public_key, entries, CONFIG, 1, 0.0)
        self.twin: Gossip | None = None
        self.at = {address(0): self.original, address(1): self.other}
        self.now_ms = 0.0
        self.delivered: list[bytes] = []

    def start_twin(self) -> Gossip:
        key = self.keys[0]
        entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(self.keys)]
        self.twin = Gossip(key.seed, key.public_key, entries, CONFIG, 2, self.now_ms)
        self.at[address(2)] = self.twin
        return self.twin

    def stop_twin(self) -> None:
        del self.at[address(2)]
        self.twin = None

    def source_of(self, core: Gossip) -> tuple[str, int]:
        return next(a for a, c in self.at.items() if c is core)

    def run(self, ms: float) -> None:
        end = self.now_ms + ms
        while self.now_ms < end:
            self.now_ms += STEP_MS
            for core in list(self.at.values()):
                core.handle_timer(self.now_ms)
                if core.wants_new_session(self.now_ms):
                    core.restart_session(core.session + 10, self.now_ms)
            for core in list(self.at.values()):
                source = self.source_of(core)
                for datagram, destination, _key in core.datagrams_to_send(self.now_ms):
                    target = self.at.get(destination)
                    if target is not None:
                        target.receive_datagram(datagram, source, self.now_ms)
            self.delivered += [d.data for d in self.other.deliveries()]


def test_a_key_running_twice_is_detected_and_the_original_rejoins_when_the_twin_is_gone():
    world = World()
    world.run(500)
    peer_of_0 = world.other.peers()[0]
    assert peer_of_0.state is PeerState.ALIVE
    world.start_twin()
    world.run(500)
    # The newer session took over: node 1 sends to the twin now.
    assert peer_of_0.address == address(2)
    world.run(SESSION_OVERLAP_MS + 1_500)
    assert world.other.counts["dropped_replayed"] > 0
    assert world.other.session_conflicts[world.keys[0].public_key] > 0
    assert world.other.counts["session_conflicts"] > 0
    world.stop_twin()
    # Node 0 hears nothing from node 1 (which answers the twin's address),
    # then rejoins with a newer session, and node 1 takes it back.
    world.run(CONFIG.rejoin_after_ms + 2_000)
    assert world.original.counts["session_restarts"] >= 1
    assert peer_of_0.address == address(0)
    assert peer_of_0.state is PeerState.ALIVE
    world.original.publish(Topic.TX, b"after the twin", world.now_ms)
    world.run(500)
    assert b"after the twin" in world.delivered


def test_a_restart_is_not_a_conflict():
    world = World()
    world.run(500)
    # Node 0 restarts: a new session, its old one never heard again.
    keys = world.keys
    entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(keys)]
    world.original = Gossip(keys[0].seed, keys[0].public_key, entries, CONFIG, 5, world.now_ms)
    world.at[address(0)] = world.original
    world.run(SESSION_OVERLAP_MS + 1_000)
    assert world.other.counts["session_conflicts"] == 0
    assert world.other.peers()[0].state is PeerState.ALIVE


def test_a_node_that_is_heard_does_not_restart_its_session():
    world = World()
    world.run(CONFIG.rejoin_after_ms * 2)
    assert world.original.counts["session_restarts"] == 0
    assert world.original.session == 1


def test_a_replayed_datagram_does_not_move_the_peers_address():
    world = World()
    world.run(200)
    captured: list[bytes] = []
    world.original.publish(Topic.TX, b"x", world.now_ms)
    for datagram, _destination, _key in world.original.datagrams_to_send(world.now_ms):
        captured.append(datagram)
        world.other.receive_datagram(datagram, address(0), world.now_ms)
    world.run(200)
    # The receiver restarts: its window is empty, the replay is taken as new...
    keys = world.keys
    entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(keys)]
    world.other = Gossip(keys[1].seed, keys[1].public_key, entries, CONFIG, 7, world.now_ms)
    world.at[address(1)] = world.other
    world.run(200)
    peer_of_0 = world.other.peers()[0]
    assert peer_of_0.address == address(0)
    for datagram in captured:
        world.other.receive_datagram(datagram, ("127.0.0.66", 9), world.now_ms)
    # ...but it is older than what node 0 sent since: the address stays.
    assert peer_of_0.address == address(0)
