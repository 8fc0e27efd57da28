"""The chaos control file (`node.config.chaos`) and its clock (`node.daemon.chaos_control`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from net.faults import FaultConfig
from net.identity import peer_id
from node.config import parse_config
from node.config.chaos import (
    CLOCK_OFFSET_MS_MAX,
    ChaosSettings,
    describe,
    parse_control,
    read_control,
)
from node.daemon.chaos_control import OffsetClock
from node.errors import ConfigError

KEYS = [bytes([i + 1]) * 32 for i in range(4)]


def test_peers_by_index_hex_or_peer_id() -> None:
    document = {
        "faults": {
            "drop": 0.25,
            "duplicate": 0.5,
            "blocked_to": [1, KEYS[2].hex()],
            "blocked_from": [peer_id(KEYS[3])],
        },
        "clock_offset_ms": -3000,
    }
    settings = parse_control(json.dumps(document).encode(), KEYS)
    assert settings == ChaosSettings(
        FaultConfig(
            drop=0.25,
            duplicate=0.5,
            blocked_to=frozenset({KEYS[1], KEYS[2]}),
            blocked_from=frozenset({KEYS[3]}),
        ),
        -3000,
    )


def test_settings_are_described_in_one_line() -> None:
    settings = ChaosSettings(FaultConfig(drop=0.5, blocked_to=frozenset(KEYS[:2])), 1500)
    assert describe(settings) == "drop 0.5, blocked_to 2 peers, clock offset 1500 ms"
    assert describe(ChaosSettings()) == "clock offset 0 ms"


def test_an_empty_object_heals_everything() -> None:
    assert parse_control(b"{}", KEYS) == ChaosSettings()
    assert not parse_control(b"{}", KEYS).faults.active


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (b"not json", "not JSON"),
        (b"[]", "expected an object"),
        (b'{"clock": 1}', "unknown key clock"),
        (b'{"clock_offset_ms": 1.5}', "must be an integer"),
        (b'{"clock_offset_ms": true}', "must be an integer"),
        (b'{"clock_offset_ms": %d}' % (CLOCK_OFFSET_MS_MAX + 1), "within"),
        (b'{"faults": 3}', "faults must be an object"),
        (b'{"faults": {"drop": 2}}', "probability"),
        (b'{"faults": {"lose": 0.1}}', "unknown faults setting"),
        (b'{"faults": {"blocked_to": [4]}}', "no validator 4"),
        (b'{"faults": {"blocked_to": [-1]}}', "no validator -1"),
        (b'{"faults": {"blocked_to": ["nope"]}}', "not a peer id"),
    ],
)
def test_bad_files_are_refused(text: bytes, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_control(text, KEYS)


def test_a_missing_file_means_no_chaos(tmp_path: Path) -> None:
    assert read_control(tmp_path, KEYS) == ChaosSettings()
    (tmp_path / "chaos.json").write_text('{"clock_offset_ms": 5}')
    assert read_control(tmp_path, KEYS).clock_offset_ms == 5


def test_the_offset_clock_adds_its_offset() -> None:
    clock = OffsetClock(lambda: 1_000)
    assert clock() == 1_000
    clock.offset_ms = -250
    assert clock() == 750


def test_control_is_off_by_default_and_switched_by_config() -> None:
    assert parse_config("").chaos.control is False
    assert parse_config("[chaos]\ncontrol = true\n").chaos.control is True
