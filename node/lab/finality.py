"""Timing offered transactions to finality: the bookkeeping of one load run
(`Tracker`), what it comes to (`LoadResult`), and the followers of each
node's `/events` stream.

A transaction is final when its block's event arrives from the node it was
sent to. Times are `time.perf_counter` seconds.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence

import httpx
import msgspec
import trio

from node.lab.presign import Signed
from node.lab.stats import latency_summary

__all__ = [
    "BlockEvent",
    "LoadResult",
    "Tracker",
    "follow_events",
    "mark_final",
    "report_progress",
]

PROGRESS_EVERY_S = 2.0
RECONNECT_S = 0.2


@dataclasses.dataclass
class LoadResult:
    """What happened to every offered transaction; times are perf_counter seconds."""

    sent: list[float]
    acked: list[float]
    final: list[float]
    refused: Counter[str]
    lagged_s: float  # how far behind its schedule a fixed-rate run fell, at worst
    # Transactions sent again after a refusal that passes, by its reason.
    retried: Counter[str] = dataclasses.field(default_factory=Counter)

    @property
    def offered(self) -> int:
        return len(self.sent)

    def summary(self) -> dict[str, object]:
        acked = [i for i, t in enumerate(self.acked) if not math.isnan(t)]
        final = [i for i in acked if not math.isnan(self.final[i])]
        latencies = sorted((self.final[i] - self.sent[i]) * 1000 for i in final)
        started = min(t for t in self.sent if not math.isnan(t)) if acked else 0.0
        finals = sorted(self.final[i] for i in final)
        duration = (finals[-1] - started) if finals else 0.0
        return {
            "offered": self.offered,
            "acknowledged": len(acked),
            "refused": dict(self.refused),
            "finalized": len(final),
            "lost": len(acked) - len(final),
            "duration_s": round(duration, 3),
            "committed_tx_s": round(len(final) / duration, 1) if duration else 0.0,
            "steady_tx_s": round(_steady_rate(finals), 1),
            "latency_ms": latency_summary(latencies),
            "lagged_s": round(self.lagged_s, 3),
            "retried": dict(self.retried),
        }


def _steady_rate(finals: list[float]) -> float:
    """Commit rate between the 10th and 90th percentile of finality times:
    without the ramp-up and the tail."""
    if len(finals) < 10:
        return 0.0
    low, high = finals[len(finals) // 10], finals[len(finals) * 9 // 10]
    return 0.8 * len(finals) / (high - low) if high > low else 0.0


class Tracker:
    """Shared state of one run: the times, the pending count, progress output."""

    def __init__(self, signed: Sequence[Signed], window: int, label: str) -> None:
        nan = math.nan
        self.signed = signed
        self.index = {s.id.hex(): i for i, s in enumerate(signed)}
        self.sent = [nan] * len(signed)
        self.acked = [nan] * len(signed)
        self.final = [nan] * len(signed)
        self.refused: Counter[str] = Counter()
        self.outstanding = 0  # acknowledged, not yet final
        self.finished = 0  # final or refused
        self.window = window
        self.room = trio.Condition()
        self.done = trio.Event()
        self.label = label
        self.lagged_s = 0.0
        self.retried: Counter[str] = Counter()

    def on_ack(self, i: int, now: float) -> None:
        if math.isnan(self.final[i]):
            self.acked[i] = now
            self.outstanding += 1
        else:  # the block's event came first
            self.acked[i] = min(now, self.final[i])

    def on_refused(self, i: int, code: str) -> None:
        self.refused[code] += 1
        self._finish()

    async def on_final(self, i: int, now: float) -> None:
        if not math.isnan(self.final[i]):
            return
        self.final[i] = now
        if not math.isnan(self.acked[i]):
            self.outstanding -= 1
            async with self.room:
                self.room.notify_all()
        self._finish()

    def _finish(self) -> None:
        self.finished += 1
        if self.finished >= len(self.signed):
            self.done.set()

    async def wait_for_room(self) -> None:
        async with self.room:
            while self.outstanding >= self.window:
                await self.room.wait()

    def progress(self, started: float) -> str:
        sent = sum(1 for t in self.sent if not math.isnan(t))
        final = sum(1 for t in self.final if not math.isnan(t))
        elapsed = time.perf_counter() - started
        line = (
            f"[{self.label}] {elapsed:6.1f} s  sent {sent}  final {final}"
            f"  waiting {self.outstanding}  refused {sum(self.refused.values())}"
        )
        if self.retried:
            line += f"  retried {sum(self.retried.values())}"
        if self.refused:
            # The reasons, most common first: a run that starts refusing says why.
            line += " (" + ", ".join(f"{c} {n}" for c, n in self.refused.most_common(3)) + ")"
        return line

    def result(self) -> LoadResult:
        return LoadResult(
            self.sent, self.acked, self.final, self.refused, self.lagged_s, self.retried
        )


async def report_progress(tracker: Tracker, started: float) -> None:
    """The tracker's progress line on stderr, every `PROGRESS_EVERY_S`, until cancelled."""
    while True:
        await trio.sleep(PROGRESS_EVERY_S)
        print(tracker.progress(started), file=sys.stderr, flush=True)


class BlockEvent(msgspec.Struct):
    """The part of a block's event a follower reads."""

    tx_ids: list[str]


async def mark_final(tx_ids: list[str], node: int, tracker: Tracker) -> None:
    """The tracked transactions among `tx_ids` that were sent to `node` are final now."""
    now = time.perf_counter()
    for hex_id in tx_ids:
        i = tracker.index.get(hex_id)
        if i is not None and tracker.signed[i].node == node:
            await tracker.on_final(i, now)


async def follow_events(
    client: httpx.AsyncClient,
    url: str,
    node: int,
    tracker: Tracker,
    committed: set[str] | None = None,
    *,
    on_break: Callable[[str], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Mark this node's transactions final as their blocks' events arrive;
    `committed`, when given, also collects the tracked ids this node committed;
    `on_break` hears why a stream broke.

    From the node's tip at the start. A node cuts a stream its reader does
    not drain in time (its write deadline), which on a saturated machine
    can happen to this reader too: it then reconnects after the last block
    it read, so no block is missed, and counts it in `tracker.retried`
    ("events_reconnect")."""
    decoder = msgspec.json.Decoder(BlockEvent)
    status = (await client.get(f"{url}/status")).json()
    next_height = int(status["height"]) + 1
    started = False
    while True:
        params = {"full": "false", "from": str(next_height)}
        try:
            async with client.stream("GET", f"{url}/events", params=params, timeout=None) as events:
                events.raise_for_status()
                if not started:
                    started = True
                    task_status.started()
                height = next_height
                async for line in events.aiter_lines():
                    if line.startswith("id: "):
                        height = int(line[4:])
                    elif line.startswith("data: "):
                        ids = decoder.decode(line[6:]).tx_ids
                        if committed is not None:
                            committed.update(i for i in ids if i in tracker.index)
                        await mark_final(ids, node, tracker)
                        next_height = height + 1
        except (httpx.TransportError, httpx.HTTPStatusError) as error:
            if not started:
                raise
            if on_break is not None:
                on_break(f"{url}/events broke ({error}); resuming from height {next_height}")
        tracker.retried["events_reconnect"] += 1
        await trio.sleep(RECONNECT_S)
