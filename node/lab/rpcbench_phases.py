"""The phases of the RPC benchmark on its devnet: the chain of large blocks,
each request kind's capacity against node 0 with the limit lifted, and the
wallet load's finality beside abusive readers, without and with the
candidate per-address limit (the nodes restarted with it).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import trio

from node.lab.devnet import BENCH_ENV, Devnet
from node.lab.harness import say
from node.lab.loadgen import run_load
from node.lab.machine import machine_jiffies, machine_share
from node.lab.presign import Signed, presign_timed
from node.lab.rpcbench_drive import (
    KIND_LABELS,
    KINDS,
    RANGE_PATH,
    REQUEST_TIMEOUT_S,
    SPAWN_TIMEOUT_S,
    DriveResult,
    Drivers,
    DriveSpec,
    combined,
    tally_summary,
)
from node.lab.rpcbench_wallets import WALLET_DRAIN_S, not_final, wallet_load
from node.ops.procs import get_json, wait_until

__all__ = [
    "BUILD_BATCH",
    "build_chain",
    "run_capacity",
    "run_interference",
    "sign_tx_bodies",
    "wait_mempools_empty",
    "wait_ready",
]

ABUSER_ADDRESSES = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")
READY_TIMEOUT_S = 60.0
ABUSER_WARMUP_S = 1.0  # the abusers reach their pace before the first wallet send
WALLET_PAYLOAD_BYTES = 200  # wallet and POST /tx transactions, as node.lab.bench sends
BUILD_BATCH = 10  # 40 KB payloads are 80 KB of hex: ten stay under body_bytes_max


def limit_env(rate: float, burst: int) -> dict[str, str]:
    """The nodes' environment that sets their per-address rate limit."""
    return {"SEQUENCER_RPC_REQUESTS_PER_S": f"{rate:g}", "SEQUENCER_RPC_BURST": str(burst)}


def wait_ready(net: Devnet) -> None:
    """Every node answers /ready: connected, and taking transactions."""
    for url in net.urls:
        wait_until(lambda u=url: get_json(f"{u}/ready")[0] == 200, READY_TIMEOUT_S, f"{url} ready")


def wait_mempools_empty(net: Devnet, timeout_s: float = 120.0) -> None:
    """No transaction waits anywhere: the next phase starts from a quiet devnet."""

    def empty() -> bool:
        for url in net.urls:
            code, status = get_json(f"{url}/status")
            pool = status["mempool"] if code == 200 else None
            if pool is None or pool["pending"] + pool["queued"]:
                return False
        return True

    wait_until(empty, timeout_s, "empty mempools", poll_s=0.2)


def _presign(
    chain_id: str, count: int, senders: int, seed: int, payload_bytes: int
) -> list[Signed]:
    return presign_timed(
        "rpcbench",
        chain_id,
        count=count,
        senders=senders,
        nodes=4,
        seed=seed,
        payload_bytes=payload_bytes,
    )


def sign_tx_bodies(chain_id: str, count: int) -> list[bytes]:
    """`count` fresh `POST /tx` bodies for the capacity run."""
    # One transaction per sender: the connections send in any order.
    return [s.body for s in _presign(chain_id, count, count, 101, WALLET_PAYLOAD_BYTES)]


def build_chain(net: Devnet, args: argparse.Namespace) -> dict[str, Any]:
    """Large blocks first, so that a full block range answers megabytes."""
    chain_id = net.layout.chain_id
    signed = _presign(chain_id, args.build_txs, max(1, args.build_txs // 10), 100, args.payload)
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
    say(
        "rpcbench",
        f"chain: {height} blocks; the full range answers {len(blocks)} blocks, ~{size} bytes",
    )
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
        before, wall, machine = net.cpu_seconds(), time.monotonic(), machine_jiffies()
        drivers.go()
        results = drivers.results(seconds + REQUEST_TIMEOUT_S + SPAWN_TIMEOUT_S)
        cpu = [a - b for a, b in zip(net.cpu_seconds(), before, strict=True)]
        wall = time.monotonic() - wall
        shares = machine_share(machine)
    total, elapsed, client = combined(results)
    summary = tally_summary(total, elapsed)
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
        say("rpcbench", f"capacity: {KIND_LABELS[kind]} for {args.seconds} s ...")
        result = _measure(net, specs, args.seconds)
        if kind == "tx" and result["requests"] >= len(bodies):
            result["note"] = "ran out of pre-signed transactions: raise --tx-count"
        results[kind] = result
        say(
            "rpcbench",
            f"capacity: {kind}: {result['requests_s']} req/s, {result['tokens_s']} tokens/s,"
            f" node 0 {result['node0_cpu_util']:.0%} CPU, statuses {result['statuses']}",
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


def run_wallets(
    net: Devnet, args: argparse.Namespace, phase: str, seed: int, abuse: str | None, height: int
) -> dict[str, Any]:
    """The wallet load timed to finality, with or without the abusive readers."""
    count = max(1, int(args.wallet_rate * args.seconds))
    # Many senders, few nonces each: no sender's next nonce waits on its last.
    signed = _presign(net.layout.chain_id, count, min(count, 200), seed, WALLET_PAYLOAD_BYTES)
    specs = (
        _abuser_specs(net, args, abuse, height, ABUSER_WARMUP_S + args.seconds + WALLET_DRAIN_S)
        if abuse
        else []
    )
    label = f"wallets-{phase}"
    say("rpcbench", f"interference ({phase}): {count} tx at {args.wallet_rate:g} tx/s ...")
    with Drivers(specs) as drivers:
        before, wall, machine = net.cpu_seconds(), time.monotonic(), machine_jiffies()
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
        shares = machine_share(machine)
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
        "not_final": not_final(net, load, signed),
    }
    if driven:
        result["abusers"] = {"kind": abuse, **_abuser_summary(driven)}
    return result


def _abuser_summary(driven: Sequence[DriveResult]) -> dict[str, Any]:
    per_address = {}
    for result in driven:
        for address, tally in result.tallies.items():
            per_address[address] = tally_summary(tally, result.elapsed_s)
    total, elapsed, client = combined(driven)
    summary = tally_summary(total, elapsed)
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
    wait_ready(net)


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
        say(
            "rpcbench",
            f"restarting the nodes with {rate:g} requests/s, burst {burst} per address ...",
        )
        _restart(net, limit_env(rate, burst))
        result = results[phase] = run_wallets(net, args, phase, seed, kind, height)
        result["limit"] = {"requests_per_s": rate, "burst": burst}
        result["abusers"]["over_limit"] = _over_limit(result["abusers"], rate, burst)
    return results
