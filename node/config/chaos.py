"""The chaos control file, `chaos.json` in a node's home: its format and parser.

Read only when the config says `[chaos] control = true` (or the environment
`SEQUENCER_CHAOS_CONTROL=true`): at start and again on every SIGUSR1.

    {
      "faults": {"drop": 0.3, "duplicate": 0.2, "blocked_to": [1, 2],
                 "blocked_from": ["<64 hex digits>", "12D3KooW..."]},
      "clock_offset_ms": -3000
    }

- `faults`: any `net.faults.FaultConfig` field, given to
  `GossipNode.set_faults`. Peers are validator indexes (positions in the
  genesis list), hex public keys or peer ids. Absent: no faults.
- `clock_offset_ms`: added to the wall clock that consensus runs on (block
  timestamps and timeouts), as a clock jump would; absent: 0.

A missing file means no faults and no offset. The daemon applies the file
(`node.daemon.chaos_control`); chaos runs write it (`node.lab.chaos`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from net.errors import NetConfigError
from net.faults import FaultConfig
from node.errors import ConfigError

__all__ = [
    "CLOCK_OFFSET_MS_MAX",
    "CONTROL_FILE",
    "ChaosSettings",
    "describe",
    "parse_control",
    "read_control",
]

CONTROL_FILE = "chaos.json"
CONTROL_BYTES_MAX = 64 * 1024
CLOCK_OFFSET_MS_MAX = 10 * 60 * 1000


@dataclasses.dataclass(frozen=True, slots=True)
class ChaosSettings:
    faults: FaultConfig = dataclasses.field(default_factory=FaultConfig)
    clock_offset_ms: int = 0


def describe(settings: ChaosSettings) -> str:
    """One log line: the faults that are on, and the clock offset."""
    faults = settings.faults
    parts = [
        f"{name} {getattr(faults, name)}"
        for name in ("drop", "duplicate", "delay", "reorder")
        if getattr(faults, name)
    ]
    parts += [
        f"{name} {len(getattr(faults, name))} peers"
        for name in ("blocked_to", "blocked_from")
        if getattr(faults, name)
    ]
    parts.append(f"clock offset {settings.clock_offset_ms} ms")
    return ", ".join(parts)


def parse_control(data: bytes, validators: Sequence[bytes]) -> ChaosSettings:
    """`chaos.json` as settings; `validators` are the genesis public keys
    (for peers given by index). Raises `ConfigError`."""
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise ConfigError(f"{CONTROL_FILE}: not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{CONTROL_FILE}: expected an object, got {type(document).__name__}")
    unknown = sorted(set(document) - {"faults", "clock_offset_ms"})
    if unknown:
        raise ConfigError(f"{CONTROL_FILE}: unknown key {unknown[0]}")
    offset = document.get("clock_offset_ms", 0)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ConfigError(f"{CONTROL_FILE}: clock_offset_ms must be an integer, got {offset!r}")
    if abs(offset) > CLOCK_OFFSET_MS_MAX:
        raise ConfigError(
            f"{CONTROL_FILE}: clock_offset_ms must be within +-{CLOCK_OFFSET_MS_MAX}, got {offset}"
        )
    faults = document.get("faults", {})
    if not isinstance(faults, dict):
        raise ConfigError(f"{CONTROL_FILE}: faults must be an object, got {faults!r}")
    return ChaosSettings(_faults(faults, validators), offset)


def _faults(table: dict[str, Any], validators: Sequence[bytes]) -> FaultConfig:
    settings = dict(table)
    for name in ("blocked_to", "blocked_from"):
        peers = settings.get(name)
        if isinstance(peers, list):
            settings[name] = [_peer(name, peer, validators) for peer in peers]
    try:
        return FaultConfig.from_mapping(settings)
    except NetConfigError as error:
        raise ConfigError(f"{CONTROL_FILE}: {error}") from None


def _peer(name: str, peer: object, validators: Sequence[bytes]) -> object:
    """A validator index becomes its hex key; anything else is left to `FaultConfig`."""
    if isinstance(peer, int) and not isinstance(peer, bool):
        if not 0 <= peer < len(validators):
            raise ConfigError(
                f"{CONTROL_FILE}: faults.{name}: no validator {peer} (there are {len(validators)})"
            )
        return validators[peer].hex()
    return peer


def read_control(home: Path, validators: Sequence[bytes]) -> ChaosSettings:
    """The settings in `home/chaos.json`; no file: none. Raises `ConfigError`."""
    path = home / CONTROL_FILE
    try:
        with path.open("rb") as file:
            data = file.read(CONTROL_BYTES_MAX + 1)
    except FileNotFoundError:
        return ChaosSettings()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > CONTROL_BYTES_MAX:
        raise ConfigError(f"{path}: larger than {CONTROL_BYTES_MAX} bytes")
    return parse_control(data, validators)
