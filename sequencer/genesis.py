"""Reading and writing `genesis.json`."""

from __future__ import annotations

from pathlib import Path

import msgspec

from sequencer.codec import from_json, to_builtins
from sequencer.errors import DecodeError, InvalidGenesisError
from sequencer.types import Genesis

__all__ = ["dump_genesis", "load_genesis", "parse_genesis"]

GENESIS_BYTES_MAX = 4 * 1024 * 1024


def parse_genesis(data: bytes | str, *, source: str = "genesis") -> Genesis:
    try:
        return from_json(data, Genesis)
    except DecodeError as exc:
        raise InvalidGenesisError(f"{source}: {exc}") from None


def load_genesis(path: str | Path) -> Genesis:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(GENESIS_BYTES_MAX + 1)
    except OSError as exc:
        raise InvalidGenesisError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > GENESIS_BYTES_MAX:
        raise InvalidGenesisError(f"{path}: larger than {GENESIS_BYTES_MAX} bytes")
    return parse_genesis(data, source=str(path))


def dump_genesis(genesis: Genesis) -> bytes:
    """Pretty JSON, the form operators read and share."""
    return msgspec.json.format(msgspec.json.encode(to_builtins(genesis)), indent=2) + b"\n"
