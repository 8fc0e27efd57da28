"""The exception tree of the storage package.

Every error the store raises on purpose derives from `StorageError`, itself a
`sequencer.errors.SequencerError`. plyvel, msgspec (`DecodeError`) and OS
errors are converted where they happen (`storage.leveldb`, `storage.store`),
so no caller ever sees a plyvel exception or a traceback-shaped message.

    StorageError
    ├── StoreLockedError     the database is held by another handle: LevelDB's
    │                        LOCK file (another process or node uses this
    │                        home), or an in-memory database not yet closed
    ├── StoreCorruptError    LevelDB reports corruption, or a stored value
    │                        does not decode: restore or resync, don't retry
    ├── StoreMismatchError   the schema version or chain id recorded in the
    │                        store is not what the caller expects
    ├── StoreConflictError   a write that contradicts what is stored (another
    │                        block at a finalized height, a gap, a wrong parent)
    ├── StoreClosedError     use of a store or handle after `close()`
    └── StoreIOError         any other failure of the backend or the OS
                             (permission denied, disk full, missing directory)

Programming errors (using a write batch after its `with` block, nesting
batches) are `assert`s, not part of this tree: they are our bugs, not
conditions a caller handles.
"""

from __future__ import annotations

from sequencer.errors import SequencerError

__all__ = [
    "StorageError",
    "StoreClosedError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreIOError",
    "StoreLockedError",
    "StoreMismatchError",
]


class StorageError(SequencerError):
    """Base class of every error the storage package raises on purpose."""


class StoreLockedError(StorageError):
    """The database is in use by another process or handle."""


class StoreCorruptError(StorageError):
    """The database or a value in it is damaged; retrying will not help."""


class StoreMismatchError(StorageError):
    """The store belongs to another schema version or another chain."""


class StoreConflictError(StorageError):
    """A write that would contradict the finalized history in the store."""


class StoreClosedError(StorageError):
    """An operation on a store or key-value handle that has been closed."""


class StoreIOError(StorageError):
    """Any other failure of the backend or the operating system."""
