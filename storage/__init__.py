"""The node's store: finalized chain, indexes and signing state.

`Store` is the typed API (`store.py`), written once against the `KV`
protocol (`kv.py`) and run over LevelDB (`LevelDBKV`, `leveldb.py`) on a
node, or in memory (`MemoryKV`) in tests and the cluster simulator; both
pass the same test suite. The key schema is documented in `schema.py`.

Errors: every error is a `StorageError`; see `storage.errors` for the tree.
plyvel and decoding errors never escape this package.

    with Store.open(home / "db", chain_id=genesis.chain_id) as store:
        store.commit_block(block, certificate, next_nonces)
"""

from __future__ import annotations

from storage.batch import WriteBatch
from storage.errors import (
    StorageError,
    StoreClosedError,
    StoreConflictError,
    StoreCorruptError,
    StoreIOError,
    StoreLockedError,
    StoreMismatchError,
)
from storage.kv import KV, MemoryData, MemoryKV
from storage.leveldb import LevelDBKV
from storage.schema import SCHEMA_VERSION
from storage.store import Store

__all__ = [
    "KV",
    "SCHEMA_VERSION",
    "LevelDBKV",
    "MemoryData",
    "MemoryKV",
    "StorageError",
    "Store",
    "StoreClosedError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreIOError",
    "StoreLockedError",
    "StoreMismatchError",
    "WriteBatch",
]
