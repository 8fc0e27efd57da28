"""Fragmenting messages and reassembling them per peer: any delivery order
with duplicates completes a message once, corrupt or ill-formed fragments
spoil nothing else, and buffers are bounded in bytes and in time."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.fragments import (
    CHUNK_OVERHEAD_BYTES,
    PARTIAL_OVERHEAD_BYTES,
    Reassembler,
    fragment_message,
    join,
)
from net.wire import Fragment, Topic, message_id

ORIGIN = b"origin00"
MESSAGE_BYTES_MAX = 10_000


def cost(data: int, chunks: int, partials: int) -> int:
    """What `data` bytes in `chunks` chunks of `partials` partials count as held."""
    return data + CHUNK_OVERHEAD_BYTES * chunks + PARTIAL_OVERHEAD_BYTES * partials


def pieces(data: bytes, chunk_bytes: int, topic: Topic = Topic.SYNC) -> tuple[bytes, list]:
    """(id, decoded fragments) of `data`."""
    id_ = message_id(topic, data)
    frames = fragment_message(id_, topic, ORIGIN, True, data, chunk_bytes)
    return id_, [msgspec.msgpack.decode(f, type=Fragment) for f in frames]


@given(st.binary(min_size=1, max_size=3_000), st.integers(1, 4_000), st.sampled_from(Topic))
def test_fragment_message_tiles_the_data(data: bytes, chunk_bytes: int, topic: Topic) -> None:
    id_, fragments = pieces(data, chunk_bytes, topic)
    assert len(fragments) == math.ceil(len(data) / chunk_bytes)
    assert [f.offset for f in fragments] == list(range(0, len(data), chunk_bytes))
    assert all(0 < len(f.data) <= chunk_bytes for f in fragments)
    assert b"".join(f.data for f in fragments) == data
    assert {(f.id, f.topic, f.origin, f.relay, f.total) for f in fragments} == {
        (id_, topic, ORIGIN, True, len(data))
    }


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, list[Fragment], list[int]]:
    """A message, its fragments and an arrival order: every fragment at least
    once, in any order, some of them several times."""
    data = draw(st.binary(min_size=1, max_size=4_000))
    chunk_bytes = draw(st.integers(max(1, len(data) // 40), len(data) + 10))
    _, fragments = pieces(data, chunk_bytes)
    extra = draw(st.lists(st.integers(0, len(fragments) - 1), max_size=2 * len(fragments)))
    order = draw(st.permutations(list(range(len(fragments))) + extra))
    return data, fragments, order


@given(deliveries())
def test_reassembly_completes_once_when_the_last_piece_arrives(case: tuple) -> None:
    data, fragments, order = case
    id_ = fragments[0].id
    reassembler = Reassembler(bytes_max=1_000_000)
    completed_at = []
    arrived: set[int] = set()
    last_missing_at = None
    done = False
    for step, index in enumerate(order):
        if done:
            # The gossip core stops here: the id is in its seen-cache.
            continue
        arrived.add(index)
        if last_missing_at is None and len(arrived) == len(fragments):
            last_missing_at = step
        partial = reassembler.add(fragments[index], MESSAGE_BYTES_MAX, now_ms=float(step))
        if partial is not None:
            completed_at.append(step)
            assert join(partial, id_) == data
            assert (partial.topic, partial.origin, partial.relay) == (Topic.SYNC, ORIGIN, True)
            done = True
    assert completed_at == [last_missing_at]
    assert (len(reassembler), reassembler.bytes_held, reassembler.rejected) == (0, 0, 0)


@given(deliveries())
def test_bytes_held_counts_distinct_pieces(case: tuple) -> None:
    _, fragments, order = case
    reassembler = Reassembler(bytes_max=1_000_000)
    arrived: set[int] = set()
    for index in order:
        arrived.add(index)
        if len(arrived) == len(fragments):
            break
        assert reassembler.add(fragments[index], MESSAGE_BYTES_MAX, 0.0) is None
        data = sum(len(fragments[i].data) for i in arrived)
        assert reassembler.bytes_held == cost(data, len(arrived), 1)


def test_a_fragment_after_completion_starts_over() -> None:
    # The reassembler does not remember finished ids: the gossip core checks
    # its seen-cache before handing it a fragment.
    _, fragments = pieces(b"x" * 25, 10)
    reassembler = Reassembler(bytes_max=1_000)
    results = [reassembler.add(f, MESSAGE_BYTES_MAX, 0.0) for f in fragments]
    assert [r is not None for r in results] == [False, False, True]
    assert reassembler.add(fragments[0], MESSAGE_BYTES_MAX, 1.0) is None
    assert (len(reassembler), reassembler.bytes_held) == (1, cost(10, 1, 1))


@pytest.mark.parametrize("where", [0, 1, 2], ids=["first", "middle", "last"])
def test_corrupt_piece_fails_the_join(where: int) -> None:
    data = bytes(range(30))
    id_, fragments = pieces(data, 10)
    bad = fragments[where]
    fragments[where] = msgspec.structs.replace(bad, data=bytes([bad.data[0] ^ 1]) + bad.data[1:])
    reassembler = Reassembler(bytes_max=1_000)
    partial = None
    for fragment in fragments:
        partial = reassembler.add(fragment, MESSAGE_BYTES_MAX, 0.0)
    assert partial is not None
    assert join(partial, id_) is None


def test_wrong_topic_id_fails_the_join() -> None:
    data = b"y" * 30
    _, fragments = pieces(data, 10, Topic.TX)
    reassembler = Reassembler(bytes_max=1_000)
    partial = None
    for fragment in fragments:
        partial = reassembler.add(fragment, MESSAGE_BYTES_MAX, 0.0)
    assert join(partial, fragments[0].id) == data
    assert join(partial, message_id(Topic.CONSENSUS, data)) is None


def test_overlapping_pieces_fail_the_join() -> None:
    data = b"abcdefgh"
    id_ = message_id(Topic.TX, data)
    reassembler = Reassembler(bytes_max=1_000)
    first = Fragment(id_, Topic.TX, ORIGIN, True, 8, 0, b"abcd")
    overlapping = Fragment(id_, Topic.TX, ORIGIN, True, 8, 2, b"cdef")
    assert reassembler.add(first, MESSAGE_BYTES_MAX, 0.0) is None
    partial = reassembler.add(overlapping, MESSAGE_BYTES_MAX, 0.0)
    assert partial is not None  # 8 bytes arrived, but they do not tile the message
    assert join(partial, id_) is None


DATA = b"0123456789"
ID = message_id(Topic.TX, DATA)
OTHER_ID = message_id(Topic.TX, b"other")


def piece(offset: int, data: bytes, **changes: object) -> Fragment:
    fields = {"id": ID, "topic": Topic.TX, "origin": ORIGIN, "relay": True, "total": 10}
    fields.update(changes)
    return Fragment(offset=offset, data=data, **fields)


MALFORMED = [
    ("past the end", piece(8, b"abc")),
    ("offset at the end", piece(10, b"a")),
    ("empty data", piece(5, b"")),
    ("total above message_bytes_max", piece(0, b"a", id=OTHER_ID, total=MESSAGE_BYTES_MAX + 1)),
    ("total above message_bytes_max, known id", piece(0, b"a", total=MESSAGE_BYTES_MAX + 1)),
    ("other total for a known id", piece(5, b"56789", total=11)),
    ("other topic for a known id", piece(5, b"56789", topic=Topic.CONSENSUS)),
    ("other origin for a known id", piece(5, b"56789", origin=b"someone1")),
]


@pytest.mark.parametrize("bad", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_fragments_are_rejected_and_change_nothing(bad: Fragment) -> None:
    reassembler = Reassembler(bytes_max=1_000)
    assert reassembler.add(piece(0, b"01234"), MESSAGE_BYTES_MAX, 0.0) is None
    assert reassembler.add(bad, MESSAGE_BYTES_MAX, 1.0) is None
    assert (reassembler.rejected, len(reassembler), reassembler.bytes_held) == (1, 1, cost(5, 1, 1))
    partial = reassembler.add(piece(5, b"56789"), MESSAGE_BYTES_MAX, 2.0)
    assert partial is not None
    assert join(partial, ID) == DATA
    assert (partial.total, partial.topic, partial.origin, partial.started_ms) == (
        10,
        Topic.TX,
        ORIGIN,
        0.0,
    )


def test_repeated_piece_is_ignored_not_rejected() -> None:
    reassembler = Reassembler(bytes_max=1_000)
    reassembler.add(piece(0, b"01234"), MESSAGE_BYTES_MAX, 0.0)
    assert reassembler.add(piece(0, b"01234"), MESSAGE_BYTES_MAX, 1.0) is None
    assert (reassembler.rejected, reassembler.bytes_held) == (0, cost(5, 1, 1))


def test_a_new_partial_evicts_the_oldest() -> None:
    room = 2 * cost(40, 1, 1)
    reassembler = Reassembler(bytes_max=room)
    ids = [message_id(Topic.TX, bytes([i])) for i in range(3)]
    for i, id_ in enumerate(ids):
        reassembler.add(piece(0, b"x" * 40, id=id_, total=80), MESSAGE_BYTES_MAX, float(i))
    # The third partial does not fit beside two: the first one goes.
    assert (reassembler.evicted, len(reassembler), reassembler.bytes_held) == (1, 2, room)
    # The evicted message starts over; the survivors still complete.
    assert (
        reassembler.add(piece(40, b"x" * 40, id=ids[0], total=80), MESSAGE_BYTES_MAX, 3.0) is None
    )
    assert reassembler.evicted == 2  # the second one made way
    partial = reassembler.add(piece(40, b"y" * 40, id=ids[2], total=80), MESSAGE_BYTES_MAX, 4.0)
    assert partial is not None
    assert partial.received == 80


def test_one_message_larger_than_the_bound_is_kept() -> None:
    reassembler = Reassembler(bytes_max=10)
    data = bytes(range(50))
    id_, fragments = pieces(data, 20)
    assert reassembler.add(fragments[0], MESSAGE_BYTES_MAX, 0.0) is None
    assert reassembler.add(fragments[1], MESSAGE_BYTES_MAX, 0.0) is None
    assert (reassembler.bytes_held, reassembler.evicted) == (cost(40, 2, 1), 0)
    partial = reassembler.add(fragments[2], MESSAGE_BYTES_MAX, 0.0)
    assert partial is not None
    assert join(partial, id_) == data


@given(
    st.integers(1, 400),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), max_size=80),
)
def test_bytes_held_stay_within_the_bound_plus_one_message(bytes_max: int, arrivals) -> None:
    """Fragments of six messages of up to 200 bytes, interleaved at random."""
    messages = [bytes([m]) * (20 * (m + 5)) for m in range(6)]  # 100..200 bytes
    cut = [pieces(data, 20) for data in messages]
    reassembler = Reassembler(bytes_max)
    completed = set()
    for step, (m, k) in enumerate(arrivals):
        id_, fragments = cut[m]
        partial = reassembler.add(fragments[k % len(fragments)], MESSAGE_BYTES_MAX, float(step))
        if partial is not None:
            assert join(partial, id_) == messages[m]
            completed.add(m)
        assert reassembler.bytes_held <= bytes_max + cost(200, 10, 1)
        assert reassembler.bytes_held <= bytes_max or len(reassembler) == 1
        assert reassembler.bytes_held >= 0
    # Dropping everything gives back exactly what was counted.
    reassembler.expire(math.inf)
    assert (reassembler.bytes_held, len(reassembler)) == (0, 0)


def test_expire_drops_partials_started_before_the_cutoff() -> None:
    reassembler = Reassembler(bytes_max=10_000)
    ids = [message_id(Topic.TX, bytes([i])) for i in range(3)]
    for started, id_ in zip((0.0, 10.0, 20.0), ids, strict=True):
        reassembler.add(piece(0, b"x" * 5, id=id_), MESSAGE_BYTES_MAX, started)
    # A later piece does not make a partial younger.
    reassembler.add(piece(5, b"x" * 2, id=ids[0]), MESSAGE_BYTES_MAX, 15.0)
    reassembler.expire(10.0)  # started at the cutoff: kept
    assert (reassembler.expired, len(reassembler), reassembler.bytes_held) == (1, 2, cost(10, 2, 2))
    reassembler.expire(10.0)
    assert reassembler.expired == 1
    reassembler.expire(25.0)
    assert (reassembler.expired, len(reassembler), reassembler.bytes_held) == (3, 0, 0)
    assert reassembler.evicted == 0


def test_partials_are_bounded_in_count_whatever_their_size() -> None:
    # One-byte fragments under fresh ids: each starts a partial. Charged only
    # their data, a million of them fit a 16 MiB bound and held gigabytes.
    reassembler = Reassembler(bytes_max=16 * 1024 * 1024, partials_max=64)
    for i in range(10_000):
        id_ = message_id(Topic.TX, i.to_bytes(4, "big"))
        assert reassembler.add(piece(0, b"x", id=id_), MESSAGE_BYTES_MAX, float(i)) is None
    assert len(reassembler) == 64
    assert reassembler.evicted == 10_000 - 64
    assert reassembler.bytes_held == cost(64, 64, 64)
    # The newest survive: the last one completes.
    last = message_id(Topic.TX, (9_999).to_bytes(4, "big"))
    assert reassembler.add(piece(1, b"x" * 9, id=last), MESSAGE_BYTES_MAX, 1e4) is not None


def test_a_growing_partial_is_not_evicted_to_make_room_for_itself() -> None:
    reassembler = Reassembler(bytes_max=cost(6, 2, 2), partials_max=2)
    first, second = (message_id(Topic.TX, bytes([i])) for i in range(2))
    reassembler.add(piece(0, b"aaa", id=first), MESSAGE_BYTES_MAX, 0.0)
    reassembler.add(piece(0, b"bbb", id=second), MESSAGE_BYTES_MAX, 1.0)
    # The oldest partial grows past the bound: the other one makes way.
    assert reassembler.add(piece(3, b"aaa", id=first), MESSAGE_BYTES_MAX, 2.0) is None
    assert (len(reassembler), reassembler.evicted) == (1, 1)
    assert reassembler.bytes_held == cost(6, 2, 1)


def test_a_message_in_one_fragment_completes_without_being_held() -> None:
    reassembler = Reassembler(bytes_max=cost(0, 0, 1), partials_max=1)
    reassembler.add(piece(0, b"01234"), MESSAGE_BYTES_MAX, 0.0)
    whole = Fragment(OTHER_ID, Topic.TX, ORIGIN, True, 5, 0, b"other")
    partial = reassembler.add(whole, MESSAGE_BYTES_MAX, 1.0)
    assert partial is not None
    assert join(partial, OTHER_ID) == b"other"
    assert (len(reassembler), reassembler.evicted) == (1, 0)
