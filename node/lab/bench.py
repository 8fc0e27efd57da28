"""End-to-end benchmark of a fresh 4-node devnet.

    python3 scripts/bench.py                       # every run, table + bench.json
    python3 scripts/bench.py --only saturation --only rate
    python3 scripts/bench.py --soak-seconds 600    # memory over 10 minutes at 1,000 tx/s

Runs, each on the same devnet of real node processes on loopback:

  saturation  POST /txs batches as fast as the nodes commit them
  rate        a fixed offered load (1,000 tx/s) for finality latency
  single      single POST /tx requests/s, against a bare Starlette handler
              served by the same Hypercorn-on-trio stack, side by side
  restart     restart-to-ready of a node holding many blocks (scripts/bench_sync.py)
  catchup     catch-up blocks/s of a node with an empty store (same)
  soak        (only with --soak-seconds) RSS of every node over a long fixed-rate run

Also measured in the same run: the machine's limit, cores / (nodes x one
Ed25519 transaction verification), and the achieved fraction of it. Signing
is done before any clock starts. Figures on a shared machine are noisy:
compare runs side by side, quote medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import trio

from node.lab.loadgen import RawConnection, Signed, presign, run_load
from node.ops.devnet import DevnetLayout, init_devnet
from node.ops.procs import NodeProcess, free_base_port
from sequencer.crypto import PrivateKey, sign_transaction, verify_transaction

__all__ = ["Devnet", "machine_limit", "main", "request_rate"]

RUNS = ("saturation", "rate", "single", "restart", "catchup")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 60.0
# The benchmark offers far more than a wallet would: the per-client rate limit
# is lifted so that it measures the node, not the limiter.
BENCH_ENV = {"SEQUENCER_RPC_REQUESTS_PER_S": "1000000", "SEQUENCER_RPC_BURST": "1000000"}


# ------------------------------------------------------------------ processes


class Devnet:
    """A devnet of node processes under `root`: start, stop, and read their
    CPU time and memory from /proc."""

    def __init__(
        self,
        root: Path,
        validators: int = 4,
        base_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`env` adds environment variables of the node processes (config overrides)."""
        # + 5: the bare server of the single POST /tx run.
        base = free_base_port(validators, extra=(5,)) if base_port is None else base_port
        self.layout: DevnetLayout = init_devnet(root, validators, base)
        self.base_port = base
        self.nodes = [
            NodeProcess(Path(node.home), node.rpc, env=BENCH_ENV | (env or {}))
            for node in self.layout.nodes
        ]

    @property
    def urls(self) -> list[str]:
        return [node.rpc for node in self.layout.nodes]

    @property
    def processes(self) -> list[subprocess.Popen[bytes] | None]:
        return [node.process for node in self.nodes]

    def start(self, index: int) -> None:
        self.nodes[index].start()

    def start_all(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_healthy(READY_TIMEOUT_S)

    def stop_all(self) -> None:
        for process in self.processes:  # all at once, then wait for each
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p is not None]

    def cpu_seconds(self) -> list[float]:
        return [cpu_seconds(pid) for pid in self.pids()]

    def peak_rss_mib(self) -> list[float]:
        return [_status_kib(pid, "VmHWM") / 1024 for pid in self.pids()]

    def rss_mib(self) -> list[float]:
        return [_status_kib(pid, "VmRSS") / 1024 for pid in self.pids()]

    def signature_checks(self) -> list[float]:
        """Transaction signature verifications so far, per node (from /metrics)."""
        name = "sequencer_tx_signature_checks_total"
        return [_metric_sum(f"{url}/metrics", name) for url in self.urls]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _metric_sum(url: str, name: str) -> float:
    """The sum of a metric's samples, over its labels."""
    text = httpx.get(url, timeout=10.0).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def devnet(root: Path, validators: int = 4) -> Iterator[Devnet]:
    net = Devnet(root, validators)
    try:
        net.start_all()
        yield net
    finally:
        net.stop_all()


# ------------------------------------------------------------------ the machine's limit


def machine_limit(chain_id: str, nodes: int, samples: int = 2_000) -> dict[str, float]:
    """cores / (nodes x verification time): the commit rate at which every
    core does nothing but verify each transaction once on every node."""
    key = PrivateKey(b"\x01" * 32)
    txs = [
        sign_transaction(
            key, chain_id=chain_id, namespace=0, nonce=n, gas_price=1, payload=b"x" * 200
        )
        for n in range(samples)
    ]
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for tx in txs:
            verify_transaction(tx)
        runs.append((time.perf_counter() - started) / samples)
    verify_s = statistics.median(runs)
    cores = os.cpu_count() or 1
    return {
        "cores": cores,
        "verify_us": round(verify_s * 1e6, 2),
        "limit_tx_s": round(cores / (nodes * verify_s), 1),
    }


# ------------------------------------------------------------------ runs


def _load_run(net: Devnet, signed: list[Signed], label: str, **options: Any) -> dict[str, Any]:
    before, checks_before = net.cpu_seconds(), net.signature_checks()
    result = trio.run(lambda: run_load(net.urls, signed, label=label, **options))
    cpu = [after - b for after, b in zip(net.cpu_seconds(), before, strict=True)]
    checks = [a - b for a, b in zip(net.signature_checks(), checks_before, strict=True)]
    summary = result.summary()
    finalized = max(1, int(summary["finalized"]))  # type: ignore[call-overload]
    # Every node should verify each transaction once: this is 1.0 then.
    summary["signature_checks_per_tx_per_node"] = round(statistics.mean(checks) / finalized, 3)
    summary["cpu_s_per_node"] = [round(c, 2) for c in cpu]
    summary["cpu_us_per_tx_per_node"] = round(statistics.mean(cpu) / finalized * 1e6, 1)
    summary["peak_rss_mib"] = [round(r, 1) for r in net.peak_rss_mib()]
    return summary


def run_saturation(
    net: Devnet, chain_id: str, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    signed = _presign(chain_id, args.saturation_txs, args.senders, len(net.urls), seed)
    return _load_run(
        net,
        signed,
        "saturation",
        batch=args.batch,
        concurrency=args.concurrency,
        window=args.window,
    )


def run_rate(
    net: Devnet, chain_id: str, args: argparse.Namespace, seed: int, seconds: float
) -> dict[str, Any]:
    count = int(args.rate * seconds)
    signed = _presign(chain_id, count, args.senders, len(net.urls), seed)
    # Small requests, spread evenly: a batch of 10 every 10 ms at 1,000 tx/s.
    return _load_run(net, signed, "rate", rate=args.rate, batch=args.rate_batch)


def _presign(chain_id: str, count: int, senders: int, nodes: int, seed: int) -> list[Signed]:
    started = time.perf_counter()
    signed = presign(chain_id, count=count, senders=min(senders, count), nodes=nodes, seed=seed)
    took = time.perf_counter() - started
    print(f"[bench] signed {count} transactions in {took:.1f} s", file=sys.stderr, flush=True)
    return signed


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
    latencies.sort()
    count = sum(statuses.values())
    return {
        "requests": count,
        "seconds": round(elapsed, 3),
        "requests_s": round(count / elapsed, 1),
        "statuses": {str(k): v for k, v in statuses.items()},
        "latency_ms_p50": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2)
        if latencies
        else None,
    }


def run_single(net: Devnet, chain_id: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The node's POST /tx against the bare handler, alternating, each `single_rounds` times."""
    count = args.single_txs
    signed = _presign(chain_id, count, count, len(net.urls), seed)  # one tx per sender
    bodies = [s.body for s in signed]
    bare_url = f"http://127.0.0.1:{net.base_port + 5}"
    bare = subprocess.Popen(
        [sys.executable, "-m", "node.lab.bench", "--bare-server", f"127.0.0.1:{net.base_port + 5}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"{bare_url}/health")
        node_runs, bare_runs = [], []
        share = count // args.single_rounds
        for round_ in range(args.single_rounds):
            mine = bodies[round_ * share : (round_ + 1) * share]
            bare_runs.append(_rate(bare_url, bare.pid, mine, args, "bare"))
            node_runs.append(_rate(net.urls[0], net.pids()[0], mine, args, "node"))
    finally:
        bare.terminate()
        bare.wait(timeout=10)
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


def run_soak(net: Devnet, chain_id: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """A long fixed-rate run; every node's RSS sampled every `soak_sample_s`."""
    samples: list[tuple[float, list[float]]] = []

    async def sample() -> None:
        while True:
            samples.append((round(time.perf_counter() - started, 1), net.rss_mib()))
            await trio.sleep(args.soak_sample_s)

    count = int(args.rate * args.soak_seconds)
    signed = _presign(chain_id, count, args.senders, len(net.urls), seed)

    async def soak() -> dict[str, Any]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            result = await run_load(
                net.urls, signed, rate=args.rate, batch=args.rate_batch, label="soak"
            )
            nursery.cancel_scope.cancel()
        return result.summary()

    started = time.perf_counter()
    summary = trio.run(soak)
    minute = max(1, int(60 / args.soak_sample_s))
    first = [statistics.median(col) for col in zip(*(s for _, s in samples[:minute]), strict=True)]
    last = [statistics.median(col) for col in zip(*(s for _, s in samples[-minute:]), strict=True)]
    summary["rss_mib_first_minute"] = [round(v, 1) for v in first]
    summary["rss_mib_last_minute"] = [round(v, 1) for v in last]
    summary["rss_samples"] = samples
    return summary


# ------------------------------------------------------------------ the bare server


def serve_bare(listen: str) -> None:
    """A Starlette app with one trivial POST /tx, served like the node's RPC."""
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


# ------------------------------------------------------------------ report


def print_table(report: dict[str, Any]) -> None:
    limit = report["machine"]["limit_tx_s"]
    rows: list[tuple[str, str]] = []
    for name in ("saturation", "rate"):
        run = report["runs"].get(name)
        if not run:
            continue
        latency = run["latency_ms"]
        rows.append(
            (
                name,
                f"{run['committed_tx_s']:>8} tx/s (steady {run['steady_tx_s']}, "
                f"{run['steady_tx_s'] / limit:.0%} of limit)  "
                f"p50 {latency['p50']} ms  p99 {latency['p99']} ms  max {latency['max']} ms  "
                f"final {run['finalized']}/{run['acknowledged']} lost {run['lost']}  "
                f"cpu {run['cpu_us_per_tx_per_node']} us/tx/node  "
                f"verified {run['signature_checks_per_tx_per_node']}x  "
                f"peak rss {max(run['peak_rss_mib'])} MiB",
            )
        )
    soak = report["runs"].get("soak")
    if soak:
        latency = soak["latency_ms"]
        rows.append(
            (
                "soak",
                f"{soak['committed_tx_s']} tx/s for {soak['duration_s']} s  p50 {latency['p50']} ms"
                f"  p99 {latency['p99']} ms  final {soak['finalized']}/{soak['acknowledged']}"
                f"  RSS MiB first minute {soak['rss_mib_first_minute']}"
                f" last minute {soak['rss_mib_last_minute']}",
            )
        )
    single = report["runs"].get("single")
    if single:
        rows.append(
            (
                "single",
                f"node {single['node_requests_s']} req/s  bare {single['bare_requests_s']} req/s"
                f"  ratio {single['ratio']}  (server CPU per request: node"
                f" {single['node_cpu_us_per_request']} us,"
                f" bare {single['bare_cpu_us_per_request']} us)",
            )
        )
    restart = report["runs"].get("restart")
    if restart:
        runs = ", ".join(f"{r:.3f}" for r in restart["runs_s"])
        rows.append(
            (
                "restart",
                f"{restart['median_s']:.3f} s median to ready with"
                f" {restart['blocks']} blocks (runs {runs})",
            )
        )
    catchup = report["runs"].get("catchup")
    if catchup:
        rows.append(
            (
                "catchup",
                f"{catchup['blocks_per_s']:.0f} blocks/s ({catchup['blocks']} blocks"
                f" in {catchup['seconds']:.1f} s)",
            )
        )
    machine = report["machine"]
    print()
    print(
        f"machine: {machine['cores']} cores, Ed25519 verify {machine['verify_us']} us, "
        f"limit {limit} tx/s for {report['nodes']} nodes"
    )
    for name, text in rows:
        print(f"  {name:<11} {text}")


# ------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sequencer bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--only", choices=RUNS, action="append", help="run only these (repeatable)")
    parser.add_argument("--out", default="bench.json", help="JSON results (default bench.json)")
    parser.add_argument("--dir", help="devnet directory (default: a temporary one, removed)")
    parser.add_argument("--senders", type=int, default=2_000, help="signing keys (default 2000)")
    parser.add_argument("--saturation-txs", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=250, help="txs per POST /txs in saturation")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight per node")
    parser.add_argument(
        "--window", type=int, default=20_000, help="acknowledged, not final, at most"
    )
    parser.add_argument("--rate", type=float, default=1_000.0, help="offered tx/s of the rate run")
    parser.add_argument("--rate-seconds", type=float, default=30.0)
    parser.add_argument(
        "--rate-batch", type=int, default=10, help="txs per request in the rate run"
    )
    parser.add_argument("--single-txs", type=int, default=60_000)
    parser.add_argument("--single-seconds", type=float, default=5.0)
    parser.add_argument("--single-rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32, help="single: connections")
    parser.add_argument(
        "--sync-blocks", type=int, default=100_000, help="restart/catch-up chain length"
    )
    parser.add_argument("--soak-seconds", type=float, default=0.0, help="add a soak run this long")
    parser.add_argument("--soak-sample-s", type=float, default=10.0)
    parser.add_argument("--bare-server", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server:
        serve_bare(args.bare_server)
        return 0
    runs = args.only or [r for r in RUNS]
    report: dict[str, Any] = {"nodes": 4, "runs": {}, "settings": vars(args)}
    with _directory(args.dir) as root:
        net_runs = [r for r in runs if r in ("saturation", "rate", "single")]
        if net_runs or args.soak_seconds:
            with devnet(root / "devnet") as net:
                chain_id = net.layout.chain_id
                report["machine"] = machine_limit(chain_id, len(net.urls))
                _run_on_devnet(net, chain_id, runs, args, report)
        else:
            report["machine"] = machine_limit("devnet-1", 4)
        if "restart" in runs or "catchup" in runs:
            report["runs"].update(_sync_runs(root / "sync", runs, args))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwrote {args.out}")
    return 0


def _run_on_devnet(
    net: Devnet, chain_id: str, runs: list[str], args: argparse.Namespace, report: dict[str, Any]
) -> None:
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "saturation": lambda: run_saturation(net, chain_id, args, seed=1),
        "rate": lambda: run_rate(net, chain_id, args, seed=2, seconds=args.rate_seconds),
        "single": lambda: run_single(net, chain_id, args, seed=3),
    }
    for name, step in steps.items():
        if name in runs:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            report["runs"][name] = step()
    if args.soak_seconds:
        print(f"[bench] soak for {args.soak_seconds} s ...", file=sys.stderr, flush=True)
        report["runs"]["soak"] = run_soak(net, chain_id, args, seed=4)


def _sync_runs(root: Path, runs: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Restart-to-ready and catch-up on a devnet whose nodes 0-2 hold a long chain."""
    from node.lab import syncbench

    print(f"[bench] building {args.sync_blocks} blocks ...", file=sys.stderr, flush=True)
    built = syncbench.build(root, args.sync_blocks, progress=_say)
    results: dict[str, Any] = {}
    if "restart" in runs:
        print("[bench] restart ...", file=sys.stderr, flush=True)
        results["restart"] = {"blocks": built["blocks"], **syncbench.measure_restart(root)}
    if "catchup" in runs:
        print("[bench] catch-up ...", file=sys.stderr, flush=True)
        results["catchup"] = syncbench.measure_catchup(root, progress=_say)
    return results


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _directory(path: str | None) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="sequencer-bench-") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    sys.exit(main())
