"""The RPC benchmark's load drivers: one request kind against one node, from
chosen source addresses, over keep-alive connections (`node.lab.rawhttp`),
each driver in its own process, tallied in rate-limit tokens the way the
limiter counts them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue as queue_module
import signal
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import trio

from node.api.limits import request_tokens
from node.lab.rawhttp import Connection, HttpError
from node.lab.stats import percentile_ms

__all__ = [
    "KINDS",
    "KIND_LABELS",
    "RANGE_PATH",
    "REQUEST_TIMEOUT_S",
    "SPAWN_TIMEOUT_S",
    "DriveResult",
    "DriveSpec",
    "Drivers",
    "Tally",
    "combined",
    "tally_summary",
]

KINDS = ("status", "block", "range", "tx")
KIND_LABELS = {
    "status": "GET /status",
    "block": "GET /blocks/{h}",
    "range": "GET /blocks?from=1&limit=100&full=true",
    "tx": "POST /tx",
}
RANGE_PATH = "/blocks?from=1&limit=100&full=true"
REQUEST_TIMEOUT_S = 30.0
SPAWN_TIMEOUT_S = 60.0


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


def tally_summary(tally: Tally, elapsed_s: float) -> dict[str, Any]:
    """A tally's figures over `elapsed_s`."""
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
        "latency_ms_p50": percentile_ms(tally.latencies, 0.5),
        "latency_ms_p99": percentile_ms(tally.latencies, 0.99),
        "statuses": {str(code): n for code, n in sorted(tally.statuses.items())},
    }


def combined(results: Sequence[DriveResult]) -> tuple[Tally, float, list[float]]:
    """Every process's tallies as one; the longest elapsed; CPU per process."""
    total = Tally()
    for result in results:
        for tally in result.tallies.values():
            total.merge(tally)
    elapsed = max(r.elapsed_s for r in results)
    return total, elapsed, [r.cpu_s / r.elapsed_s if r.elapsed_s else 0.0 for r in results]
