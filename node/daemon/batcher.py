"""The node's L1 batch poster: finality events in, batches out.

    chain.finalized  ->  feeder (BatchBuilder)  ->  bounded channel  ->  poster  ->  sink
                                                                          |
                                                          store: batch records (L prefix)

- Height h is batched only once h+1 is final: the certificate of h is then
  the canonical one that block h+1 links to, and `last_commit_id` of a batch
  ending at h is block h+1's `last_commit_id`.
- The L1 is the source of truth at start-up: whatever it already holds is
  recorded and the builder resumes after its last batch, so a restart
  neither repeats nor skips a batch.
- While the L1 is down the poster retries with capped exponential backoff;
  the channel fills, the feeder stops taking events, and consensus goes on:
  the lag in blocks is a metric and part of `/status`.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import trio

from node.daemon.chain import Chain
from node.daemon.consensus import wall_ms
from node.daemon.limits import BATCHER_RETRY_S_MAX, BATCHER_RETRY_S_MIN, BATCHER_TICK_S
from sequencer.batcher import Batch, BatchBuilder, BatchConfig
from sequencer.codec import decode, encode
from sequencer.ids import batch_commitment
from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, Sink

__all__ = ["BatchRecord", "BatcherService"]

log = logging.getLogger("sequencer.batcher")


class BatchRecord(msgspec.Struct, array_like=True, frozen=True):
    """What the store keeps of a batch (`/batches`)."""

    number: int
    first_height: int
    last_height: int
    commitment: bytes
    encoding: bytes
    reference: str
    state: str  # "posted" | "confirmed"
    posted_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_number": self.number,
            "first_height": self.first_height,
            "last_height": self.last_height,
            "commitment": self.commitment.hex(),
            "encoding": self.encoding.hex(),
            "l1_reference": self.reference,
            "state": self.state,
            "posted_ms": self.posted_ms,
        }


class BatcherService:
    def __init__(self, chain: Chain, sink: Sink, config: BatchConfig, backlog_max: int) -> None:
        self.chain = chain
        self.sink = sink
        self.config = config
        self._backlog_max = backlog_max
        self.builder: BatchBuilder | None = None
        self.last_posted_height = 0
        self.posted = 0
        self.errors = 0
        self.failure: str | None = None  # set when posting stopped for good (a conflict)
        self.l1_reachable = False

    # ------------------------------------------------------------- inspection

    @property
    def lag_blocks(self) -> int:
        return max(0, self.chain.height - self.last_posted_height)

    def status(self) -> dict[str, Any]:
        return {
            "sink": self.sink.name,
            "batches_posted": self.posted,
            "last_posted_height": self.last_posted_height,
            "lag_blocks": self.lag_blocks,
            "errors": self.errors,
            "l1_reachable": self.l1_reachable,
            "failure": self.failure,
        }

    def records(self, first: int, limit: int) -> list[BatchRecord]:
        entries = []
        for _number, data in self.chain.store.batch_records(first):
            entries.append(decode(data, BatchRecord))
            if len(entries) >= limit:
                break
        return entries

    def record(self, number: int) -> BatchRecord | None:
        data = self.chain.store.batch_record(number)
        return None if data is None else decode(data, BatchRecord)

    def covering(self, height: int) -> BatchRecord | None:
        """The batch that holds block `height`, None if none was posted yet.

        Batches are numbered from 0 and their heights are contiguous, so a
        search by number finds it in O(log batches) reads: a doubling probe
        for an upper bound, then bisection."""
        if not 1 <= height <= self.last_posted_height:
            return None
        low, high = (
            0,
            1,
        )  # record(low) starts at or below height; record(high) does not, or is absent
        while (probe := self.record(high)) is not None and probe.first_height <= height:
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            probe = self.record(middle)
            if probe is not None and probe.first_height <= height:
                low = middle
            else:
                high = middle
        found = self.record(low)
        if found is None or not found.first_height <= height <= found.last_height:
            return None
        return found

    # ---------------------------------------------------------------- running

    async def run(self) -> None:
        try:
            await self._recover()
            send, receive = trio.open_memory_channel[Batch](self._backlog_max)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._feed, send)
                nursery.start_soon(self._post, receive)
        finally:
            await self.sink.aclose()

    async def _recover(self) -> None:
        """Record what the L1 holds; resume the builder after its last batch."""
        on_l1 = await self._retry("reading the L1", self.sink.posted)
        for entry in on_l1:
            batch = entry.batch
            known = self.record(batch.batch_number)
            if known is None or (known.state == "posted" and entry.confirmed):
                state = "confirmed" if entry.confirmed else "posted"
                self._save(
                    batch.batch_number,
                    batch.first_height,
                    batch.last_height,
                    entry.encoding,
                    batch_commitment(batch),
                    entry.reference,
                    state,
                )
        next_number, next_height = 0, 1
        if on_l1:
            last = on_l1[-1].batch
            next_number, next_height = last.batch_number + 1, last.last_height + 1
            self.last_posted_height = last.last_height
        self.posted = len(on_l1)
        self.builder = BatchBuilder(
            self.chain.genesis.chain_id, self.config, next_number, next_height
        )
        log.info(
            "batcher resumes at batch %d, height %d (%s L1)",
            next_number,
            next_height,
            self.sink.name,
        )

    async def _feed(self, send: trio.MemorySendChannel[Batch]) -> None:
        builder = self.builder
        assert builder is not None
        async with send, trio.open_nursery() as nursery:
            nursery.start_soon(self._tick, send)
            previous = None
            async for event in self.chain.finalized(builder.next_height):
                if previous is not None:
                    # The canonical certificate of `previous` is the one this block names.
                    # And its id: the next block's parent id (checked at commit).
                    header = event.block.header
                    height = previous.block.header.height
                    for batch in builder.add(
                        height, header.parent_id, header.last_commit_id, previous.size, wall_ms()
                    ):
                        await send.send(batch)  # blocks while the backlog is full
                previous = event

    async def _tick(self, send: trio.MemorySendChannel[Batch]) -> None:
        builder = self.builder
        assert builder is not None
        while True:
            await trio.sleep(BATCHER_TICK_S)
            for batch in builder.tick(wall_ms()):
                await send.send(batch)

    async def _post(self, receive: trio.MemoryReceiveChannel[Batch]) -> None:
        async for batch in receive:
            commitment = batch.commitment
            try:
                reference = await self._retry(
                    f"posting batch {commitment.batch_number}",
                    lambda b=batch: self.sink.post(b.commitment, b.encoding),
                )
            except L1ConflictError as error:
                self.failure = str(error)
                log.error("batcher stopped: %s", error)
                return
            self._save(
                commitment.batch_number,
                commitment.first_height,
                commitment.last_height,
                batch.encoding,
                batch.digest,
                reference,
                "posted",
            )
            self.posted += 1
            self.last_posted_height = commitment.last_height
            log.info(
                "posted batch %d (heights %d-%d) %s",
                commitment.batch_number,
                commitment.first_height,
                commitment.last_height,
                reference,
            )
            await self._retry(
                f"confirming batch {commitment.batch_number}",
                lambda r=reference: self.sink.wait_confirmed(r),
            )
            self._save(
                commitment.batch_number,
                commitment.first_height,
                commitment.last_height,
                batch.encoding,
                batch.digest,
                reference,
                "confirmed",
            )

    async def _retry(self, what: str, call: Any) -> Any:
        delay = BATCHER_RETRY_S_MIN
        while True:
            try:
                result = await call()
                self.l1_reachable = True
                return result
            except L1UnavailableError as error:
                self.errors += 1
                self.l1_reachable = False
                log.warning("%s: %s; retrying in %.1f s", what, error, delay)
            except L1ConflictError:
                self.errors += 1
                raise
            except L1Error as error:
                self.errors += 1
                log.error("%s: %s; retrying in %.1f s", what, error, delay)
            await trio.sleep(delay)
            delay = min(BATCHER_RETRY_S_MAX, delay * 2)

    def _save(
        self,
        number: int,
        first: int,
        last: int,
        encoding: bytes,
        digest: bytes,
        reference: str,
        state: str,
    ) -> None:
        record = BatchRecord(
            number,
            first,
            last,
            digest,
            encoding,
            reference,
            state,
            wall_ms(),
        )
        self.chain.store.save_batch_record(number, encode(record))
