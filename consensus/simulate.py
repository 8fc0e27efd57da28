"""Run the cluster simulator over many seeds.

    python -m consensus.simulate --validators 4 --seeds 500 --heights 50 --faults all
    python -m consensus.simulate --validators 4 --heights 50 --faults all --seed 123
    python -m consensus.simulate --validators 4 --seeds 50 --byzantine 2   # must find forks

Prints a line per failing seed (with the command that replays it) and one
summary line ending in `violations: N`; exits 1 if any seed had a violation.
`--faults` is `none`, `all`, or a comma list of: loss, duplicate, delay,
partition, crash, byzantine. Fault strengths are drawn per seed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence

from consensus.errors import SimulationError
from consensus.simnet import FAULT_NAMES, Faults
from consensus.simulation import RunResult, Simulation

__all__ = ["main", "run_seed"]


def parse_faults(text: str) -> list[str]:
    if text == "none":
        return []
    if text == "all":
        return list(FAULT_NAMES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(FAULT_NAMES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault {', '.join(unknown)} (choose from {', '.join(FAULT_NAMES)})"
        )
    return names


def run_seed(
    *, validators: int, seed: int, heights: int, faults: Sequence[str], byzantine: int | None
) -> RunResult:
    """One run. Byzantine validators: `byzantine` if given, else f when faults name them."""
    f = (validators - 1) // 3
    count = byzantine if byzantine is not None else (f if "byzantine" in faults else 0)
    drawn = Faults.draw(faults, random.Random(f"faults:{seed}"), byzantine=count)
    return Simulation(validators=validators, seed=seed, heights=heights, faults=drawn).run()


def _replay_command(args: argparse.Namespace, seed: int) -> str:
    parts = [
        "python -m consensus.simulate",
        f"--validators {args.validators}",
        f"--heights {args.heights}",
        f"--faults {args.faults_text}",
    ]
    if args.byzantine is not None:
        parts.append(f"--byzantine {args.byzantine}")
    return " ".join([*parts, f"--seed {seed}"])


def _report_seed(result: RunResult, args: argparse.Namespace, *, verbose: bool) -> None:
    if verbose:
        rounds = statistics.fmean(r + 1 for r in result.rounds.values()) if result.rounds else 0
        print(
            f"seed {result.seed}: reached {result.reached}/{result.heights}, "
            f"faults [{result.faults}], {result.messages} messages, {result.sim_ms} ms simulated, "
            f"{result.events} events, rounds/height {rounds:.2f}, evidence {result.evidence}, "
            f"violations: {len(result.violations)}"
        )
    for violation in result.violations:
        print(f"seed {result.seed}: {violation}")
    if result.violations:
        print(f"seed {result.seed}: replay with: {_replay_command(args, result.seed)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m consensus.simulate",
        description="Deterministic cluster simulation of the consensus core.",
    )
    parser.add_argument("--validators", type=int, default=4, metavar="N")
    parser.add_argument("--seeds", type=int, default=100, metavar="S", help="seeds 0..S-1")
    parser.add_argument("--first-seed", type=int, default=0, metavar="K0")
    parser.add_argument("--heights", type=int, default=20, metavar="H")
    parser.add_argument("--faults", default="all", help="none, all, or a comma list")
    parser.add_argument(
        "--byzantine",
        type=int,
        default=None,
        metavar="B",
        help="byzantine validators (default: f when faults include byzantine)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="K", help="run only this seed, with details"
    )
    parser.add_argument("--verbose", action="store_true", help="a line per seed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    args.faults_text = args.faults
    if args.validators < 1 or args.heights < 1 or args.seeds < 1:
        parser.error("--validators, --heights and --seeds must be positive")
    seeds = (
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
    totals = {"messages": 0, "heights": 0, "rounds": 0, "failed": 0, "violations": 0}
    try:
        for seed in seeds:
            result = run_seed(
                validators=args.validators,
                seed=seed,
                heights=args.heights,
                faults=faults,
                byzantine=args.byzantine,
            )
            _report_seed(result, args, verbose=args.verbose or args.seed is not None)
            totals["messages"] += result.messages
            totals["heights"] += max(result.reached, 1)
            totals["rounds"] += sum(r + 1 for r in result.rounds.values())
            totals["failed"] += bool(result.violations)
            totals["violations"] += len(result.violations)
    except SimulationError as exc:
        parser.error(str(exc))
    print(_summary(args, totals, len(seeds), time.perf_counter() - started))
    return 1 if totals["violations"] else 0


def _summary(args: argparse.Namespace, totals: dict[str, int], count: int, elapsed: float) -> str:
    byzantine = "auto" if args.byzantine is None else args.byzantine
    heights = max(totals["heights"], 1)
    return (
        f"validators {args.validators}, seeds {count}, heights {args.heights}, "
        f"faults {args.faults_text}, byzantine {byzantine}: "
        f"{count / elapsed:.1f} seeds/s, {totals['messages'] / heights:.1f} messages/height, "
        f"{totals['rounds'] / heights:.2f} rounds/height, "
        f"failed seeds {totals['failed']}, violations: {totals['violations']}"
    )


if __name__ == "__main__":
    sys.exit(main())
