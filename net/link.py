"""One direction-aware link between two peers: keys, sealing, replay window,
acknowledgements and loss recovery. Pure: no sockets, no clock.

Keys. Both ends compute the same X25519 secret from their static Ed25519 keys
(converted to Curve25519, as libsodium does); each direction and each sender
session gets its own ChaCha20-Poly1305 key derived with BLAKE3, so a counter
nonce is never reused under one key, even across restarts.

Reliability. Counters double as packet numbers. The receiver's window
rejects replays and knows which counters are missing; it reports them in
`Ack` frames. The sender keeps the retransmittable frames of each packet in
flight, declares a packet lost when later ones were acknowledged without it
(or after a delay), and queues its frames again under a new counter, as QUIC
does. A probe (`Ping`) after a quiet spell elicits an `Ack` that reveals a
lost tail. This is "lazy repair": a message lost on one link
still arrives, whole, at the cost of one round trip, and costs nothing when
nothing is lost.
"""

from __future__ import annotations

import dataclasses
import itertools

import blake3
import nacl.bindings
import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from net.wire import ACK_MISSING_MAX, HEADER, VERSION, Ack

__all__ = [
    "WINDOW_PACKETS",
    "LinkKeys",
    "ReceiveWindow",
    "SendWindow",
    "SentPacket",
    "open_datagram",
    "seal_datagram",
]

# Packets the receiver remembers: replays older than this are refused
# outright and losses older than this can no longer be reported.
WINDOW_PACKETS = 8_192
_KEY_CONTEXT = "sequencer gossip link v1 2026-11 packet key"


class LinkKeys:
    """The static secret of one pair of peers and the keys derived from it."""

    __slots__ = ("_secret", "local", "remote")

    def __init__(self, local_seed: bytes, local_public: bytes, remote_public: bytes) -> None:
        signing = nacl.signing.SigningKey(local_seed)
        local_x = bytes(signing.to_curve25519_private_key())
        try:
            remote_x = bytes(nacl.signing.VerifyKey(remote_public).to_curve25519_public_key())
            self._secret = nacl.bindings.crypto_scalarmult(local_x, remote_x)
        except (nacl.exceptions.CryptoError, RuntimeError, ValueError) as error:
            # Low-order or invalid points: no shared secret can be trusted.
            raise ValueError(f"unusable peer key {remote_public.hex()}: {error}") from None
        self.local = local_public
        self.remote = remote_public

    def sending_cipher(self, session: int) -> ChaCha20Poly1305:
        return ChaCha20Poly1305(self._derive(self.local, self.remote, session))

    def receiving_cipher(self, session: int) -> ChaCha20Poly1305:
        return ChaCha20Poly1305(self._derive(self.remote, self.local, session))

    def _derive(self, sender: bytes, receiver: bytes, session: int) -> bytes:
        material = self._secret + sender + receiver + session.to_bytes(8, "big")
        return blake3.blake3(material, derive_key_context=_KEY_CONTEXT).digest()


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "big")


def seal_datagram(
    cipher: ChaCha20Poly1305,
    sender_tag: bytes,
    session: int,
    counter: int,
    horizon: int,
    payload: bytes,
    echo: int = 0,
) -> bytes:
    """`echo`: the receiver's session as last heard from it (0: not yet)."""
    header = HEADER.pack(VERSION, sender_tag, session, echo, counter, horizon)
    return header + cipher.encrypt(_nonce(counter), payload, header)


def open_datagram(cipher: ChaCha20Poly1305, datagram: bytes, counter: int) -> bytes | None:
    """The payload, or None if the datagram was not sealed with this cipher's key."""
    header = datagram[: HEADER.size]
    try:
        return cipher.decrypt(_nonce(counter), datagram[HEADER.size :], header)
    except InvalidTag:
        return None


class ReceiveWindow:
    """Counters received from one peer session: replay check and loss report."""

    __slots__ = ("_missing", "horizon", "largest")

    def __init__(self) -> None:
        self.largest = 0
        # Below the sender's horizon nothing will be resent: losses there
        # (acks, pings, packets already declared lost) are no longer news.
        self.horizon = 1
        self._missing: set[int] = set()

    @property
    def floor(self) -> int:
        return max(self.horizon, self.largest - WINDOW_PACKETS + 1)

    def is_new(self, counter: int) -> bool:
        """Whether `counter` may be accepted (cheap: call before authenticating)."""
        if counter > self.largest:
            return True
        return counter >= self.floor and counter in self._missing

    def mark(self, counter: int, horizon: int = 1) -> bool:
        """Record an authenticated counter; True when it left a gap behind it."""
        assert self.is_new(counter)
        self.horizon = max(self.horizon, min(horizon, counter))
        if counter <= self.largest:
            self._missing.discard(counter)
            return False
        gap_start = max(self.largest + 1, counter - WINDOW_PACKETS + 1)
        self._missing.update(range(gap_start, counter))
        self.largest = counter
        if len(self._missing) > WINDOW_PACKETS:
            floor = self.floor
            self._missing = {c for c in self._missing if c >= floor}
        return gap_start < counter

    def ack(self, missing_max: int = ACK_MISSING_MAX) -> Ack:
        """What was received: everything in [floor, largest] but `missing`.

        When more counters are missing than one frame can list, the report
        stops below the first unlisted one: the oldest losses come first.
        """
        assert 0 < missing_max <= ACK_MISSING_MAX
        floor = self.floor
        self._missing = {c for c in self._missing if c >= floor}
        missing = sorted(self._missing)
        largest = self.largest
        if len(missing) > missing_max:
            largest = missing[missing_max] - 1
            missing = missing[:missing_max]
        return Ack(largest=largest, floor=floor, missing=missing)


@dataclasses.dataclass(slots=True)
class SentPacket:
    frames: list[bytes]
    size: int
    sent_ms: float


class SendWindow:
    """Packets in flight to one peer and the decisions of loss recovery."""

    __slots__ = ("_in_flight", "bytes_in_flight", "largest_acked")

    def __init__(self) -> None:
        # Insertion order is counter order: counters only grow.
        self._in_flight: dict[int, SentPacket] = {}
        self.bytes_in_flight = 0
        self.largest_acked = 0

    def __len__(self) -> int:
        return len(self._in_flight)

    def oldest(self, default: int) -> int:
        """The lowest counter in flight (`default` when none is)."""
        return next(iter(self._in_flight), default)

    def sent(self, counter: int, frames: list[bytes], size: int, now_ms: float) -> None:
        self._in_flight[counter] = SentPacket(frames, size, now_ms)
        self.bytes_in_flight += size

    def on_ack(
        self, ack: Ack, now_ms: float, loss_packets: int, loss_delay_ms: float
    ) -> tuple[int, list[bytes]]:
        """(packets newly acknowledged, frames of packets now declared lost)."""
        missing = set(ack.missing)
        acked = 0
        lost: list[bytes] = []
        self.largest_acked = max(self.largest_acked, ack.largest)
        covered = list(itertools.takewhile(lambda c: c <= ack.largest, self._in_flight))
        for counter in covered:
            packet = self._in_flight[counter]
            if counter >= ack.floor and counter not in missing:
                acked += 1
            elif counter >= ack.floor and not _declared_lost(
                counter, packet, ack.largest, now_ms, loss_packets, loss_delay_ms
            ):
                continue  # maybe only reordered: decide at a later ack
            else:
                lost.extend(packet.frames)
            del self._in_flight[counter]
            self.bytes_in_flight -= packet.size
        return acked, lost

    def give_up_older_than(self, cutoff_ms: float) -> int:
        """Forget packets sent before `cutoff_ms`; returns how many."""
        dropped = 0
        for counter, packet in list(self._in_flight.items()):
            if packet.sent_ms >= cutoff_ms:
                break
            del self._in_flight[counter]
            self.bytes_in_flight -= packet.size
            dropped += 1
        return dropped

    def clear(self) -> None:
        self._in_flight.clear()
        self.bytes_in_flight = 0


def _declared_lost(
    counter: int,
    packet: SentPacket,
    largest_acked: int,
    now_ms: float,
    loss_packets: int,
    loss_delay_ms: float,
) -> bool:
    return counter + loss_packets <= largest_acked or now_ms - packet.sent_ms >= loss_delay_ms
