"""Storage fault injection: a `KV` wrapper that crashes the process or fails
writes at a chosen write, for crash-point and disk-failure tests.

It is enabled only explicitly: a node wraps its LevelDB in `FaultyKV` when
the environment variable `SEQUENCER_FAULT_STORAGE` is set (`node.daemon.runtime`),
and never otherwise. The value is a comma-separated list of `name=value`:

    crash_before_write=K   kill the process (SIGKILL to itself: no cleanup,
                           no flush, no close) when write K is about to run,
                           so write K never reaches the database
    crash_after_write=K    the same right after write K returned (so it is
                           in the database, and on disk if it was synced)
    fail_writes_from=K     write K and every later write raise
                           `StoreIOError`, as a failed fsync or a full disk
                           would (the database is left untouched)
    fail_writes_on=SIGUSR1 writes fail from the moment the process receives
                           that signal (SIGUSR1 or SIGUSR2): the test picks
                           the moment, the node need not count writes

Writes are counted from 1, every `KV.write` call (one atomic batch) counts
once, whoever makes it (the consensus driver, the journal thread, the
batcher), from the moment the database is opened. Reads are never touched.
Example: `SEQUENCER_FAULT_STORAGE="crash_after_write=17"`.

`parse_faults` is strict: an unknown name, a repeated name, a value that is
not a positive integer, two crash points, or an empty item is a
`ValueError` naming the item, so a typo cannot silently test nothing.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from storage.errors import StoreIOError
from storage.kv import KV, WriteOp

__all__ = ["ENV_VAR", "FaultSpec", "FaultyKV", "parse_faults"]

ENV_VAR = "SEQUENCER_FAULT_STORAGE"

_SIGNALS = {"SIGUSR1": signal.SIGUSR1, "SIGUSR2": signal.SIGUSR2}
_COUNTS = ("crash_before_write", "crash_after_write", "fail_writes_from")


@dataclasses.dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to inject; None everywhere is no fault at all."""

    crash_before_write: int | None = None
    crash_after_write: int | None = None
    fail_writes_from: int | None = None
    fail_writes_on: signal.Signals | None = None

    def __post_init__(self) -> None:
        for name in _COUNTS:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if self.crash_before_write is not None and self.crash_after_write is not None:
            raise ValueError("crash_before_write and crash_after_write exclude each other")

    @property
    def empty(self) -> bool:
        return self == FaultSpec()


def parse_faults(text: str) -> FaultSpec:
    """The spec in `text` (see the module docstring); ValueError if malformed."""
    values: dict[str, object] = {}
    for item in text.split(","):
        item = item.strip()
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"expected name=value, got {item!r}")
        if name in values:
            raise ValueError(f"{name} is given twice")
        if name in _COUNTS:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            values[name] = int(value)
        elif name == "fail_writes_on":
            if value not in _SIGNALS:
                raise ValueError(
                    f"fail_writes_on must be one of {', '.join(_SIGNALS)}, got {value!r}"
                )
            values[name] = _SIGNALS[value]
        else:
            known = ", ".join((*_COUNTS, "fail_writes_on"))
            raise ValueError(f"unknown fault {name!r} (known: {known})")
    return FaultSpec(**values)  # type: ignore[arg-type]


def _kill_self() -> None:
    """Die as kill -9 would: nothing is flushed or closed."""
    os.kill(os.getpid(), signal.SIGKILL)


class FaultyKV:
    """A `KV` that passes everything to `inner`, but crashes or fails as `spec` says.

    `crash` is how the process dies (SIGKILL to itself; tests pass a function
    that raises). `fail_now()` switches writes to failing at run time (the
    signal handler of `fail_writes_on` calls it). Writes may come from worker
    threads (the journal), so the counter is taken under a lock.
    """

    __slots__ = ("_crash", "_failing", "_inner", "_lock", "_spec", "writes")

    def __init__(
        self, inner: KV, spec: FaultSpec, *, crash: Callable[[], object] = _kill_self
    ) -> None:
        self._inner = inner
        self._spec = spec
        self._crash = crash
        self._lock = threading.Lock()
        self._failing = False
        self.writes = 0  # write calls seen, including failed ones

    def fail_now(self) -> None:
        """From now on every write raises `StoreIOError`."""
        self._failing = True

    def install_signal_handler(self) -> None:
        """Make `spec.fail_writes_on` switch writes to failing (main thread only)."""
        if self._spec.fail_writes_on is not None:
            signal.signal(self._spec.fail_writes_on, lambda _signum, _frame: self.fail_now())

    @property
    def failing(self) -> bool:
        return self._failing

    @property
    def location(self) -> str:
        return self._inner.location

    @property
    def closed(self) -> bool:
        return self._inner.closed

    def get(self, key: bytes) -> bytes | None:
        return self._inner.get(key)

    def scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._inner.scan(start, stop)

    def close(self) -> None:
        self._inner.close()

    def write(self, ops: Sequence[WriteOp], *, sync: bool) -> None:
        spec = self._spec
        with self._lock:
            self.writes += 1
            number = self.writes
            if spec.fail_writes_from is not None and number >= spec.fail_writes_from:
                self._failing = True
            if self._failing:
                raise StoreIOError(
                    f"cannot write database {self.location}: injected write failure "
                    f"(write {number}, {ENV_VAR})"
                )
            what = f"storage write {number} ({len(ops)} keys, {'synced' if sync else 'not synced'})"
            if number == spec.crash_before_write:
                self._announce(f"before {what}")
                self._crash()
            self._inner.write(ops, sync=sync)
            if number == spec.crash_after_write:
                self._announce(f"after {what}")
                self._crash()

    def _announce(self, when: str) -> None:
        # One line on stderr, so a test's log shows where the node died.
        sys.stderr.write(f"fault injection: crashing {when} ({ENV_VAR})\n")
        sys.stderr.flush()

    def __repr__(self) -> str:
        return f"FaultyKV({self._inner!r}, {self._spec}, writes={self.writes})"
