"""The RPC benchmark's wallet load: single `POST /tx` at a steady rate over
every node, sent over raw keep-alive connections (`node.lab.rawhttp`), each
transaction timed from its due time until its block's event arrives from
the node it went to (`node.lab.finality`).
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial

import httpx
import trio

from node.lab.devnet import Devnet
from node.lab.finality import (
    LoadResult,
    Tracker,
    follow_events,
    report_progress,
)
from node.lab.harness import say
from node.lab.presign import Signed
from node.lab.rawhttp import Connection, HttpError
from node.lab.rpcbench_drive import REQUEST_TIMEOUT_S
from node.ops.procs import get_json

__all__ = ["WALLET_DRAIN_S", "not_final", "wallet_load"]

WALLET_DRAIN_S = 30.0


async def wallet_load(
    urls: Sequence[str], signed: Sequence[Signed], rate: float, connections: int, label: str
) -> tuple[LoadResult, int]:
    """Single `POST /tx` of `signed` at `rate` over `urls`, each timed from its
    due time until its block's event arrives on the node it went to.

    `node.lab.loadgen.run_load` does the same over httpx, whose connection pool
    scans every waiting request for every connection: at a few hundred
    single requests per second its client takes a whole core and sets the
    pace itself. Here each node has `connections` keep-alive connections fed
    from a queue; finality comes from each node's `/events`, as there.
    Returns the result and how often an event stream broke (and resumed)."""
    tracker = Tracker(signed, window=len(signed), label=label)
    breaks: Counter[str] = Counter()
    client = httpx.AsyncClient(timeout=httpx.Timeout(60.0))
    async with client, trio.open_nursery() as nursery:
        for node, url in enumerate(urls):
            await nursery.start(
                partial(follow_events, client, url, node, tracker, on_break=_counted(breaks, url))
            )
        queues = [trio.open_memory_channel[int](math.inf) for _ in urls]
        for (_, receive), url in zip(queues, urls, strict=True):
            for _ in range(connections):
                nursery.start_soon(_wallet_sender, url, receive.clone(), tracker)
        started = time.perf_counter()
        nursery.start_soon(report_progress, tracker, started)
        tracker.lagged_s = await _pace(signed, rate, [send for send, _ in queues], tracker, started)
        with trio.move_on_after(WALLET_DRAIN_S):
            await tracker.done.wait()
        print(tracker.progress(started), file=sys.stderr, flush=True)
        nursery.cancel_scope.cancel()
    return tracker.result(), sum(breaks.values())


async def _pace(
    signed: Sequence[Signed],
    rate: float,
    queues: Sequence[trio.MemorySendChannel[int]],
    tracker: Tracker,
    started: float,
) -> float:
    """Hand each transaction to its node's queue when due; the worst lag."""
    lag = 0.0
    for i, item in enumerate(signed):
        due = started + i / rate
        now = time.perf_counter()
        if due > now:
            await trio.sleep(due - now)
        else:
            lag = max(lag, now - due)
        tracker.sent[i] = max(due, now)  # queueing for a connection counts as latency
        queues[item.node].send_nowait(i)
    return lag


async def _wallet_sender(url: str, queue: trio.MemoryReceiveChannel[int], tracker: Tracker) -> None:
    connection = Connection(url)
    try:
        async for i in queue:
            status = await _post_tx(connection, tracker.signed[i].body)
            if status == 202:
                tracker.on_ack(i, time.perf_counter())
            else:
                tracker.on_refused(i, "http error" if status == 0 else f"http {status}")
    finally:
        await connection.close()


async def _post_tx(connection: Connection, body: bytes) -> int:
    """The status of `POST /tx`, 0 if no answer came. A broken connection is
    retried once on a new one: the server closes keep-alive connections idle
    for 5 s (Hypercorn's keep_alive_timeout), racing the next request. If
    the first attempt got in after all, the retry's 409 (duplicate) means
    it was accepted."""
    for attempt in range(2):
        try:
            with trio.fail_after(REQUEST_TIMEOUT_S):
                status, _ = await connection.request("POST", "/tx", body)
        except HttpError:
            continue
        except trio.TooSlowError:
            await connection.close()
            return 0
        return 202 if attempt and status == 409 else status
    return 0


def _counted(breaks: Counter[str], url: str) -> Callable[[str], None]:
    def on_break(why: str) -> None:
        breaks[url] += 1
        say("rpcbench", why)

    return on_break


def not_final(
    net: Devnet, load: LoadResult, signed: Sequence[Signed], asked_max: int = 200
) -> dict[str, int]:
    """What became of acknowledged transactions whose finality was not seen
    within the drain: each node is asked (`GET /tx/{id}`), up to `asked_max`."""
    missing = [
        i
        for i, (acked, final) in enumerate(zip(load.acked, load.final, strict=True))
        if not math.isnan(acked) and math.isnan(final)
    ]
    states: Counter[str] = Counter()
    for i in missing[:asked_max]:
        item = signed[i]
        code, body = get_json(f"{net.urls[item.node]}/tx/{item.id.hex()}")
        states[str(body.get("status")) if code == 200 and body else f"http {code}"] += 1
    return dict(states)
