"""The single run of `scripts/bench.py`: single `POST /tx` requests per
second against node 0 and, side by side, against a bare Starlette handler
served by the same Hypercorn-on-trio stack (`serve_bare`, started as
`python -m node.lab.bench --bare-server`), with each server's CPU time per
request.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
import trio

from node.lab.devnet import Devnet
from node.lab.machine import cpu_seconds
from node.lab.presign import presign_timed
from node.lab.rawhttp import RawConnection
from node.lab.stats import percentile_ms
from node.ops.procs import DEVNULL, ChildProcess

__all__ = ["request_rate", "run_single", "serve_bare"]


async def request_rate(
    url: str, bodies: Sequence[bytes], connections: int, seconds: float
) -> dict[str, Any]:
    """Single POST /tx requests over `connections` keep-alive connections for
    `seconds` (or until `bodies` run out): requests/s and latency."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    feed = iter(bodies)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        async with RawConnection(url) as connection:
            for body in feed:
                if time.perf_counter() >= deadline:
                    return
                started = time.perf_counter()
                status, _ = await connection.post("/tx", body)
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(worker)
    elapsed = time.perf_counter() - started
    count = sum(statuses.values())
    return {
        "requests": count,
        "seconds": round(elapsed, 3),
        "requests_s": round(count / elapsed, 1),
        "statuses": {str(k): v for k, v in statuses.items()},
        "latency_ms_p50": percentile_ms(latencies, 0.5),
        "latency_ms_p99": percentile_ms(latencies, 0.99),
    }


def run_single(net: Devnet, chain_id: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The node's POST /tx against the bare handler, alternating, each `single_rounds` times."""
    count = args.single_txs
    # One transaction per sender.
    signed = presign_timed(
        "bench", chain_id, count=count, senders=count, nodes=len(net.urls), seed=seed
    )
    bodies = [s.body for s in signed]
    listen = f"127.0.0.1:{net.base_port + 5}"
    bare_url = f"http://{listen}"
    serve = [sys.executable, "-m", "node.lab.bench", "--bare-server", listen]
    with ChildProcess(serve, output=DEVNULL, grace_s=10.0) as bare:  # stopped on the way out
        _wait_http(f"{bare_url}/health")
        node_runs, bare_runs = [], []
        share = count // args.single_rounds
        for round_ in range(args.single_rounds):
            mine = bodies[round_ * share : (round_ + 1) * share]
            bare_runs.append(_rate(bare_url, bare.pid, mine, args, "bare"))
            node_runs.append(_rate(net.urls[0], net.pids()[0], mine, args, "node"))
    node_rate = statistics.median(r["requests_s"] for r in node_runs)
    bare_rate = statistics.median(r["requests_s"] for r in bare_runs)
    node_cpu = statistics.median(r["server_cpu_us_per_request"] for r in node_runs)
    bare_cpu = statistics.median(r["server_cpu_us_per_request"] for r in bare_runs)
    return {
        "connections": args.connections,
        "node_requests_s": node_rate,
        "bare_requests_s": bare_rate,
        "node_cpu_us_per_request": node_cpu,
        "bare_cpu_us_per_request": bare_cpu,
        "ratio": round(node_rate / bare_rate, 3) if bare_rate else None,
        "node_runs": node_runs,
        "bare_runs": bare_runs,
    }


def _rate(
    url: str, pid: int, bodies: list[bytes], args: argparse.Namespace, label: str
) -> dict[str, Any]:
    """One timed run; with the server's CPU time per request."""
    before = cpu_seconds(pid)
    result = trio.run(request_rate, url, bodies, args.connections, args.single_seconds)
    cpu = cpu_seconds(pid) - before
    result["server_cpu_us_per_request"] = round(cpu / max(1, result["requests"]) * 1e6, 1)
    print(
        f"[single] {label}: {result['requests_s']} requests/s {result['statuses']}"
        f" {result['server_cpu_us_per_request']} us CPU/request",
        file=sys.stderr,
        flush=True,
    )
    return result


def _wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def serve_bare(listen: str) -> None:
    """A Starlette app with one trivial POST /tx, served like the node's RPC."""
    # Imported here: only the bare server's own process serves anything.
    from hypercorn.trio import serve
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from node.api.server import http_config

    answer = {"tx_id": "00" * 32}

    async def submit(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(answer, status_code=202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/tx", submit, methods=["POST"]), Route("/health", health)])
    trio.run(serve, app, http_config(listen))
