"""Writing a `NodeConfig` back as TOML that `parse_config` reads as the same."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from node.config.schema import NodeConfig

__all__ = ["dump_config"]

_TABLE_NOTES = {
    "p2p.gossip": "net.config.GossipConfig fields; unlisted ones keep their defaults",
    "p2p.faults": "net.faults.FaultConfig fields (blocked_to, blocked_from: peer ids)",
    "mempool": "sequencer.mempool.MempoolConfig fields but chain_id (the genesis's)",
    "consensus": "consensus.core.CoreConfig fields",
}


def dump_config(config: NodeConfig) -> str:
    """TOML text that `parse_config` reads back as `config`.

    Written by hand: TOML output is small here (strings, numbers, booleans,
    lists of strings, nested tables). Mirrored tables list only the keys
    that differ from their library defaults.
    """
    lines = ["# Node configuration; paths are relative to this file's directory."]
    _write_table(lines, "", msgspec.to_builtins(config))
    return "\n".join(lines) + "\n"


def _write_table(lines: list[str], name: str, table: dict[str, Any]) -> None:
    if name:
        lines.append("")
        lines.append(f"[{name}]")
        if name in _TABLE_NOTES:
            lines.append(f"# {_TABLE_NOTES[name]}")
    subtables = {}
    for key, value in table.items():
        if isinstance(value, dict):
            subtables[key] = value
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in subtables.items():
        _write_table(lines, f"{name}.{key}" if name else key, value)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # repr spells inf, nan and 1e+16 as TOML does
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = "".join(f"\n    {_toml_value(item)}," for item in value)
        return f"[{items}\n]"
    raise TypeError(f"no TOML form for {type(value).__name__}: {value!r}")


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML wants DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
