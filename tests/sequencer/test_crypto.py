"""Signatures over transactions, votes and proposals; key files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequencer.crypto import (
    PrivateKey,
    load_key,
    save_key,
    sign_proposal,
    sign_transaction,
    sign_vote,
    verify_proposal,
    verify_signature,
    verify_transaction,
    verify_vote,
)
from sequencer.errors import KeyFileError
from sequencer.types import ZERO_ID, Block, BlockHeader, Transaction, VoteKind

KEY = PrivateKey(b"\x05" * 32)
OTHER = PrivateKey(b"\x06" * 32)


def signed_tx() -> Transaction:
    return sign_transaction(KEY, chain_id="c", namespace=1, nonce=3, gas_price=7, payload=b"p")


TX_CHANGES = {
    "chain_id": "d",
    "namespace": 2,
    "sender": OTHER.public_key,
    "nonce": 4,
    "gas_price": 8,
    "payload": b"q",
    "signature": b"\x00" * 64,
}


def test_transaction_signature_verifies() -> None:
    assert verify_transaction(signed_tx())


@pytest.mark.parametrize("field", list(TX_CHANGES))
def test_any_changed_transaction_field_breaks_the_signature(field: str) -> None:
    changed = msgspec.structs.replace(signed_tx(), **{field: TX_CHANGES[field]})
    assert not verify_transaction(changed)


def test_vote_signature_binds_every_field() -> None:
    vote = sign_vote(
        KEY,
        chain_id="c",
        kind=VoteKind.PREVOTE,
        height=4,
        round=1,
        block_id=b"\x01" * 32,
        validator=0,
    )
    assert verify_vote(vote, KEY.public_key)
    assert not verify_vote(vote, OTHER.public_key)
    for change in [
        {"kind": VoteKind.PRECOMMIT},
        {"height": 5},
        {"round": 2},
        {"block_id": b""},
        {"chain_id": "d"},
    ]:
        assert not verify_vote(msgspec.structs.replace(vote, **change), KEY.public_key), change


def test_proposal_signature_binds_every_field() -> None:
    header = BlockHeader("c", 1, 0, 0, ZERO_ID, ZERO_ID, ZERO_ID, ZERO_ID, 0, ZERO_ID)
    proposal = sign_proposal(
        KEY,
        chain_id="c",
        height=1,
        round=0,
        pol_round=-1,
        block_id=b"\x02" * 32,
        block=Block(header, []),
        validator=0,
    )
    assert verify_proposal(proposal, KEY.public_key)
    assert not verify_proposal(proposal, OTHER.public_key)
    for change in [{"round": 1}, {"pol_round": 0}, {"height": 2}, {"block_id": b"\x03" * 32}]:
        assert not verify_proposal(msgspec.structs.replace(proposal, **change), KEY.public_key)


@given(st.binary(max_size=40), st.binary(max_size=100), st.binary(max_size=70))
def test_verify_signature_never_raises(public_key: bytes, message: bytes, signature: bytes) -> None:
    assert verify_signature(public_key, message, signature) in (True, False)


def test_verify_rejects_keys_that_are_not_curve_points() -> None:
    signature = KEY.sign(b"m")
    assert not verify_signature(b"\xff" * 32, b"m", signature)


def test_private_key_never_prints_its_seed() -> None:
    assert KEY.seed.hex() not in repr(KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        PrivateKey(b"short")


# ------------------------------------------------------------------ key files


def test_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node.json"
    save_key(KEY, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key(path)
    assert loaded.public_key == KEY.public_key
    assert loaded.seed == KEY.seed
    assert json.loads(path.read_text())["type"] == "ed25519"


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    save_key(KEY, path)
    with pytest.raises(KeyFileError, match="already exists"):
        save_key(OTHER, path)
    assert load_key(path).public_key == KEY.public_key
    save_key(OTHER, path, overwrite=True)
    assert load_key(path).public_key == OTHER.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temp files left


GOOD = {"type": "ed25519", "public_key": KEY.public_key.hex(), "private_key": KEY.seed.hex()}
BAD_KEY_FILES = [
    ("not json", "{"),
    ("not an object", "[]"),
    ("missing key", json.dumps({k: v for k, v in GOOD.items() if k != "type"})),
    ("extra key", json.dumps(GOOD | {"x": 1})),
    ("wrong type", json.dumps(GOOD | {"type": "secp256k1"})),
    ("short seed", json.dumps(GOOD | {"private_key": "00" * 31})),
    ("bad hex", json.dumps(GOOD | {"private_key": "zz" * 32})),
    ("number seed", json.dumps(GOOD | {"private_key": 5})),
    ("mismatched public key", json.dumps(GOOD | {"public_key": OTHER.public_key.hex()})),
    ("binary garbage", b"\xff\xfe\x00"),
]


@pytest.mark.parametrize(("case", "content"), BAD_KEY_FILES, ids=[c for c, _ in BAD_KEY_FILES])
def test_bad_key_files_are_clear_errors(tmp_path: Path, case: str, content: str | bytes) -> None:
    path = tmp_path / "k.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=str(path)) as caught:
        load_key(path)
    assert "other users" not in str(caught.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.json"
    save_key(KEY, path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:o}.*chmod 600"):
        load_key(path)
    path.chmod(0o400)  # read-only for its owner is fine
    assert load_key(path).public_key == KEY.public_key


def test_a_key_path_to_an_endless_file_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="larger than 4096 bytes"):
        load_key("/dev/zero")
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 10_000 + json.dumps(GOOD).encode())
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="larger than"):
        load_key(path)


def test_missing_and_unreadable_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "absent.json")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key(tmp_path)  # a directory
    (tmp_path / "file").write_text("")
    with pytest.raises(KeyFileError, match="cannot write"):
        save_key(KEY, tmp_path / "file" / "k.json")  # parent is a file
