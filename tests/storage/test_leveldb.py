"""LevelDB failures become plain `StorageError`s that name the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest

from storage import (
    LevelDBKV,
    StorageError,
    Store,
    StoreCorruptError,
    StoreIOError,
    StoreLockedError,
)
from storage.leveldb import convert_error
from tests.storage.chain import CHAIN_ID, build_chain

CHAIN = build_chain(3)


def _store_with_blocks(path: Path) -> None:
    with Store.open(path, chain_id=CHAIN_ID) as store:
        for item in CHAIN:
            store.commit_block(*item.args())


def _assert_plain(exc: StorageError, path: Path) -> None:
    """Our error, naming the path, with no plyvel exception attached."""
    assert not isinstance(exc, plyvel.Error)
    assert str(path) in str(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__  # no plyvel traceback


def test_second_open_in_this_process_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with Store.open(path):
        with pytest.raises(StoreLockedError) as info:
            Store.open(path)
        assert str(info.value) == (
            f"database {path} is in use by another process "
            "(is another node running with this home?)"
        )
        _assert_plain(info.value, path)
    Store.open(path).close()  # closing released the LOCK


def test_open_held_by_another_process_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "db"
    program = (
        "import sys\n"
        "from storage import LevelDBKV, StoreLockedError\n"
        "try:\n"
        "    LevelDBKV(sys.argv[1])\n"
        "except StoreLockedError as exc:\n"
        "    print(exc)\n"
    )
    with Store.open(path):
        result = subprocess.run(
            [sys.executable, "-c", program, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    assert result.stdout.strip() == (
        f"database {path} is in use by another process (is another node running with this home?)"
    )


@pytest.mark.parametrize("victim", ["CURRENT", "MANIFEST"])
def test_corrupt_database_is_reported(tmp_path: Path, victim: str) -> None:
    path = tmp_path / "db"
    _store_with_blocks(path)
    (target,) = (entry for entry in path.iterdir() if entry.name.startswith(victim))
    target.write_bytes(b"\x00garbage, not a LevelDB file\x7f" * 3)
    with pytest.raises(StoreCorruptError, match=r"is corrupt .*restore the node home") as info:
        Store.open(path)
    _assert_plain(info.value, path)


def test_missing_database_without_create(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here"
    with pytest.raises(StoreIOError) as info:
        Store.open(path, create=False)
    assert str(info.value) == f"database {path} does not exist (and was not to be created)"
    _assert_plain(info.value, path)
    assert not path.exists()  # and it left nothing behind


def test_empty_directory_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreIOError, match="does not exist") as info:
        Store.open(tmp_path, create=False)
    _assert_plain(info.value, tmp_path)


def test_existing_database_without_create(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _store_with_blocks(path)
    with Store.open(path, create=False) as store:
        assert store.height() == len(CHAIN)


@pytest.mark.parametrize("where", ["parent missing", "path is a file"])
def test_unusable_path_is_an_io_error(tmp_path: Path, where: str) -> None:
    if where == "path is a file":
        path = tmp_path / "file"
        path.write_text("not a directory")
    else:
        path = tmp_path / "missing" / "db"
    with pytest.raises(StoreIOError, match="cannot open database") as info:
        LevelDBKV(path)
    _assert_plain(info.value, path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_permission_denied_is_an_io_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreIOError, match="cannot open database"):
            LevelDBKV(tmp_path / "db")
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize(
    ("error", "expected", "pattern"),
    [
        (plyvel.CorruptionError(b"Corruption: bad block"), StoreCorruptError, "bad block"),
        (plyvel.IOError(b"IO error: lock /x/LOCK: held"), StoreLockedError, "in use"),
        (plyvel.IOError(b"IO error: /x/000005.log: No space left"), StoreIOError, "No space"),
        (plyvel.Error("plain str message"), StoreIOError, "cannot write database /x: plain str"),
    ],
)
def test_convert_error(error: plyvel.Error, expected: type, pattern: str) -> None:
    converted = convert_error(error, "/x", "write")
    assert type(converted) is expected
    assert pattern in str(converted)
    assert "/x" in str(converted)


def test_scan_is_a_snapshot(tmp_path: Path) -> None:
    kv = LevelDBKV(tmp_path / "db")
    kv.write([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], sync=False)
    scan = kv.scan(b"a", b"z")
    assert next(scan) == (b"a", b"1")
    kv.write([(b"b", None), (b"c", b"changed")], sync=False)
    assert list(scan) == [(b"b", b"2"), (b"c", b"3")]
    kv.close()
    assert repr(kv) == f"LevelDBKV({str(tmp_path / 'db')!r}, closed)"


def _crashed_copy(tmp_path: Path, records: int) -> Path:
    """A database with `records` synced writes, copied while open (as a kill -9
    leaves it: everything written is in the files, nothing was closed)."""
    import shutil

    kv = LevelDBKV(tmp_path / "db")
    try:
        for n in range(records):
            kv.write([(b"k%02d" % n, b"v" * 50)], sync=True)
        shutil.copytree(
            tmp_path / "db", tmp_path / "crashed", ignore=shutil.ignore_patterns("LOCK")
        )
    finally:
        kv.close()
    return tmp_path / "crashed"


def _newest_log(path: Path) -> Path:
    return max(path.glob("*.log"), key=lambda p: int(p.stem))


@pytest.mark.parametrize("cut", [1, 30, 80])
def test_a_torn_log_tail_drops_the_torn_writes_and_opens(tmp_path: Path, cut: int) -> None:
    # The decision documented at PARANOID_CHECKS: LevelDB reads an incomplete
    # last record as a writer that died mid-append, even with paranoid checks.
    path = _crashed_copy(tmp_path, 10)
    log = _newest_log(path)
    with log.open("r+b") as file:
        file.truncate(log.stat().st_size - cut)
    kv = LevelDBKV(path, create=False)
    try:
        keys = [key for key, _ in kv.scan(b"", b"\xff")]
    finally:
        kv.close()
    lost = 1 if cut < 75 else 2  # a record here: 7 header + 12 batch + 56 put = 75 bytes
    assert keys == [b"k%02d" % n for n in range(10 - lost)]


def test_a_damaged_log_record_before_the_tail_refuses_to_open(tmp_path: Path) -> None:
    path = _crashed_copy(tmp_path, 10)
    log = _newest_log(path)
    with log.open("r+b") as file:
        file.seek(300)
        byte = file.read(1)
        file.seek(300)
        file.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(StoreCorruptError, match=r"is corrupt \(Corruption: checksum mismatch\)"):
        LevelDBKV(path, create=False)
