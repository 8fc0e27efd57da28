"""Fault injection, pure: configuration checks, loss, duplication, delay and
partitions decided from a seeded generator, and switching at run time."""

from __future__ import annotations

import math
import random

import pytest

from net.errors import NetConfigError
from net.faults import FaultConfig, FaultInjector, FaultStatistics
from net.identity import peer_id
from net.wire import HEADER, VERSION
from tests.net.harness import node_keys

KEYS = [key.public_key for key in node_keys(4)]
ME, PEER, OTHER, FAR = KEYS


def datagram_from(public_key: bytes) -> bytes:
    return HEADER.pack(VERSION, public_key[:8], 1, 0, 1, 1) + bytes(16)


def injector(seed: int = 0, **settings: object) -> FaultInjector:
    return FaultInjector(FaultConfig(**settings), random.Random(seed))


BAD_SETTINGS = [
    ("drop", -0.01),
    ("drop", 1.01),
    ("drop", math.nan),
    ("duplicate", 2.0),
    ("delay", -1.0),
    ("reorder", 1.5),
    ("reorder", math.inf),
    ("delay_ms_max", -1.0),
    ("delay_ms_max", 60_001.0),
    ("reorder_ms_max", -0.5),
    ("reorder_ms_max", math.nan),
]


@pytest.mark.parametrize(
    ("name", "value"), BAD_SETTINGS, ids=[f"{name}={value}" for name, value in BAD_SETTINGS]
)
def test_out_of_range_settings_are_refused(name: str, value: float) -> None:
    with pytest.raises(NetConfigError, match=rf"faults\.{name} "):
        FaultConfig(**{name: value})
    with pytest.raises(NetConfigError, match=rf"faults\.{name} "):
        FaultConfig.from_mapping({name: value})


def test_boundaries_are_accepted() -> None:
    FaultConfig(drop=0.0, duplicate=1.0, delay=1.0, reorder=0.0)
    FaultConfig(delay_ms_max=0.0, reorder_ms_max=60_000.0)


def test_from_mapping() -> None:
    config = FaultConfig.from_mapping({"drop": 0.25, "blocked_to": frozenset({PEER})})
    assert config == FaultConfig(drop=0.25, blocked_to=frozenset({PEER}))
    assert FaultConfig.from_mapping({}) == FaultConfig()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"dorp": 0.1}, "dorp"),
        ({"drop": 0.1, "loss": 0.2}, "loss"),
        ({"zeta": 1, "alpha": 2}, "alpha"),  # the first, in order
    ],
    ids=["misspelt", "beside-a-good-one", "two-unknown"],
)
def test_from_mapping_names_an_unknown_key(values: dict, named: str) -> None:
    with pytest.raises(NetConfigError, match=rf"unknown faults setting: {named}$"):
        FaultConfig.from_mapping(values)


def test_from_mapping_takes_peer_ids_and_hex_keys() -> None:
    other = node_keys(3)[2].public_key
    config = FaultConfig.from_mapping(
        {"blocked_to": [peer_id(PEER), other.hex()], "blocked_from": [peer_id(other)]}
    )
    assert config.blocked_to == frozenset({PEER, other})
    assert config.blocked_from == frozenset({other})


@pytest.mark.parametrize(
    "peers",
    [["not a peer"], ["12D3KooWnotreally"], ["zz" * 32], "12D3KooW", [b"short"]],
    ids=["words", "bad-peer-id", "bad-hex", "not-a-list", "short-bytes"],
)
def test_from_mapping_refuses_bad_peers(peers: object) -> None:
    with pytest.raises(NetConfigError, match=r"faults\.blocked_to"):
        FaultConfig.from_mapping({"blocked_to": peers})


def test_from_mapping_wrong_type() -> None:
    with pytest.raises(NetConfigError, match="bad faults settings"):
        FaultConfig.from_mapping({"drop": "often"})


def test_active() -> None:
    assert not FaultConfig().active
    assert FaultConfig(drop=0.5).active
    assert FaultConfig(blocked_from=frozenset({PEER})).active


def test_no_faults_sends_once_now() -> None:
    faults = injector()
    assert [faults.outbound(PEER, 5.0) for _ in range(100)] == [[5.0]] * 100
    assert faults.statistics() == FaultStatistics()


def test_drop_everything() -> None:
    faults = injector(drop=1.0)
    assert all(faults.outbound(PEER, 0.0) == [] for _ in range(50))
    assert faults.dropped == 50
    assert faults.statistics().dropped == 50


def drops(seed: int, calls: int = 10_000) -> list[bool]:
    faults = injector(seed, drop=0.1)
    out = [faults.outbound(PEER, float(i)) == [] for i in range(calls)]
    assert faults.dropped == sum(out)
    return out


def test_drop_fraction_is_about_right_and_repeatable() -> None:
    first = drops(seed=7)
    assert 0.07 <= sum(first) / len(first) <= 0.13
    assert drops(seed=7) == first
    assert drops(seed=8) != first


def test_duplicate_everything() -> None:
    faults = injector(duplicate=1.0)
    assert faults.outbound(PEER, 3.0) == [3.0, 3.0]
    assert faults.duplicated == 1


def test_delay_within_bounds() -> None:
    faults = injector(seed=3, delay=1.0, delay_ms_max=50.0)
    times = [t for _ in range(1_000) for t in faults.outbound(PEER, 100.0)]
    assert len(times) == 1_000
    assert all(100.0 <= t <= 150.0 for t in times)
    assert max(times) - min(times) > 40.0  # spread over the range, not one value
    assert faults.delayed == 1_000


def test_reorder_within_bounds() -> None:
    faults = injector(seed=4, reorder=0.5, reorder_ms_max=5.0)
    times = [t for _ in range(1_000) for t in faults.outbound(PEER, 0.0)]
    assert all(0.0 <= t <= 5.0 for t in times)
    assert 350 <= sum(t > 0.0 for t in times) <= 650
    assert faults.delayed == sum(t > 0.0 for t in times)


def test_blocked_to() -> None:
    faults = injector(blocked_to=frozenset({PEER}))
    assert faults.outbound(PEER, 0.0) == []
    assert faults.outbound(OTHER, 0.0) == [0.0]
    assert (faults.blocked, faults.dropped) == (1, 0)
    assert faults.inbound(datagram_from(PEER))  # sending only


def test_blocked_from() -> None:
    faults = injector(blocked_from=frozenset({PEER}))
    assert faults.inbound(datagram_from(PEER)) is False
    assert faults.inbound(datagram_from(OTHER)) is True
    assert faults.blocked == 1
    assert faults.outbound(PEER, 0.0) == [0.0]  # receiving only
    # Only the sender tag (bytes 1..9) counts, whatever follows it.
    assert faults.inbound(b"\x09" + PEER[:8] + b"\xff" * 40) is False
    assert faults.inbound(b"\x01" + PEER[1:9] + b"\xff" * 40) is True
    # Too short to carry a header: left to the gossip core to count.
    assert faults.inbound(b"\x01" + PEER[:8]) is True


def test_isolating() -> None:
    everyone = set(KEYS)
    config = FaultConfig.isolating(ME, {ME, PEER}, everyone)
    assert config.blocked_to == config.blocked_from == frozenset({OTHER, FAR})
    faults = FaultInjector(config, random.Random(0))
    assert faults.outbound(PEER, 0.0) == [0.0]
    assert faults.outbound(OTHER, 0.0) == []
    assert faults.inbound(datagram_from(PEER)) is True
    assert faults.inbound(datagram_from(FAR)) is False
    # `reachable` need not name `me`, and `me` is never blocked.
    assert FaultConfig.isolating(ME, {PEER}, everyone) == config
    assert FaultConfig.isolating(ME, everyone, everyone) == FaultConfig()


def test_reconfigure_switches_behaviour() -> None:
    faults = injector(seed=1)
    datagram = datagram_from(PEER)
    assert (faults.outbound(PEER, 0.0), faults.inbound(datagram)) == ([0.0], True)
    faults.reconfigure(FaultConfig(drop=1.0, blocked_from=frozenset({PEER})))
    assert (faults.outbound(PEER, 0.0), faults.inbound(datagram)) == ([], False)
    faults.reconfigure(FaultConfig())
    assert (faults.outbound(PEER, 0.0), faults.inbound(datagram)) == ([0.0], True)
    assert (faults.dropped, faults.blocked) == (1, 1)  # counts survive a switch
