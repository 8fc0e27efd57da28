"""RPC capacity in rate-limit tokens, and what heavy readers do to finality.

    python3 scripts/bench_rpc.py                       # table + bench-rpc.json
    python3 scripts/bench_rpc.py --seconds 10          # longer runs, steadier figures
    python3 scripts/bench_rpc.py --candidate-rate 200 --candidate-burst 1300

Everything runs on one fresh 4-validator devnet of real node processes on
loopback (`node.lab.bench.devnet`), in three phases:

  build         a chain of large blocks: a few hundred transactions with 40 KB
                payloads, so that `GET /blocks?from=1&limit=100&full=true`
                answers megabytes (up to `[rpc] response_bytes_max`)
  capacity      the rate limit lifted; node 0 alone, one request kind at a time
                (`GET /status`, `GET /blocks/{h}`, the full block range, single
                `POST /tx` of fresh pre-signed transactions), as fast as
                `--connections` keep-alive connections from separate client
                processes get answers, for `--seconds` each
  interference  a steady wallet load (single `POST /tx` at `--wallet-rate`
                over all 4 nodes, from 127.0.0.1), timed from send until its
                block's event arrives from the node it went to:
                (a) alone;
                (b) with 4 abusive clients, from 127.0.0.11-14, reading full
                    block ranges from node 0 as fast as they can, limit lifted;
                then the nodes restart with the candidate per-address limit
                (the shipped default unless --candidate-rate says otherwise):
                (c) the same abusers;
                (d) the same addresses reading `GET /blocks/{h}` instead: small
                    answers, so one token each, whatever the node spends

Tokens. The limiter (`node.api.rpc._RateLimit`) charges a request what
`node.api.rpc.request_tokens` says: 1 token, plus one per 4 KiB of request body
and one per 64 KiB of response; a refused (429) request costs none. A
kind's tokens/s is summed per request here the way the limiter does it.
"tok/cpu-s" divides by node 0's CPU time instead of wall time: how many
tokens of that kind one core serves. The closer it is across kinds, the
closer a budget in tokens is to a budget in CPU, whatever a client asks for.

The candidate limit. The rate is per client address, so k addresses take k
times it. The report gives what one address may take at the candidate rate:
the rate divided by the fewest tokens per CPU-second of any kind, a share
of one core. The burst must be at least the dearest request
(`RpcLimits.dearest_request_tokens`): the limiter lets a bucket go at most
`burst` into debt, so a smaller burst undercharges every large answer.

The wallet load is sent over raw keep-alive connections, not httpx (see
`wallet_load`), and the abusive and capacity clients run in their own
processes; client CPU is reported beside each figure. Figures on a shared
machine are noisy: compare runs side by side, in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import trio

from node.api.rpc import RpcLimits, request_tokens
from node.lab.bench import BENCH_ENV, Devnet, devnet, machine_limit
from node.lab.loadgen import EVENTS_NAMESPACE, LoadResult, Signed, presign, run_load

# The finality bookkeeping of `run_load`, reused by the wallet load below.
from node.lab.loadgen import _report as report_progress
from node.lab.loadgen import _Tracker as Tracker
from node.ops.procs import get_json, wait_until

__all__ = ["MAX_REQUEST_TOKENS", "core_share", "main"]

KINDS = ("status", "block", "range", "tx")
KIND_LABELS = {
    "status": "GET /status",
    "block": "GET /blocks/{h}",
    "range": "GET /blocks?from=1&limit=100&full=true",
    "tx": "POST /tx",
}
RANGE_PATH = "/blocks?from=1&limit=100&full=true"
ABUSER_ADDRESSES = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")
_DEFAULTS = RpcLimits()
MAX_REQUEST_TOKENS = _DEFAULTS.dearest_request_tokens
REQUEST_TIMEOUT_S = 30.0
SPAWN_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
ABUSER_WARMUP_S = 1.0  # the abusers reach their pace before the first wallet send
WALLET_DRAIN_S = 30.0
WALLET_PAYLOAD_BYTES = 200  # wallet and POST /tx transactions, as node.lab.bench sends
BUILD_BATCH = 10  # 40 KB payloads are 80 KB of hex: ten stay under body_bytes_max
# Ten hex-encoded payloads (and their envelopes) in one POST /txs body.
PAYLOAD_MAX = (_DEFAULTS.body_bytes_max // BUILD_BATCH - 1_000) // 2
RECEIVE_BYTES = 1 << 20


def _say(message: str) -> None:
    print(f"[rpcbench] {message}", file=sys.stderr, flush=True)


def core_share(rate: float, capacity: dict[str, dict[str, Any]]) -> tuple[float, str]:
    """The share of one core an address may take at `rate` tokens/s, asking
    for the kind whose tokens cost the most CPU; and that kind."""
    kinds = {
        kind: run["tokens_per_node0_cpu_s"]
        for kind, run in capacity.items()
        if run.get("tokens_per_node0_cpu_s")
    }
    dearest = min(kinds, key=kinds.__getitem__)
    return round(rate / kinds[dearest], 2), dearest


def candidate_burst(rate: float) -> int:
    return max(math.ceil(2 * rate), MAX_REQUEST_TOKENS)


def limit_env(rate: float, burst: int) -> dict[str, str]:
    return {"SEQUENCER_RPC_REQUESTS_PER_S": f"{rate:g}", "SEQUENCER_RPC_BURST": str(burst)}


# ------------------------------------------------------------------ the client


class HttpError(Exception):
    """The connection broke, or the answer is not HTTP/1.1 this client reads."""


class Connection:
    """One keep-alive HTTP/1.1 connection from a chosen source address.

    Unlike `node.lab.loadgen.RawConnection` it sends GETs too, binds its source
    address (the limiter keys its buckets on it) and reads a body into a
    bytearray in large chunks: gluing 64 KiB `bytes` onto a 4 MiB response
    costs the client more CPU than the node spends making it."""

    def __init__(self, url: str, source: str | None = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.source = source
        self._stream: trio.SocketStream | None = None
        self._buffer = bytearray()

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            self._buffer.clear()
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.aclose()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, int]:
        """(status, response body bytes) of one request; (re)connects when needed."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body or method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            if self._stream is None:
                self._stream = await trio.open_tcp_stream(
                    self.host, self.port, local_address=self.source
                )
            await self._stream.send_all(head.encode() + b"\r\n" + body)
            return await self._response()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, HttpError):
            await self.close()
            raise HttpError("the connection broke") from None

    async def _response(self) -> tuple[int, int]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._receive()
        header = bytes(self._buffer[:end])
        length, closing = _framing(header)
        if length is None:  # chunked: block ranges are streamed block by block
            length = await self._chunked(end + 4)
        else:
            while len(self._buffer) < end + 4 + length:
                await self._receive()
            del self._buffer[: end + 4 + length]
        if closing:  # e.g. 503 `overloaded`: the server closes after this answer
            await self.close()
        return int(header[9:12]), length

    async def _chunked(self, start: int) -> int:
        """Consume a chunked body starting at `start` in the buffer; its decoded
        size (what the limiter counts). Trailers are not expected."""
        del self._buffer[:start]  # CPython drops a bytearray's head in O(1)
        total = 0
        while True:
            while (eol := self._buffer.find(b"\r\n")) < 0:
                await self._receive()
            try:
                size = int(bytes(self._buffer[:eol]).split(b";")[0], 16)
            except ValueError:
                raise HttpError("a malformed chunk size") from None
            need = eol + 2 + size + 2
            while len(self._buffer) < need:
                await self._receive()
            del self._buffer[:need]
            if size == 0:
                return total
            total += size

    async def _receive(self) -> None:
        assert self._stream is not None
        data = await self._stream.receive_some(RECEIVE_BYTES)
        if not data:
            raise HttpError("the server closed the connection")
        self._buffer += data


def _framing(header: bytes) -> tuple[int | None, bool]:
    """(Content-Length, None if chunked; whether the server closes after it)."""
    length: int | None = None
    chunked = closing = False
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value == b"chunked"
        elif name == b"connection":
            closing = value == b"close"
    if length is None and not chunked:
        raise HttpError("a response with neither Content-Length nor chunks")
    return length, closing


# ------------------------------------------------------------------ driving load


@dataclasses.dataclass
class Tally:
    """What one client address got."""

    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    latencies: list[float] = dataclasses.field(default_factory=list)
    request_bytes: int = 0
    response_bytes: int = 0
    tokens: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def add(self, status: int, sent: int, received: int, latency_s: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(latency_s)
        self.request_bytes += sent
        self.response_bytes += received
        if status not in (0, 429):  # a refusal spends no tokens
            self.tokens += request_tokens(sent, received)

    def merge(self, other: Tally) -> None:
        self.statuses.update(other.statuses)
        self.latencies.extend(other.latencies)
        self.request_bytes += other.request_bytes
        self.response_bytes += other.response_bytes
        self.tokens += other.tokens


@dataclasses.dataclass(frozen=True)
class DriveSpec:
    """One driver process's load: `connections` per source address, for at
    most `seconds` (or until told to stop, or the bodies run out)."""

    url: str
    kind: str
    sources: tuple[str | None, ...]
    connections: int
    seconds: float
    height: int = 1
    bodies: tuple[bytes, ...] = ()


@dataclasses.dataclass
class DriveResult:
    tallies: dict[str, Tally]  # by source address
    elapsed_s: float
    cpu_s: float  # the driver process's own CPU time


def _target(kind: str, i: int, height: int) -> tuple[str, str]:
    """(method, path) of request `i` of a kind; blocks cycle over the chain."""
    if kind == "status":
        return "GET", "/status"
    if kind == "block":
        return "GET", f"/blocks/{1 + i % height}"
    if kind == "range":
        return "GET", RANGE_PATH
    return "POST", "/tx"


async def _drive(spec: DriveSpec, stopping: Any) -> dict[str, Tally]:
    tallies = {str(source or "127.0.0.1"): Tally() for source in spec.sources}
    feed = iter(spec.bodies)
    counter = iter(range(1 << 62))
    deadline = time.monotonic() + spec.seconds

    async def worker(source: str | None, tally: Tally) -> None:
        connection = Connection(spec.url, source)
        try:
            while time.monotonic() < deadline:
                body = b""
                if spec.kind == "tx" and (body := next(feed, b"")) == b"":
                    return
                method, path = _target(spec.kind, next(counter), spec.height)
                started = time.perf_counter()
                try:
                    with trio.fail_after(REQUEST_TIMEOUT_S):
                        status, received = await connection.request(method, path, body)
                except (HttpError, trio.TooSlowError):
                    status, received = 0, 0
                    await connection.close()
                tally.add(status, len(body), received, time.perf_counter() - started)
        finally:
            await connection.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch, stopping, nursery.cancel_scope)
        async with trio.open_nursery() as workers:
            for source, tally in zip(spec.sources, tallies.values(), strict=True):
                for _ in range(spec.connections):
                    workers.start_soon(worker, source, tally)
        nursery.cancel_scope.cancel()
    return tallies


async def _watch(stopping: Any, scope: trio.CancelScope) -> None:
    """Cancel the drive once the parent sets `stopping` (a multiprocessing Event)."""
    while not stopping.is_set():
        await trio.sleep(0.05)
    scope.cancel()


def _driver_process(spec: DriveSpec, ready: Any, go: Any, stopping: Any, results: Any) -> None:
    """A driver process: say it is ready, wait for the go, drive, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    ready.put(os.getpid())
    if not go.wait(SPAWN_TIMEOUT_S):
        return
    cpu, started = time.process_time(), time.monotonic()
    tallies = trio.run(_drive, spec, stopping)
    results.put(DriveResult(tallies, time.monotonic() - started, time.process_time() - cpu))


class Drivers:
    """Driver processes, spawned and imported before any clock starts, then
    started together: the client is measured apart from the node and does not
    share the node's process (or this one's, which runs the wallets)."""

    def __init__(self, specs: Sequence[DriveSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Queue()
        self._results = context.Queue()
        self._go = context.Event()
        self._stopping = context.Event()
        self._processes = [
            context.Process(
                target=_driver_process,
                args=(spec, self._ready, self._go, self._stopping, self._results),
                daemon=True,
            )
            for spec in specs
        ]

    def __enter__(self) -> Drivers:
        for process in self._processes:
            process.start()
        try:
            for _ in self._processes:
                self._get(self._ready, SPAWN_TIMEOUT_S)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _get(self, queue: Any, timeout_s: float) -> Any:
        """The next item of `queue`; raises as soon as a driver died instead."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(queue_module.Empty):
                return queue.get(timeout=0.2)
            dead = [p.exitcode for p in self._processes if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a load driver process failed (exit codes {dead})")
        raise TimeoutError(f"no answer from the load drivers within {timeout_s} s")

    def go(self) -> None:
        self._go.set()

    def stop(self) -> None:
        self._stopping.set()

    def results(self, timeout_s: float) -> list[DriveResult]:
        return [self._get(self._results, timeout_s) for _ in self._processes]

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._go.set()  # a driver still waiting for the go exits
        for process in self._processes:
            process.join(timeout=10.0)
            if process.is_alive():
                process.kill()
                process.join()


# ------------------------------------------------------------------ statistics


def _percentile_ms(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)


def _tally_summary(tally: Tally, elapsed_s: float) -> dict[str, Any]:
    requests = tally.requests
    per_s = requests / elapsed_s if elapsed_s else 0.0
    return {
        "requests": requests,
        "seconds": round(elapsed_s, 3),
        "requests_s": round(per_s, 1),
        "response_bytes_per_request": round(tally.response_bytes / requests) if requests else 0,
        "response_mb_s": round(tally.response_bytes / elapsed_s / 1e6, 2) if elapsed_s else 0.0,
        "tokens": tally.tokens,
        "tokens_per_request": round(tally.tokens / requests, 1) if requests else 0.0,
        "tokens_s": round(tally.tokens / elapsed_s, 1) if elapsed_s else 0.0,
        "latency_ms_p50": _percentile_ms(tally.latencies, 0.5),
        "latency_ms_p99": _percentile_ms(tally.latencies, 0.99),
        "statuses": {str(code): n for code, n in sorted(tally.statuses.items())},
    }


def _combined(results: Sequence[DriveResult]) -> tuple[Tally, float, list[float]]:
    """Every process's tallies as one; the longest elapsed; CPU per process."""
    total = Tally()
    for result in results:
        for tally in result.tallies.values():
            total.merge(tally)
    elapsed = max(r.elapsed_s for r in results)
    return total, elapsed, [r.cpu_s / r.elapsed_s if r.elapsed_s else 0.0 for r in results]


# ------------------------------------------------------------------ the machine


def _machine_jiffies() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) CPU time of the machine so far, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[3] + fields[4], fields[7]


def _machine_share(before: tuple[int, int, int]) -> dict[str, float]:
    """How busy the whole machine was since `before`, and how much the
    hypervisor took (steal): what no process here accounts for shows here."""
    now = _machine_jiffies()
    total = max(1, now[0] - before[0])
    return {
        "machine_busy": round(1 - (now[1] - before[1]) / total, 3),
        "machine_steal": round((now[2] - before[2]) / total, 3),
    }


# ------------------------------------------------------------------ phases


def _wait_ready(net: Devnet) -> None:
    """Every node answers /ready: connected, and taking transactions."""
    for url in net.urls:
        wait_until(lambda u=url: get_json(f"{u}/ready")[0] == 200, READY_TIMEOUT_S, f"{url} ready")


def _wait_mempools_empty(net: Devnet, timeout_s: float = 120.0) -> None:
    """No transaction waits anywhere: the next phase starts from a quiet devnet."""

    def empty() -> bool:
        for url in net.urls:
            code, status = get_json(f"{url}/status")
            pool = status["mempool"] if code == 200 else None
            if pool is None or pool["pending"] + pool["queued"]:
                return False
        return True

    wait_until(empty, timeout_s, "empty mempools", poll_s=0.2)


def _presign(chain_id: str, count: int, senders: int, seed: int, **options: Any) -> list[Signed]:
    started = time.perf_counter()
    signed = presign(chain_id, count=count, senders=senders, nodes=4, seed=seed, **options)
    _say(f"signed {count} transactions in {time.perf_counter() - started:.1f} s")
    return signed


def build_chain(net: Devnet, args: argparse.Namespace) -> dict[str, Any]:
    """Large blocks first, so that a full block range answers megabytes."""
    chain_id = net.layout.chain_id
    signed = _presign(
        chain_id, args.build_txs, max(1, args.build_txs // 10), 100, payload_bytes=args.payload
    )
    result = trio.run(
        lambda: run_load(net.urls, signed, batch=BUILD_BATCH, concurrency=1, label="build")
    )
    summary = result.summary()
    if summary["lost"] or summary["finalized"] != args.build_txs:
        raise RuntimeError(f"building the chain lost transactions: {summary}")
    height = int(net.nodes[0].height())
    code, body = get_json(f"{net.urls[0]}{RANGE_PATH}", timeout_s=30.0)
    blocks = body["blocks"] if code == 200 else []
    size = len(json.dumps(body, separators=(",", ":"))) if code == 200 else 0
    _say(f"chain: {height} blocks; the full range answers {len(blocks)} blocks, ~{size} bytes")
    return {
        "txs": args.build_txs,
        "payload_bytes": args.payload,
        "height": height,
        "range_blocks": len(blocks),
        "range_bytes_approx": size,
    }


def _measure(net: Devnet, specs: Sequence[DriveSpec], seconds: float) -> dict[str, Any]:
    """Run the drivers to their end; the node CPU they cost, and their figures."""
    with Drivers(specs) as drivers:
        before, wall, machine = net.cpu_seconds(), time.monotonic(), _machine_jiffies()
        drivers.go()
        results = drivers.results(seconds + REQUEST_TIMEOUT_S + SPAWN_TIMEOUT_S)
        cpu = [a - b for a, b in zip(net.cpu_seconds(), before, strict=True)]
        wall = time.monotonic() - wall
        shares = _machine_share(machine)
    total, elapsed, client = _combined(results)
    summary = _tally_summary(total, elapsed)
    requests = max(1, total.requests)
    summary["node0_cpu_us_per_request"] = round(cpu[0] / requests * 1e6, 1)
    summary["node0_cpu_util"] = round(cpu[0] / wall, 3)
    summary["nodes_cpu_util"] = [round(c / wall, 3) for c in cpu]
    summary["tokens_per_node0_cpu_s"] = round(total.tokens / cpu[0], 1) if cpu[0] else None
    summary["client_cpu_util"] = [round(c, 3) for c in client]
    return summary | shares


def run_capacity(
    net: Devnet, args: argparse.Namespace, height: int, tx_bodies: list[bytes]
) -> dict[str, dict[str, Any]]:
    """Each kind alone against node 0, the limit lifted; POST /tx last, since
    its transactions then keep every node busy committing them."""
    results: dict[str, dict[str, Any]] = {}
    processes = max(1, args.client_processes)
    per_process = max(1, args.connections // processes)
    for kind in KINDS:
        bodies = tx_bodies if kind == "tx" else []
        share = math.ceil(len(bodies) / processes)
        specs = [
            DriveSpec(
                net.urls[0],
                kind,
                (None,),
                per_process,
                args.seconds,
                height,
                tuple(bodies[p * share : (p + 1) * share]),
            )
            for p in range(processes)
        ]
        _say(f"capacity: {KIND_LABELS[kind]} for {args.seconds} s ...")
        result = _measure(net, specs, args.seconds)
        if kind == "tx" and result["requests"] >= len(bodies):
            result["note"] = "ran out of pre-signed transactions: raise --tx-count"
        results[kind] = result
        _say(
            f"capacity: {kind}: {result['requests_s']} req/s, {result['tokens_s']} tokens/s,"
            f" node 0 {result['node0_cpu_util']:.0%} CPU, statuses {result['statuses']}"
        )
    return results


def _abuser_specs(
    net: Devnet, args: argparse.Namespace, kind: str, height: int, seconds: float
) -> list[DriveSpec]:
    """The abusive readers of node 0, split over the client processes by address."""
    processes = max(1, min(args.client_processes, len(ABUSER_ADDRESSES)))
    groups = [ABUSER_ADDRESSES[p::processes] for p in range(processes)]
    return [
        DriveSpec(net.urls[0], kind, tuple(group), args.abuser_connections, seconds, height)
        for group in groups
    ]


# ------------------------------------------------------------------ the wallet load


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
            await nursery.start(_follow_final, client, url, node, tracker, breaks)
        queues = [trio.open_memory_channel[int](math.inf) for _ in urls]
        for (_, receive), url in zip(queues, urls, strict=True):
            for _ in range(connections):
                nursery.start_soon(_wallet_sender, url, receive.clone(), tracker)
        started = time.perf_counter()
        nursery.start_soon(report_progress, tracker, started)
        lag = await _pace(signed, rate, [send for send, _ in queues], tracker, started)
        with trio.move_on_after(WALLET_DRAIN_S):
            await tracker.done.wait()
        print(tracker.progress(started), file=sys.stderr, flush=True)
        nursery.cancel_scope.cancel()
    result = LoadResult(tracker.sent, tracker.acked, tracker.final, tracker.refused, lag)
    return result, sum(breaks.values())


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


class _BlockEvent(msgspec.Struct):
    tx_ids: list[str]


async def _follow_final(
    client: httpx.AsyncClient,
    url: str,
    node: int,
    tracker: Tracker,
    breaks: Counter[str],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Mark this node's transactions final as their blocks' events arrive.

    Like `node.lab.loadgen`'s follower, but it resumes after the last block seen
    when the stream breaks: the node closes a connection whose client sent
    nothing for `[rpc] read_timeout_s` (30 s), an event stream included."""
    decoder = msgspec.json.Decoder(_BlockEvent)
    status = (await client.get(f"{url}/status")).json()
    next_height = int(status["height"]) + 1
    started = False
    while True:
        params = {"namespace": str(EVENTS_NAMESPACE), "from": str(next_height)}
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
                        await _mark_final(decoder.decode(line[6:]).tx_ids, node, tracker)
                        next_height = height + 1
        except httpx.HTTPError as error:
            breaks[url] += 1
            _say(f"{url}/events broke ({error}); resuming from height {next_height}")
        await trio.sleep(0.05)


async def _mark_final(tx_ids: list[str], node: int, tracker: Tracker) -> None:
    now = time.perf_counter()
    for hex_id in tx_ids:
        i = tracker.index.get(hex_id)
        if i is not None and tracker.signed[i].node == node:
            await tracker.on_final(i, now)


def _not_final(
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


def run_wallets(
    net: Devnet, args: argparse.Namespace, phase: str, seed: int, abuse: str | None, height: int
) -> dict[str, Any]:
    """The wallet load timed to finality, with or without the abusive readers."""
    count = max(1, int(args.wallet_rate * args.seconds))
    # Many senders, few nonces each: no sender's next nonce waits on its last.
    signed = _presign(
        net.layout.chain_id, count, min(count, 200), seed, payload_bytes=WALLET_PAYLOAD_BYTES
    )
    specs = (
        _abuser_specs(net, args, abuse, height, ABUSER_WARMUP_S + args.seconds + WALLET_DRAIN_S)
        if abuse
        else []
    )
    label = f"wallets-{phase}"
    _say(f"interference ({phase}): {count} tx at {args.wallet_rate:g} tx/s ...")
    with Drivers(specs) as drivers:
        before, wall, machine = net.cpu_seconds(), time.monotonic(), _machine_jiffies()
        drivers.go()
        if specs:
            time.sleep(ABUSER_WARMUP_S)
        client_cpu = time.process_time()
        load, breaks = trio.run(
            wallet_load, net.urls, signed, args.wallet_rate, args.wallet_connections, label
        )
        client_cpu = time.process_time() - client_cpu
        drivers.stop()
        driven = drivers.results(REQUEST_TIMEOUT_S + 10.0)
        cpu = [a - b for a, b in zip(net.cpu_seconds(), before, strict=True)]
        wall = time.monotonic() - wall
        shares = _machine_share(machine)
    summary = load.summary()
    result: dict[str, Any] = {
        "wallet_rate": args.wallet_rate,
        "offered": summary["offered"],
        "acknowledged": summary["acknowledged"],
        "finalized": summary["finalized"],
        "lost": summary["lost"],
        "refused": summary["refused"],
        "wallet_429": int(load.refused.get("http 429", 0)),
        "finality_ms": summary["latency_ms"],
        "lagged_s": summary["lagged_s"],
        "events_stream_breaks": breaks,
        "wallet_client_cpu_util": round(client_cpu / wall, 3),
        "nodes_cpu_util": [round(c / wall, 3) for c in cpu],
        **shares,
        "not_final": _not_final(net, load, signed),
    }
    if driven:
        result["abusers"] = {"kind": abuse, **_abuser_summary(driven)}
    return result


def _abuser_summary(driven: Sequence[DriveResult]) -> dict[str, Any]:
    per_address = {}
    for result in driven:
        for address, tally in result.tallies.items():
            per_address[address] = _tally_summary(tally, result.elapsed_s)
    total, elapsed, client = _combined(driven)
    summary = _tally_summary(total, elapsed)
    summary["status_429"] = total.statuses.get(429, 0)
    summary["client_cpu_util"] = [round(c, 3) for c in client]
    summary["per_address"] = per_address
    return summary


def _restart(net: Devnet, env: dict[str, str]) -> None:
    """Every node stopped and started again with `env` over the benchmark's."""
    net.stop_all()
    for node in net.nodes:
        node.env = BENCH_ENV | env
    net.start_all()
    _wait_ready(net)


def _over_limit(abusers: dict[str, Any], rate: float, burst: int) -> float:
    """Tokens the addresses got over what their buckets allow in the time
    (a full bucket to start, then the rate): above 1.0 the limiter let them
    through faster than configured."""
    allowed = len(ABUSER_ADDRESSES) * (burst + rate * abusers["seconds"])
    return round(abusers["tokens"] / allowed, 2)


def run_interference(
    net: Devnet, args: argparse.Namespace, height: int, rate: float, burst: int
) -> dict[str, dict[str, Any]]:
    results = {
        "a": run_wallets(net, args, "a", 201, None, height),
        "b": run_wallets(net, args, "b", 202, "range", height),
    }
    for phase, seed, kind in (("c", 203, "range"), ("d", 204, "block")):
        # Restarted before each: every address starts with a full bucket, none
        # in debt from the run before.
        _say(f"restarting the nodes with {rate:g} requests/s, burst {burst} per address ...")
        _restart(net, limit_env(rate, burst))
        result = results[phase] = run_wallets(net, args, phase, seed, kind, height)
        result["limit"] = {"requests_per_s": rate, "burst": burst}
        result["abusers"]["over_limit"] = _over_limit(result["abusers"], rate, burst)
    return results


# ------------------------------------------------------------------ report


def _row(cells: Sequence[object], widths: Sequence[int]) -> str:
    return "  ".join(
        f"{cell!s:<{w}}" if i == 0 else f"{cell!s:>{w}}"
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
    )


def print_table(report: dict[str, Any]) -> None:
    settings = report["settings"]
    print()
    print(
        f"Capacity of node 0, rate limit lifted: {settings['connections']} connections from"
        f" {settings['client_processes']} client process(es), {settings['seconds']} s per kind,"
        f" {report['machine']['cores']} cores for 4 nodes and the clients"
        f" (Ed25519 verify {report['machine']['verify_us']} us)"
    )
    widths = (40, 8, 9, 8, 9, 10, 9, 10, 8, 8, 9)
    print(
        _row(
            (
                "kind",
                "req/s",
                "resp MB/s",
                "tok/req",
                "tokens/s",
                "cpu us/req",
                "node0 cpu",
                "tok/cpu-s",
                "p50 ms",
                "p99 ms",
                "client cpu",
            ),
            widths,
        )
    )
    for kind, run in report["capacity"].items():
        client = "/".join(f"{c:.0%}" for c in run["client_cpu_util"])
        print(
            _row(
                (
                    KIND_LABELS[kind],
                    run["requests_s"],
                    run["response_mb_s"],
                    run["tokens_per_request"],
                    run["tokens_s"],
                    run["node0_cpu_us_per_request"],
                    f"{run['node0_cpu_util']:.0%}",
                    run["tokens_per_node0_cpu_s"],
                    run["latency_ms_p50"],
                    run["latency_ms_p99"],
                    client,
                ),
                widths,
            )
        )
        note = f"  {run['note']}" if "note" in run else ""
        print(f"{'':<42}statuses {run['statuses']}  {_machine_text(run)}{note}")
    _print_interference(report)


def _machine_text(run: dict[str, Any]) -> str:
    return f"machine busy {run['machine_busy']:.0%}, steal {run['machine_steal']:.0%}"


def _print_interference(report: dict[str, Any]) -> None:
    candidate = report["candidate"]
    print()
    print(
        f"Finality of {report['settings']['wallet_rate']:g} tx/s of single POST /tx over 4 nodes"
        f" (from 127.0.0.1), {report['settings']['seconds']} s per run; abusers: 4 addresses x"
        f" {report['settings']['abuser_connections']} connections to node 0 each"
    )
    widths = (38, 8, 8, 10, 10, 11, 9, 11, 7, 18, 13)
    header = (
        "run",
        "p50 ms",
        "p99 ms",
        "final/sent",
        "wallet 429",
        "abuse req/s",
        "abuse 429",
        "abuse tok/s",
        "x limit",
        "node cpu",
        "machine",
    )
    print(_row(header, widths))
    names = {
        "a": "(a) wallets alone",
        "b": "(b) + abusers, limit lifted",
        "c": f"(c) + abusers, limit {candidate['requests_per_s']:g}/s",
        "d": f"(d) + small-GET abusers, limit {candidate['requests_per_s']:g}/s",
    }
    for phase, run in report["interference"].items():
        abusers = run.get("abusers")
        latency = run["finality_ms"]
        print(
            _row(
                (
                    names[phase],
                    latency["p50"],
                    latency["p99"],
                    f"{run['finalized']}/{run['offered']}",
                    run["wallet_429"],
                    abusers["requests_s"] if abusers else "-",
                    abusers["status_429"] if abusers else "-",
                    abusers["tokens_s"] if abusers else "-",
                    abusers.get("over_limit", "-") if abusers else "-",
                    "/".join(f"{c:.0%}" for c in run["nodes_cpu_util"]),
                    f"{run['machine_busy']:.0%} st {run['machine_steal']:.0%}",
                ),
                widths,
            )
        )
    not_final = {p: r["not_final"] for p, r in report["interference"].items() if r["not_final"]}
    if not_final:
        print(f"acknowledged, not final within {WALLET_DRAIN_S:g} s, as the node said: {not_final}")
    breaks = {p: r["events_stream_breaks"] for p, r in report["interference"].items()}
    if any(breaks.values()):
        print(f"/events streams broke and were resumed (per run): {breaks}")
    print()
    print(
        f"candidate per address: {candidate['requests_per_s']:g} tokens/s,"
        f" burst {candidate['burst']}"
    )
    print(f"  ({candidate['reason']})")


# ------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(
        prog="bench_rpc",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--out", default="bench-rpc.json", help="JSON results (default bench-rpc.json)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each run (default 8)")
    parser.add_argument(
        "--connections", type=int, default=16, help="capacity: keep-alive connections (default 16)"
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="client processes to spread them over (default 2)",
    )
    parser.add_argument(
        "--tx-count", type=int, default=20_000, help="pre-signed POST /tx bodies (default 20000)"
    )
    parser.add_argument(
        "--build-txs", type=int, default=300, help="large transactions (default 300)"
    )
    parser.add_argument(
        "--payload", type=int, default=40_000, help="their payload bytes (default 40000)"
    )
    parser.add_argument(
        "--wallet-rate", type=float, default=100.0, help="wallet tx/s over all nodes (default 100)"
    )
    parser.add_argument(
        "--wallet-connections", type=int, default=4, help="wallet connections per node (default 4)"
    )
    parser.add_argument(
        "--abuser-connections",
        type=int,
        default=4,
        help="connections per abusive address (default 4)",
    )
    parser.add_argument(
        "--candidate-rate",
        type=float,
        help="per-address requests_per_s of runs (c), (d) (default: the shipped default)",
    )
    parser.add_argument(
        "--candidate-burst",
        type=int,
        help="per-address burst of runs (c), (d)"
        f" (default: the shipped one, or 2 s of --candidate-rate, at least {MAX_REQUEST_TOKENS})",
    )
    parser.add_argument("--dir", help="devnet directory (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    counts = (args.connections, args.client_processes, args.tx_count, args.build_txs)
    if args.seconds <= 0 or args.wallet_rate <= 0 or min(counts) < 1:
        parser.error("--seconds, --wallet-rate and the counts must be positive")
    if not 1 <= args.payload <= PAYLOAD_MAX:
        parser.error(f"--payload must be 1..{PAYLOAD_MAX} bytes")
    if args.connections > 60:
        parser.error("--connections must be at most 60 (64 per client address)")
    if not 1 <= args.abuser_connections <= 16 or not 1 <= args.wallet_connections <= 16:
        # 64 connections per client address at most (`[rpc] connections_per_client_max`)
        parser.error("--abuser-connections and --wallet-connections must be 1..16")
    if args.candidate_rate is not None and args.candidate_rate <= 0:
        parser.error("--candidate-rate must be positive")
    return args


def _candidate(args: argparse.Namespace, capacity: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rate, burst = _DEFAULTS.requests_per_s, _DEFAULTS.burst
    reason = "the shipped default"
    if args.candidate_rate is not None:
        rate, burst = args.candidate_rate, candidate_burst(args.candidate_rate)
        reason = "--candidate-rate"
    if args.candidate_burst is not None:
        burst = args.candidate_burst
        reason += ", --candidate-burst"
    share, kind = core_share(rate, capacity)
    reason += f"; one address may take {share:.0%} of a core asking for {KIND_LABELS[kind]}"
    return {"requests_per_s": rate, "burst": burst, "reason": reason, "core_share": share}


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "settings": vars(args),
        "max_request_tokens": MAX_REQUEST_TOKENS,
    }
    _say("starting a 4-validator devnet ...")
    with devnet(root / "devnet") as net:
        _wait_ready(net)
        # The machine's speed beside the figures: one Ed25519 verification.
        report["machine"] = machine_limit(net.layout.chain_id, len(net.nodes))
        tx_bodies = [
            s.body
            # One transaction per sender: the connections send in any order.
            for s in _presign(
                net.layout.chain_id,
                args.tx_count,
                args.tx_count,
                101,
                payload_bytes=WALLET_PAYLOAD_BYTES,
            )
        ]
        report["chain"] = build_chain(net, args)
        report["capacity"] = run_capacity(net, args, report["chain"]["height"], tx_bodies)
        _say("waiting for the mempools to drain ...")
        _wait_mempools_empty(net)
        report["candidate"] = _candidate(args, report["capacity"])
        rate, burst = report["candidate"]["requests_per_s"], report["candidate"]["burst"]
        height = report["chain"]["height"]
        report["interference"] = run_interference(net, args, height, rate, burst)
    return report


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: trio's own SIGINT handler (while it runs) raises
    KeyboardInterrupt where it is safe, and the devnet's `finally` stops
    the nodes."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):
        handler = signal.default_int_handler
    handler(signal.SIGINT, frame)


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C (or SIGTERM), maybe inside trio's exception groups, and nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(KeyboardInterrupt)[1] is None
    return isinstance(exc, KeyboardInterrupt)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell: SIGINT must still stop the run
        # (and trio only handles it when it finds the default handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _directory(args.dir) as root:
            report = run(args, root)
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        _say("interrupted; every node and client process is stopped")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwrote {args.out}")
    return 0


@contextlib.contextmanager
def _directory(path: str | None) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sequencer-rpcbench-") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    sys.exit(main())
