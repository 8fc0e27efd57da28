"""The load runners of the benchmarks and chaos runs, over httpx.

`run_load` offers pre-signed transactions (`node.lab.presign`) at a fixed
rate or, with `rate=0`, as fast as the nodes take them (open loop, bounded by
`window`: at most that many acknowledged transactions may wait for
finality, so a saturated devnet is measured at its commit rate, not at its
mempool's capacity). It sends `POST /txs` batches or single `POST /tx`
requests, round robin over the nodes, and follows every node's `/events`
stream to time each transaction to finality (`node.lab.finality`).

`SteadyLoad` is a wallet-like steady load for chaos runs: each sender
retries its next transaction on other nodes until one acknowledges it, and
the acknowledged ids are kept for the exactly-once check.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence

import httpx
import trio

from node.lab.finality import LoadResult, Tracker, follow_events, report_progress
from node.lab.presign import Signed

__all__ = ["SteadyLoad", "run_load"]


async def run_load(
    urls: Sequence[str],
    signed: Sequence[Signed],
    *,
    rate: float = 0.0,
    batch: int = 100,
    concurrency: int = 4,
    window: int = 20_000,
    drain_s: float = 60.0,
    label: str = "load",
    progress: bool = True,
) -> LoadResult:
    """Offer `signed` to the nodes at `urls` and time each to finality.

    `batch` > 1 sends `POST /txs` of up to that many; `batch` = 1 sends
    `POST /tx`. `rate` is transactions per second over all nodes (0: as fast
    as `concurrency` requests in flight per node allow, with at most
    `window` transactions waiting for finality). After the last send, waits
    up to `drain_s` for the rest to finalize.
    """
    tracker = Tracker(signed, window, label)
    chunks = _chunks(signed, len(urls), batch)
    limits = httpx.Limits(max_connections=concurrency * len(urls) + len(urls) + 8)
    timeout = httpx.Timeout(60.0)
    client = httpx.AsyncClient(limits=limits, timeout=timeout)
    async with client, trio.open_nursery() as nursery:
        for node, url in enumerate(urls):
            await nursery.start(follow_events, client, url, node, tracker)
        started = time.perf_counter()
        if progress:
            nursery.start_soon(report_progress, tracker, started)
        async with trio.open_nursery() as senders:
            if rate > 0:
                senders.start_soon(_paced, client, urls, chunks, rate, tracker, senders)
            else:
                for node, url in enumerate(urls):
                    queue = [c for c in chunks if signed[c[0]].node == node]
                    for _ in range(concurrency):
                        senders.start_soon(_greedy, client, url, queue, tracker)
        with trio.move_on_after(drain_s):
            await tracker.done.wait()
        if progress:
            print(tracker.progress(started), file=sys.stderr, flush=True)
        nursery.cancel_scope.cancel()
    return tracker.result()


def _chunks(signed: Sequence[Signed], nodes: int, batch: int) -> list[list[int]]:
    """Indexes grouped into requests: each request goes to one node, and the
    requests alternate over the nodes in the order the transactions came."""
    per_node: list[list[int]] = [[] for _ in range(nodes)]
    for i, s in enumerate(signed):
        per_node[s.node].append(i)
    split = [[q[k : k + batch] for k in range(0, len(q), batch)] for q in per_node]
    ordered = []
    for round_ in range(max((len(s) for s in split), default=0)):
        ordered.extend(s[round_] for s in split if round_ < len(s))
    return ordered


async def _greedy(
    client: httpx.AsyncClient, url: str, queue: list[list[int]], tracker: Tracker
) -> None:
    while queue:
        chunk = queue.pop(0)
        await tracker.wait_for_room()
        await _send(client, url, chunk, tracker)


async def _paced(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    chunks: list[list[int]],
    rate: float,
    tracker: Tracker,
    nursery: trio.Nursery,
) -> None:
    started = time.perf_counter()
    offered = 0
    for chunk in chunks:
        due = started + offered / rate
        now = time.perf_counter()
        if due > now:
            await trio.sleep(due - now)
        else:
            tracker.lagged_s = max(tracker.lagged_s, now - due)
        offered += len(chunk)
        node = tracker.signed[chunk[0]].node
        nursery.start_soon(_send, client, urls[node], chunk, tracker)


async def _send(client: httpx.AsyncClient, url: str, chunk: list[int], tracker: Tracker) -> None:
    signed = tracker.signed
    single = len(chunk) == 1
    body = (
        signed[chunk[0]].body if single else b"[" + b",".join(signed[i].body for i in chunk) + b"]"
    )
    now = time.perf_counter()
    for i in chunk:
        tracker.sent[i] = now
    try:
        response = await client.post(
            f"{url}/tx" if single else f"{url}/txs",
            content=body,
            headers={"content-type": "application/json"},
        )
    except httpx.HTTPError as error:
        for i in chunk:
            tracker.on_refused(i, f"http: {type(error).__name__}")
        return
    now = time.perf_counter()
    answer = response.json()
    results = [answer] if single else answer.get("results", [])
    if len(results) != len(chunk):
        for i in chunk:
            tracker.on_refused(i, f"http {response.status_code}")
        return
    for i, result in zip(chunk, results, strict=True):
        if "tx_id" in result and "error" not in result:
            tracker.on_ack(i, now)
        else:
            tracker.on_refused(i, str(result.get("error", {}).get("code", "unknown")))


# ------------------------------------------------------------------ steady load


class SteadyLoad:
    """Wallet-like senders at a steady rate, for chaos runs.

    Each sender (its transactions from `presign`, nonces in order) sends one
    transaction at a time with `POST /tx`, first to its own node, and retries
    it on the next node (after `retry_s`) until some node answers 202, or
    says it already has it (`duplicate`, `nonce_too_low`: an earlier attempt
    whose answer was lost got in). A dead or paused node costs a timeout,
    never a gap in a sender's nonces. `acknowledged` holds the ids that got
    a 202: every one of them must be finalized exactly once.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        urls: Sequence[str],
        signed: Sequence[Signed],
        senders: int,
        rate: float,
        *,
        request_timeout_s: float = 2.0,
        retry_s: float = 0.25,
        give_up_s: float = 30.0,
    ) -> None:
        assert rate > 0
        self._client = client
        self._urls = urls
        self._queues = [list(signed[s::senders]) for s in range(senders)]
        self._interval_s = 1.0 / rate
        self._next_due = 0.0
        self._timeout = httpx.Timeout(request_timeout_s)
        self._retry_s = retry_s
        self._give_up_s = give_up_s
        self._stopping_at: float | None = None
        self._resumed = trio.Event()
        self._resumed.set()
        self.in_flight = 0  # transactions sent and not yet answered for good
        self.acknowledged: set[bytes] = set()
        self.known: set[bytes] = set()  # answered "already have it"
        self.abandoned: set[bytes] = set()  # still unanswered when the run ended
        self.offered = 0
        self.answers: Counter[str] = Counter()

    def stop(self) -> None:
        """Send no new transactions; retry unanswered ones up to `give_up_s`."""
        if self._stopping_at is None:
            self._stopping_at = time.monotonic()

    def hold(self) -> None:
        """Send no new transactions until `resume` (those in flight go on)."""
        if self._resumed.is_set():
            self._resumed = trio.Event()

    def resume(self) -> None:
        if not self._resumed.is_set():
            self._next_due = time.monotonic()  # no burst for the time held
            self._resumed.set()

    @property
    def stopped(self) -> bool:
        return self._stopping_at is not None

    @property
    def held(self) -> bool:
        return not self._resumed.is_set()

    async def run(self) -> None:
        self._next_due = time.monotonic()
        async with trio.open_nursery() as nursery:
            for queue in self._queues:
                nursery.start_soon(self._sender, queue)

    async def _sender(self, queue: list[Signed]) -> None:
        for signed in queue:
            if self._stopping_at is not None:
                return
            await self._resumed.wait()
            await self._ticket()
            while not self._resumed.is_set():  # held while waiting for the ticket
                await self._resumed.wait()
                await self._ticket()
            if self._stopping_at is not None:
                return
            self.offered += 1
            self.in_flight += 1
            try:
                await self._deliver(signed)
            finally:
                self.in_flight -= 1

    async def _ticket(self) -> None:
        now = time.monotonic()
        due = max(self._next_due, now)
        self._next_due = due + self._interval_s
        await trio.sleep(due - now)

    async def _deliver(self, signed: Signed) -> None:
        node = signed.node
        while True:
            outcome = await self._post(self._urls[node], signed.body)
            self.answers[outcome] += 1
            if outcome == "accepted":
                self.acknowledged.add(signed.id)
                return
            if outcome in ("duplicate", "nonce_too_low"):
                self.known.add(signed.id)
                return
            stopping_at = self._stopping_at
            if stopping_at is not None and time.monotonic() - stopping_at > self._give_up_s:
                self.abandoned.add(signed.id)
                return
            node = (node + 1) % len(self._urls)
            await trio.sleep(self._retry_s)

    async def _post(self, url: str, body: bytes) -> str:
        try:
            response = await self._client.post(
                f"{url}/tx",
                content=body,
                headers={"content-type": "application/json"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            return f"http: {type(error).__name__}"
        if response.status_code == 202:
            return "accepted"
        try:
            return str(response.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return f"http {response.status_code}"
