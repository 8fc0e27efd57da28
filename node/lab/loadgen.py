"""Load generation for benchmarks: pre-signed transactions offered to a
devnet over HTTP, each timed from send to finality.

Signing happens before the clock starts (`presign`), so what is measured is
the nodes, not the wallet. Each sender always uses the same node and its
nonces go out in order, so no transaction waits in a node's queue for an
earlier one sent elsewhere.

`run_load` offers the transactions at a fixed rate or, with `rate=0`, as
fast as the nodes take them (open loop, bounded by `window`: at most that
many acknowledged transactions may wait for finality, so a saturated devnet
is measured at its commit rate, not at its mempool's capacity). It sends
`POST /txs` batches or single `POST /tx` requests, round robin over the
nodes, and follows every node's `/events` stream: a transaction is final
when its block's event arrives from the node it was sent to.

`SteadyLoad` is a wallet-like steady load for chaos runs: each sender
retries its next transaction on other nodes until one acknowledges it, and
the acknowledged ids are kept for the exactly-once check.

`RawConnection` is a minimal HTTP/1.1 keep-alive client over a trio stream,
for measuring request rates: a load generator that costs more per request
than the server under test would measure itself.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
import msgspec
import trio

from sequencer.codec import to_builtins
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.ids import tx_id

__all__ = [
    "LoadResult",
    "RawConnection",
    "Signed",
    "SteadyLoad",
    "presign",
    "run_load",
]

# An unused namespace: block events then carry transaction ids but no bodies,
# so following the stream costs the nodes little.
EVENTS_NAMESPACE = 2**64 - 1
PROGRESS_EVERY_S = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class Signed:
    id: bytes
    body: bytes  # the transaction as JSON, as `POST /tx` takes it
    node: int  # the node it goes to


def presign(
    chain_id: str,
    *,
    count: int,
    senders: int,
    nodes: int,
    payload_bytes: int = 200,
    seed: int = 0,
    gas_price: int = 1,
) -> list[Signed]:
    """`count` signed transactions: sender k % senders, nonces in order.

    The seed picks the sender keys: a fresh seed gives fresh senders (whose
    nonces start at 0) on a devnet that earlier runs already used.
    """
    rng = random.Random(seed)
    keys = [PrivateKey(rng.randbytes(32)) for _ in range(senders)]
    signed = []
    for k in range(count):
        sender = k % senders
        tx = sign_transaction(
            keys[sender],
            chain_id=chain_id,
            namespace=0,
            nonce=k // senders,
            gas_price=gas_price,
            payload=rng.randbytes(payload_bytes),
        )
        signed.append(Signed(tx_id(tx), msgspec.json.encode(to_builtins(tx)), sender % nodes))
    return signed


# ------------------------------------------------------------------ raw HTTP


class HttpProtocolError(Exception):
    """The server's answer is not the HTTP/1.1 this client reads."""


class RawConnection:
    """One keep-alive HTTP/1.1 connection; requests one at a time."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._stream: trio.SocketStream | None = None
        self._buffer = b""

    async def __aenter__(self) -> RawConnection:
        self._stream = await trio.open_tcp_stream(self.host, self.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            await self._stream.aclose()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST."""
        assert self._stream is not None, "use the connection in `async with`"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        await self._stream.send_all(head + body)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._receive()
        header, rest = self._buffer[:end], self._buffer[end + 4 :]
        length = _content_length(header)
        while len(rest) < length:
            rest += await self._receive_some()
        self._buffer = rest[length:]
        return int(header[9:12]), rest[:length]

    async def _receive(self) -> None:
        self._buffer += await self._receive_some()

    async def _receive_some(self) -> bytes:
        assert self._stream is not None
        data = await self._stream.receive_some(65536)
        if not data:
            raise HttpProtocolError("the server closed the connection")
        return data


def _content_length(header: bytes) -> int:
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise HttpProtocolError("a response without Content-Length")


# ------------------------------------------------------------------ load


@dataclasses.dataclass
class LoadResult:
    """What happened to every offered transaction; times are perf_counter seconds."""

    sent: list[float]
    acked: list[float]
    final: list[float]
    refused: Counter[str]
    lagged_s: float  # how far behind its schedule a fixed-rate run fell, at worst

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
            "latency_ms": _percentiles(latencies),
            "lagged_s": round(self.lagged_s, 3),
        }


def _steady_rate(finals: list[float]) -> float:
    """Commit rate between the 10th and 90th percentile of finality times:
    without the ramp-up and the tail."""
    if len(finals) < 10:
        return 0.0
    low, high = finals[len(finals) // 10], finals[len(finals) * 9 // 10]
    return 0.8 * len(finals) / (high - low) if high > low else 0.0


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "p50": round(statistics.median(values), 1),
        "p99": round(values[min(len(values) - 1, int(len(values) * 0.99))], 1),
        "max": round(values[-1], 1),
    }


class _Block(msgspec.Struct):
    tx_ids: list[str]


class _Tracker:
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
        return (
            f"[{self.label}] {elapsed:6.1f} s  sent {sent}  final {final}"
            f"  waiting {self.outstanding}  refused {sum(self.refused.values())}"
        )


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
    tracker = _Tracker(signed, window, label)
    chunks = _chunks(signed, len(urls), batch)
    limits = httpx.Limits(max_connections=concurrency * len(urls) + len(urls) + 8)
    timeout = httpx.Timeout(60.0)
    client = httpx.AsyncClient(limits=limits, timeout=timeout)
    async with client, trio.open_nursery() as nursery:
        for node, url in enumerate(urls):
            await nursery.start(_follow, client, url, node, tracker)
        started = time.perf_counter()
        if progress:
            nursery.start_soon(_report, tracker, started)
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
    return LoadResult(tracker.sent, tracker.acked, tracker.final, tracker.refused, tracker.lagged_s)


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


async def _report(tracker: _Tracker, started: float) -> None:
    while True:
        await trio.sleep(PROGRESS_EVERY_S)
        print(tracker.progress(started), file=sys.stderr, flush=True)


async def _greedy(
    client: httpx.AsyncClient, url: str, queue: list[list[int]], tracker: _Tracker
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
    tracker: _Tracker,
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


async def _send(client: httpx.AsyncClient, url: str, chunk: list[int], tracker: _Tracker) -> None:
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


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    node: int,
    tracker: _Tracker,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Mark this node's transactions final as their blocks' events arrive."""
    decoder = msgspec.json.Decoder(_Block)
    signed = tracker.signed
    params = {"namespace": str(EVENTS_NAMESPACE)}
    async with client.stream("GET", f"{url}/events", params=params, timeout=None) as response:
        response.raise_for_status()
        task_status.started()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            now = time.perf_counter()
            for hex_id in decoder.decode(line[6:]).tx_ids:
                i = tracker.index.get(hex_id)
                if i is not None and signed[i].node == node:
                    await tracker.on_final(i, now)


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
