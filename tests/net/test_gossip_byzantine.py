"""A configured peer that turned byzantine: it holds its own link keys, so
its datagrams authenticate, and it sends what an honest peer never would.

Each case is a datagram node 0 seals for node 1, with node 2 an honest
third node (a relay target). Node 1 must deliver and relay only what node 0
may originate or forward, and spend on it no more than node 0's budgets.
"""

from __future__ import annotations

import os

import pytest

from net.config import GossipConfig
from net.errors import NetConfigError
from net.gossip import Gossip, PeerAddress
from net.link import seal_datagram
from net.wire import Fragment, Message, Topic, encode_frame, join_frames, message_id
from tests.net.harness import address, node_keys

SESSION = 1


class Trio:
    """Node 1's core as seen by node 0 (hostile); node 2 is honest."""

    def __init__(self, config: GossipConfig | None = None) -> None:
        self.config = config or GossipConfig()
        keys = node_keys(3)
        entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(keys)]
        hostile = Gossip(keys[0].seed, keys[0].public_key, entries, self.config, SESSION, 0.0)
        self.core = Gossip(keys[1].seed, keys[1].public_key, entries, self.config, SESSION, 0.0)
        self.tags = [k.public_key[:8] for k in keys]
        link = next(p for p in hostile.peers() if p.public_key == keys[1].public_key)
        self.cipher = link.keys.sending_cipher(SESSION)
        self.counter = 0
        self.honest = next(p for p in self.core.peers() if p.public_key == keys[2].public_key)

    def send(self, frames: list[bytes], now_ms: float = 0.0) -> None:
        self.counter += 1
        datagram = seal_datagram(
            self.cipher, self.tags[0], SESSION, self.counter, 1, join_frames(frames)
        )
        self.core.receive_datagram(datagram, address(0), now_ms)

    def delivered(self) -> list[bytes]:
        return [d.data for d in self.core.deliveries()]


# (case, topic, origin index or raw origin, relay flag, counter of the drop)
REFUSED = [
    ("relayed under an invented origin", Topic.CONSENSUS, b"nobody00", True, "unknown_origin"),
    ("relayed sync traffic", Topic.SYNC, 0, True, "not_relayable"),
    ("relayed sync under another origin", Topic.SYNC, 2, True, "not_relayable"),
    ("a direct message in another's name", Topic.SYNC, 2, False, "forged_origin"),
    ("the receiver's own messages", Topic.TX, 1, True, "own_origin"),
]


@pytest.mark.parametrize(
    ("topic", "origin", "relay", "reason"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_what_a_peer_may_not_originate_is_neither_delivered_nor_relayed(
    topic: Topic, origin: int | bytes, relay: bool, reason: str
) -> None:
    trio_ = Trio()
    tag = trio_.tags[origin] if isinstance(origin, int) else origin
    trio_.send([encode_frame(Message(topic, tag, relay, b"junk"))])
    assert trio_.delivered() == []
    assert trio_.core.dropped[reason] == 1
    assert trio_.core.counts["messages_relayed"] == 0
    assert trio_.honest.pending_bytes == 0


@pytest.mark.parametrize(
    ("topic", "origin", "relay"),
    [(Topic.CONSENSUS, 0, True), (Topic.TX, 2, True), (Topic.SYNC, 0, False)],
    ids=["its own gossip", "a relay of another node", "its own direct message"],
)
def test_what_a_peer_may_send_is_delivered(topic: Topic, origin: int, relay: bool) -> None:
    trio_ = Trio()
    trio_.send([encode_frame(Message(topic, trio_.tags[origin], relay, b"fine"))])
    assert trio_.delivered() == [b"fine"]


def test_a_fragmented_message_is_held_to_the_same_origin_rules() -> None:
    trio_ = Trio()
    data = os.urandom(3_000)
    id_ = message_id(Topic.CONSENSUS, data)
    frames = [
        encode_frame(
            Fragment(id_, Topic.CONSENSUS, b"nobody00", True, 3_000, at, data[at : at + 1_000])
        )
        for at in (0, 1_000, 2_000)
    ]
    for frame in frames:
        trio_.send([frame])
    assert trio_.delivered() == []
    assert trio_.core.dropped["unknown_origin"] == 1


def test_publishing_on_a_direct_topic_is_refused() -> None:
    trio_ = Trio()
    with pytest.raises(NetConfigError, match="one peer"):
        trio_.core.publish(Topic.SYNC, b"request", 0.0)


def test_tiny_frames_spend_the_frame_budget_and_then_are_dropped_unread() -> None:
    config = GossipConfig(peer_frames_per_s=2_000, peer_burst_frames=2_000)
    trio_ = Trio(config)
    tag = trio_.tags[0]
    # Datagrams of 50 tiny messages each, all at one instant: 2,000 frames pass.
    for batch in range(80):
        frames = [
            encode_frame(Message(Topic.TX, tag, True, b"%d.%d" % (batch, i))) for i in range(50)
        ]
        trio_.send(frames, now_ms=0.0)
    assert len(trio_.delivered()) == 2_000
    assert trio_.core.dropped["frame_rate_limited"] == 40
    # A second later the budget has refilled, for this peer alone.
    trio_.send([encode_frame(Message(Topic.TX, tag, True, b"later"))], now_ms=1_000.0)
    assert trio_.delivered() == [b"later"]


def test_fresh_fragment_ids_cannot_hold_more_than_the_partial_bound() -> None:
    config = GossipConfig(reassembly_partials_max_per_peer=16)
    trio_ = Trio(config)
    tag = trio_.tags[0]
    peer = next(p for p in trio_.core.peers() if p.public_key[:8] == tag)
    for i in range(2_000):
        frame = Fragment(os.urandom(32), Topic.TX, tag, True, 1_000, 0, b"x")
        trio_.send([encode_frame(frame)], now_ms=float(i))
    assert len(peer.reassembler) == 16
    assert peer.reassembler.evicted == 2_000 - 16
