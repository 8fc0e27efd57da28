"""The wallet run's lines in the table of `scripts/bench.py` (`node.lab.wallet`)."""

from __future__ import annotations

from typing import Any

__all__ = ["wallet_rows"]


def wallet_rows(run: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, text) rows: three per phase, the name on the first only."""
    if "skipped" in run:
        return [("wallet", f"skipped: {run['skipped']}")]
    rows = []
    for name in ("saturation", "rate"):
        phase = run.get(name)
        if phase:
            rows.extend(_phase_rows(name, phase))
    rows.append(
        (
            "",
            f"{run['senders']} senders, one tx each; {run['connections']} connections over"
            f" {run['nodes']} nodes; every 202 final on every node:"
            f" {run['acknowledged'] - run['not_final']}/{run['acknowledged']}",
        )
    )
    return rows


def _phase_rows(name: str, phase: dict[str, Any]) -> list[tuple[str, str]]:
    node, bare = phase["node"], phase["bare"]
    target = f" {phase['target_tx_s']:g}/s" if phase["target_tx_s"] else ""
    ack, final = node["latency_202_ms"], node["finality_ms"]
    window = node["window_s"]
    node_cpu = sum(node["cpu_s_per_node_while_sending"])
    return [
        (
            "wallet",
            f"{name}{target}: offered {node['offered_tx_s']} tx/s, acknowledged"
            f" {node['acknowledged_tx_s']} tx/s, final {node['finalized_tx_s']} tx/s;"
            f" bare {bare['requests_s']} req/s; ratio {phase['ratio']}"
            f" (final {phase['ratio_finalized']})",
        ),
        (
            "",
            f"202 p50 {ack['p50']} ms p99 {ack['p99']} ms  finality p50 {final['p50']} ms"
            f" p99 {final['p99']} ms  cpu {node['cpu_us_per_tx_per_node']} us/tx/node"
            f" (bare {bare['server_cpu_us_per_request']} us/req)  not final"
            f" {node['not_final']}/{node['acknowledged']}  non-202 {node['non_202_codes'] or 0}",
        ),
        (
            "",
            f"client cpu {node['client_cpu_s']} s = {node['client_cores']} cores"
            f" ({node['client_cpu_us_per_request']} us/req; bare run {bare['client_cores']}"
            f" cores); nodes {node_cpu:.1f} s = {node_cpu / window:.2f} cores while sending;"
            f" machine busy {node['machine_busy']:.0%}, other jobs {node['others_cores']} cores"
            f" (bare run {bare['machine_busy']:.0%}, {bare['others_cores']});"
            f" unanswered at stop {node['unanswered_at_stop']}"
            + ("; bodies ran out" if node["bodies_ran_out"] else ""),
        ),
    ]
