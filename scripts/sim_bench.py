#!/usr/bin/env python3
"""Benchmark the consensus simulator: seeds/s and messages per height by N.

    python3 scripts/sim_bench.py                     # N = 4, 7, 16, 32; no faults and all faults
    python3 scripts/sim_bench.py --validators 4 7 --seeds 50 --out sim.json

Prints a table and writes JSON. Messages are counted per link (a broadcast
to N-1 peers is N-1 messages), including rebroadcasts and catch-up traffic.
Without faults a height takes one proposal to N-1 peers and two rounds of
votes from N validators to N-1 peers: (N-1)(2N+1) messages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus.simnet import FAULT_NAMES
from consensus.simulate import run_seed


def measure(validators: int, faults: list[str], seeds: int, heights: int) -> dict:
    started = time.perf_counter()
    messages = rounds = reached = failed = 0
    per_seed_ms = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        result = run_seed(
            validators=validators, seed=seed, heights=heights, faults=faults, byzantine=None
        )
        per_seed_ms.append((time.perf_counter() - t0) * 1000)
        messages += result.messages
        reached += max(result.reached, 1)
        rounds += sum(r + 1 for r in result.rounds.values())
        failed += bool(result.violations)
    elapsed = time.perf_counter() - started
    return {
        "validators": validators,
        "faults": ",".join(faults) or "none",
        "seeds": seeds,
        "heights": heights,
        "seeds_per_s": round(seeds / elapsed, 2),
        "seed_ms_median": round(statistics.median(per_seed_ms), 1),
        "messages_per_height": round(messages / reached, 1),
        "expected_messages_per_height_without_faults": (validators - 1) * (2 * validators + 1),
        "rounds_per_height": round(rounds / reached, 3),
        "failed_seeds": failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validators", type=int, nargs="+", default=[4, 7, 16, 32])
    parser.add_argument("--seeds", type=int, default=40, help="seeds for N <= 7 (fewer above)")
    parser.add_argument("--heights", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("sim-bench.json"))
    args = parser.parse_args()
    rows = []
    print(
        f"{'N':>3} {'faults':>6} {'seeds':>5} {'seeds/s':>8} {'ms/seed':>8} "
        f"{'msgs/height':>11} {'(N-1)(2N+1)':>11} {'rounds/h':>8} {'failed':>6}"
    )
    for n in args.validators:
        seeds = args.seeds if n <= 7 else max(3, args.seeds // (4 if n <= 16 else 10))
        for faults in ([], list(FAULT_NAMES)):
            row = measure(n, faults, seeds, args.heights)
            rows.append(row)
            print(
                f"{n:>3} {('none' if not faults else 'all'):>6} {row['seeds']:>5} "
                f"{row['seeds_per_s']:>8} {row['seed_ms_median']:>8} "
                f"{row['messages_per_height']:>11} "
                f"{row['expected_messages_per_height_without_faults']:>11} "
                f"{row['rounds_per_height']:>8} {row['failed_seeds']:>6}",
                flush=True,
            )
    args.out.write_text(json.dumps({"heights": args.heights, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 1 if any(row["failed_seeds"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
