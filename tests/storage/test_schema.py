"""The key schema: byte order is numeric order, and values round-trip."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequencer.limits import U32_MAX, U64_MAX
from sequencer.types import TxLocation
from storage import schema

u64 = st.integers(0, U64_MAX)
heights = st.integers(1, U64_MAX)

PREFIXES = {
    name: value
    for name, value in vars(schema).items()
    if name.endswith(("_PREFIX", "_KEY")) and not name.startswith("META_")
} | {"META_PREFIX": schema.META_PREFIX}


def test_prefixes_are_distinct_single_bytes_and_documented() -> None:
    firsts = [value[:1] for value in PREFIXES.values()]
    assert len(set(firsts)) == len(firsts) == 12
    documented = re.findall(r"^\| `(\w)`", schema.__doc__ or "", re.MULTILINE)
    assert sorted(documented) == sorted(first.decode() for first in firsts)


@given(u64, u64)
def test_height_keys_sort_like_heights(a: int, b: int) -> None:
    assert (schema.block_key(a) < schema.block_key(b)) == (a < b)
    assert (schema.certificate_key(a) < schema.certificate_key(b)) == (a < b)
    assert schema.height_from_key(schema.block_key(a)) == a


@given(heights, heights, heights)
def test_height_range_covers_exactly_first_to_last(first: int, last: int, height: int) -> None:
    start, stop = schema.height_range(schema.BLOCK_PREFIX, first, last)
    inside = start <= schema.block_key(height) < stop
    assert inside == (first <= height <= last)
    # Nothing of another kind falls inside a range.
    assert not start <= schema.certificate_key(height) < stop


def test_height_range_at_the_top() -> None:
    start, stop = schema.height_range(schema.BLOCK_PREFIX, U64_MAX, U64_MAX)
    assert start == schema.block_key(U64_MAX) < stop <= schema.CERTIFICATE_PREFIX


@given(heights, st.integers(0, U32_MAX))
def test_tx_location_round_trips(height: int, index: int) -> None:
    raw = schema.encode_tx_location(height, index)
    assert len(raw) == schema.TX_LOCATION_BYTES
    assert schema.decode_tx_location(raw) == TxLocation(height, index)


@pytest.mark.parametrize(
    "raw",
    [b"", bytes(11), bytes(13), bytes(12)],  # the last one has height 0
)
def test_bad_tx_location_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"bytes|height 0"):
        schema.decode_tx_location(raw)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (schema.encode_u64, -1),
        (schema.encode_u64, U64_MAX + 1),
        (schema.encode_schema_version, U32_MAX + 1),
        (schema.decode_u64, bytes(7)),
        (schema.decode_schema_version, bytes(8)),
        (schema.block_id_key, bytes(31)),
        (schema.tx_key, bytes(33)),
        (schema.nonce_key, b""),
    ],
)
def test_out_of_range_values_are_refused(call: object, argument: object) -> None:
    with pytest.raises(ValueError, match=r"u64|u32|bytes"):
        call(argument)  # type: ignore[operator]


def test_fixed_keys() -> None:
    assert schema.META_SCHEMA_KEY == b"Mschema"
    assert schema.META_CHAIN_ID_KEY == b"Mchain_id"
    assert schema.META_GENESIS_KEY == b"Mgenesis"
    assert schema.block_key(1) == b"B" + bytes(7) + b"\x01"
    assert schema.tx_key(bytes(range(32))) == b"X" + bytes(range(32))
    assert schema.encode_schema_version(schema.SCHEMA_VERSION) == b"\x00\x00\x00\x03"
