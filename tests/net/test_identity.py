"""libp2p peer ids of Ed25519 keys, checked against the libp2p spec's vector."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.errors import InvalidPeerIdError
from net.identity import peer_id, public_key_from_peer_id
from sequencer.crypto import PrivateKey


def test_published_vector() -> None:
    # libp2p specs, peer-ids/peer-ids.md "Test vectors": the Ed25519 private key
    # 0801 1240 <seed || public key> and its public key protobuf below; the peer
    # id is what rust-libp2p and go-libp2p print for that key.
    seed = bytes.fromhex("7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d")
    key = PrivateKey(seed)
    protobuf = bytes.fromhex(
        "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
    )
    assert b"\x08\x01\x12\x20" + key.public_key == protobuf
    assert peer_id(key.public_key) == "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


@given(st.binary(min_size=32, max_size=32))
def test_round_trip(public_key: bytes) -> None:
    text = peer_id(public_key)
    assert text.startswith("12D3KooW")
    assert public_key_from_peer_id(text) == public_key


BAD_IDS = [
    "",
    "12D3KooW",
    "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p",  # one character short
    "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pqq",  # one too many
    "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0",  # 0 is not base58
    "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",  # sha256 multihash (RSA key)
    "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",  # secp256k1 key
    "12D3KooW" * 20,
    "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pé",
]


@pytest.mark.parametrize("text", BAD_IDS)
def test_bad_peer_ids(text: str) -> None:
    with pytest.raises(InvalidPeerIdError):
        public_key_from_peer_id(text)


def test_peer_id_needs_a_32_byte_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        peer_id(b"\x01" * 31)
