"""End-to-end benchmark of a fresh 4-node devnet.

    python3 scripts/bench.py                       # every run, table + bench.json
    python3 scripts/bench.py --only saturation --only rate
    python3 scripts/bench.py --soak-seconds 600    # memory over 10 minutes at 1,000 tx/s
    python3 scripts/bench.py --only wallet         # wallets: one tx per request, via wrk

Runs, each on the same devnet of real node processes on loopback:

  saturation  POST /txs batches as fast as the nodes commit them
  rate        a fixed offered load (1,000 tx/s) for finality latency
  single      single POST /tx requests/s, against a bare Starlette handler
              served by the same Hypercorn-on-trio stack, side by side
  wallet      (on a devnet of its own) one fresh sender per transaction, single
              POST /tx from wrk over 64 keep-alive connections spread over all
              nodes: saturation, then 1,000 tx/s, each beside the same load on
              as many bare handlers; every 202 checked final on every node
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
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from node.lab.bench_load import run_rate, run_saturation, run_soak
from node.lab.bench_single import request_rate, run_single, serve_bare
from node.lab.devnet import Devnet, devnet
from node.lab.harness import run_directory, say
from node.lab.machine import machine_limit
from node.lab.wallet import run_wallet, wallet_unavailable
from node.lab.wallet_report import wallet_rows

# `request_rate` is run by hand as `node.lab.bench.request_rate` (docs/benchmarks.md).
__all__ = ["main", "request_rate"]

RUNS = ("saturation", "rate", "single", "wallet", "restart", "catchup")


# ------------------------------------------------------------------ report


def _retried(run: dict[str, Any]) -> str:
    """Transactions the load sent again, by the refusal that passed."""
    retried = run.get("retried") or {}
    if not retried:
        return ""
    return "  retried " + ", ".join(f"{code} {n}" for code, n in sorted(retried.items()))


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
                f"peak rss {max(run['peak_rss_mib'])} MiB" + _retried(run),
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
                f" last minute {soak['rss_mib_last_minute']}" + _retried(soak),
            )
        )
    single = report["runs"].get("single")
    if single:
        rows.append(
            (
                "single",
                f"node {single['node_requests_s']:.1f} req/s"
                f"  bare {single['bare_requests_s']:.1f} req/s"
                f"  ratio {single['ratio']}  (server CPU per request: node"
                f" {single['node_cpu_us_per_request']:.1f} us,"
                f" bare {single['bare_cpu_us_per_request']:.1f} us)",
            )
        )
    wallet = report["runs"].get("wallet")
    if wallet:
        rows.extend(wallet_rows(wallet))
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
        "--wallet-senders",
        type=int,
        default=48_000,
        help="wallet: pre-signed senders (one tx each) of its saturation phase (default 48000)",
    )
    parser.add_argument(
        "--wallet-seconds", type=float, default=12.0, help="wallet: saturation seconds"
    )
    parser.add_argument(
        "--wallet-rate", type=float, default=1_000.0, help="wallet: tx/s of its fixed-rate phase"
    )
    parser.add_argument(
        "--wallet-rate-seconds", type=float, default=15.0, help="wallet: fixed-rate seconds"
    )
    parser.add_argument(
        "--wallet-connections", type=int, default=16, help="wallet: connections per node (wrk)"
    )
    parser.add_argument(
        "--wallet-drain-s",
        type=float,
        default=60.0,
        help="wallet: after each phase, wait at most this long for every 202 to be final",
    )
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
    with run_directory(args.dir, "sequencer-bench-") as root:
        net_runs = [r for r in runs if r in ("saturation", "rate", "single")]
        if net_runs or args.soak_seconds:
            with devnet(root / "devnet") as net:
                chain_id = net.layout.chain_id
                report["machine"] = machine_limit(chain_id, len(net.urls))
                _run_on_devnet(net, chain_id, runs, args, report)
        else:
            report["machine"] = machine_limit("devnet-1", 4)
        if "wallet" in runs:
            report["runs"]["wallet"] = _wallet_run(root / "wallet", args)
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
            say("bench", f"{name} ...")
            report["runs"][name] = step()
    if args.soak_seconds:
        say("bench", f"soak for {args.soak_seconds} s ...")
        report["runs"]["soak"] = run_soak(net, chain_id, args, seed=4)


def _wallet_run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The wallet run, on a fresh devnet of its own; skipped without wrk."""
    missing = wallet_unavailable()
    if missing:
        say("bench", f"wallet skipped: {missing}")
        return {"skipped": missing}
    say("bench", "wallet ...")
    with devnet(root) as net:
        return run_wallet(net, net.layout.chain_id, args, seed=5)


def _sync_runs(root: Path, runs: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Restart-to-ready and catch-up on a devnet whose nodes 0-2 hold a long chain."""
    from node.lab import syncbench

    say("bench", f"building {args.sync_blocks} blocks ...")
    built = syncbench.build(root, args.sync_blocks, progress=_say)
    results: dict[str, Any] = {}
    if "restart" in runs:
        say("bench", "restart ...")
        results["restart"] = {"blocks": built["blocks"], **syncbench.measure_restart(root)}
    if "catchup" in runs:
        say("bench", "catch-up ...")
        results["catchup"] = syncbench.measure_catchup(root, progress=_say)
    return results


def _say(message: str) -> None:
    """Progress of `node.lab.syncbench`, whose lines carry their own tag."""
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
