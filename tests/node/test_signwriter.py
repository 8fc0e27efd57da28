"""The signing-state writer (node/daemon/signwriter.py): states written on a
worker thread, in order and coalesced; sends held until durable; a failed
write sends nothing more."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import trio

from node.daemon.signwriter import SigningStateWriter
from sequencer.types import NIL, SigningState, SignStep
from storage import StoreIOError


def state(height: int) -> SigningState:
    return SigningState(height, 0, SignStep.PREVOTE, NIL, NIL)


class Disk:
    """A save that blocks until released, from another thread."""

    def __init__(self, fail: bool = False) -> None:
        self.written: list[int] = []
        self.gate = threading.Event()
        self.fail = fail
        self.threads: set[int] = set()

    def save(self, s: SigningState) -> None:
        self.threads.add(threading.get_ident())
        assert self.gate.wait(5)
        if self.fail:
            raise StoreIOError("disk full")
        self.written.append(s.height)


async def _until(condition: Callable[[], object], what: str) -> None:
    with trio.fail_after(5):  # `what` names the wait in a failure's traceback
        while not condition():
            await trio.sleep(0.001)


def test_nothing_pending_sends_at_once() -> None:
    writer = SigningStateWriter(Disk().save)
    sent: list[str] = []
    writer.when_durable(lambda: sent.append("a"))
    assert sent == ["a"]


def test_a_send_waits_for_the_write_the_loop_runs_meanwhile_and_states_coalesce() -> None:
    disk = Disk()
    sent: list[str] = []
    writer = SigningStateWriter(disk.save)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            writer.save(state(1))
            writer.when_durable(lambda: sent.append("prevote 1"))
            await _until(lambda: disk.threads, "the first write under way")
            # The loop is not blocked by the write: it hands over more.
            writer.save(state(2))
            writer.when_durable(lambda: sent.append("precommit 1"))
            writer.save(state(3))
            writer.when_durable(lambda: sent.append("prevote 2"))
            assert sent == []
            disk.gate.set()
            await _until(lambda: not writer.pending, "all durable")
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert sent == ["prevote 1", "precommit 1", "prevote 2"]  # in the order handed over
    assert disk.written == [1, 3]  # 2 was replaced by 3 before its turn
    assert threading.get_ident() not in disk.threads  # written off the loop's thread


def test_a_failed_write_drops_what_waits_and_stops() -> None:
    disk = Disk(fail=True)
    disk.gate.set()
    sent: list[str] = []
    failures: list[tuple[int, str]] = []
    writer = SigningStateWriter(
        disk.save, on_failure=lambda s, error: failures.append((s.height, str(error)))
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            writer.save(state(7))
            writer.when_durable(lambda: sent.append("vote"))
            await _until(lambda: writer.failed, "the failure")
            writer.save(state(8))
            writer.when_durable(lambda: sent.append("later"))
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert sent == []
    assert failures == [(7, "disk full")]
    assert writer.held == 0


@pytest.mark.parametrize(("held_max", "sends", "kept"), [(3, 2, 2), (3, 3, 3), (3, 5, 3)])
def test_held_sends_are_bounded_oldest_dropped(held_max: int, sends: int, kept: int) -> None:
    writer = SigningStateWriter(Disk().save, held_max=held_max)
    writer.save(state(1))
    for _ in range(sends):
        writer.when_durable(lambda: None)
    assert writer.held == kept
    assert writer.dropped == sends - kept
