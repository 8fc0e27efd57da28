"""Raw key-value backends: the only part of the store that differs per backend.

`KV` is the contract `Store` is written against; `LevelDBKV`
(`storage.leveldb`) is the production backend and `MemoryKV` the in-memory
one for tests and the cluster simulator. Both raise only `StorageError`s.

`MemoryKV` separates the *data* (`MemoryData`, which plays the files on
disk) from the *handle* (which plays an open database), so a test or the
simulator can close a handle and `reopen()` the same data, as a process
restart would. Like LevelDB's LOCK file, one data set has at most one open
handle at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Protocol, runtime_checkable

from sortedcontainers import SortedDict

from storage.errors import StoreClosedError, StoreLockedError

__all__ = ["KV", "SCAN_CHUNK_ITEMS", "MemoryData", "MemoryKV", "WriteOp"]

# A key and its new value; None deletes the key.
WriteOp = tuple[bytes, bytes | None]

# MemoryKV reads a scan this many items at a time, so a scan over a large
# range holds bounded memory and tolerates writes between two `next()` calls.
SCAN_CHUNK_ITEMS = 256


@runtime_checkable
class KV(Protocol):
    """An ordered byte-key store with atomic multi-key writes.

    Every method raises `StoreClosedError` after `close()`; `close()` itself
    is idempotent. Other failures are `StorageError`s, never backend errors.
    """

    @property
    def location(self) -> str:
        """Where the data lives (a path, or a name), for error messages."""
        ...

    @property
    def closed(self) -> bool: ...

    def get(self, key: bytes) -> bytes | None: ...

    def write(self, ops: Sequence[WriteOp], *, sync: bool) -> None:
        """Apply all ops or none; with `sync`, durable before returning."""
        ...

    def scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Items with start <= key < stop, in ascending key order."""
        ...

    def close(self) -> None: ...


class MemoryData:
    """The contents of an in-memory database; they outlive any one handle.

    `writes` and `synced_writes` count applied `write` calls, so tests can
    check which writes a caller asked to be durable.
    """

    __slots__ = ("in_use", "items", "name", "synced_writes", "writes")

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.items: SortedDict = SortedDict()
        self.in_use = False  # an open MemoryKV holds it (LevelDB's LOCK)
        self.writes = 0
        self.synced_writes = 0


class MemoryKV:
    """An open handle on `MemoryData` (a fresh, empty data set by default).

    Writes are atomic and visible at once; `sync` changes nothing but the
    counters, since nothing is lost when a handle is dropped.
    """

    __slots__ = ("_closed", "_data")

    def __init__(self, data: MemoryData | None = None) -> None:
        data = MemoryData() if data is None else data
        if data.in_use:
            raise StoreLockedError(
                f"in-memory database {data.name!r} is in use by another handle "
                "(close it before opening the data again)"
            )
        data.in_use = True
        self._data = data
        self._closed = False

    def reopen(self) -> MemoryKV:
        """A new open handle on the same data; this handle must be closed first."""
        return MemoryKV(self._data)

    @property
    def data(self) -> MemoryData:
        return self._data

    @property
    def location(self) -> str:
        return f"memory:{self._data.name}"

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"in-memory database {self._data.name!r} is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.items.get(key)

    def write(self, ops: Sequence[WriteOp], *, sync: bool) -> None:
        self._check_open()
        # Check every op before applying any, so a bad op cannot half-apply.
        for key, value in ops:
            assert isinstance(key, bytes), type(key)
            assert value is None or isinstance(value, bytes), type(value)
        items = self._data.items
        for key, value in ops:
            if value is None:
                items.pop(key, None)
            else:
                items[key] = value
        self._data.writes += 1
        if sync:
            self._data.synced_writes += 1

    def scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Read in chunks: each chunk is consistent, later ones see newer writes."""
        self._check_open()
        return self._scan(start, stop)

    def _scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        items = self._data.items
        lower, inclusive = start, True
        while True:
            self._check_open()
            keys = items.irange(lower, stop, inclusive=(inclusive, False))
            chunk = [(key, items[key]) for key in islice(keys, SCAN_CHUNK_ITEMS)]
            for item in chunk:
                yield item
                self._check_open()
            if len(chunk) < SCAN_CHUNK_ITEMS:
                return
            lower, inclusive = chunk[-1][0], False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._data.in_use = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"MemoryKV({self._data.name!r}, {len(self._data.items)} keys, {state})"
