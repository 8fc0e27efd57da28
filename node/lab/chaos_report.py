"""The audit at the end of a chaos run, and its one summary line: every
check of `node.lab.chaos`'s doc, over the chains the nodes serve
(`node.lab.audit`), node 0's file L1 and what the run saw.
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from node.lab.audit import AuditReport, audit, fetch_blocks
from node.lab.chaos_net import ChaosNet
from node.lab.chaos_run import CONVERGE_S, CONVERGED_HEIGHTS, Run
from node.ops.l1verify import verify_l1
from sequencer.certificate import ValidatorSet
from sequencer.genesis import load_genesis

__all__ = ["check", "summary_line"]


def check(run: Run, chaos: ChaosNet) -> dict[str, Any]:
    """Every check of `node.lab.chaos`'s doc; the report's `ok` says whether all passed."""
    layout = chaos.net.layout
    genesis = load_genesis(chaos.home(0) / "genesis.json")
    validators = ValidatorSet.from_genesis(genesis)
    with httpx.Client(timeout=30) as client:
        chains = [fetch_blocks(client, url) for url in chaos.net.urls]
    assert run.load is not None
    acked = [id_.hex() for id_ in run.load.acknowledged]
    report: AuditReport = audit(chains, layout.chain_id, validators, acked)
    l1, l1_certificates, _tip = verify_l1(
        chaos.net.urls[0], f"file:{chaos.home(0) / 'l1.jsonl'}", chaos.home(0) / "genesis.json"
    )
    equivocations = max(sum(chaos.equivocations), chaos.equivocations_in_logs())
    converged = run.converged_s is not None and run.converged_s <= CONVERGE_S
    problems = list(report.problems) + report.certificate_problems
    problems += [f"L1 batch {p.batch_number}: {p.issue}: {p.message}" for p in l1.problems]
    problems += l1_certificates + chaos.unexpected_exits
    if equivocations:
        problems.append(f"{equivocations} equivocations reported by the nodes")
    problems += run.stalls
    if not converged:
        problems.append(
            f"nodes not within {CONVERGED_HEIGHTS} heights {CONVERGE_S} s after healing"
        )
    healthy = not chaos.unexpected_exits
    return {
        "ok": report.ok
        and l1.ok
        and not l1_certificates
        and not equivocations
        and converged
        and not run.stalls
        and healthy,
        "forks": report.forks,
        "lost": report.lost,
        "duplicated": report.duplicated,
        "conflicting_signatures": report.conflicting_signatures,
        "equivocations": equivocations,
        "certificate_problems": len(report.certificate_problems),
        "faults_injected": run.injected,
        "offered": run.load.offered,
        "acknowledged": len(acked),
        "answered_known": len(run.load.known),
        "abandoned": len(run.load.abandoned),
        "finalized": report.finalized,
        "heights": report.heights,
        "l1_batches": l1.batch_count,
        "l1_verified_height": l1.verified_height,
        "l1_ok": l1.ok and not l1_certificates,
        "longest_recovery_s": round(max(run.recoveries, default=0.0), 1),
        "longest_stall_s": round(run.stall.longest_s, 1),
        "stall_bound_s": run.args.stall_bound,
        "stalls_over_bound": len(run.stalls),
        "converged_s": None if run.converged_s is None else round(run.converged_s, 1),
        "restarts": chaos.restarts,
        "unexpected_exits": len(chaos.unexpected_exits),
        "answers": dict(run.load.answers),
        "problems": problems[:50],
    }


def summary_line(result: dict[str, Any], seed: int, args: argparse.Namespace) -> str:
    return (
        f"chaos seed {seed}, {args.validators} validators, {args.duration:g} s: "
        f"forks: {result['forks']}, lost: {result['lost']}, "
        f"duplicated: {result['duplicated']}, "
        f"conflicting signatures: {result['conflicting_signatures']}, "
        f"equivocations: {result['equivocations']}, "
        f"faults injected: {result['faults_injected']}, "
        f"acknowledged: {result['acknowledged']}, finalized: {result['finalized']}, "
        f"longest recovery: {result['longest_recovery_s']} s, "
        f"longest stall: {result['longest_stall_s']} s (bound {result['stall_bound_s']:g} s), "
        f"converged in: {result['converged_s']} s, "
        f"L1: {'ok' if result['l1_ok'] else 'FAILED'} ({result['l1_batches']} batches) "
        f"-> {'OK' if result['ok'] else 'VIOLATION'}"
    )
