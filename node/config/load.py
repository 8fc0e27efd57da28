"""Loading `config.toml`: read within a size bound, overridden from the
environment, converted and validated into a `NodeConfig`, every problem one
`ConfigError` naming the file and the dotted key.

Environment variables `SEQUENCER_<SECTION>_<KEY>` override the file before
validation, for example `SEQUENCER_RPC_LISTEN=127.0.0.1:9000`,
`SEQUENCER_LOG_FORMAT=json`, `SEQUENCER_P2P_GOSSIP_DATAGRAM_BYTES_MAX=9000`.
String keys take the value as it is; list keys take a TOML array or a
comma-separated list; other keys take a TOML scalar (`false`, `2.5`). A
variable under a known section that names no key is an error, so a typo
does not pass silently.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from node.config.schema import CONFIG_FILE, KEYS, TABLE_KEYS, NodeConfig
from node.errors import ConfigError

__all__ = ["ENV_PREFIX", "config_from_table", "load_config", "parse_config", "read_limited"]

ENV_PREFIX = "SEQUENCER_"
# A config file is a few kilobytes; refuse to parse megabytes of anything.
CONFIG_BYTES_MAX = 1024 * 1024
_ENV_KEYS = {ENV_PREFIX + key.upper().replace(".", "_"): key for key in KEYS}
assert len(_ENV_KEYS) == len(KEYS), "two config keys share an environment variable name"
_ENV_SECTIONS = tuple(f"{ENV_PREFIX}{key.upper()}_" for key in TABLE_KEYS if "." not in key)


def _children(parent: str) -> list[str]:
    """The keys directly under the table `parent` ("" for the top level)."""
    prefix = f"{parent}." if parent else ""
    names = {
        key[len(prefix) :].split(".")[0] for key in (*KEYS, *TABLE_KEYS) if key.startswith(prefix)
    }
    return sorted(names)


def _type_info(key: str) -> msgspec.inspect.Type:
    return msgspec.inspect.type_info(KEYS[key])


def read_limited(path: Path, bytes_max: int, missing: str) -> bytes:
    """A small file's bytes, read without trusting its size (`ConfigError` otherwise)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(bytes_max + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > bytes_max:
        raise ConfigError(f"{path}: larger than {bytes_max} bytes")
    return data


def load_config(home: str | Path, *, environ: Mapping[str, str] | None = None) -> NodeConfig:
    """Read, override from the environment (`os.environ` by default), validate."""
    path = Path(home) / CONFIG_FILE
    data = read_limited(
        path, CONFIG_BYTES_MAX, "no such file (write one, or run `sequencer devnet init`)"
    )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, source=str(path), environ=os.environ if environ is None else environ)


def parse_config(
    text: str, *, source: str = CONFIG_FILE, environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """A config from TOML text; `source` names it in errors; no environment unless given."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return config_from_table(table, source=source, environ=environ)


def config_from_table(
    table: Mapping[str, Any], *, source: str = CONFIG_FILE, environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """A config from a decoded TOML document (nested dicts), validated."""
    document = _copy_tables(table)
    origins = _apply_environment(document, environ or {}, source)
    try:
        config = msgspec.convert(document, NodeConfig)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(str(exc), source, origins) from None
    try:
        config.validate()
    except ConfigError as exc:
        raise _located(str(exc), exc.key, source, origins) from None
    return config


def _copy_tables(table: Mapping[str, Any]) -> dict[str, Any]:
    """A copy whose tables can be changed without touching the caller's."""
    return {
        key: _copy_tables(value) if isinstance(value, Mapping) else value
        for key, value in table.items()
    }


def _apply_environment(
    document: dict[str, Any], environ: Mapping[str, str], source: str
) -> dict[str, str]:
    """Write `SEQUENCER_<SECTION>_<KEY>` values into `document`; {key: variable}."""
    origins: dict[str, str] = {}
    for variable in sorted(environ):
        if not variable.startswith(_ENV_SECTIONS):
            continue  # SEQUENCER_HOME and the like belong to others
        key = _ENV_KEYS.get(variable)
        if key is None:
            close = difflib.get_close_matches(variable, list(_ENV_KEYS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"{source}: environment variable {variable} names no config key{hint}"
            )
        table = document
        *parents, leaf = key.split(".")
        for parent in parents:
            table = table.setdefault(parent, {})
            if not isinstance(table, dict):
                break  # the file's own value is wrong; msgspec reports it
        else:
            table[leaf] = _env_value(key, environ[variable], variable, source)
            origins[key] = variable
    return origins


def _env_value(key: str, text: str, variable: str, source: str) -> Any:
    info = _type_info(key)
    if isinstance(info, msgspec.inspect.StrType | msgspec.inspect.LiteralType):
        return text
    if isinstance(info, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
        if not text.lstrip().startswith("["):
            return [item.strip() for item in text.split(",") if item.strip()]
        try:
            return tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{source}: {key} (from {variable}): not a TOML array: {exc}", key=key
            ) from None
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text  # msgspec then says which type was expected


# "Expected `int`, got `str` - at `$.rpc.body_bytes_max`"
_MSGSPEC_ERROR = re.compile(r"(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<name>[^`]*)`")
_MSGSPEC_WORDS = {"`object`": "a table", "`array`": "a list", "Invalid enum value": "invalid value"}


def _from_msgspec(message: str, source: str, origins: Mapping[str, str]) -> ConfigError:
    match = _MSGSPEC_ERROR.fullmatch(message)
    assert match is not None  # the pattern matches any text
    key = match["path"].removeprefix(".") if match["path"] else ""
    problem = match["problem"]
    unknown = _UNKNOWN_FIELD.fullmatch(problem)
    if unknown:
        name = unknown["name"]
        close = difflib.get_close_matches(name, _children(key), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        dotted = f"{key}.{name}" if key else name
        return ConfigError(f"{source}: unknown key {dotted}{hint}", key=dotted)
    for word, replacement in _MSGSPEC_WORDS.items():
        problem = problem.replace(word, replacement)
    problem = problem[:1].lower() + problem[1:]
    if key in KEYS and isinstance(_type_info(key), msgspec.inspect.LiteralType):
        choices = typing.get_args(KEYS[key])  # in declaration order, unlike type_info's
        problem += f" (one of: {', '.join(map(str, choices))})"
    return _located(f"{key}: {problem}" if key else problem, key or None, source, origins)


def _located(message: str, key: str | None, source: str, origins: Mapping[str, str]) -> ConfigError:
    """`message` prefixed with the file, and with the variables that set `key`."""
    variables = sorted(var for overridden, var in origins.items() if _related(key, overridden))
    suffix = f" (set by {', '.join(variables)})" if variables else ""
    return ConfigError(f"{source}: {message}{suffix}", key=key)


def _related(key: str | None, other: str) -> bool:
    """Whether one key is the other or lies inside it (`p2p.gossip`, `p2p.gossip.tick_ms`)."""
    if not key:
        return False
    return key == other or any(
        inner.startswith((f"{outer}.", f"{outer}["))
        for outer, inner in ((key, other), (other, key))
    )
