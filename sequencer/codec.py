"""Canonical binary codec and JSON forms.

Binary: MessagePack as msgspec writes it; structures are arrays in field
order (`types.Wire`). `decode(data, cls)` is the only way bytes from outside
become a structure, so malformed input fails here, as `DecodeError`.

JSON: the same structures as objects with the same field names, bytes as
lowercase hex (input also takes a `0x` prefix and upper case), integers as
numbers in 0..2^64-1. msgspec writes bytes as base64, so the JSON side goes
through a *mirror* of each structure, derived once from its annotations, in
which bytes are strings: msgspec checks structure, types and unknown fields
against the mirror, then a small converter checks hex, byte lengths and the
u64 bound and builds the real structure.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from enum import IntEnum
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import msgspec
from msgspec import Meta, Struct

from sequencer.errors import DecodeError
from sequencer.limits import U64_MAX

__all__ = [
    "decode",
    "encode",
    "from_builtins",
    "from_json",
    "parse_hex",
    "refuse_duplicate_keys",
    "to_builtins",
    "to_json",
]

T = TypeVar("T")

# msgspec reports invalid UTF-8 inside a msgpack str as a bare UnicodeDecodeError.
_DECODE_FAILURES = (msgspec.MsgspecError, UnicodeDecodeError)

_msgpack_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    """Canonical MessagePack encoding of a structure (or a plain list)."""
    return _msgpack_encoder.encode(obj)


@functools.cache
def _msgpack_decoder(cls: Any) -> msgspec.msgpack.Decoder:
    return msgspec.msgpack.Decoder(cls)


def _type_name(cls: Any) -> str:
    return getattr(cls, "__name__", None) or repr(cls)


def decode(data: bytes, cls: type[T]) -> T:
    """Decode canonical bytes into `cls`; anything malformed is a `DecodeError`."""
    try:
        return _msgpack_decoder(cls).decode(data)
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"invalid {_type_name(cls)}: {exc}") from None


# ------------------------------------------------------------------ JSON out


def to_builtins(obj: Any) -> Any:
    """JSON-ready builtins: structures become dicts, bytes become hex."""
    if isinstance(obj, Struct):
        return {name: to_builtins(getattr(obj, name)) for name in obj.__struct_fields__}
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, list | tuple):
        return [to_builtins(item) for item in obj]
    return obj


def to_json(obj: Any) -> bytes:
    return _json_encoder.encode(to_builtins(obj))


# ------------------------------------------------------------------ JSON in

Converter = Callable[[Any, str], Any]
_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]*)")


def _where(path: str) -> str:
    return f" - at `{path}`"


def parse_hex(text: str, *, length: int | None = None, path: str = "$") -> bytes:
    """Hex (optional `0x`, any case) to bytes, optionally of an exact length."""
    match = _HEX.fullmatch(text)
    if match is None or len(match.group(1)) % 2:
        raise DecodeError(f"Expected hex-encoded bytes{_where(path)}")
    raw = bytes.fromhex(match.group(1))
    if length is not None and len(raw) != length:
        raise DecodeError(f"Expected {length} bytes, got {len(raw)}{_where(path)}")
    return raw


def _hex_plan(meta: Meta) -> tuple[Any, Converter]:
    low, high = meta.min_length or 0, meta.max_length
    assert high is not None, "every bytes field has an upper bound"

    def convert(text: str, path: str) -> bytes:
        raw = parse_hex(text, path=path)
        if not low <= len(raw) <= high:
            span = f"{high}" if low == high else f"{low} to {high}"
            raise DecodeError(f"Expected {span} bytes, got {len(raw)}{_where(path)}")
        return raw

    # 2 hex digits a byte plus an optional 0x: a cheap bound before any parsing.
    return Annotated[str, Meta(max_length=2 * high + 2)], convert


def _check_u64(value: int, path: str) -> int:
    if value > U64_MAX:
        raise DecodeError(f"Expected `int` <= {U64_MAX}{_where(path)}")
    return value


def _same(value: Any, path: str) -> Any:
    return value


def _list_plan(item: Any, meta: Meta | None) -> tuple[Any, Converter]:
    item_mirror, item_convert = _plan(item)

    def convert(values: list[Any], path: str) -> list[Any]:
        return [item_convert(v, f"{path}[{i}]") for i, v in enumerate(values)]

    mirror = list[item_mirror] if meta is None else Annotated[list[item_mirror], meta]
    return mirror, convert


def _tuple_plan(items: tuple[Any, ...]) -> tuple[Any, Converter]:
    plans = [_plan(item) for item in items]
    converters = [c for _, c in plans]

    def convert(values: tuple[Any, ...], path: str) -> tuple[Any, ...]:
        pairs = enumerate(zip(converters, values, strict=True))
        return tuple(item(value, f"{path}[{i}]") for i, (item, value) in pairs)

    return tuple[tuple(m for m, _ in plans)], convert


def _struct_plan(cls: type[Struct]) -> tuple[Any, Converter]:
    fields = msgspec.structs.fields(cls)
    converters: list[tuple[str, Converter]] = []
    spec: list[tuple[Any, ...]] = []
    for field in fields:
        mirror, convert = _plan(field.type)
        converters.append((field.name, convert))
        if field.required:
            spec.append((field.name, mirror))
        else:  # absent in JSON: leave it out so the real default applies
            spec.append((field.name, mirror | msgspec.UnsetType, msgspec.UNSET))
    mirror_cls = msgspec.defstruct(
        f"{cls.__name__}JSON", spec, kw_only=True, forbid_unknown_fields=True
    )

    def convert(value: Any, path: str) -> Struct:
        kwargs = {}
        for name, field_convert in converters:
            item = getattr(value, name)
            if item is not msgspec.UNSET:
                kwargs[name] = field_convert(item, f"{path}.{name}")
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:  # rules checked in __post_init__
            raise DecodeError(f"{exc}{_where(path)}") from None

    return mirror_cls, convert


@functools.cache
def _plan(tp: Any) -> tuple[Any, Converter]:
    """(mirror type, converter from mirror value to real value) for a type."""
    if get_origin(tp) is Annotated:
        base, *metas = get_args(tp)
        assert len(metas) == 1, tp
        if base is bytes:
            return _hex_plan(metas[0])
        if get_origin(base) is list:
            return _list_plan(get_args(base)[0], metas[0])
        return tp, (_check_u64 if base is int else _same)
    if tp is int:
        return tp, _check_u64
    if tp is str or (isinstance(tp, type) and issubclass(tp, IntEnum)):
        return tp, _same
    if isinstance(tp, type) and issubclass(tp, Struct):
        return _struct_plan(tp)
    if get_origin(tp) is list:
        return _list_plan(get_args(tp)[0], None)
    if get_origin(tp) is tuple:
        return _tuple_plan(get_args(tp))
    if get_origin(tp) in (Union, UnionType) and type(None) in get_args(tp):
        return _optional_plan(tp)
    raise TypeError(f"no JSON form for {tp!r}")


def _optional_plan(tp: Any) -> tuple[Any, Converter]:
    """`X | None`: JSON null or the form of X."""
    (inner,) = [arg for arg in get_args(tp) if arg is not type(None)]
    mirror, convert = _plan(inner)

    def convert_optional(value: Any, path: str) -> Any:
        return None if value is None else convert(value, path)

    return mirror | None, convert_optional


@functools.cache
def _json_decoder(cls: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(_plan(cls)[0])


def from_json(data: bytes | str, cls: type[T]) -> T:
    """Decode the JSON form of `cls`; anything malformed is a `DecodeError`."""
    try:
        mirror = _json_decoder(cls).decode(data)
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"invalid {_type_name(cls)}: {exc}") from None
    return _convert_mirror(mirror, cls)


def refuse_duplicate_keys(data: bytes | str, what: str = "JSON") -> None:
    """DecodeError if an object in `data` (valid JSON) has a key twice.

    msgspec, like most parsers, keeps the last value of a repeated key. In a
    signed transaction that lets the JSON say one thing to a reader that
    keeps the first (a nonce, a chain id) and another to us: a reviewer's
    tool and the node would disagree about what was signed. The standard
    library's parser reports every pair, at a few microseconds per object."""
    try:
        json.loads(data, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        raise DecodeError(f"invalid {what}: the key {exc.args[0]!r} appears twice") from None
    except (ValueError, RecursionError):
        pass  # not ours to judge: msgspec accepted it (e.g. deeper than json allows)


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def from_builtins(obj: Any, cls: type[T]) -> T:
    """Like `from_json` for an already parsed JSON value (one item of a batch)."""
    try:
        mirror = msgspec.convert(obj, _plan(cls)[0])
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"invalid {_type_name(cls)}: {exc}") from None
    return _convert_mirror(mirror, cls)


def _convert_mirror(mirror: Any, cls: Any) -> Any:
    try:
        return _plan(cls)[1](mirror, "$")
    except DecodeError as exc:
        raise DecodeError(f"invalid {_type_name(cls)}: {exc}") from None
