"""A devnet's dev accounts: keys derived from a seed, the same on every machine.

Account i's Ed25519 seed is `blake3("seq/devnet/account/v1/" + seed + i as
4 bytes big-endian)`, so scripts and tests can hard-code a devnet's keys, as
a fixed mnemonic allows elsewhere; `--seed` chooses another seed. Account 0
is the dev wallet. The key files go to `<home>/accounts/account<i>.json`
(mode 0600), beside `seed`, which records the seed they came from.
"""

from __future__ import annotations

from pathlib import Path

from blake3 import blake3

from sequencer.crypto import PrivateKey, load_key, save_key
from sequencer.files import write_atomic

__all__ = [
    "ACCOUNTS_DIR",
    "ACCOUNTS_MAX",
    "DEFAULT_SEED",
    "account_key",
    "read_accounts",
    "write_accounts",
]

ACCOUNTS_DIR = "accounts"
ACCOUNTS_MAX = 1_000
DEFAULT_SEED = "devnet"
_SEED_FILE = "seed"


def account_key(seed: str, index: int) -> PrivateKey:
    material = b"seq/devnet/account/v1/" + seed.encode() + index.to_bytes(4, "big")
    return PrivateKey(blake3(material).digest())


def write_accounts(root: Path, seed: str, count: int) -> list[Path]:
    directory = root / ACCOUNTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = directory / f"account{index}.json"
        save_key(account_key(seed, index), path, overwrite=True)
        paths.append(path)
    write_atomic(directory / _SEED_FILE, seed.encode())
    return paths


def read_accounts(root: Path) -> tuple[str | None, list[tuple[Path, PrivateKey]]]:
    """The seed recorded (None for a devnet made before accounts) and the key files."""
    directory = root / ACCOUNTS_DIR
    seed_file = directory / _SEED_FILE
    seed = seed_file.read_text() if seed_file.exists() else None
    files = sorted(directory.glob("account*.json"), key=lambda p: int(p.stem[7:] or 0))
    return seed, [(path, load_key(path)) for path in files]
