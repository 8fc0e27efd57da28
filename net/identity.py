"""libp2p-style peer identities for Ed25519 keys.

The peer id of a key is the identity multihash of its protobuf-encoded public
key, written in base58btc (libp2p peer-ids spec). An Ed25519 key encodes to
36 bytes, under the 42-byte limit for inlining, so the key itself is
recoverable from the id and ids all start with `12D3KooW`:

    protobuf PublicKey   08 01 (Type = Ed25519)  12 20 (Data, 32 bytes)  <key>
    multihash            00 (identity)  24 (36 bytes)  <protobuf>
"""

from __future__ import annotations

import base58

from net.errors import InvalidPeerIdError

__all__ = ["peer_id", "public_key_from_peer_id"]

_PROTOBUF_ED25519 = b"\x08\x01\x12\x20"
_MULTIHASH_IDENTITY_36 = b"\x00\x24"
_PREFIX = _MULTIHASH_IDENTITY_36 + _PROTOBUF_ED25519
# base58 of 38 bytes is at most 52 characters; refuse anything longer before decoding.
_PEER_ID_CHARS_MAX = 64


def peer_id(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    return base58.b58encode(_PREFIX + public_key).decode("ascii")


def public_key_from_peer_id(text: str) -> bytes:
    """The Ed25519 public key inside a peer id (raises `InvalidPeerIdError`)."""
    if not 0 < len(text) <= _PEER_ID_CHARS_MAX:
        raise InvalidPeerIdError(f"not a peer id: {text[:_PEER_ID_CHARS_MAX]!r}")
    try:
        raw = base58.b58decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidPeerIdError(f"not base58: {text!r}") from None
    if len(raw) != len(_PREFIX) + 32 or not raw.startswith(_PREFIX):
        raise InvalidPeerIdError(f"not the peer id of an Ed25519 key: {text!r}")
    return raw[len(_PREFIX) :]
