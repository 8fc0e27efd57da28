"""`Backend`: opens stores of one backend on one persistent data set."""

from __future__ import annotations

from pathlib import Path

from storage import KV, LevelDBKV, MemoryData, MemoryKV, Store
from tests.storage.chain import CHAIN_ID

BACKENDS = ("memory", "leveldb")


class Backend:
    """Each `open` is a new handle on the same data, as a restarted process gets.

    `reopen` closes a store first. `close_all` closes every handle left open
    (the fixture calls it at teardown, so LevelDB LOCKs never leak).
    """

    def __init__(self, name: str, path: Path) -> None:
        assert name in BACKENDS, name
        self.name = name
        self.path = path
        self.data = MemoryData("test")
        self._handles: list[KV] = []

    def open_kv(self) -> KV:
        kv: KV = MemoryKV(self.data) if self.name == "memory" else LevelDBKV(self.path)
        self._handles.append(kv)
        return kv

    def open(self, *, chain_id: str | None = CHAIN_ID) -> Store:
        return Store(self.open_kv(), chain_id=chain_id)

    def reopen(self, store: Store, *, chain_id: str | None = CHAIN_ID) -> Store:
        store.close()
        return self.open(chain_id=chain_id)

    def close_all(self) -> None:
        for kv in self._handles:
            kv.close()
        self._handles.clear()
