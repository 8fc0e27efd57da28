"""RPC capacity in rate-limit tokens, and what heavy readers do to finality.

    python3 scripts/bench_rpc.py                       # table + bench-rpc.json
    python3 scripts/bench_rpc.py --seconds 10          # longer runs, steadier figures
    python3 scripts/bench_rpc.py --candidate-rate 200 --candidate-burst 1300

Everything runs on one fresh 4-validator devnet of real node processes on
loopback (`node.lab.devnet.devnet`), in three phases:

  build         a chain of large blocks: a few hundred transactions with 40 KB
                payloads, so that `GET /blocks?from=1&limit=100&full=true`
                answers megabytes (up to `[rpc] response_bytes_max`)
  capacity      the rate limit lifted; node 0 alone, one request kind at a time
                (`GET /status`, `GET /blocks/{h}`, the full block range, single
                `POST /tx` of fresh pre-signed transactions), as fast as
                `--connections` keep-alive connections from separate client
                processes get answers, for `--seconds` each
  interference  a steady wallet load (single `POST /tx` at `--wallet-rate`
                over all 4 nodes, from 127.0.0.1), timed from send until its
                block's event arrives from the node it went to:
                (a) alone;
                (b) with 4 abusive clients, from 127.0.0.11-14, reading full
                    block ranges from node 0 as fast as they can, limit lifted;
                then the nodes restart with the candidate per-address limit
                (the shipped default unless --candidate-rate says otherwise):
                (c) the same abusers;
                (d) the same addresses reading `GET /blocks/{h}` instead: small
                    answers, so one token each, whatever the node spends

Tokens. The limiter (`node.api.ratelimit.RateLimit`) charges a request what
`node.api.limits.request_tokens` says: 1 token, plus one per 4 KiB of request body
and one per 64 KiB of response; a refused (429) request costs none. A
kind's tokens/s is summed per request here the way the limiter does it.
"tok/cpu-s" divides by node 0's CPU time instead of wall time: how many
tokens of that kind one core serves. The closer it is across kinds, the
closer a budget in tokens is to a budget in CPU, whatever a client asks for.

The candidate limit. The rate is per client address, so k addresses take k
times it. The report gives what one address may take at the candidate rate:
the rate divided by the fewest tokens per CPU-second of any kind, a share
of one core. The burst must be at least the dearest request
(`RpcLimits.dearest_request_tokens`): the limiter lets a bucket go at most
`burst` into debt, so a smaller burst undercharges every large answer.

The wallet load is sent over raw keep-alive connections, not httpx (see
`node.lab.rpcbench_wallets`), and the abusive and capacity clients run in
their own processes; client CPU is reported beside each figure. Figures on
a shared machine are noisy: compare runs side by side, in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.api.limits import RpcLimits
from node.lab.devnet import devnet
from node.lab.harness import run_directory, say
from node.lab.machine import machine_limit
from node.lab.rpcbench_drive import KIND_LABELS
from node.lab.rpcbench_phases import (
    BUILD_BATCH,
    build_chain,
    run_capacity,
    run_interference,
    sign_tx_bodies,
    wait_mempools_empty,
    wait_ready,
)
from node.lab.rpcbench_report import print_table

__all__ = ["MAX_REQUEST_TOKENS", "candidate_burst", "core_share", "main"]

_DEFAULTS = RpcLimits()
MAX_REQUEST_TOKENS = _DEFAULTS.dearest_request_tokens
# Ten hex-encoded payloads (and their envelopes) in one POST /txs body.
PAYLOAD_MAX = (_DEFAULTS.body_bytes_max // BUILD_BATCH - 1_000) // 2


def core_share(rate: float, capacity: dict[str, dict[str, Any]]) -> tuple[float, str]:
    """The share of one core an address may take at `rate` tokens/s, asking
    for the kind whose tokens cost the most CPU; and that kind."""
    kinds = {
        kind: run["tokens_per_node0_cpu_s"]
        for kind, run in capacity.items()
        if run.get("tokens_per_node0_cpu_s")
    }
    dearest = min(kinds, key=kinds.__getitem__)
    return round(rate / kinds[dearest], 2), dearest


def candidate_burst(rate: float) -> int:
    return max(math.ceil(2 * rate), MAX_REQUEST_TOKENS)


# ------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(
        prog="bench_rpc",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--out", default="bench-rpc.json", help="JSON results (default bench-rpc.json)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each run (default 8)")
    parser.add_argument(
        "--connections", type=int, default=16, help="capacity: keep-alive connections (default 16)"
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="client processes to spread them over (default 2)",
    )
    parser.add_argument(
        "--tx-count", type=int, default=20_000, help="pre-signed POST /tx bodies (default 20000)"
    )
    parser.add_argument(
        "--build-txs", type=int, default=300, help="large transactions (default 300)"
    )
    parser.add_argument(
        "--payload", type=int, default=40_000, help="their payload bytes (default 40000)"
    )
    parser.add_argument(
        "--wallet-rate", type=float, default=100.0, help="wallet tx/s over all nodes (default 100)"
    )
    parser.add_argument(
        "--wallet-connections", type=int, default=4, help="wallet connections per node (default 4)"
    )
    parser.add_argument(
        "--abuser-connections",
        type=int,
        default=4,
        help="connections per abusive address (default 4)",
    )
    parser.add_argument(
        "--candidate-rate",
        type=float,
        help="per-address requests_per_s of runs (c), (d) (default: the shipped default)",
    )
    parser.add_argument(
        "--candidate-burst",
        type=int,
        help="per-address burst of runs (c), (d)"
        f" (default: the shipped one, or 2 s of --candidate-rate, at least {MAX_REQUEST_TOKENS})",
    )
    parser.add_argument("--dir", help="devnet directory (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    counts = (args.connections, args.client_processes, args.tx_count, args.build_txs)
    if args.seconds <= 0 or args.wallet_rate <= 0 or min(counts) < 1:
        parser.error("--seconds, --wallet-rate and the counts must be positive")
    if not 1 <= args.payload <= PAYLOAD_MAX:
        parser.error(f"--payload must be 1..{PAYLOAD_MAX} bytes")
    if args.connections > 60:
        parser.error("--connections must be at most 60 (64 per client address)")
    if not 1 <= args.abuser_connections <= 16 or not 1 <= args.wallet_connections <= 16:
        # 64 connections per client address at most (`[rpc] connections_per_client_max`)
        parser.error("--abuser-connections and --wallet-connections must be 1..16")
    if args.candidate_rate is not None and args.candidate_rate <= 0:
        parser.error("--candidate-rate must be positive")
    return args


def _candidate(args: argparse.Namespace, capacity: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rate, burst = _DEFAULTS.requests_per_s, _DEFAULTS.burst
    reason = "the shipped default"
    if args.candidate_rate is not None:
        rate, burst = args.candidate_rate, candidate_burst(args.candidate_rate)
        reason = "--candidate-rate"
    if args.candidate_burst is not None:
        burst = args.candidate_burst
        reason += ", --candidate-burst"
    share, kind = core_share(rate, capacity)
    reason += f"; one address may take {share:.0%} of a core asking for {KIND_LABELS[kind]}"
    return {"requests_per_s": rate, "burst": burst, "reason": reason, "core_share": share}


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "settings": vars(args),
        "max_request_tokens": MAX_REQUEST_TOKENS,
    }
    say("rpcbench", "starting a 4-validator devnet ...")
    with devnet(root / "devnet") as net:
        wait_ready(net)
        # The machine's speed beside the figures: one Ed25519 verification.
        report["machine"] = machine_limit(net.layout.chain_id, len(net.nodes))
        bodies = sign_tx_bodies(net.layout.chain_id, args.tx_count)
        report["chain"] = build_chain(net, args)
        report["capacity"] = run_capacity(net, args, report["chain"]["height"], bodies)
        say("rpcbench", "waiting for the mempools to drain ...")
        wait_mempools_empty(net)
        report["candidate"] = _candidate(args, report["capacity"])
        rate, burst = report["candidate"]["requests_per_s"], report["candidate"]["burst"]
        height = report["chain"]["height"]
        report["interference"] = run_interference(net, args, height, rate, burst)
    return report


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: trio's own SIGINT handler (while it runs) raises
    KeyboardInterrupt where it is safe, and the devnet's `finally` stops
    the nodes."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):
        handler = signal.default_int_handler
    handler(signal.SIGINT, frame)


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C (or SIGTERM), maybe inside trio's exception groups, and nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(KeyboardInterrupt)[1] is None
    return isinstance(exc, KeyboardInterrupt)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell: SIGINT must still stop the run
        # (and trio only handles it when it finds the default handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with run_directory(args.dir, "sequencer-rpcbench-") as root:
            report = run(args, root)
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        say("rpcbench", "interrupted; every node and client process is stopped")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
