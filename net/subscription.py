"""What a subscriber of a topic reads: deliveries, each peer's in turn.

A bounded trio memory channel would do, but for fairness: one channel is
first-in first-out over every peer, so a peer that floods a topic fills it
and the messages of the others are dropped. A `Subscription` keeps a
bounded queue per peer (`net.fair.FairQueue`) and hands them out in turn;
the flooding peer loses only its own messages.

    subscription = node.subscribe(Topic.CONSENSUS)
    async for delivery in subscription:
        ...
"""

from __future__ import annotations

import trio

from net.fair import FairQueue
from net.gossip import Delivery

__all__ = ["Subscription"]


class Subscription:
    """Deliveries of one topic, round-robin over the peers they came from."""

    def __init__(self, per_peer: int, bytes_per_peer: int | None = None) -> None:
        self._queue: FairQueue[Delivery] = FairQueue(per_peer, bytes_per_peer)
        self._arrived = trio.Event()
        self._ended = False  # the node stopped: what is queued is all there is
        self.closed = False  # the subscriber closed it

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    def offer(self, delivery: Delivery) -> bool:
        """Queue a delivery (the node calls this); False when its peer's queue is full."""
        if not self._queue.put(delivery.peer, delivery, len(delivery.data)):
            return False
        self._arrived.set()
        return True

    def end(self) -> None:
        """No more deliveries: readers get what is queued, then `EndOfChannel`."""
        self._ended = True
        self._arrived.set()

    def close(self) -> None:
        """Unsubscribe; what is queued is dropped."""
        self.closed = True
        self._arrived.set()

    def receive_nowait(self) -> Delivery:
        if self.closed:
            raise trio.ClosedResourceError("this subscription was closed")
        if self._queue:
            return self._queue.get()
        if self._ended:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Delivery:
        # A checkpoint on every call, as a memory channel's: a reader that
        # always finds something waiting still lets the other tasks run.
        await trio.lowlevel.checkpoint()
        while True:
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                if self._arrived.is_set():
                    self._arrived = trio.Event()
                await self._arrived.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Delivery:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
