#!/usr/bin/env python3
"""Benchmark the gossip network: 4 nodes, one process each, on loopback.

    python3 scripts/bench_gossip.py                 # the standard table, writes bench-gossip.json
    python3 scripts/bench_gossip.py --messages 400000 --nodes 4 --out g.json
    python3 scripts/bench_gossip.py --only batched-65000

Every node publishes its share of 200-byte messages (round robin over the
nodes) and subscribes to the topic; a message counts as delivered when every
other node has it. Reported per run: messages/s and payload bytes/s
delivered to all nodes, delivery latency (publish to each receiver's
subscriber; processes share CLOCK_MONOTONIC) p50/p99/max, datagrams, loss
repairs, and CPU seconds per node. Saturation runs publish as fast as the
outbound backlog allows, so their latency is mostly queueing; the fixed-rate
run shows latency at a moderate load. Target: >= 50,000 messages/s delivered
to all 4 nodes with batching.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the project imports the venv's packages: at run time, after `reexec_in_venv`
    from net.stats import GossipNodeStatistics
    from node.ops.procs import ChildProcess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

PAYLOAD_BYTES = 200
RUNS = {
    # name: (datagram_bytes_max, flush_interval_ms, rate per second or 0 for saturation, loss)
    "batched-65000": (65_000, 2.0, 0, 0.0),
    "batched-1400": (1_400, 2.0, 0, 0.0),
    "batched-65000-loss5": (65_000, 2.0, 0, 0.05),
    "rate-20000-1400": (1_400, 2.0, 20_000, 0.0),
    "rate-20000-1400-noflush": (1_400, 0.0, 20_000, 0.0),
    "rate-40000-65000": (65_000, 2.0, 40_000, 0.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="per saturation run")
    parser.add_argument("--rate-seconds", type=float, default=5.0, help="length of rate runs")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--only", choices=sorted(RUNS), action="append", help="run only these")
    parser.add_argument("--base-port", type=int, default=28_400)
    parser.add_argument("--out", default="bench-gossip.json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return run_child(args.child, json.loads(args.spec))
    reexec_in_venv()
    results = []
    for name in args.only or list(RUNS):
        datagram, flush_ms, rate, loss = RUNS[name]
        messages = int(rate * args.rate_seconds) if rate else args.messages
        spec = {
            "name": name,
            "nodes": args.nodes,
            "messages": messages - messages % args.nodes,
            "datagram_bytes_max": datagram,
            "flush_interval_ms": flush_ms,
            "rate": rate,
            "loss": loss,
            "base_port": args.base_port,
        }
        print(
            f"[bench] {name}: {spec['messages']} messages over {args.nodes} nodes ...", flush=True
        )
        results.append(summarise(spec, run_processes(spec)))
    print_table(results)
    Path(args.out).write_text(json.dumps({"runs": results, "machine": machine()}, indent=2))
    print(f"[bench] wrote {args.out}")
    return 0


def reexec_in_venv() -> None:
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        return
    from bootstrap import ensure_venv  # stdlib-only set-up, shared with the test runner

    python = str(ensure_venv())
    os.execv(python, [python, __file__, *sys.argv[1:]])


def run_processes(spec: dict) -> list[dict]:
    """Start one child per node, collect one JSON line from each, stop them all."""
    from node.ops.procs import PIPE, ChildProcess, stop_all

    spec = {**spec, "start_at": time.monotonic() + 2.0}
    children: list[ChildProcess] = []
    try:
        for index in range(spec["nodes"]):
            argv = [sys.executable, __file__, "--child", str(index), "--spec", json.dumps(spec)]
            children.append(ChildProcess(argv, output=PIPE, text=True).start())
        return [read_report(child) for child in children]
    finally:
        stop_all(children, grace_s=10.0)
        for child in children:
            child.close()


def read_report(child: ChildProcess) -> dict:
    """The one JSON line a node prints. Its stderr shares the pipe: lines
    before the report (a warning, a traceback) are passed on to ours."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("{"):
            return json.loads(line)
        sys.stderr.write(line)
    raise SystemExit(f"[bench] a node exited early (code {child.wait()})")


# ----------------------------------------------------------------- one node


def run_child(index: int, spec: dict) -> int:
    import trio

    trio.run(node_main, index, spec)
    return 0


async def node_main(index: int, spec: dict) -> None:
    import trio

    from net.config import GossipConfig
    from net.driver import GossipNode
    from net.faults import FaultConfig
    from net.gossip import PeerAddress
    from net.wire import Topic
    from sequencer.crypto import PrivateKey

    count = spec["nodes"]
    keys = [PrivateKey(bytes([i + 1]) * 32) for i in range(count)]
    ports = [spec["base_port"] + i for i in range(count)]
    entries = [
        PeerAddress(k.public_key, ("127.0.0.1", p)) for k, p in zip(keys, ports, strict=True)
    ]
    config = GossipConfig(
        datagram_bytes_max=spec["datagram_bytes_max"], flush_interval_ms=spec["flush_interval_ms"]
    )
    node = GossipNode(
        keys[index],
        ("127.0.0.1", ports[index]),
        entries,
        config,
        FaultConfig(drop=spec["loss"]),
        seed=index,
    )
    messages = spec["messages"]
    expected = messages - messages // count
    latencies_ns: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        channel = node.subscribe(Topic.TX, capacity=messages + 1)
        # trio's clock has its own origin: wait in CLOCK_MONOTONIC terms.
        await trio.sleep(max(0.0, spec["start_at"] - time.monotonic()))
        cpu_start = cpu_seconds()
        nursery.start_soon(publish, node, index, spec)
        with trio.move_on_after(120):
            async for delivery in channel:
                latencies_ns.append(
                    time.monotonic_ns() - int.from_bytes(delivery.data[8:16], "big")
                )
                if len(latencies_ns) == expected:
                    break
        finished = time.monotonic()
        cpu = cpu_seconds() - cpu_start
        stats = node.statistics()
        latencies_ns.sort()
        report = node_report(index, spec, latencies_ns, expected, finished, cpu, stats)
        print(json.dumps(report), flush=True)
        # Keep sending, acknowledging and relaying (our last messages may still
        # be in flight) until the parent has every report and stops us.
        await trio.sleep(600)


def node_report(
    index: int,
    spec: dict,
    latencies_ns: list[int],
    expected: int,
    finished: float,
    cpu: float,
    stats: GossipNodeStatistics,
) -> dict:
    return {
        "node": index,
        "received": len(latencies_ns),
        "expected": expected,
        "finished_s": finished - spec["start_at"],
        "latency_ms": {
            "p50": percentile(latencies_ns, 0.50) / 1e6,
            "p99": percentile(latencies_ns, 0.99) / 1e6,
            "max": (latencies_ns[-1] if latencies_ns else 0) / 1e6,
        },
        "cpu_s": cpu,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "datagrams_sent": stats.gossip.datagrams_sent,
        "bytes_sent": stats.gossip.bytes_sent,
        "frames_retransmitted": stats.gossip.frames_retransmitted,
        "subscriber_dropped": stats.subscriber_dropped,
    }


async def publish(node, index: int, spec: dict) -> None:  # type: ignore[no-untyped-def]
    """Publish this node's share: as fast as back-pressure allows, or paced in
    1 ms steps (a sleep per message would cost more than the message)."""
    import trio

    from net.wire import Topic

    count, rate = spec["nodes"], spec["rate"]
    padding = bytes(PAYLOAD_BYTES - 16)
    mine = list(range(index, spec["messages"], count))
    per_second = rate / count if rate else 0.0
    started = trio.current_time()
    sent = 0
    while sent < len(mine):
        due = len(mine) if not rate else int((trio.current_time() - started) * per_second) + 1
        for number in mine[sent : min(due, sent + 64)]:
            stamp = time.monotonic_ns()
            data = number.to_bytes(8, "big") + stamp.to_bytes(8, "big") + padding
            await node.publish(Topic.TX, data)
            sent += 1
        await (trio.sleep(0.001) if rate and sent >= due else trio.sleep(0))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return float(sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))])


# ---------------------------------------------------------------- reporting


def summarise(spec: dict, reports: list[dict]) -> dict:
    complete = all(r["received"] == r["expected"] for r in reports)
    duration = max(r["finished_s"] for r in reports)
    messages = spec["messages"]
    return {
        **{k: spec[k] for k in ("name", "nodes", "messages", "datagram_bytes_max", "rate", "loss")},
        "flush_interval_ms": spec["flush_interval_ms"],
        "complete": complete,
        "seconds": duration,
        "messages_per_s": messages / duration if complete else 0.0,
        "payload_mib_per_s": messages * PAYLOAD_BYTES / duration / 2**20 if complete else 0.0,
        "latency_ms_p50": statistics.median(r["latency_ms"]["p50"] for r in reports),
        "latency_ms_p99": max(r["latency_ms"]["p99"] for r in reports),
        "latency_ms_max": max(r["latency_ms"]["max"] for r in reports),
        "datagrams_sent": sum(r["datagrams_sent"] for r in reports),
        "wire_mib": sum(r["bytes_sent"] for r in reports) / 2**20,
        "frames_retransmitted": sum(r["frames_retransmitted"] for r in reports),
        "cpu_s_per_node": [round(r["cpu_s"], 2) for r in reports],
        "rss_mib_max": max(r["rss_mib"] for r in reports),
        "nodes_detail": reports,
    }


def print_table(results: list[dict]) -> None:
    header = (
        f"{'run':<22}{'msgs':>9}{'msg/s':>10}{'MiB/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'dgrams':>9}{'resent':>8}{'cpu s/node':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        note = "" if r["complete"] else "  INCOMPLETE"
        cpu = statistics.mean(r["cpu_s_per_node"])
        print(
            f"{r['name']:<22}{r['messages']:>9}{r['messages_per_s']:>10.0f}"
            f"{r['payload_mib_per_s']:>8.1f}{r['latency_ms_p50']:>9.1f}{r['latency_ms_p99']:>9.1f}"
            f"{r['latency_ms_max']:>9.1f}{r['datagrams_sent']:>9}{r['frames_retransmitted']:>8}"
            f"{cpu:>12.2f}{note}"
        )


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform}


if __name__ == "__main__":
    sys.exit(main())
