"""The gossip payload format: frames round-trip, malformed payloads fail in
the one typed decoder, message ids separate topics, and the overhead
constants used to pack datagrams are upper bounds."""

from __future__ import annotations

import blake3
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.wire import (
    ACK_MISSING_MAX,
    FRAGMENT_FRAME_OVERHEAD_BYTES,
    HEADER,
    MESSAGE_FRAME_OVERHEAD_BYTES,
    OVERHEAD_BYTES,
    PAYLOAD_HEADER_BYTES,
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

U64_MAX = 2**64 - 1

u64 = st.integers(0, U64_MAX)
sizes = st.integers(0, TOTAL_BYTES_MAX)
topics = st.sampled_from(Topic)
tags = st.binary(min_size=8, max_size=8)
ids = st.binary(min_size=32, max_size=32)

messages = st.builds(Message, topics, tags, st.booleans(), st.binary(max_size=300))
fragments = st.builds(
    Fragment, ids, topics, tags, st.booleans(), sizes, sizes, st.binary(max_size=300)
)
acks = st.builds(Ack, u64, u64, st.lists(u64, max_size=ACK_MISSING_MAX))
pings = st.builds(Ping, u64, st.lists(tags, max_size=PEERS_MAX))
pongs = st.builds(Pong, u64, st.lists(tags, max_size=PEERS_MAX))
frames = st.one_of(messages, fragments, acks, pings, pongs)


def payload(*raw_frames: object) -> bytes:
    """A payload of frames given as plain lists (to build malformed ones)."""
    return join_frames([msgspec.msgpack.encode(frame) for frame in raw_frames])


@given(st.lists(frames, max_size=12))
def test_frames_round_trip(frame_list: list) -> None:
    decoded = decode_payload(join_frames([encode_frame(f) for f in frame_list]))
    assert decoded == frame_list
    assert [type(f) for f in decoded] == [type(f) for f in frame_list]


@pytest.mark.parametrize(
    "frame",
    [
        Message(Topic.TX, b"o" * 8, True, b""),
        Fragment(b"i" * 32, Topic.SYNC, b"o" * 8, False, TOTAL_BYTES_MAX, TOTAL_BYTES_MAX, b"d"),
        Ack(U64_MAX, U64_MAX, [U64_MAX] * ACK_MISSING_MAX),
        Ping(0, [b"t" * 8] * PEERS_MAX),
        Pong(U64_MAX, []),
    ],
    ids=["empty-message", "fragment-at-limits", "ack-full", "ping-full", "pong-empty"],
)
def test_frames_at_the_limits_round_trip(frame: object) -> None:
    assert decode_payload(join_frames([encode_frame(frame)])) == [frame]


def test_topic_decodes_as_the_enum() -> None:
    (frame,) = decode_payload(join_frames([encode_frame(Message(Topic.SYNC, b"o" * 8, True, b""))]))
    assert frame.topic is Topic.SYNC


def test_empty_payload_is_no_frames() -> None:
    assert join_frames([]) == b"\xdc\x00\x00"
    assert decode_payload(join_frames([])) == []


@given(st.lists(frames, min_size=1, max_size=4), st.data())
def test_any_truncation_is_refused(frame_list: list, data: st.DataObject) -> None:
    whole = join_frames([encode_frame(f) for f in frame_list])
    cut = data.draw(st.integers(0, len(whole) - 1))
    with pytest.raises(msgspec.DecodeError):
        decode_payload(whole[:cut])


TAG8, ID32 = b"t" * 8, b"i" * 32
GOOD_PING = join_frames([encode_frame(Ping(1, [TAG8]))])

MALFORMED = [
    ("empty", b""),
    ("truncated-header", GOOD_PING[:2]),
    ("truncated-frame", GOOD_PING[:-1]),
    ("trailing-bytes", GOOD_PING + b"\x00"),
    ("count-above-frames", b"\xdc\x00\x02" + GOOD_PING[3:]),
    ("not-an-array", msgspec.msgpack.encode({"frames": []})),
    ("an-integer", msgspec.msgpack.encode(7)),
    ("frame-not-an-array", payload(b"\x04")),
    ("tag-zero", payload([0, 1, []])),
    ("tag-unknown", payload([9, 1, []])),
    ("tag-as-string", payload(["4", 1, []])),
    ("frame-missing-field", payload([4, 1])),
    ("message-origin-7-bytes", payload([1, 0, b"o" * 7, True, b"d"])),
    ("message-origin-9-bytes", payload([1, 0, b"o" * 9, True, b"d"])),
    ("message-origin-as-string", payload([1, 0, "o" * 8, True, b"d"])),
    ("message-unknown-topic", payload([1, 3, TAG8, True, b"d"])),
    ("message-relay-as-int", payload([1, 0, TAG8, 1, b"d"])),
    ("message-data-as-string", payload([1, 0, TAG8, True, "d"])),
    ("fragment-id-31-bytes", payload([2, b"i" * 31, 0, TAG8, True, 1, 0, b"d"])),
    ("fragment-id-33-bytes", payload([2, b"i" * 33, 0, TAG8, True, 1, 0, b"d"])),
    ("fragment-origin-short", payload([2, ID32, 0, b"o", True, 1, 0, b"d"])),
    ("fragment-negative-offset", payload([2, ID32, 0, TAG8, True, 1, -1, b"d"])),
    ("fragment-negative-total", payload([2, ID32, 0, TAG8, True, -1, 0, b"d"])),
    ("fragment-total-too-big", payload([2, ID32, 0, TAG8, True, TOTAL_BYTES_MAX + 1, 0, b"d"])),
    ("fragment-offset-too-big", payload([2, ID32, 0, TAG8, True, 1, TOTAL_BYTES_MAX + 1, b"d"])),
    ("ack-negative-largest", payload([3, -1, 0, []])),
    ("ack-negative-floor", payload([3, 1, -1, []])),
    ("ack-negative-missing", payload([3, 5, 1, [2, -3]])),
    ("ack-float-counter", payload([3, 1.0, 1, []])),
    ("ack-too-many-missing", payload([3, 1, 1, list(range(ACK_MISSING_MAX + 1))])),
    ("ack-missing-not-a-list", payload([3, 1, 1, 2])),
    ("ping-negative-nonce", payload([4, -1, []])),
    ("ping-too-many-alive", payload([4, 1, [TAG8] * (PEERS_MAX + 1)])),
    ("ping-alive-tag-short", payload([4, 1, [b"t" * 7]])),
    ("pong-too-many-alive", payload([5, 1, [TAG8] * (PEERS_MAX + 1)])),
    ("pong-alive-tag-long", payload([5, 1, [b"t" * 9]])),
    ("good-then-bad-frame", GOOD_PING[:2] + b"\x02" + GOOD_PING[3:] + payload([4, -1, []])[3:]),
]


@pytest.mark.parametrize("data", [case[1] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_payloads_raise_decode_error(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_payload(data)


def test_malformed_examples_differ_from_valid_ones_only_where_stated() -> None:
    # The table above must fail for its stated reason, not by accident: the
    # same frames with the fault repaired decode.
    assert decode_payload(payload([1, 0, TAG8, True, b"d"])) == [
        Message(Topic.TX, TAG8, True, b"d")
    ]
    assert decode_payload(payload([2, ID32, 0, TAG8, True, 1, 0, b"d"])) == [
        Fragment(ID32, Topic.TX, TAG8, True, 1, 0, b"d")
    ]
    assert decode_payload(payload([3, 5, 1, list(range(ACK_MISSING_MAX))]))[0].largest == 5
    assert decode_payload(payload([4, 1, [TAG8] * PEERS_MAX]))[0].alive == [TAG8] * PEERS_MAX
    assert decode_payload(payload([5, 1, [TAG8]])) == [Pong(1, [TAG8])]
    good_two = GOOD_PING[:2] + b"\x02" + GOOD_PING[3:] + payload([4, 2, []])[3:]
    assert decode_payload(good_two) == [Ping(1, [TAG8]), Ping(2, [])]


@given(topics, st.binary(max_size=200))
def test_message_id_is_blake3_of_topic_byte_and_data(topic: Topic, data: bytes) -> None:
    assert message_id(topic, data) == blake3.blake3(bytes([int(topic)]) + data).digest()
    assert len(message_id(topic, data)) == 32


@given(st.binary(max_size=200))
def test_message_id_differs_across_topics(data: bytes) -> None:
    assert len({message_id(topic, data) for topic in Topic}) == len(Topic)


def test_message_id_known_value() -> None:
    # BLAKE3 of the single byte 0x01 (topic CONSENSUS, empty data).
    expected = "48fc721fbbc172e0925fa27af1671de225ba927134802998b10a1568a188652b"
    assert message_id(Topic.CONSENSUS, b"").hex() == expected


def test_header_layout() -> None:
    # version, sender tag, session, echo, counter, horizon: big-endian, no padding.
    header = HEADER.pack(VERSION, b"T" * 8, 2, 0, 3, 4)
    expected = bytes([VERSION]) + b"T" * 8 + b"".join(n.to_bytes(8, "big") for n in (2, 0, 3, 4))
    assert header == expected
    assert HEADER.size + 16 == OVERHEAD_BYTES
    assert len(join_frames([b""] * 3)) == PAYLOAD_HEADER_BYTES


@given(topics, tags, st.booleans(), st.sampled_from([0, 1, 31, 32, 255, 256, 65_535, 65_536]))
def test_message_frame_overhead_is_an_upper_bound(
    topic: Topic, origin: bytes, relay: bool, size: int
) -> None:
    data = b"\xab" * size
    assert len(encode_frame(Message(topic, origin, relay, data))) - size <= (
        MESSAGE_FRAME_OVERHEAD_BYTES
    )


@given(ids, topics, tags, st.booleans(), sizes, sizes, st.sampled_from([1, 255, 256, 65_536]))
def test_fragment_frame_overhead_is_an_upper_bound(
    id_: bytes, topic: Topic, origin: bytes, relay: bool, total: int, offset: int, size: int
) -> None:
    data = b"\xcd" * size
    frame = encode_frame(Fragment(id_, topic, origin, relay, total, offset, data))
    assert len(frame) - size <= FRAGMENT_FRAME_OVERHEAD_BYTES
