"""The `KV` contract, on both backends, and what is particular to `MemoryKV`."""

from __future__ import annotations

import pytest

from storage import KV, MemoryData, MemoryKV, Store, StoreClosedError, StoreLockedError
from storage.kv import SCAN_CHUNK_ITEMS
from tests.storage.backends import Backend
from tests.storage.chain import SIGNING_STATE, build_chain

CHAIN = build_chain(3)


def test_backends_implement_the_protocol(backend: Backend) -> None:
    kv = backend.open_kv()
    assert isinstance(kv, KV)
    assert not kv.closed
    assert kv.location == (str(backend.path) if backend.name == "leveldb" else "memory:test")


def test_write_get_and_delete(backend: Backend) -> None:
    kv = backend.open_kv()
    assert kv.get(b"a") is None
    kv.write([(b"a", b"1"), (b"b", b"2"), (b"c", b"")], sync=True)
    assert [kv.get(key) for key in (b"a", b"b", b"c")] == [b"1", b"2", b""]
    kv.write([(b"a", None), (b"b", b"3"), (b"b", b"4"), (b"missing", None)], sync=False)
    assert [kv.get(key) for key in (b"a", b"b")] == [None, b"4"]  # later op on a key wins
    kv.write([], sync=True)
    assert list(kv.scan(b"", b"\xff")) == [(b"b", b"4"), (b"c", b"")]


def test_scan_is_half_open_and_ordered(backend: Backend) -> None:
    kv = backend.open_kv()
    keys = [b"k" + bytes([i]) for i in (5, 1, 255, 0, 9)]
    kv.write([(key, key[1:]) for key in keys], sync=False)
    everything = sorted((key, key[1:]) for key in keys)
    assert list(kv.scan(b"k", b"l")) == everything
    assert list(kv.scan(b"k\x01", b"k\x09")) == everything[1:3]  # stop excluded
    assert list(kv.scan(b"k\x09", b"k\x09")) == []
    assert list(kv.scan(b"l", b"k")) == []  # start after stop: nothing


def test_scan_longer_than_a_chunk(backend: Backend) -> None:
    kv = backend.open_kv()
    count = 2 * SCAN_CHUNK_ITEMS + 7
    items = [(i.to_bytes(4, "big"), b"v%d" % i) for i in range(count)]
    kv.write(items, sync=False)
    assert list(kv.scan(b"", b"\xff")) == items
    assert list(kv.scan(items[3][0], items[-3][0])) == items[3:-3]


def test_closed_handle_refuses_everything(backend: Backend) -> None:
    kv = backend.open_kv()
    kv.write([(b"a", b"1"), (b"b", b"2")], sync=False)
    scan = kv.scan(b"", b"\xff")
    assert next(scan) == (b"a", b"1")
    kv.close()
    kv.close()  # idempotent
    assert kv.closed
    with pytest.raises(StoreClosedError, match="is closed"):
        next(scan)
    with pytest.raises(StoreClosedError, match="is closed"):
        kv.get(b"a")
    with pytest.raises(StoreClosedError, match="is closed"):
        kv.write([(b"c", b"3")], sync=True)
    with pytest.raises(StoreClosedError, match="is closed"):
        kv.scan(b"", b"\xff")
    assert list(backend.open_kv().scan(b"", b"\xff")) == [(b"a", b"1"), (b"b", b"2")]


def test_a_second_open_handle_is_refused(backend: Backend) -> None:
    kv = backend.open_kv()
    with pytest.raises(StoreLockedError, match="in use by another"):
        backend.open_kv()
    kv.close()
    backend.open_kv()  # free again once closed


# ------------------------------------------------------------------ MemoryKV


def test_memory_reopen_shares_the_data() -> None:
    kv = MemoryKV(MemoryData("node-1"))
    kv.write([(b"k", b"v")], sync=True)
    with pytest.raises(StoreLockedError, match="'node-1' is in use"):
        kv.reopen()  # like a second process on a held LOCK
    kv.close()
    again = kv.reopen()
    assert again.data is kv.data
    assert again.get(b"k") == b"v"
    with pytest.raises(StoreClosedError):
        kv.get(b"k")  # the old handle stays closed
    assert MemoryKV().get(b"k") is None  # fresh data by default


def test_memory_scan_tolerates_writes_between_items() -> None:
    kv = MemoryKV()
    count = SCAN_CHUNK_ITEMS + 10
    kv.write([(i.to_bytes(4, "big"), b"") for i in range(count)], sync=False)
    seen = []
    for key, _ in kv.scan(b"", b"\xff"):
        seen.append(int.from_bytes(key, "big"))
        if len(seen) == 1:  # deletes the tail, read in a later chunk
            kv.write([(i.to_bytes(4, "big"), None) for i in range(count - 5, count)], sync=False)
    assert seen == list(range(count - 5))


def test_store_writes_finalized_blocks_and_signing_state_durably() -> None:
    data = MemoryData()
    store = Store.memory(MemoryKV(data))
    assert (data.writes, data.synced_writes) == (1, 1)  # the meta keys
    store.commit_block(*CHAIN[0].args())
    store.save_signing_state(SIGNING_STATE)
    assert (data.writes, data.synced_writes) == (3, 3)
    with store.batch() as batch:
        batch.put_finalized(*CHAIN[1].args())
    assert (data.writes, data.synced_writes) == (4, 3)  # sync is the caller's choice
    assert store.commit_block(*CHAIN[0].args()) is False
    assert data.writes == 4  # a replay writes nothing at all


def test_memory_store_reopens_from_its_kv() -> None:
    store = Store.memory(chain_id="c")
    kv = store.kv
    assert isinstance(kv, MemoryKV)
    store.close()
    assert Store.memory(kv.reopen()).chain_id == "c"
