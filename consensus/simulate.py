"""Run the cluster simulator over many seeds.

    python -m consensus.simulate --validators 4 --seeds 500 --heights 12 --faults all
    python -m consensus.simulate --validators 4 --heights 12 --faults all --seed 123
    python -m consensus.simulate --validators 7 --seeds 2000 --faults crash --jobs 2
    python -m consensus.simulate --validators 4 --seeds 50 --byzantine 2   # must find forks

Prints a line per failing seed (with the command that replays it) and one
summary line ending in `violations: N`; exits 1 if any seed had a violation.
`--faults` is `none`, a fault class (network, partition, crash, clock,
byzantine, all) or a comma list of classes and fault names (loss,
duplicate, delay, partition, crash, storage, clock, byzantine, idle, power,
observer); what each seed draws of them is printed with `--seed` or
`--verbose`. Campaigns over many classes and sizes: scripts/simulate_campaign.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterable, Sequence

from consensus.config import CoreConfig
from consensus.errors import SimulationError
from consensus.sim.campaign import replay_command, run_seeds
from consensus.sim.run import RunResult
from consensus.sim.scenario import parse_faults

__all__ = ["main", "replay_command"]


def _report_seed(result: RunResult, args: argparse.Namespace, *, verbose: bool) -> None:
    if verbose:
        rounds = statistics.fmean(r + 1 for r in result.rounds.values()) if result.rounds else 0
        recovery = "-" if result.recovery_ms is None else f"{result.recovery_ms} ms"
        print(
            f"seed {result.seed}: reached {result.reached}/{result.heights}, "
            f"faults [{result.faults}], {result.messages} messages, "
            f"{result.sim_ms} ms simulated, {result.events} events, "
            f"rounds/height {rounds:.2f}, evidence {result.evidence}, "
            f"restarts {result.restarts}, longest stall {result.longest_stall_ms} ms, "
            f"recovery {recovery}, violations: {len(result.violations)}"
        )
    for violation in result.violations:
        print(f"seed {result.seed}: {violation}")
    if result.violations:
        command = replay_command(
            args.validators, args.heights, args.faults, result.seed, args.byzantine
        )
        if args.min_block_interval_ms:
            command += f" --min-block-interval-ms {args.min_block_interval_ms}"
        print(f"seed {result.seed}: replay with: {command}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m consensus.simulate",
        description="Deterministic cluster simulation of the node's consensus host.",
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--validators", type=int, default=4, metavar="N")
    parser.add_argument("--seeds", type=int, default=100, metavar="S", help="seeds K0..K0+S-1")
    parser.add_argument("--first-seed", type=int, default=0, metavar="K0")
    parser.add_argument("--heights", type=int, default=12, metavar="H")
    parser.add_argument("--faults", default="all", help="none, a class, or a comma list")
    parser.add_argument(
        "--byzantine",
        type=int,
        default=None,
        metavar="B",
        help="exactly B equivocating validators (default: the faults decide)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="K", help="run only this seed, with details"
    )
    parser.add_argument("--jobs", type=int, default=1, metavar="J", help="worker processes")
    parser.add_argument(
        "--min-block-interval-ms",
        type=int,
        default=0,
        metavar="MS",
        help="every node's [consensus] min_block_interval_ms (default 0, the node's default)",
    )
    parser.add_argument("--verbose", action="store_true", help="a line per seed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except SimulationError as exc:
        parser.error(str(exc))
    if args.validators < 1 or args.heights < 1 or args.seeds < 1 or args.jobs < 1:
        parser.error("--validators, --heights, --seeds and --jobs must be positive")
    if args.min_block_interval_ms < 0:
        parser.error("--min-block-interval-ms must not be negative")
    if args.byzantine is not None and not 0 <= args.byzantine < args.validators:
        parser.error("--byzantine must leave at least one validator honest")
    seeds: Iterable[int] = (
        [args.seed]
        if args.seed is not None
        else range(args.first_seed, args.first_seed + args.seeds)
    )
    f = (args.validators - 1) // 3
    if args.byzantine is not None and args.byzantine > f:
        print(
            f"note: {args.byzantine} byzantine of {args.validators} exceeds f = {f}: "
            "violations are expected (a negative control)",
            file=sys.stderr,
        )
    started = time.perf_counter()
    totals = {"messages": 0, "heights": 0, "rounds": 0, "failed": 0, "violations": 0, "count": 0}
    results = run_seeds(
        validators=args.validators,
        seeds=list(seeds),
        heights=args.heights,
        faults=faults,
        byzantine=args.byzantine,
        jobs=args.jobs,
        config=(
            CoreConfig(min_block_interval_ms=args.min_block_interval_ms)
            if args.min_block_interval_ms
            else None
        ),
    )
    for result in results:
        _report_seed(result, args, verbose=args.verbose or args.seed is not None)
        totals["count"] += 1
        totals["messages"] += result.messages
        totals["heights"] += max(result.reached, 1)
        totals["rounds"] += sum(r + 1 for r in result.rounds.values())
        totals["failed"] += bool(result.violations)
        totals["violations"] += len(result.violations)
    print(_summary(args, totals, time.perf_counter() - started))
    return 1 if totals["violations"] else 0


def _summary(args: argparse.Namespace, totals: dict[str, int], elapsed: float) -> str:
    byzantine = "auto" if args.byzantine is None else args.byzantine
    heights = max(totals["heights"], 1)
    return (
        f"validators {args.validators}, seeds {totals['count']}, heights {args.heights}, "
        f"faults {args.faults}, byzantine {byzantine}: "
        f"{totals['count'] / elapsed:.1f} seeds/s, "
        f"{totals['messages'] / heights:.1f} messages/height, "
        f"{totals['rounds'] / heights:.2f} rounds/height, "
        f"failed seeds {totals['failed']}, violations: {totals['violations']}"
    )


if __name__ == "__main__":
    sys.exit(main())
