"""Codec: round trips for every structure; malformed input only ever raises DecodeError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequencer.codec import (
    decode,
    encode,
    from_builtins,
    from_json,
    parse_hex,
    to_builtins,
    to_json,
)
from sequencer.errors import DecodeError
from sequencer.types import Transaction, Vote, VoteKind
from tests.strategies import ALL_STRUCTURES, transactions

STRUCTURE_IDS = [cls.__name__ for _, cls in ALL_STRUCTURES]


TX_BYTES_FIELDS = ("sender", "payload", "signature")


@pytest.mark.parametrize(("strategy", "cls"), ALL_STRUCTURES, ids=STRUCTURE_IDS)
def test_round_trips(strategy: st.SearchStrategy[Any], cls: type) -> None:
    @given(strategy)
    def check(value: Any) -> None:
        data = encode(value)
        assert decode(data, cls) == value
        assert encode(decode(data, cls)) == data  # canonical: one encoding per value
        assert msgspec.msgpack.decode(data, type=list)  # an array, not a map
        text = to_json(value)
        assert from_json(text, cls) == value
        assert from_builtins(json.loads(text), cls) == value

    check()


@given(transactions)
def test_json_accepts_0x_prefix_and_upper_case(tx: Transaction) -> None:
    document = to_builtins(tx)
    shouted = document | {k: "0X" + document[k].upper() for k in TX_BYTES_FIELDS}
    prefixed = document | {k: "0x" + document[k] for k in TX_BYTES_FIELDS}
    assert from_builtins(shouted, Transaction) == tx
    assert from_builtins(prefixed, Transaction) == tx


@given(transactions)
def test_json_output_is_lowercase_hex_without_prefix(tx: Transaction) -> None:
    out = json.loads(to_json(tx))
    assert out["sender"] == tx.sender.hex()
    assert out["signature"] == tx.signature.hex()
    assert list(out) == list(Transaction.__struct_fields__)


VALID_TX = {
    "chain_id": "devnet-1",
    "namespace": 7,
    "sender": "ab" * 32,
    "nonce": 0,
    "gas_price": 10,
    "payload": "68656c6c6f",
    "signature": "cd" * 64,
}

MALFORMED_TX = [
    ("missing field", {k: v for k, v in VALID_TX.items() if k != "nonce"}),
    ("unknown field", VALID_TX | {"memo": "hi"}),
    ("string for int", VALID_TX | {"nonce": "0"}),
    ("float for int", VALID_TX | {"nonce": 1.0}),
    ("bool for int", VALID_TX | {"nonce": True}),
    ("negative int", VALID_TX | {"nonce": -1}),
    ("int above u64", VALID_TX | {"gas_price": 2**64}),
    ("huge int", VALID_TX | {"namespace": 10**40}),
    ("odd hex", VALID_TX | {"payload": "abc"}),
    ("non-hex", VALID_TX | {"payload": "zz"}),
    ("hex with spaces", VALID_TX | {"payload": "ab cd"}),
    ("double prefix", VALID_TX | {"payload": "0x0xab"}),
    ("short sender", VALID_TX | {"sender": "ab" * 31}),
    ("long sender", VALID_TX | {"sender": "ab" * 33}),
    ("short signature", VALID_TX | {"signature": "cd" * 63}),
    ("bytes as list", VALID_TX | {"payload": [1, 2]}),
    ("empty chain id", VALID_TX | {"chain_id": ""}),
    ("long chain id", VALID_TX | {"chain_id": "x" * 65}),
    ("null", VALID_TX | {"nonce": None}),
    ("array instead of object", list(VALID_TX.values())),
    ("not an object", "tx"),
]


def test_valid_tx_fixture_decodes() -> None:
    assert from_builtins(VALID_TX, Transaction).nonce == 0


@pytest.mark.parametrize(("case", "value"), MALFORMED_TX, ids=[c for c, _ in MALFORMED_TX])
def test_malformed_json_is_a_decode_error(case: str, value: Any) -> None:
    with pytest.raises(DecodeError):
        from_builtins(value, Transaction)
    with pytest.raises(DecodeError):
        from_json(json.dumps(value), Transaction)


def test_error_names_the_field() -> None:
    with pytest.raises(DecodeError, match=r"\$\.sender"):
        from_builtins(VALID_TX | {"sender": "ab"}, Transaction)
    with pytest.raises(DecodeError, match=r"\$\.gas_price"):
        from_builtins(VALID_TX | {"gas_price": 2**64}, Transaction)


def test_vote_block_id_is_nil_or_32_bytes() -> None:
    vote = {"chain_id": "c", "kind": 2, "height": 1, "round": 0, "validator": 0}
    vote["signature"] = "00" * 64
    assert from_builtins(vote | {"block_id": ""}, Vote).block_id == b""
    assert from_builtins(vote | {"block_id": "11" * 32}, Vote).kind is VoteKind.PRECOMMIT
    for bad in ("11", "11" * 31):
        with pytest.raises(DecodeError):
            from_builtins(vote | {"block_id": bad}, Vote)
    with pytest.raises(DecodeError):  # kinds are 1 and 2 only
        from_builtins(vote | {"block_id": "", "kind": 3}, Vote)


def test_binary_rejects_extra_and_missing_elements() -> None:
    tx = from_builtins(VALID_TX, Transaction)
    fields = msgspec.msgpack.decode(encode(tx))
    with pytest.raises(DecodeError):
        decode(encode([*fields, 1]), Transaction)
    with pytest.raises(DecodeError):
        decode(encode(fields[:-1]), Transaction)
    with pytest.raises(DecodeError):  # a map is not the canonical form
        decode(encode(dict(zip(Transaction.__struct_fields__, fields, strict=True))), Transaction)


def test_parse_hex() -> None:
    assert parse_hex("0xABcd") == b"\xab\xcd"
    assert parse_hex("") == b""
    assert parse_hex("0x") == b""
    with pytest.raises(DecodeError):
        parse_hex("abc")
    with pytest.raises(DecodeError, match="Expected 2 bytes"):
        parse_hex("ab", length=2)


# ------------------------------------------------------------------ hostile input

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=8)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize(("strategy", "cls"), ALL_STRUCTURES, ids=STRUCTURE_IDS)
def test_random_bytes_only_raise_decode_error(strategy: Any, cls: type) -> None:
    @given(st.binary(max_size=512))
    def check(data: bytes) -> None:
        with contextlib.suppress(DecodeError):
            decode(data, cls)

    check()


@pytest.mark.parametrize(("strategy", "cls"), ALL_STRUCTURES, ids=STRUCTURE_IDS)
def test_mutated_encodings_only_raise_decode_error(strategy: Any, cls: type) -> None:
    @given(strategy, st.data())
    def check(value: Any, data: st.DataObject) -> None:
        raw = bytearray(encode(value))
        position = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[position] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del raw[position:]
        else:
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=9))
        try:
            decoded = decode(bytes(raw), cls)
        except DecodeError:
            return
        assert isinstance(decoded, cls)

    check()


@pytest.mark.parametrize(("strategy", "cls"), ALL_STRUCTURES, ids=STRUCTURE_IDS)
def test_random_json_only_raises_decode_error(strategy: Any, cls: type) -> None:
    @given(json_values)
    def check(value: Any) -> None:
        with contextlib.suppress(DecodeError):
            from_builtins(value, cls)

    check()


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_random_json_text_only_raises_decode_error(data: bytes | str) -> None:
    with contextlib.suppress(DecodeError):
        from_json(data, Transaction)


@pytest.mark.parametrize(("strategy", "cls"), ALL_STRUCTURES, ids=STRUCTURE_IDS)
def test_mutated_json_fields_only_raise_decode_error(strategy: Any, cls: type) -> None:
    @given(strategy, st.data())
    def check(value: Any, data: st.DataObject) -> None:
        document = to_builtins(value)
        key = data.draw(st.sampled_from(sorted(document)))
        document[key] = data.draw(json_values | st.integers(2**64 - 2, 2**70))
        with contextlib.suppress(DecodeError):
            from_builtins(document, cls)

    check()
