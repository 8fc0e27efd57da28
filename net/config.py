"""Limits and timings of the gossip network, in one place (units in the names)."""

from __future__ import annotations

import dataclasses

from net.errors import NetConfigError
from net.wire import (
    ACK_MISSING_MAX,
    OVERHEAD_BYTES,
    PEERS_MAX,
    SENDER_TAG_BYTES,
    TOTAL_BYTES_MAX,
)

__all__ = ["DATAGRAM_BYTES_MAX", "GossipConfig"]

# The largest UDP payload over IPv4 is 65,507 bytes; 65,000 leaves room.
DATAGRAM_BYTES_MAX = 65_000
# Below this a fragment would carry almost nothing but headers.
DATAGRAM_BYTES_MIN = 512
# msgpack sizes used to keep control frames inside one datagram.
_U64_BYTES_MAX = 9
_ACK_SPARE_BYTES = 64
_PING_SPARE_BYTES = 32
_TAG_ENTRY_BYTES = 2 + SENDER_TAG_BYTES


# The driver's socket and queues (`net.driver`).
RECEIVE_BYTES = 65_536
# Per wake-up, so subscribers and publishers get their turn between bursts.
BURST_DATAGRAMS = 256
BURST_BYTES = 1024 * 1024
# Reading the socket costs little beside handling a datagram, so each wake-up
# reads far more than a burst: what waits in the kernel's buffer (first in,
# first out over every peer) moves to the per-peer queues, where a flood
# displaces only its sender's datagrams.
DRAIN_DATAGRAMS = 4_096
INBOX_DATAGRAMS_PER_PEER = 1_024
OUTBOX_DATAGRAMS_MAX = 65_536
SOCKET_BUFFER_BYTES = 16 * 1024 * 1024
SUBSCRIBER_CAPACITY = 4_096
SUBSCRIBER_BYTES_PER_PEER = 32 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class GossipConfig:
    # 1,400 fits an Ethernet MTU with IP and UDP headers; raise it on loopback.
    datagram_bytes_max: int = 1_400
    message_bytes_max: int = 4 * 1024 * 1024
    # Mesh degree D: each node forwards to at most this many peers.
    mesh_degree: int = 8
    # Small messages wait this long for company in a datagram (consensus
    # messages and control frames do not wait).
    flush_interval_ms: float = 2.0
    # Acknowledgements: at most this late, or at once after this many packets.
    ack_delay_ms: float = 2.0
    ack_every_packets: int = 16
    # A packet not acknowledged while this many later ones were, or for this
    # long after a later one was, is declared lost and its frames resent.
    loss_packets: int = 3
    loss_delay_ms: float = 10.0
    # With data in flight and no acknowledgement, probe after this, doubling.
    probe_timeout_ms: float = 25.0
    probe_timeout_ms_max: float = 1_000.0
    # Frames unacknowledged for this long are given up (the peer is gone).
    retransmit_give_up_ms: float = 30_000.0
    # Per link: unacknowledged bytes in flight, and bytes queued behind them.
    in_flight_bytes_max: int = 2 * 1024 * 1024
    pending_bytes_max: int = 16 * 1024 * 1024
    # Publishers wait while the whole outbound backlog is above this: it is
    # the queueing delay a saturating publisher causes (8 MiB is ~0.2 s at
    # 50k messages/s to three peers).
    backlog_bytes_max: int = 8 * 1024 * 1024
    seen_cache_max: int = 262_144
    seen_ttl_ms: float = 120_000.0
    reassembly_timeout_ms: float = 30_000.0
    reassembly_bytes_max_per_peer: int = 16 * 1024 * 1024
    ping_interval_ms: float = 1_000.0
    peer_timeout_ms: float = 5_000.0
    # Every peer silent this long: start a new session, which they accept
    # whatever made them stop taking the old one (see `Gossip.wants_new_session`).
    rejoin_after_ms: float = 15_000.0
    # At most this many messages partly received from one peer at a time.
    reassembly_partials_max_per_peer: int = 64
    # Token bucket on the authenticated bytes each peer may send us.
    peer_bytes_per_s: int = 64 * 1024 * 1024
    peer_burst_bytes: int = 16 * 1024 * 1024
    # And on its frames: a datagram of many tiny frames costs a frame's work
    # (hash, seen-cache, delivery, relay) per frame, whatever its bytes.
    peer_frames_per_s: int = 20_000
    peer_burst_frames: int = 20_000
    # Housekeeping period: probes, pings, expiries.
    tick_ms: float = 5.0

    def __post_init__(self) -> None:
        _check_range(
            "datagram_bytes_max", self.datagram_bytes_max, DATAGRAM_BYTES_MIN, DATAGRAM_BYTES_MAX
        )
        _check_range("message_bytes_max", self.message_bytes_max, 1, TOTAL_BYTES_MAX)
        _check_range("mesh_degree", self.mesh_degree, 2, 64)
        _check_range("ack_every_packets", self.ack_every_packets, 1, 1_024)
        _check_range("loss_packets", self.loss_packets, 1, 1_024)
        _check_range(
            "in_flight_bytes_max", self.in_flight_bytes_max, self.datagram_bytes_max, 2**31
        )
        _check_range("pending_bytes_max", self.pending_bytes_max, self.message_bytes_max, 2**32)
        _check_range("backlog_bytes_max", self.backlog_bytes_max, self.message_bytes_max, 2**34)
        _check_range("seen_cache_max", self.seen_cache_max, 1_024, 2**24)
        _check_range(
            "reassembly_bytes_max_per_peer",
            self.reassembly_bytes_max_per_peer,
            self.message_bytes_max,
            2**32,
        )
        _check_range("peer_burst_bytes", self.peer_burst_bytes, self.datagram_bytes_max, 2**34)
        _check_range("peer_bytes_per_s", self.peer_bytes_per_s, 1, 2**34)
        _check_range(
            "reassembly_partials_max_per_peer", self.reassembly_partials_max_per_peer, 1, 65_536
        )
        # A burst must hold one datagram's worth of the smallest frames.
        _check_range("peer_burst_frames", self.peer_burst_frames, 1_024, 2**31)
        _check_range("peer_frames_per_s", self.peer_frames_per_s, 1, 2**31)
        for name in (
            "flush_interval_ms",
            "ack_delay_ms",
            "loss_delay_ms",
        ):
            _check_range(name, getattr(self, name), 0, 60_000)
        for name in (
            "probe_timeout_ms",
            "probe_timeout_ms_max",
            "retransmit_give_up_ms",
            "seen_ttl_ms",
            "reassembly_timeout_ms",
            "ping_interval_ms",
            "peer_timeout_ms",
            "rejoin_after_ms",
            "tick_ms",
        ):
            _check_range(name, getattr(self, name), 0.1, 3_600_000)

    @property
    def payload_bytes_max(self) -> int:
        """Bytes of frames one datagram can carry."""
        return self.datagram_bytes_max - OVERHEAD_BYTES

    @property
    def ack_missing_max(self) -> int:
        """Lost counters one `Ack` lists: it must fit a datagram with room to spare."""
        return min(ACK_MISSING_MAX, (self.payload_bytes_max - _ACK_SPARE_BYTES) // _U64_BYTES_MAX)

    @property
    def peers_max(self) -> int:
        """Peers a `Ping` can list as alive within one datagram."""
        return min(PEERS_MAX, (self.payload_bytes_max - _PING_SPARE_BYTES) // _TAG_ENTRY_BYTES)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    # Settings declared `int` (sizes, counts) must be ints: a float would
    # reach `range()` and slicing much later, far from the setting.
    integral = GossipConfig.__dataclass_fields__[name].type == "int"
    kinds = int if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        raise NetConfigError(f"gossip.{name} must be between {low} and {high}, got {value!r}")
