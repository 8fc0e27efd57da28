"""The datagram format of the gossip network.

Every datagram is sealed to one link (sender -> receiver) with
ChaCha20-Poly1305 (IETF, 12-byte nonce). The clear header is authenticated as
associated data:

    version     u8      2
    sender      8 bytes the first 8 bytes of the sender's Ed25519 public key
    session     u64 BE  the sender's session: it grows at every start
    echo        u64 BE  the receiver's session as the sender last heard it
                        (0: it has not heard the receiver yet)
    counter     u64 BE  per (link, session) packet number, from 1, never reused
    horizon     u64 BE  the sender will never resend a packet below this counter
    ciphertext  ...     the sealed payload, followed by the 16-byte tag

The nonce is 4 zero bytes || counter; the key is unique to (sender, receiver,
sender's session), so a (key, nonce) pair is never used twice.

The echo protects a receiver that restarted, whose replay windows started
empty: a datagram echoing one of its earlier runs' sessions was sent before
this run began, so it is refused, whatever its counter. Only datagrams
echoing this run's session are proof of a live sender at that address, so
only they move a peer's address.

The payload is a msgpack array of frames, each a tagged msgspec struct (the
first array element is the frame type). Frames are encoded one by one so the
sender can pack a datagram without re-encoding, and the receiver decodes the
whole payload with one typed decoder: malformed input fails in one place.
"""

from __future__ import annotations

import enum
import struct
from typing import Annotated

import blake3
import msgspec

__all__ = [
    "DIRECT_TOPICS",
    "HEADER",
    "HEADER_TAG",
    "OVERHEAD_BYTES",
    "TAG_BYTES",
    "VERSION",
    "Ack",
    "Fragment",
    "Frame",
    "Message",
    "Ping",
    "Pong",
    "Topic",
    "decode_payload",
    "encode_frame",
    "join_frames",
    "message_id",
]

VERSION = 2
HEADER = struct.Struct(">B8sQQQQ")
TAG_BYTES = 16
OVERHEAD_BYTES = HEADER.size + TAG_BYTES
SENDER_TAG_BYTES = 8
# Where the sender tag sits in a datagram's header (after the version byte).
HEADER_TAG = slice(1, 1 + SENDER_TAG_BYTES)
MESSAGE_ID_BYTES = 32
# A msgpack array16 header: frames per datagram are far below 65,535.
_ARRAY16 = b"\xdc"


# Hard walls of the decoder; configuration can only be tighter.
ACK_MISSING_MAX = 256
PEERS_MAX = 128
TOTAL_BYTES_MAX = 64 * 1024 * 1024

SenderTag = Annotated[bytes, msgspec.Meta(min_length=SENDER_TAG_BYTES, max_length=SENDER_TAG_BYTES)]
MessageId = Annotated[bytes, msgspec.Meta(min_length=MESSAGE_ID_BYTES, max_length=MESSAGE_ID_BYTES)]
# msgpack cannot carry integers above 2**64 - 1, so `ge=0` is the whole bound.
U64 = Annotated[int, msgspec.Meta(ge=0)]
Size = Annotated[int, msgspec.Meta(ge=0, le=TOTAL_BYTES_MAX)]


class Topic(enum.IntEnum):
    TX = 0
    CONSENSUS = 1
    SYNC = 2


# Topics of point-to-point requests and answers: never published, never relayed.
DIRECT_TOPICS = frozenset({Topic.SYNC})


def message_id(topic: int, data: bytes) -> bytes:
    """BLAKE3 of the topic byte and the message: the same bytes on two topics differ."""
    hasher = blake3.blake3(bytes((topic,)))
    hasher.update(data)
    return hasher.digest()


class Message(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag=1):
    """A whole gossip message. `origin` is the publisher's sender tag; `relay`
    is false for direct messages, which go to one peer and no further."""

    topic: Topic
    origin: SenderTag
    relay: bool
    data: bytes


class Fragment(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag=2):
    """Bytes [offset, offset + len(data)) of a message of `total` bytes whose id is `id`."""

    id: MessageId
    topic: Topic
    origin: SenderTag
    relay: bool
    total: Size
    offset: Size
    data: bytes


class Ack(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag=3):
    """Packets received: every counter in [floor, largest] except those in `missing`."""

    largest: U64
    floor: U64
    missing: Annotated[list[U64], msgspec.Meta(max_length=ACK_MISSING_MAX)]


class Ping(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag=4):
    """Liveness probe. `alive` lists the sender tags of the peers the sender has
    heard from recently: relays use it to skip peers that the origin reaches."""

    nonce: U64
    alive: Annotated[list[SenderTag], msgspec.Meta(max_length=PEERS_MAX)]


class Pong(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag=5):
    nonce: U64
    alive: Annotated[list[SenderTag], msgspec.Meta(max_length=PEERS_MAX)]


Frame = Message | Fragment | Ack | Ping | Pong

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Frame])


def encode_frame(frame: Frame) -> bytes:
    return _encoder.encode(frame)


def join_frames(frames: list[bytes]) -> bytes:
    assert len(frames) < 65_536
    return _ARRAY16 + len(frames).to_bytes(2, "big") + b"".join(frames)


def decode_payload(payload: bytes) -> list[Frame]:
    """Frames of a decrypted payload (raises `msgspec.DecodeError` if malformed)."""
    return _decoder.decode(payload)


# Bytes a Message frame adds to its data, at most: tag, topic, origin, relay
# and the bin32 header of the data. Used to decide whether a message fits.
MESSAGE_FRAME_OVERHEAD_BYTES = 1 + 1 + 1 + (2 + SENDER_TAG_BYTES) + 1 + 5
FRAGMENT_FRAME_OVERHEAD_BYTES = MESSAGE_FRAME_OVERHEAD_BYTES + (2 + MESSAGE_ID_BYTES) + 2 * 9
PAYLOAD_HEADER_BYTES = 3
