"""Ed25519 keys, key files, signing bytes and signatures.

Signing bytes are normative:

    tx        msgpack(["seq/tx/v1", chain_id, namespace, sender, nonce, gas_price, payload])
    vote      msgpack(["seq/vote/v1", chain_id, kind, height, round, block_id])
    proposal  msgpack(["seq/proposal/v1", chain_id, height, round, pol_round, block_id])

`verify_*` functions return a bool and never raise on hostile input.
Verification costs tens of microseconds, the largest per-transaction cost of
the system: callers verify a transaction once, on entry.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nacl.exceptions
import nacl.signing

from sequencer.codec import encode, parse_hex
from sequencer.errors import DecodeError, KeyFileError
from sequencer.files import write_atomic
from sequencer.types import Block, Proposal, Transaction, Vote, VoteKind

__all__ = [
    "KEY_FILE_TYPE",
    "PrivateKey",
    "load_key",
    "proposal_signing_bytes",
    "save_key",
    "sign_proposal",
    "sign_transaction",
    "sign_vote",
    "tx_signing_bytes",
    "verify_proposal",
    "verify_signature",
    "verify_transaction",
    "verify_vote",
    "vote_signing_bytes",
]

KEY_FILE_TYPE = "ed25519"
# A key file is under 300 bytes; anything much larger is not one.
KEY_FILE_BYTES_MAX = 4096


class PrivateKey:
    """An Ed25519 signing key, held as its 32-byte seed (RFC 8032)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._key.verify_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(os.urandom(32))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def __repr__(self) -> str:  # never print the seed
        return f"PrivateKey(public_key={self.public_key.hex()})"


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


# ------------------------------------------------------------------ transactions


def tx_signing_bytes(
    chain_id: str, namespace: int, sender: bytes, nonce: int, gas_price: int, payload: bytes
) -> bytes:
    return encode(["seq/tx/v1", chain_id, namespace, sender, nonce, gas_price, payload])


def sign_transaction(
    key: PrivateKey, *, chain_id: str, namespace: int, nonce: int, gas_price: int, payload: bytes
) -> Transaction:
    message = tx_signing_bytes(chain_id, namespace, key.public_key, nonce, gas_price, payload)
    return Transaction(
        chain_id, namespace, key.public_key, nonce, gas_price, payload, key.sign(message)
    )


def verify_transaction(tx: Transaction) -> bool:
    """The signature check only; chain id and nonce are the caller's rules."""
    message = tx_signing_bytes(
        tx.chain_id, tx.namespace, tx.sender, tx.nonce, tx.gas_price, tx.payload
    )
    return verify_signature(tx.sender, message, tx.signature)


# ------------------------------------------------------------------ votes and proposals


def vote_signing_bytes(chain_id: str, kind: int, height: int, round: int, block_id: bytes) -> bytes:
    return encode(["seq/vote/v1", chain_id, int(kind), height, round, block_id])


def sign_vote(
    key: PrivateKey,
    *,
    chain_id: str,
    kind: VoteKind,
    height: int,
    round: int,
    block_id: bytes,
    validator: int,
) -> Vote:
    signature = key.sign(vote_signing_bytes(chain_id, kind, height, round, block_id))
    return Vote(chain_id, kind, height, round, block_id, validator, signature)


def verify_vote(vote: Vote, public_key: bytes) -> bool:
    message = vote_signing_bytes(vote.chain_id, vote.kind, vote.height, vote.round, vote.block_id)
    return verify_signature(public_key, message, vote.signature)


def proposal_signing_bytes(
    chain_id: str, height: int, round: int, pol_round: int, block_id: bytes
) -> bytes:
    return encode(["seq/proposal/v1", chain_id, height, round, pol_round, block_id])


def sign_proposal(
    key: PrivateKey,
    *,
    chain_id: str,
    height: int,
    round: int,
    pol_round: int,
    block_id: bytes,
    block: Block,
    validator: int,
) -> Proposal:
    signature = key.sign(proposal_signing_bytes(chain_id, height, round, pol_round, block_id))
    return Proposal(chain_id, height, round, pol_round, block_id, validator, signature, block)


def verify_proposal(proposal: Proposal, public_key: bytes) -> bool:
    """The signature check only; that `block_id` names `block` is a validity rule."""
    message = proposal_signing_bytes(
        proposal.chain_id, proposal.height, proposal.round, proposal.pol_round, proposal.block_id
    )
    return verify_signature(public_key, message, proposal.signature)


# ------------------------------------------------------------------ key files


def save_key(key: PrivateKey, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a key file readable by its owner only, atomically.

    Format: {"type": "ed25519", "public_key": hex, "private_key": hex seed}.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    document = {
        "type": KEY_FILE_TYPE,
        "public_key": key.public_key.hex(),
        "private_key": key.seed.hex(),
    }
    data = (json.dumps(document, indent=2) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, mode=0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from None


def load_key(path: str | Path) -> PrivateKey:
    """The key in `path`, a key file as `save_key` writes it: refused when
    other users may read it (as ssh refuses such a private key), and read
    without trusting its size (a path to /dev/zero must fail, not fill memory)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read(KEY_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if len(data) > KEY_FILE_BYTES_MAX:
        raise KeyFileError(f"key file {path} is larger than {KEY_FILE_BYTES_MAX} bytes")
    if stat.S_ISREG(mode) and mode & 0o077:
        raise KeyFileError(
            f"key file {path} may be read by other users (mode {stat.S_IMODE(mode):o});"
            f" make it private: chmod 600 {path}"
        )
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyFileError(f"key file {path} is not JSON") from None
    if not isinstance(document, dict) or set(document) != {"type", "public_key", "private_key"}:
        raise KeyFileError(
            f"key file {path} must be an object with keys type, public_key, private_key"
        )
    if document["type"] != KEY_FILE_TYPE:
        raise KeyFileError(f"key file {path}: type must be {KEY_FILE_TYPE!r}")
    try:
        if not isinstance(document["private_key"], str) or not isinstance(
            document["public_key"], str
        ):
            raise DecodeError("keys must be hex strings")
        key = PrivateKey(parse_hex(document["private_key"], length=32, path="$.private_key"))
        public_key = parse_hex(document["public_key"], length=32, path="$.public_key")
    except DecodeError as exc:
        raise KeyFileError(f"key file {path}: {exc}") from None
    if public_key != key.public_key:
        raise KeyFileError(f"key file {path}: public_key does not match private_key")
    return key
