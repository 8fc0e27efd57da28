"""Hostile bytes at every entry of the network stack: the datagram header and
`open_datagram`, the payload decoder, the gossip core's `receive_datagram`
(forged from outside, and sealed by a configured peer that turned hostile)
and fragment reassembly.

The property is the one `net/gossip.py` promises: nothing a peer sends
raises. Every datagram is delivered or dropped under exactly one counted
reason, and what the core holds for a peer stays within its bounds.
`tests/net/test_wire.py` and `tests/net/test_gossip.py` cover the named
malformed cases; this file throws generated ones.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from net.config import GossipConfig
from net.fragments import Reassembler, fragment_message, held_bytes, join
from net.gossip import Gossip, PeerAddress
from net.link import ReceiveWindow, open_datagram, seal_datagram
from net.wire import (
    ACK_MISSING_MAX,
    HEADER,
    PEERS_MAX,
    TOTAL_BYTES_MAX,
    VERSION,
    Ack,
    Fragment,
    Message,
    Ping,
    Pong,
    Topic,
    decode_payload,
    encode_frame,
    join_frames,
    message_id,
)
from tests.net.harness import address, node_keys
from tests.strategies import mutated

U64_MAX = 2**64 - 1
SESSION = 1
# A small reassembly bound, so that generated fragments can reach it.
CONFIG = GossipConfig(
    datagram_bytes_max=65_000, message_bytes_max=4_096, reassembly_bytes_max_per_peer=8_192
)

u64 = st.integers(0, U64_MAX)
# Counters near the edges of the window and of the u64 range.
counters = st.one_of(
    st.integers(1, 40), st.integers(8_000, 8_400), st.integers(U64_MAX - 5, U64_MAX)
)
topics = st.sampled_from(Topic)
tags = st.binary(min_size=8, max_size=8)
ids = st.binary(min_size=32, max_size=32)
sizes = st.one_of(st.integers(0, 64), st.integers(0, TOTAL_BYTES_MAX))


def drops(core: Gossip) -> int:
    return sum(core.dropped.values())


class Pair:
    """Node 1's core, and the keys node 0 seals with: node 0 is the hostile peer."""

    def __init__(self, config: GossipConfig = CONFIG) -> None:
        keys = node_keys(2)
        entries = [PeerAddress(k.public_key, address(i)) for i, k in enumerate(keys)]
        self.sender = Gossip(keys[0].seed, keys[0].public_key, entries, config, SESSION, 0.0)
        self.core = Gossip(keys[1].seed, keys[1].public_key, entries, config, SESSION, 0.0)
        self.tag = keys[0].public_key[:8]
        link = self.sender.peers()[0]
        self.cipher = link.keys.sending_cipher(SESSION)
        self.peer = self.core.peers()[0]  # node 1's view of node 0

    def seal(self, payload: bytes, counter: int, horizon: int = 1) -> bytes:
        return seal_datagram(self.cipher, self.tag, SESSION, counter, horizon, payload)

    def receive(self, datagram: bytes, now_ms: float = 0.0) -> None:
        self.core.receive_datagram(datagram, address(0), now_ms)

    def check_bounds(self) -> None:
        peer = self.peer
        reassembler = peer.reassembler
        assert reassembler.bytes_held >= 0
        assert (
            reassembler.bytes_held <= CONFIG.reassembly_bytes_max_per_peer or len(reassembler) == 1
        )
        assert len(reassembler) <= CONFIG.reassembly_partials_max_per_peer
        held = sum(held_bytes(p) for p in reassembler._partials.values())
        assert held == reassembler.bytes_held
        assert len(peer.received._missing) <= 2 * 8_192
        assert peer.window.bytes_in_flight >= 0


messages = st.builds(Message, topics, tags, st.booleans(), st.binary(max_size=200))
fragments = st.builds(
    Fragment,
    st.sampled_from([b"\x01" * 32, b"\x02" * 32]) | ids,
    topics,
    tags,
    st.booleans(),
    sizes,
    sizes,
    st.binary(max_size=300),
)
acks = st.builds(Ack, u64, u64, st.lists(u64, max_size=ACK_MISSING_MAX))
pings = st.builds(Ping, u64, st.lists(tags, max_size=PEERS_MAX))
pongs = st.builds(Pong, u64, st.lists(tags, max_size=PEERS_MAX))
frames = st.one_of(messages, fragments, acks, pings, pongs)


def valid_payload(frame_list: list) -> bytes:
    return join_frames([encode_frame(f) for f in frame_list])


# ------------------------------------------------------------------ the payload decoder


@given(st.binary(max_size=2_000))
def test_arbitrary_payload_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        decoded = decode_payload(data)
    except msgspec.DecodeError:
        return
    assert all(isinstance(f, Message | Fragment | Ack | Ping | Pong) for f in decoded)


@given(st.lists(frames, min_size=1, max_size=6).flatmap(lambda fs: mutated(valid_payload(fs))))
def test_mutated_payloads_only_raise_decode_error(data: bytes) -> None:
    try:
        decoded = decode_payload(data)
    except msgspec.DecodeError:
        return
    # What decodes is well-typed and within the decoder's walls.
    for frame in decoded:
        if isinstance(frame, Fragment):
            assert 0 <= frame.total <= TOTAL_BYTES_MAX
            assert 0 <= frame.offset <= TOTAL_BYTES_MAX
        elif isinstance(frame, Ack):
            assert len(frame.missing) <= ACK_MISSING_MAX
        elif isinstance(frame, Ping | Pong):
            assert len(frame.alive) <= PEERS_MAX
            assert all(len(tag) == 8 for tag in frame.alive)


@pytest.mark.parametrize(
    "header",
    [
        b"\xdd\xff\xff\xff\xff",
        b"\xdc\xff\xff",
        b"\x91\xc6\xff\xff\xff\xff",
        b"\x91\x95\x01\x00\xc4\x08" + b"o" * 8 + b"\xc3\xc6\xff\xff\xff\xff",
    ],
    ids=["array32-of-4G", "array16-of-64k", "bin32-of-4G", "message-data-bin32-of-4G"],
)
def test_huge_declared_lengths_fail_fast(header: bytes) -> None:
    # A count or length far beyond the bytes that follow must not be allocated.
    with pytest.raises(msgspec.DecodeError):
        decode_payload(header + bytes(16))


# ------------------------------------------------------------------ header and open


@given(st.binary(max_size=120), counters)
def test_open_datagram_never_raises_on_arbitrary_bytes(datagram: bytes, counter: int) -> None:
    pair = Pair()
    assert open_datagram(pair.cipher, datagram, counter) is None


@given(st.binary(max_size=200), counters, counters, st.data())
def test_a_sealed_datagram_opens_only_whole_and_unchanged(
    payload: bytes, counter: int, horizon: int, data: st.DataObject
) -> None:
    pair = Pair()
    datagram = pair.seal(payload, counter, horizon)
    assert open_datagram(pair.cipher, datagram, counter) == payload
    changed = data.draw(mutated(datagram))
    if changed != datagram:
        assert open_datagram(pair.cipher, changed, counter) is None


# ------------------------------------------------------------------ receive_datagram


@given(st.binary(max_size=300))
def test_arbitrary_datagrams_are_dropped_once_and_change_nothing(datagram: bytes) -> None:
    pair = Pair()
    before = (pair.peer.session, pair.peer.received.largest, pair.peer.state)
    pair.receive(datagram)
    assert drops(pair.core) == 1
    assert pair.core.deliveries() == []
    assert (pair.peer.session, pair.peer.received.largest, pair.peer.state) == before


@given(st.integers(0, 255), u64, counters, u64, st.binary(max_size=64))
def test_forged_headers_with_a_known_sender_are_dropped_once(
    version: int, session: int, counter: int, horizon: int, body: bytes
) -> None:
    # A clear header naming node 0, with a body nobody sealed.
    pair = Pair()
    datagram = HEADER.pack(version, pair.tag, session, 0, counter, horizon) + body
    pair.receive(datagram)
    assert drops(pair.core) == 1
    assert pair.core.deliveries() == []
    assert pair.peer.session == -1  # no session was started by it


@given(
    st.lists(frames, min_size=1, max_size=6).flatmap(lambda fs: mutated(valid_payload(fs))),
    counters,
    u64,
)
def test_a_configured_peer_sealing_garbage_cannot_raise(
    payload: bytes, counter: int, horizon: int
) -> None:
    # The peer holds the link key: authentication passes, the payload is hostile.
    pair = Pair()
    pair.receive(pair.seal(payload, counter, horizon))
    if pair.core.dropped["malformed"]:
        assert pair.core.deliveries() == []
    pair.check_bounds()
    pair.core.datagrams_to_send(1.0)  # whatever it queued in reply can be sent
    pair.core.handle_timer(10.0)


@settings(max_examples=60)
@given(st.lists(st.lists(frames, min_size=1, max_size=8), min_size=1, max_size=12))
def test_well_typed_hostile_frames_keep_every_bound(datagrams: list[list]) -> None:
    # Acks for packets never sent, fragments that overlap or lie about their
    # totals, pings naming strangers: the core absorbs all of it.
    pair = Pair()
    now_ms = 0.0
    for counter, frame_list in enumerate(datagrams, start=1):
        now_ms += 1.0
        pair.receive(pair.seal(valid_payload(frame_list), counter), now_ms)
        pair.check_bounds()
        out = pair.core.datagrams_to_send(now_ms)
        assert all(len(d) <= CONFIG.datagram_bytes_max for d, _a, _k in out)
        pair.core.handle_timer(now_ms)
    for delivery in pair.core.deliveries():
        # Only messages whose bytes match their id are delivered.
        assert delivery.id == message_id(delivery.topic, delivery.data)
        assert len(delivery.data) <= CONFIG.message_bytes_max
    assert pair.core.counts["datagrams_received"] == len(datagrams)


def test_a_datagram_full_of_pings_gets_a_bounded_reply() -> None:
    # Regression: every Ping of a datagram used to get its own Pong, so 65 kB
    # of pings drew 227 kB of replies, which a peer spoofing its source
    # address could aim at a third party. Now a datagram gets one Pong.
    pair = Pair()
    ping = encode_frame(Ping(1, []))
    count = (CONFIG.payload_bytes_max - 3) // len(ping)
    datagram = pair.seal(join_frames([ping] * count), 1)
    pair.receive(datagram)
    replies = pair.core.datagrams_to_send(1.0)
    assert len(replies) == 1
    assert len(replies[0][0]) < 200  # one Pong, not one per Ping


# ------------------------------------------------------------------ reassembly


@st.composite
def fragment_streams(draw: st.DrawFn) -> list[Fragment]:
    """Fragments of two real messages, shuffled and mixed with lying pieces."""
    out: list[Fragment] = []
    for _ in range(2):
        data = draw(st.binary(min_size=1, max_size=2_000))
        topic = draw(topics)
        id_ = message_id(topic, data)
        chunk = draw(st.integers(1, 700))
        for raw in fragment_message(id_, topic, b"o" * 8, True, data, chunk):
            out.append(msgspec.msgpack.decode(raw, type=Fragment))
    liars = draw(
        st.lists(
            st.builds(
                Fragment,
                st.sampled_from([f.id for f in out]) | ids,
                topics,
                st.sampled_from([b"o" * 8]) | tags,
                st.booleans(),
                st.integers(0, 6_000),
                st.integers(0, 6_000),
                st.binary(max_size=900),
            ),
            max_size=10,
        )
    )
    return draw(st.permutations(out + liars))


@given(fragment_streams(), st.integers(1_000, 9_000))
def test_reassembly_never_raises_and_stays_bounded(stream: list[Fragment], bytes_max: int) -> None:
    message_bytes_max = 4_096
    reassembler = Reassembler(bytes_max)
    for now_ms, fragment in enumerate(stream):
        partial = reassembler.add(fragment, message_bytes_max, float(now_ms))
        held = sum(held_bytes(p) for p in reassembler._partials.values())
        assert held == reassembler.bytes_held
        assert reassembler.bytes_held <= bytes_max or len(reassembler) == 1
        if partial is not None:
            joined = join(partial, fragment.id)
            if joined is not None:  # whatever joins is exactly the named message
                assert message_id(partial.topic, joined) == fragment.id
                assert len(joined) == partial.total <= message_bytes_max
    reassembler.expire(float(len(stream) + 1))
    assert reassembler.bytes_held == 0
    assert len(reassembler) == 0


def test_receive_window_accepts_the_top_counter_once() -> None:
    window = ReceiveWindow()
    assert window.is_new(U64_MAX)
    window.mark(U64_MAX, U64_MAX)
    assert not window.is_new(U64_MAX)
    assert len(window._missing) < 8_192


def test_header_constants() -> None:
    assert VERSION == 2
    assert HEADER.size == 41
