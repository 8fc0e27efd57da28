"""Splitting messages into fragments and putting them back together.

Reassembly is per sending peer: each link delivers all its fragments (see
`net.link`), so fragments from different peers never need combining, and a
peer that sends garbage spoils only its own copy. Buffers are bounded per
peer in bytes and in count, and in time; the oldest partial message makes
way. Each partial is charged `PARTIAL_OVERHEAD_BYTES` besides its data: a
partial of 1-byte fragments costs hundreds of bytes of bookkeeping, and
counting only its data let a peer hold gigabytes in partials.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

from net.wire import TOTAL_BYTES_MAX, Fragment, Topic, encode_frame, message_id

__all__ = [
    "CHUNK_OVERHEAD_BYTES",
    "FRAGMENT_OVERHEAD_BYTES",
    "PARTIAL_OVERHEAD_BYTES",
    "Partial",
    "Reassembler",
    "fragment_message",
    "held_bytes",
    "join",
]


def _fragment_overhead_bytes() -> int:
    worst = Fragment(bytes(32), Topic.SYNC, bytes(8), True, TOTAL_BYTES_MAX, TOTAL_BYTES_MAX, b"")
    return len(encode_frame(worst)) + 4  # the data's bin header grows up to bin32


# What a fragment frame adds to the data it carries, at most.
FRAGMENT_OVERHEAD_BYTES = _fragment_overhead_bytes()

# What a partial message and each of its chunks cost beyond their data
# (objects, dict slots), measured on CPython 3.11 and rounded up.
PARTIAL_OVERHEAD_BYTES = 512
CHUNK_OVERHEAD_BYTES = 128


def fragment_message(
    id_: bytes, topic: Topic, origin: bytes, relay: bool, data: bytes, chunk_bytes: int
) -> list[bytes]:
    """Encoded `Fragment` frames of `data`, each carrying at most `chunk_bytes`."""
    assert chunk_bytes > 0
    total = len(data)
    return [
        encode_frame(
            Fragment(id_, topic, origin, relay, total, offset, data[offset : offset + chunk_bytes])
        )
        for offset in range(0, total, chunk_bytes)
    ]


@dataclasses.dataclass(slots=True)
class Partial:
    topic: Topic
    origin: bytes
    relay: bool
    total: int
    started_ms: float
    chunks: dict[int, bytes] = dataclasses.field(default_factory=dict)
    received: int = 0


class Reassembler:
    """Partial messages from one peer."""

    __slots__ = (
        "_bytes_max",
        "_partials",
        "_partials_max",
        "bytes_held",
        "evicted",
        "expired",
        "rejected",
    )

    def __init__(self, bytes_max: int, partials_max: int = 64) -> None:
        assert partials_max > 0
        self._bytes_max = bytes_max
        self._partials_max = partials_max
        # Insertion order is start order; an OrderedDict finds and drops its
        # oldest entry in O(1) however many were dropped before.
        self._partials: OrderedDict[bytes, Partial] = OrderedDict()
        self.bytes_held = 0  # data plus overheads
        self.evicted = 0
        self.expired = 0
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._partials)

    def add(self, fragment: Fragment, message_bytes_max: int, now_ms: float) -> Partial | None:
        """Store `fragment`; returns the whole message's `Partial` once complete.

        The caller checks the id against the joined data (`join`)."""
        if not _well_formed(fragment, message_bytes_max):
            self.rejected += 1
            return None
        partial = self._partials.get(fragment.id)
        if partial is None:
            if fragment.offset == 0 and len(fragment.data) == fragment.total:
                return _whole(fragment, now_ms)  # in one fragment: nothing to hold
            self._make_room(PARTIAL_OVERHEAD_BYTES, keep=None, new=True)
            partial = self._start(fragment, now_ms)
        elif (partial.total, partial.topic, partial.origin) != (
            fragment.total,
            fragment.topic,
            fragment.origin,
        ):
            self.rejected += 1
            return None
        if fragment.offset in partial.chunks:
            return None  # a retransmission of a fragment that did arrive
        cost = len(fragment.data) + CHUNK_OVERHEAD_BYTES
        self._make_room(cost, keep=fragment.id, new=False)
        partial.chunks[fragment.offset] = fragment.data
        partial.received += len(fragment.data)
        self.bytes_held += cost
        if partial.received < partial.total:
            return None
        self._drop(fragment.id)
        return partial

    def expire(self, cutoff_ms: float) -> None:
        """Drop partial messages started before `cutoff_ms`."""
        partials = self._partials
        while partials:
            id_, partial = next(iter(partials.items()))
            if partial.started_ms >= cutoff_ms:
                return
            self._drop(id_)
            self.expired += 1

    def clear(self) -> None:
        self._partials.clear()
        self.bytes_held = 0

    def _start(self, fragment: Fragment, now_ms: float) -> Partial:
        partial = Partial(fragment.topic, fragment.origin, fragment.relay, fragment.total, now_ms)
        self._partials[fragment.id] = partial
        self.bytes_held += PARTIAL_OVERHEAD_BYTES
        return partial

    def _make_room(self, size: int, keep: bytes | None, new: bool) -> None:
        partials = self._partials
        while partials and (
            self.bytes_held + size > self._bytes_max
            or (new and len(partials) >= self._partials_max)
        ):
            candidates = iter(partials)
            oldest = next(candidates)
            if oldest == keep:  # the one growing is not evicted
                oldest = next(candidates, None)
                if oldest is None:
                    break  # one message alone, bounded by its own total
            self._drop(oldest)
            self.evicted += 1

    def _drop(self, id_: bytes) -> None:
        self.bytes_held -= held_bytes(self._partials.pop(id_))


def held_bytes(partial: Partial) -> int:
    """What a partial counts against its peer's reassembly bound."""
    return PARTIAL_OVERHEAD_BYTES + partial.received + CHUNK_OVERHEAD_BYTES * len(partial.chunks)


def join(partial: Partial, id_: bytes) -> bytes | None:
    """The message bytes, or None when the chunks do not tile it or the id is wrong."""
    data = bytearray()
    for offset in sorted(partial.chunks):
        if offset != len(data):
            return None  # overlapping or gapped chunks: not what an honest peer sends
        data += partial.chunks[offset]
    if len(data) != partial.total:
        return None
    joined = bytes(data)
    return joined if message_id(partial.topic, joined) == id_ else None


def _whole(fragment: Fragment, now_ms: float) -> Partial:
    return Partial(
        fragment.topic,
        fragment.origin,
        fragment.relay,
        fragment.total,
        now_ms,
        {0: fragment.data},
        fragment.total,
    )


def _well_formed(fragment: Fragment, message_bytes_max: int) -> bool:
    size = len(fragment.data)
    return size > 0 and fragment.offset + size <= fragment.total <= message_bytes_max
