"""The per-peer queues of the receive path and of subscriptions: a source
that floods loses only its own items, and the others keep their turns."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from net.fair import FairQueue
from net.gossip import Delivery
from net.subscription import Subscription
from net.wire import Topic


def drain(queue: FairQueue[str]) -> list[str]:
    return [queue.get() for _ in range(len(queue))]


def test_sources_take_turns_whatever_they_queued() -> None:
    queue: FairQueue[str] = FairQueue(per_source=100)
    for i in range(50):
        queue.put("flood", f"f{i}")
    queue.put("a", "a0")
    queue.put("a", "a1")
    queue.put("b", "b0")
    # The flooder queued first and most; the others still come within a turn.
    assert drain(queue)[:7] == ["f0", "a0", "b0", "f1", "a1", "f2", "f3"]


def test_a_full_source_drops_its_own_items_only() -> None:
    queue: FairQueue[str] = FairQueue(per_source=3)
    results = [queue.put("flood", f"f{i}") for i in range(10)]
    assert results == [True] * 3 + [False] * 7
    assert queue.put("honest", "h0")
    assert (len(queue), queue.dropped) == (4, 7)
    assert sorted(drain(queue)) == ["f0", "f1", "f2", "h0"]


def test_the_byte_bound_counts_what_waits() -> None:
    queue: FairQueue[str] = FairQueue(per_source=100, bytes_per_source=10)
    assert queue.put("a", "big", size=25)  # alone: larger than the bound, still taken
    assert not queue.put("a", "small", size=1)
    assert queue.get() == "big"
    assert queue.put("a", "x", size=6)
    assert queue.put("a", "y", size=4)
    assert not queue.put("a", "z", size=1)
    assert queue.get() == "x"
    assert queue.put("a", "z", size=6)
    assert drain(queue) == ["y", "z"]


def test_an_idle_source_holds_nothing() -> None:
    queue: FairQueue[int] = FairQueue(per_source=2)
    for source in range(1_000):
        queue.put(source, source)
        assert queue.get() == source
    assert (len(queue), len(queue._queues), len(queue._ready)) == (0, 0, 0)
    with pytest.raises(IndexError):
        queue.get()


def delivery(peer: bytes, data: bytes) -> Delivery:
    return Delivery(Topic.CONSENSUS, data, b"i" * 32, peer, peer[:8])


def test_a_subscription_reads_peers_in_turn_and_ends() -> None:
    trio.run(_reads_peers_in_turn_and_ends)


async def _reads_peers_in_turn_and_ends() -> None:
    subscription = Subscription(per_peer=4)
    for i in range(10):
        subscription.offer(delivery(b"F" * 32, b"flood%d" % i))
    subscription.offer(delivery(b"H" * 32, b"vote"))
    assert subscription.dropped == 6
    first = [(await subscription.receive()).data for _ in range(2)]
    assert first == [b"flood0", b"vote"]
    subscription.end()
    assert [d.data async for d in subscription] == [b"flood1", b"flood2", b"flood3"]


def test_a_reader_waits_for_the_next_delivery() -> None:
    trio.run(_reader_waits)


async def _reader_waits() -> None:
    subscription = Subscription(per_peer=4)
    got: list[bytes] = []

    async def reader() -> None:
        got.append((await subscription.receive()).data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        subscription.offer(delivery(b"H" * 32, b"late"))
    assert got == [b"late"]
    with pytest.raises(trio.WouldBlock):
        subscription.receive_nowait()
    subscription.close()
    with pytest.raises(trio.ClosedResourceError):
        subscription.receive_nowait()
