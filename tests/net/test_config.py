"""Gossip settings: each one out of range is refused by name, the defaults
hold, and the derived limits keep control frames inside one datagram."""

from __future__ import annotations

import math

import pytest

from net.config import GossipConfig
from net.errors import NetConfigError
from net.link import LinkKeys, ReceiveWindow, seal_datagram
from net.wire import (
    ACK_MISSING_MAX,
    OVERHEAD_BYTES,
    PEERS_MAX,
    TOTAL_BYTES_MAX,
    Ack,
    Ping,
    Pong,
    decode_payload,
    encode_frame,
    join_frames,
)
from tests.net.harness import node_keys

U64_MAX = 2**64 - 1
MESSAGE_DEFAULT = GossipConfig().message_bytes_max

OUT_OF_RANGE = [
    ("datagram_bytes_max", 511),
    ("datagram_bytes_max", 65_001),
    ("message_bytes_max", 0),
    ("message_bytes_max", TOTAL_BYTES_MAX + 1),
    ("mesh_degree", 1),
    ("mesh_degree", 65),
    ("mesh_degree", True),
    ("ack_every_packets", 0),
    ("ack_every_packets", 1_025),
    ("loss_packets", 0),
    ("loss_packets", 1_025),
    ("in_flight_bytes_max", 1_399),  # below one datagram
    ("pending_bytes_max", MESSAGE_DEFAULT - 1),  # below one message
    ("backlog_bytes_max", MESSAGE_DEFAULT - 1),
    ("reassembly_bytes_max_per_peer", MESSAGE_DEFAULT - 1),
    ("seen_cache_max", 1_023),
    ("seen_cache_max", 2**24 + 1),
    ("peer_burst_bytes", 1_399),
    ("peer_bytes_per_s", 0),
    ("flush_interval_ms", -0.1),
    ("flush_interval_ms", 60_000.1),
    ("ack_delay_ms", -1.0),
    ("loss_delay_ms", math.nan),
    ("loss_delay_ms", 60_001.0),
    ("probe_timeout_ms", 0.0),
    ("probe_timeout_ms_max", 3_600_001.0),
    ("retransmit_give_up_ms", 0.05),
    ("seen_ttl_ms", -1.0),
    ("reassembly_timeout_ms", math.inf),
    ("ping_interval_ms", 0),
    ("peer_timeout_ms", "5000"),
    ("tick_ms", None),
]


@pytest.mark.parametrize(
    ("name", "value"), OUT_OF_RANGE, ids=[f"{name}={value!r}" for name, value in OUT_OF_RANGE]
)
def test_out_of_range_setting_is_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(NetConfigError, match=rf"^gossip\.{name} must be between"):
        GossipConfig(**{name: value})


IN_RANGE = [
    ("datagram_bytes_max", 512),
    ("datagram_bytes_max", 65_000),
    ("message_bytes_max", 1),
    ("mesh_degree", 2),
    ("mesh_degree", 64),
    ("ack_every_packets", 1),
    ("loss_packets", 1_024),
    ("in_flight_bytes_max", 1_400),
    ("pending_bytes_max", MESSAGE_DEFAULT),
    ("seen_cache_max", 1_024),
    ("flush_interval_ms", 0),
    ("ack_delay_ms", 60_000.0),
    ("tick_ms", 0.1),
]


@pytest.mark.parametrize(
    ("name", "value"), IN_RANGE, ids=[f"{name}={value!r}" for name, value in IN_RANGE]
)
def test_boundaries_are_accepted(name: str, value: object) -> None:
    assert getattr(GossipConfig(**{name: value}), name) == value


def test_defaults_are_valid() -> None:
    config = GossipConfig()
    assert config.payload_bytes_max == config.datagram_bytes_max - OVERHEAD_BYTES
    assert 0 < config.ack_missing_max <= ACK_MISSING_MAX
    assert 0 < config.peers_max <= PEERS_MAX


@pytest.mark.parametrize(
    ("name", "value"),
    [("datagram_bytes_max", 1_400.0), ("mesh_degree", 8.0), ("loss_packets", 2.5)],
    ids=["datagram_bytes_max=1400.0", "mesh_degree=8.0", "loss_packets=2.5"],
)
def test_integer_settings_refuse_non_integers(name: str, value: float) -> None:
    with pytest.raises(NetConfigError, match=rf"gossip\.{name}"):
        GossipConfig(**{name: value})


A, B = node_keys(2)
CIPHER = LinkKeys(A.seed, A.public_key, B.public_key).sending_cipher(U64_MAX)


def sealed_size(frame: object) -> int:
    """Bytes on the wire of a datagram carrying `frame` alone, at the largest counters."""
    payload = join_frames([encode_frame(frame)])
    assert decode_payload(payload) == [frame]  # within the decoder's walls too
    datagram = seal_datagram(CIPHER, A.public_key[:8], U64_MAX, U64_MAX, U64_MAX, payload)
    assert len(datagram) == OVERHEAD_BYTES + len(payload)
    return len(datagram)


DATAGRAM_SIZES = [512, 1_400, 65_000]


@pytest.mark.parametrize("datagram_bytes_max", DATAGRAM_SIZES)
def test_largest_ack_fits_a_datagram(datagram_bytes_max: int) -> None:
    config = GossipConfig(datagram_bytes_max=datagram_bytes_max)
    count = config.ack_missing_max
    assert count >= 32
    worst = Ack(U64_MAX, U64_MAX, [U64_MAX] * count)
    assert sealed_size(worst) <= datagram_bytes_max


@pytest.mark.parametrize("datagram_bytes_max", DATAGRAM_SIZES)
def test_ack_of_a_real_window_fits_a_datagram(datagram_bytes_max: int) -> None:
    config = GossipConfig(datagram_bytes_max=datagram_bytes_max)
    window = ReceiveWindow()
    base = 2**63
    for counter in range(base, base + 4 * ACK_MISSING_MAX, 2):  # every other one lost
        window.mark(counter)
    ack = window.ack(config.ack_missing_max)
    assert len(ack.missing) == config.ack_missing_max
    assert sealed_size(ack) <= datagram_bytes_max


@pytest.mark.parametrize("frame_type", [Ping, Pong])
@pytest.mark.parametrize("datagram_bytes_max", DATAGRAM_SIZES)
def test_largest_liveness_report_fits_a_datagram(datagram_bytes_max: int, frame_type) -> None:
    config = GossipConfig(datagram_bytes_max=datagram_bytes_max)
    assert config.peers_max >= 32
    worst = frame_type(U64_MAX, [b"\xff" * 8] * config.peers_max)
    assert sealed_size(worst) <= datagram_bytes_max


@pytest.mark.parametrize("datagram_bytes_max", [512, 513, 600, 1_000, 1_400, 9_000])
def test_derived_limits_grow_with_the_datagram(datagram_bytes_max: int) -> None:
    small = GossipConfig(datagram_bytes_max=datagram_bytes_max)
    large = GossipConfig(datagram_bytes_max=datagram_bytes_max + 100)
    assert small.payload_bytes_max + 100 == large.payload_bytes_max
    assert small.ack_missing_max <= large.ack_missing_max
    assert small.peers_max <= large.peers_max
