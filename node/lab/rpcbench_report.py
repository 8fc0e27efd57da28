"""The RPC benchmark's tables: capacity per request kind, then the wallet
load's finality in each interference run, and the candidate limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.lab.rpcbench_drive import KIND_LABELS
from node.lab.rpcbench_wallets import WALLET_DRAIN_S

__all__ = ["print_table"]


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
