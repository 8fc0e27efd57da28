"""The LevelDB backend (plyvel): the store of a real node.

plyvel errors are converted here, at the boundary, into the storage tree
with plain messages that name the database path. What plyvel (LevelDB 1.x)
raises, as observed (messages are bytes):

    LOCK held (this or another process)   plyvel.IOError, b"IO error: lock <path>/LOCK: ..."
    garbage in CURRENT or MANIFEST-*      plyvel.CorruptionError, b"Corruption: ..."
    empty directory, create_if_missing=0  plyvel.Error, b"Invalid argument: ... does not exist ..."
    parent directory missing              plyvel.Error, b"NotFound: <path>/LOCK: ..."
    any operation after close             RuntimeError (never reached: we check first)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import plyvel

from storage.errors import (
    StorageError,
    StoreClosedError,
    StoreCorruptError,
    StoreIOError,
    StoreLockedError,
)
from storage.kv import WriteOp

__all__ = [
    "BLOOM_FILTER_BITS",
    "LRU_CACHE_BYTES",
    "MAX_OPEN_FILES",
    "PARANOID_CHECKS",
    "LevelDBKV",
]

# Blocks and index entries are read by key, mostly for keys that exist; a
# bloom filter keeps the misses (unknown tx ids from wallets) off the disk.
BLOOM_FILTER_BITS = 10
# LevelDB's cache of uncompressed table blocks. The blocks peers, wallets and
# the node's own readers (events, the batcher) ask for are the recent ones,
# still in the memtable or in files the OS page cache holds; the cache spares
# only their decompression. At 64 MiB it was the largest part of a node's RSS
# growth over a long run (it fills as the chain grows, up to its size).
LRU_CACHE_BYTES = 8 * 1024 * 1024
# Table files LevelDB keeps open (its default is 1,000). A known bound lets the
# node keep that many descriptors free of client connections: when LevelDB
# cannot open a file, a write fails and the node stops voting.
MAX_OPEN_FILES = 256

# LevelDB's LockFile reports "lock <file>: <reason>" (util/env_posix.cc).
_LOCK_MARKER = "IO error: lock "

# Damage to the write-ahead log (`<db>/NNNNNN.log`, replayed when the database
# opens), as observed with plyvel 1.x / LevelDB 1.2x:
#
# - a torn tail (the process died in the middle of appending a record, or the
#   file lost its last bytes) reads as the writer having died mid-record: the
#   incomplete record is dropped, with or without `paranoid_checks`, and the
#   database opens without a word. That is what a crash needs: a write that
#   never completed never returned, so nothing (no signature) depended on it.
#   A synced write is complete in the file before it returns, so a crash
#   cannot tear it; only a disk that loses fsynced data can, and LevelDB
#   cannot tell that apart from a crash (see tests/node/test_crash_points.py).
# - a damaged record before the tail (checksum mismatch) is skipped silently
#   *without* `paranoid_checks`, with everything after it in that block: a
#   validator could come back without its latest signing state and sign
#   against its own earlier signatures. With `paranoid_checks` the open fails
#   (`StoreCorruptError`) and the node refuses to start, naming the database
#   and what to do. A validator must rather stop than forget what it signed,
#   so paranoid checks are on.
PARANOID_CHECKS = True


def _detail(exc: plyvel.Error) -> str:
    message = exc.args[0] if exc.args else ""
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


def _missing_message(path: str) -> str:
    return f"database {path} does not exist (and was not to be created)"


def convert_error(exc: plyvel.Error, path: str, action: str) -> StorageError:
    """The storage error for a plyvel error raised while `action`ing `path`."""
    detail = _detail(exc)
    if isinstance(exc, plyvel.CorruptionError):
        # No automatic repair: RepairDB may drop the signing state, and a
        # validator that forgets what it signed can equivocate.
        return StoreCorruptError(
            f"database {path} is corrupt ({detail}); restore the node home from a backup, "
            "or move the database aside and let the node resync from its peers"
        )
    if isinstance(exc, plyvel.IOError) and detail.startswith(_LOCK_MARKER):
        return StoreLockedError(
            f"database {path} is in use by another process "
            "(is another node running with this home?)"
        )
    if action == "open" and "does not exist" in detail:
        return StoreIOError(_missing_message(path))
    return StoreIOError(f"cannot {action} database {path}: {detail}")


class LevelDBKV:
    """An open LevelDB database at `path`, created when missing if `create`."""

    __slots__ = ("_db", "_location")

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self._location = str(path)
        # LevelDB itself makes the directory (with LOCK and LOG files) before
        # it finds no database there; "do not create" should leave no trace.
        if not create and not Path(path).is_dir():
            raise StoreIOError(_missing_message(self._location))
        try:
            self._db: plyvel.DB | None = plyvel.DB(
                self._location,
                create_if_missing=create,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                lru_cache_size=LRU_CACHE_BYTES,
                paranoid_checks=PARANOID_CHECKS,
                max_open_files=MAX_OPEN_FILES,
            )
        except plyvel.Error as exc:
            raise convert_error(exc, self._location, "open") from None

    @property
    def location(self) -> str:
        return self._location

    @property
    def closed(self) -> bool:
        return self._db is None

    def _live(self) -> plyvel.DB:
        if self._db is None:
            raise StoreClosedError(f"database {self._location} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        db = self._live()
        try:
            return db.get(key)
        except plyvel.Error as exc:
            raise convert_error(exc, self._location, "read") from None

    def write(self, ops: Sequence[WriteOp], *, sync: bool) -> None:
        db = self._live()
        # Build the whole batch before writing it: plyvel's `with
        # write_batch()` would write a partial batch if the body raised.
        batch = db.write_batch(sync=sync)
        for key, value in ops:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        try:
            batch.write()
        except plyvel.Error as exc:
            raise convert_error(exc, self._location, "write") from None

    def scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        """A consistent snapshot of the range, as of the first `next()`."""
        self._live()
        return self._scan(start, stop)

    def _scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._live().iterator(start=start, stop=stop) as iterator:
            while True:
                # plyvel would raise RuntimeError if the database were closed
                # between two items; report it as ours instead.
                self._live()
                try:
                    item = next(iterator, None)
                except plyvel.Error as exc:
                    raise convert_error(exc, self._location, "read") from None
                if item is None:
                    return
                yield item

    def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    def __repr__(self) -> str:
        state = "closed" if self._db is None else "open"
        return f"LevelDBKV({self._location!r}, {state})"
