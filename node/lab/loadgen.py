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
    in_flight_max: int = 64,
    retry_for_s: float = 30.0,
    label: str = "load",
    progress: bool = True,
) -> LoadResult:
    """Offer `signed` to the nodes at `urls` and time each to finality.

    `batch` > 1 sends `POST /txs` of up to that many; `batch` = 1 sends
    `POST /tx`. `rate` is transactions per second over all nodes (0: as fast
    as `concurrency` requests in flight per node allow, with at most
    `window` transactions waiting for finality). After the last send, waits
    up to `drain_s` for the rest to finalize.

    Each node is a lane of its own (its own connections, at most
    `in_flight_max` paced requests in flight), so one slow or paused node
    delays only its own senders. A transaction refused for a reason that
    passes (busy, rate limited, pool full, a connection error) is sent
    again, as a wallet would, for up to `retry_for_s`: a refusal that is
    given up on leaves a nonce gap its sender's later transactions would
    queue behind for good.
    """
    tracker = Tracker(signed, window, label)
    chunks = _chunks(signed, len(urls), batch)
    timeout = httpx.Timeout(60.0)
    per_node = httpx.Limits(max_connections=max(concurrency, in_flight_max) + 2)
    lanes = [
        _Lane(httpx.AsyncClient(limits=per_node, timeout=timeout), url, retry_for_s) for url in urls
    ]
    events = httpx.AsyncClient(timeout=timeout)
    async with events, trio.open_nursery() as nursery:
        for node, url in enumerate(urls):
            await nursery.start(follow_events, events, url, node, tracker)
        started = time.perf_counter()
        if progress:
            nursery.start_soon(report_progress, tracker, started)
        async with trio.open_nursery() as senders:
            due = _due_times(chunks, rate) if rate > 0 else {}
            for node, lane in enumerate(lanes):
                queue = [c for c in chunks if signed[c[0]].node == node]
                if rate > 0:
                    room = trio.Semaphore(in_flight_max)
                    senders.start_soon(_paced, lane, queue, due, started, room, tracker, senders)
                else:
                    for _ in range(concurrency):
                        senders.start_soon(_greedy, lane, queue, tracker)
        with trio.move_on_after(drain_s):
            await tracker.done.wait()
        if progress:
            print(tracker.progress(started), file=sys.stderr, flush=True)
        nursery.cancel_scope.cancel()
    for lane in lanes:
        await lane.client.aclose()
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


def _due_times(chunks: list[list[int]], rate: float) -> dict[int, float]:
    """Seconds after the start at which each request is due (keyed by its
    first index): the requests of all nodes together make `rate` tx/s."""
    due: dict[int, float] = {}
    offered = 0
    for chunk in chunks:
        due[chunk[0]] = offered / rate
        offered += len(chunk)
    return due


# Refusals that pass: the node (or the way to it) was busy, not the
# transaction wrong. Anything else is the transaction's own fault.
RETRYABLE_CODES = frozenset(
    {
        "mempool_full",
        "sender_slots_full",
        "rate_limited",
        "overloaded",
        "not_ready",
        "request_timeout",
        "storage_failed",
    }
)
# An answer to a retry that says an earlier attempt got in.
ALREADY_IN = frozenset({"duplicate", "nonce_too_low"})
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0


class _Lane:
    """One node's connections and the retry rule of every request sent to it."""

    def __init__(self, client: httpx.AsyncClient, url: str, retry_for_s: float) -> None:
        self.client = client
        self.url = url
        self.retry_for_s = retry_for_s

    async def send(self, chunk: list[int], tracker: Tracker) -> None:
        """Send `chunk` until each of its transactions is acknowledged, known
        to the node already, refused for good, or `retry_for_s` has passed."""
        now = time.perf_counter()
        for i in chunk:
            tracker.sent[i] = now
        give_up_at = now + self.retry_for_s
        wait_s = RETRY_FIRST_S
        pending = chunk
        retried = False
        while True:
            answers, hint_s = await self._post(pending, tracker)
            now = time.perf_counter()
            again = []
            for i, code in zip(pending, answers, strict=True):
                if code is None or (retried and code in ALREADY_IN):
                    tracker.on_ack(i, now)
                elif _retryable(code) and now < give_up_at:
                    again.append(i)
                    tracker.retried[code] += 1
                else:
                    tracker.on_refused(i, code)
            if not again:
                return
            pending, retried = again, True
            await trio.sleep(min(max(wait_s, hint_s), RETRY_MAX_S, give_up_at - now))
            wait_s = min(2 * wait_s, RETRY_MAX_S)

    async def _post(self, chunk: list[int], tracker: Tracker) -> tuple[list[str | None], float]:
        """One request: each transaction's refusal code (None: acknowledged)
        and the wait the node asked for (Retry-After), if any."""
        signed = tracker.signed
        single = len(chunk) == 1
        body = (
            signed[chunk[0]].body
            if single
            else b"[" + b",".join(signed[i].body for i in chunk) + b"]"
        )
        try:
            response = await self.client.post(
                f"{self.url}/tx" if single else f"{self.url}/txs",
                content=body,
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as error:
            return [f"http: {type(error).__name__}"] * len(chunk), 0.0
        hint_s = _retry_after(response)
        try:
            answer = response.json()
        except ValueError:
            return [f"http {response.status_code}"] * len(chunk), hint_s
        results = (
            [answer] if single else answer.get("results") if isinstance(answer, dict) else None
        )
        if not isinstance(results, list) or len(results) != len(chunk):
            code = _error_code(answer) or f"http {response.status_code}"
            return [code] * len(chunk), hint_s
        codes: list[str | None] = [
            None
            if isinstance(r, dict) and "tx_id" in r and "error" not in r
            else _error_code(r) or "unknown"
            for r in results
        ]
        return codes, hint_s


def _error_code(answer: object) -> str | None:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        code = answer["error"].get("code")
        return str(code) if code is not None else None
    return None


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def _retryable(code: str) -> bool:
    return code in RETRYABLE_CODES or code.startswith("http")


async def _greedy(lane: _Lane, queue: list[list[int]], tracker: Tracker) -> None:
    while queue:
        chunk = queue.pop(0)
        await tracker.wait_for_room()
        await lane.send(chunk, tracker)


async def _paced(
    lane: _Lane,
    queue: list[list[int]],
    due: dict[int, float],
    started: float,
    room: trio.Semaphore,
    tracker: Tracker,
    nursery: trio.Nursery,
) -> None:
    """This node's requests at their due times, at most `room`'s initial
    value in flight; a request that waits for room is counted as lag."""
    for chunk in queue:
        at = started + due[chunk[0]]
        now = time.perf_counter()
        if at > now:
            await trio.sleep(at - now)
        await room.acquire()
        tracker.lagged_s = max(tracker.lagged_s, time.perf_counter() - at)
        nursery.start_soon(_send_released, lane, chunk, tracker, room)


async def _send_released(
    lane: _Lane, chunk: list[int], tracker: Tracker, room: trio.Semaphore
) -> None:
    try:
        await lane.send(chunk, tracker)
    finally:
        room.release()


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
