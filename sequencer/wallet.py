"""A wallet: a signing key bound to a chain, and the u64 check of what it signs.

    wallet = Wallet(load_key("wallet.json"), chain_id="devnet-1")
    tx = wallet.sign(nonce=0, payload=b"hello", gas_price=10)

Apart from `sequencer.client` because signing needs no node: a wallet signs
offline, and the client only carries what it signed. `sequencer.client`
re-exports `Wallet`, where wallets are imported from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sequencer.crypto import PrivateKey, load_key, sign_transaction
from sequencer.limits import CHAIN_ID_CHARS_MAX, U64_MAX
from sequencer.types import Transaction

__all__ = ["Wallet", "check_u64"]


@dataclasses.dataclass(frozen=True, slots=True)
class Wallet:
    """A signing key bound to a chain, with a default namespace."""

    key: PrivateKey
    chain_id: str
    namespace: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.chain_id) <= CHAIN_ID_CHARS_MAX:
            raise ValueError(f"chain_id must be 1 to {CHAIN_ID_CHARS_MAX} characters")
        check_u64("namespace", self.namespace)

    @classmethod
    def from_key_file(cls, path: str | Path, chain_id: str, namespace: int = 0) -> Wallet:
        """Raises `KeyFileError` for a missing or malformed key file."""
        return cls(load_key(path), chain_id, namespace)

    @property
    def sender(self) -> bytes:
        return self.key.public_key

    @property
    def address(self) -> str:
        return self.key.public_key.hex()

    def sign(
        self, nonce: int, payload: bytes, gas_price: int, namespace: int | None = None
    ) -> Transaction:
        namespace = self.namespace if namespace is None else namespace
        for name, value in (("nonce", nonce), ("gas_price", gas_price), ("namespace", namespace)):
            check_u64(name, value)
        return sign_transaction(
            self.key,
            chain_id=self.chain_id,
            namespace=namespace,
            nonce=nonce,
            gas_price=gas_price,
            payload=bytes(payload),
        )


def check_u64(name: str, value: int) -> None:
    """A `ValueError` for anything but an int in 0..2^64-1 (a bool is no number here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be an integer in 0..2^64-1, got {value!r}")
