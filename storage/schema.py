"""The key schema of the store.

One flat key space; the first byte of a key is its kind. Integers in keys
are fixed-width big-endian, so byte order is numeric order and a height
range is one contiguous scan.

| prefix | key                                  | value                                         |
|--------|--------------------------------------|-----------------------------------------------|
| `M`    | `M` + name (`schema`, `chain_id`)    | meta: schema version u32 BE; chain id UTF-8   |
| `B`    | `B` + height u64 BE                  | canonical encoding of the `Block`             |
| `C`    | `C` + height u64 BE                  | canonical encoding of the `CommitCertificate` |
|        |                                      | that finalized it                             |
| `I`    | `I` + block_id (32)                  | height u64 BE                                 |
| `X`    | `X` + tx_id (32)                     | height u64 BE + index u32 BE (12 bytes)       |
| `T`    | `T` (single key)                     | `ChainTip` (canonical encoding)               |
| `N`    | `N` + sender (32)                    | next nonce u64 BE                             |
| `A`    | `A` + sender (32) + nonce u64 BE     | tx_id (32) of the sender's committed tx       |
| `S`    | `S` (single key)                     | `SigningState` (canonical encoding)           |
| `J`    | `J` + arrival seq u64 BE             | journaled tx: arrival time_ms u64 BE + tx     |
| `L`    | `L` + batch number u64 BE            | L1 batch record (bytes owned by the batcher)  |
| `E`    | `E` + ...                            | equivocation evidence (reserved, later issue) |

Changing the meaning of any key or value is a new `SCHEMA_VERSION`; a store
written by another version is refused on open, never guessed at.
"""

from __future__ import annotations

from sequencer.limits import U32_MAX, U64_MAX
from sequencer.types import TxLocation

__all__ = [
    "BATCHER_PREFIX",
    "BLOCK_ID_PREFIX",
    "BLOCK_PREFIX",
    "CERTIFICATE_PREFIX",
    "EVIDENCE_PREFIX",
    "JOURNAL_PREFIX",
    "META_CHAIN_ID_KEY",
    "META_GENESIS_KEY",
    "META_PREFIX",
    "META_SCHEMA_KEY",
    "NONCE_PREFIX",
    "SCHEMA_VERSION",
    "SENDER_TX_PREFIX",
    "SIGNING_STATE_KEY",
    "TIP_KEY",
    "TX_LOCATION_BYTES",
    "TX_PREFIX",
    "batch_key",
    "batch_range",
    "block_id_key",
    "block_key",
    "certificate_key",
    "decode_schema_version",
    "decode_tx_location",
    "decode_u64",
    "encode_schema_version",
    "encode_tx_location",
    "encode_u64",
    "height_from_key",
    "height_range",
    "journal_key",
    "journal_range",
    "nonce_key",
    "sender_tx_key",
    "sender_tx_range",
    "tx_key",
]

# 2: block headers carry `namespace_root` (after `tx_root`), so every stored
# block and id of version 1 has another encoding. 3: the `A` index of each
# sender's committed transactions by nonce.
SCHEMA_VERSION = 3

META_PREFIX = b"M"
BLOCK_PREFIX = b"B"
CERTIFICATE_PREFIX = b"C"
BLOCK_ID_PREFIX = b"I"
TX_PREFIX = b"X"
TIP_KEY = b"T"
NONCE_PREFIX = b"N"
SENDER_TX_PREFIX = b"A"
SIGNING_STATE_KEY = b"S"
JOURNAL_PREFIX = b"J"
BATCHER_PREFIX = b"L"
EVIDENCE_PREFIX = b"E"

META_SCHEMA_KEY = META_PREFIX + b"schema"
META_CHAIN_ID_KEY = META_PREFIX + b"chain_id"
# The hash of the genesis the store was started with: another genesis under
# the same chain id (a replaced genesis.json) is refused, not run on.
META_GENESIS_KEY = META_PREFIX + b"genesis"

_HASH_BYTES = 32
_U64_BYTES = 8
_U32_BYTES = 4
TX_LOCATION_BYTES = _U64_BYTES + _U32_BYTES


# ------------------------------------------------------------------ integers


def encode_u64(value: int) -> bytes:
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{value} is not a u64")
    return value.to_bytes(_U64_BYTES, "big")


def decode_u64(data: bytes) -> int:
    """Raise ValueError unless `data` is exactly 8 bytes (callers map it to corruption)."""
    if len(data) != _U64_BYTES:
        raise ValueError(f"expected 8 bytes, got {len(data)}")
    return int.from_bytes(data, "big")


def encode_schema_version(version: int) -> bytes:
    if not 0 <= version <= U32_MAX:
        raise ValueError(f"{version} is not a u32")
    return version.to_bytes(_U32_BYTES, "big")


def decode_schema_version(data: bytes) -> int:
    if len(data) != _U32_BYTES:
        raise ValueError(f"expected 4 bytes, got {len(data)}")
    return int.from_bytes(data, "big")


def encode_tx_location(height: int, index: int) -> bytes:
    if not 0 <= index <= U32_MAX:
        raise ValueError(f"{index} is not a u32")
    return encode_u64(height) + index.to_bytes(_U32_BYTES, "big")


def decode_tx_location(data: bytes) -> TxLocation:
    """Raise ValueError on a wrong length or a height of 0 (never written)."""
    if len(data) != TX_LOCATION_BYTES:
        raise ValueError(f"expected {TX_LOCATION_BYTES} bytes, got {len(data)}")
    height = int.from_bytes(data[:_U64_BYTES], "big")
    if height == 0:
        raise ValueError("height 0")
    return TxLocation(height, int.from_bytes(data[_U64_BYTES:], "big"))


# ------------------------------------------------------------------ keys


def _hash_key(prefix: bytes, digest: bytes) -> bytes:
    if len(digest) != _HASH_BYTES:
        raise ValueError(f"expected a 32-byte id, got {len(digest)} bytes")
    return prefix + digest


def block_key(height: int) -> bytes:
    return BLOCK_PREFIX + encode_u64(height)


def certificate_key(height: int) -> bytes:
    return CERTIFICATE_PREFIX + encode_u64(height)


def block_id_key(block_id: bytes) -> bytes:
    return _hash_key(BLOCK_ID_PREFIX, block_id)


def tx_key(tx_id: bytes) -> bytes:
    return _hash_key(TX_PREFIX, tx_id)


def nonce_key(sender: bytes) -> bytes:
    return _hash_key(NONCE_PREFIX, sender)


def sender_tx_key(sender: bytes, nonce: int) -> bytes:
    return _hash_key(SENDER_TX_PREFIX, sender) + encode_u64(nonce)


def sender_tx_range(sender: bytes, first_nonce: int) -> tuple[bytes, bytes]:
    """Scan bounds over a sender's committed transactions from `first_nonce`."""
    return sender_tx_key(sender, first_nonce), _hash_key(SENDER_TX_PREFIX, sender) + b"\xff" * 9


def journal_key(seq: int) -> bytes:
    return JOURNAL_PREFIX + encode_u64(seq)


def batch_key(number: int) -> bytes:
    return BATCHER_PREFIX + encode_u64(number)


def batch_range(first: int = 0) -> tuple[bytes, bytes]:
    """Scan bounds covering batch records from `first` on, in number order."""
    return batch_key(first), bytes([BATCHER_PREFIX[0] + 1])


def journal_range() -> tuple[bytes, bytes]:
    """Scan bounds covering the whole mempool journal, in arrival order."""
    return JOURNAL_PREFIX, bytes([JOURNAL_PREFIX[0] + 1])


def height_from_key(key: bytes) -> int:
    """The height of a `B` or `C` key (the scan bounds guarantee the shape)."""
    assert len(key) == 1 + _U64_BYTES, key
    return int.from_bytes(key[1:], "big")


def height_range(prefix: bytes, first: int, last: int) -> tuple[bytes, bytes]:
    """Scan bounds [start, stop) covering heights first..last of one prefix."""
    assert len(prefix) == 1, prefix
    start = prefix + encode_u64(first)
    # last + 1 does not fit a u64 at the very top: stop at the next prefix.
    stop = prefix + encode_u64(last + 1) if last < U64_MAX else bytes([prefix[0] + 1])
    return start, stop
