"""`storage.faults`: the fault-injecting `KV` wrapper and its spec parser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage import KV, MemoryKV, Store, StoreIOError
from storage.faults import FaultSpec, FaultyKV, parse_faults


class Crashed(Exception):
    """Stands for the process dying, in-process."""


def crash() -> None:
    raise Crashed


def faulty(spec: FaultSpec) -> tuple[FaultyKV, MemoryKV]:
    inner = MemoryKV()
    return FaultyKV(inner, spec, crash=crash), inner


def write(kv: KV, n: int) -> None:
    kv.write([(b"k%d" % n, b"v")], sync=True)


def test_parse_each_fault() -> None:
    assert parse_faults("crash_before_write=3") == FaultSpec(crash_before_write=3)
    assert parse_faults(" crash_after_write = 17 ") == FaultSpec(crash_after_write=17)
    assert parse_faults("fail_writes_from=40,crash_before_write=2") == FaultSpec(
        crash_before_write=2, fail_writes_from=40
    )
    assert parse_faults("fail_writes_on=SIGUSR1") == FaultSpec(fail_writes_on=signal.SIGUSR1)
    assert FaultSpec().empty
    assert not parse_faults("fail_writes_from=1").empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected name=value"),
        ("crash_at_write", "expected name=value"),
        ("crash_after_write=", "expected name=value"),
        ("crash_after_write=0", "positive integer"),
        ("crash_after_write=-1", "positive integer"),
        ("crash_after_write=1.5", "positive integer"),
        ("crash_after_write=x", "positive integer"),
        ("fail_writes_from=3,fail_writes_from=4", "given twice"),
        ("crash_before_write=1,crash_after_write=2", "exclude each other"),
        ("fail_writes_on=SIGKILL", "SIGUSR1"),
        ("crash_at_wrte=3", "unknown fault 'crash_at_wrte'"),
        ("crash_after_write=3,", "expected name=value"),
    ],
)
def test_parse_is_strict(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_faults(text)


def test_without_faults_it_passes_everything_through() -> None:
    kv, inner = faulty(FaultSpec())
    assert isinstance(kv, KV)
    for n in range(5):
        write(kv, n)
    assert kv.writes == 5
    assert inner.data.writes == 5
    assert kv.get(b"k3") == b"v"
    assert [key for key, _ in kv.scan(b"k", b"l")] == [b"k%d" % n for n in range(5)]
    assert kv.location == inner.location
    kv.close()
    assert kv.closed
    assert inner.closed


def test_crash_before_write_k_leaves_it_unwritten() -> None:
    kv, inner = faulty(FaultSpec(crash_before_write=3))
    write(kv, 1)
    write(kv, 2)
    with pytest.raises(Crashed):
        write(kv, 3)
    assert inner.get(b"k2") == b"v"
    assert inner.get(b"k3") is None


def test_crash_after_write_k_leaves_it_written() -> None:
    kv, inner = faulty(FaultSpec(crash_after_write=2))
    write(kv, 1)
    with pytest.raises(Crashed):
        write(kv, 2)
    assert inner.get(b"k2") == b"v"
    assert inner.data.synced_writes == 2


def test_writes_fail_from_k_on_and_reads_still_work() -> None:
    kv, inner = faulty(FaultSpec(fail_writes_from=3))
    write(kv, 1)
    write(kv, 2)
    for n in (3, 4, 5):
        with pytest.raises(StoreIOError, match=f"injected write failure \\(write {n}"):
            write(kv, n)
    assert inner.data.writes == 2
    assert kv.get(b"k1") == b"v"
    assert kv.failing


def test_fail_now_switches_at_run_time() -> None:
    kv, inner = faulty(FaultSpec())
    write(kv, 1)
    assert not kv.failing
    kv.fail_now()
    with pytest.raises(StoreIOError):
        write(kv, 2)
    assert inner.data.writes == 1


def test_a_store_over_failing_writes_raises_storage_errors() -> None:
    kv, _ = faulty(FaultSpec(fail_writes_from=2))  # write 1: the store's meta
    store = Store(kv, chain_id="test")
    with pytest.raises(StoreIOError):
        store.remove_journal([1])


def test_the_signal_switches_writes_to_failing() -> None:
    kv, _ = faulty(FaultSpec(fail_writes_on=signal.SIGUSR2))
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        kv.install_signal_handler()
        write(kv, 1)
        os.kill(os.getpid(), signal.SIGUSR2)  # the handler runs before the next bytecode
        with pytest.raises(StoreIOError):
            write(kv, 2)
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_the_real_crash_is_a_sigkill_and_the_synced_write_survives(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from storage.faults import FaultSpec, FaultyKV
        from storage.leveldb import LevelDBKV
        kv = FaultyKV(LevelDBKV({str(tmp_path / "db")!r}), FaultSpec(crash_after_write=2))
        kv.write([(b"a", b"1")], sync=True)
        kv.write([(b"b", b"2")], sync=True)
        print("still alive")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "still alive" not in done.stdout
    assert "fault injection: crashing after storage write 2" in done.stderr
    from storage.leveldb import LevelDBKV

    kv = LevelDBKV(tmp_path / "db")
    try:
        assert (kv.get(b"a"), kv.get(b"b")) == (b"1", b"2")
    finally:
        kv.close()
