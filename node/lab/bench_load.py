"""The load runs of `scripts/bench.py`: saturation, a fixed rate, and the
soak, each through `node.lab.loadgen.run_load` on the benchmark's devnet,
with the nodes' CPU time, signature checks and memory beside the figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import trio

from node.lab.devnet import Devnet
from node.lab.loadgen import run_load
from node.lab.presign import Signed, presign_timed

__all__ = ["run_rate", "run_saturation", "run_soak"]


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


def _presign(chain_id: str, count: int, senders: int, nodes: int, seed: int) -> list[Signed]:
    return presign_timed(
        "bench", chain_id, count=count, senders=min(senders, count), nodes=nodes, seed=seed
    )


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
