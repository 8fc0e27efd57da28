"""Sessions when a key runs twice, or a peer's datagrams are replayed.

A second process with node 0's key (the twin) starts a newer session: node 1
follows it, and node 0's datagrams are refused as replayed. Node 1 counts
the conflict (genuine datagrams of node 0's older session, well after the
newer began); node 0, cut off, rejoins under a new session once every peer
has been silent for `rejoin_after_ms`, and is heard again once the twin is
gone.

After a receiver restarts, its empty receive windows would take a replay:
datagrams echo the receiver's session, so those sent to its earlier run are
refused as stale, and only one echoing this run (proof of a live sender)
moves a peer's address; a peer that moved meanwhile is found by a ping to
where its datagrams come from.
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
    # The newer session took over: node 1 refuses the original's datagrams
    # and, once the twin answered a path probe with node 1's session, sends
    # to the twin (as to a validator that moved).
    assert peer_of_0.session == 2
    assert peer_of_0.address == address(2)
    world.run(SESSION_OVERLAP_MS + 1_500)
    assert world.other.dropped["replayed"] > 0
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


def restart_other(world: World, session: int) -> Gossip:
    """Node 1 restarts: a new process, a newer session, empty receive windows."""
    keys = world.keys
    entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(keys)]
    world.other = Gossip(keys[1].seed, keys[1].public_key, entries, CONFIG, session, world.now_ms)
    world.at[address(1)] = world.other
    return world.other


def test_datagrams_replayed_after_the_receiver_restarts_are_refused_as_stale():
    world = World()
    world.run(200)
    world.original.publish(Topic.CONSENSUS, b"x", world.now_ms)
    captured = [d for d, _a, _k in world.original.datagrams_to_send(world.now_ms)]
    for datagram in captured:
        world.other.receive_datagram(datagram, address(0), world.now_ms)
    assert b"x" in [d.data for d in world.other.deliveries()]
    world.run(200)
    other = restart_other(world, 7)
    # Replayed at once, before node 0 heard the new run: its receive window
    # is empty and would take them, but they echo node 1's earlier session.
    for datagram in captured:
        other.receive_datagram(datagram, ("127.0.0.66", 9), world.now_ms)
    assert other.dropped["stale"] == len(captured)
    assert other.deliveries() == []
    peer_of_0 = other.peers()[0]
    assert peer_of_0.address == address(0)
    assert peer_of_0.state is PeerState.NEW  # not even taken as a sign of life
    # The two find each other again: node 0's resends echo the new session.
    world.run(500)
    assert peer_of_0.state is PeerState.ALIVE
    assert peer_of_0.address == address(0)
    world.original.publish(Topic.TX, b"after the restart", world.now_ms)
    world.run(200)
    assert b"after the restart" in world.delivered


def test_first_datagrams_replayed_from_elsewhere_never_move_the_address():
    # Node 0's first datagrams, sent before it heard node 1, echo nothing:
    # they can be replayed after node 1 restarts, but prove no live sender.
    world = World()
    world.original.publish(Topic.CONSENSUS, b"first", 0.0)
    first = [d for d, _a, _k in world.original.datagrams_to_send(0.0)]
    world.run(300)
    other = restart_other(world, 7)
    for datagram in first:
        other.receive_datagram(datagram, ("127.0.0.66", 9), world.now_ms)
    peer_of_0 = other.peers()[0]
    assert peer_of_0.address == address(0)
    # One small ping goes to where they came from, in case node 0 moved.
    sent = other.datagrams_to_send(world.now_ms)
    assert [a for _d, a, _k in sent].count(("127.0.0.66", 9)) == 1
    assert other.counts["path_probes"] == 1
    world.run(500)
    assert peer_of_0.address == address(0)
    assert peer_of_0.state is PeerState.ALIVE


def test_a_peer_that_moves_is_followed_once_it_has_heard_us():
    world = World()
    world.run(300)
    peer_of_0 = world.other.peers()[0]
    assert peer_of_0.address == address(0)
    # Node 0 now sends from another address (its old one is gone).
    moved = ("127.0.0.1", 29_999)
    del world.at[address(0)]
    world.at[moved] = world.original
    world.original.publish(Topic.CONSENSUS, b"from the new address", world.now_ms)
    world.run(300)
    assert peer_of_0.address == moved
    assert b"from the new address" in world.delivered


def test_a_peer_that_moved_while_we_restarted_is_found_by_a_path_probe():
    world = World()
    world.run(300)
    moved = ("127.0.0.1", 29_999)
    del world.at[address(0)]
    world.at[moved] = world.original
    other = restart_other(world, 7)
    # Node 1 sends to node 0's old address, which nobody holds; node 0's
    # datagrams echo node 1's earlier run and are refused, until a path
    # probe to their source lets node 0 hear the new run.
    world.run(CONFIG.ping_interval_ms * 3)
    peer_of_0 = other.peers()[0]
    assert other.counts["path_probes"] >= 1
    assert peer_of_0.address == moved
    assert peer_of_0.state is PeerState.ALIVE


def test_losing_every_peer_counts_one_isolation_however_short():
    world = World()
    world.run(300)
    assert world.original.counts["isolations"] == 0
    del world.at[address(1)]  # node 1 gone: node 0 hears nobody
    world.run(CONFIG.peer_timeout_ms + 500)
    assert world.original.counts["isolations"] == 1
    world.at[address(1)] = world.other
    world.run(CONFIG.ping_interval_ms * 2)
    assert world.original.peers()[0].state is PeerState.ALIVE
    assert world.original.counts["isolations"] == 1
