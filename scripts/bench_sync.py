#!/usr/bin/env python3
"""Benchmark restart-to-ready and catch-up of a 4-node devnet with a long chain.

    python3 scripts/bench_sync.py                       # 100k blocks, writes bench-sync.json
    python3 scripts/bench_sync.py --blocks 20000 --catchup-runs 3 --out s.json
    python3 scripts/bench_sync.py --txs-per-block 10 --keep DIR

Steps: write a 4-node devnet in a temporary directory (free loopback ports,
genesis time far enough back) with empty blocks every `--empty-block-ms`;
build `--blocks` finalized blocks into nodes 0-2 with `node.lab.chainbuild`;
(d) restart-to-ready of node 0 alone: spawn -> `GET /health` 200 ->
`GET /status` answering, median of `--restart-runs`; (e) start nodes 0-2,
wait until they finalize again, start node 3 with an empty store and time
its catch-up from its first synced block to the height the peers had when
it started (blocks/s, median over `--catchup-runs`); stop everything.
Targets (issue #9): restart-to-ready < 2 s, catch-up >= 1,000 blocks/s.

The steps live in `node.lab.syncbench` (`build`, `measure_restart`,
`measure_catchup`), importable by other drivers; see that module's
docstring for their arguments and results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

RESTART_TARGET_S = 2.0
CATCHUP_TARGET_BLOCKS_PER_S = 1_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=100_000, help="blocks to build (100000)")
    parser.add_argument("--txs-per-block", type=int, default=0, metavar="K")
    parser.add_argument("--empty-block-ms", type=int, default=200, metavar="MS")
    parser.add_argument("--restart-runs", type=int, default=3, metavar="N")
    parser.add_argument("--catchup-runs", type=int, default=1, metavar="N")
    parser.add_argument("--catchup-timeout", type=float, default=600.0, metavar="S")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build here and keep it")
    parser.add_argument("--out", default="bench-sync.json")
    args = parser.parse_args()
    if args.blocks < 1 or args.restart_runs < 1 or args.catchup_runs < 1:
        parser.error("--blocks and the run counts must be at least 1")
    reexec_in_venv()
    from node.lab.syncbench import build, measure_catchup, measure_restart

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-sync-")) / "devnet"
    try:
        print(f"[bench] building {args.blocks} blocks under {root} ...", flush=True)
        built = build(
            root,
            args.blocks,
            txs_per_block=args.txs_per_block,
            empty_block_ms=args.empty_block_ms,
            progress=lambda line: print(line, flush=True),
        )
        print(f"[bench] restart-to-ready of node0, {args.restart_runs} runs ...", flush=True)
        restart = measure_restart(root, node=0, runs=args.restart_runs)
        catchups = []
        for run in range(args.catchup_runs):
            print(f"[bench] catch-up of node3, run {run + 1}/{args.catchup_runs} ...", flush=True)
            catchups.append(
                measure_catchup(
                    root,
                    syncing=3,
                    peers=(0, 1, 2),
                    timeout_s=args.catchup_timeout,
                    progress=lambda line: print(line, flush=True),
                )
            )
    finally:
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)
    rates = [c["blocks_per_s"] for c in catchups if c["blocks_per_s"]]
    result = {
        "build": built,
        "restart": restart,
        "catchup_runs": catchups,
        "catchup_blocks_per_s_median": round(statistics.median(rates), 1) if rates else None,
        "targets": {
            "restart_s_max": RESTART_TARGET_S,
            "catchup_blocks_per_s_min": CATCHUP_TARGET_BLOCKS_PER_S,
        },
        "machine": machine(),
    }
    print_table(result)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"[bench] wrote {args.out}")
    return 0


def reexec_in_venv() -> None:
    """Run under the project's environment: as is if its packages import, else
    in `.venv` (set up by `scripts/bootstrap.py`)."""
    try:
        import msgspec  # noqa: F401
        import plyvel  # noqa: F401
        import trio  # noqa: F401
    except ImportError:
        pass
    else:
        return
    from bootstrap import ensure_venv  # stdlib-only set-up, shared with the test runner

    python = str(ensure_venv())
    os.execv(python, [python, __file__, *sys.argv[1:]])


def print_table(result: dict) -> None:
    restart = result["restart"]
    rows = [
        ("blocks built", f"{result['build']['blocks']}", f"{result['build']['build_s']:.1f} s"),
        (
            "restart-to-ready (median)",
            f"{restart['median_s']:.3f} s",
            f"target < {RESTART_TARGET_S:.0f} s; runs {restart['runs_s']}",
        ),
    ]
    for index, run in enumerate(result["catchup_runs"]):
        rows.append(
            (
                f"catch-up run {index + 1}",
                f"{run['blocks_per_s']:,.0f} blocks/s",
                f"{run['blocks']} blocks in {run['seconds']:.1f} s; live tip after "
                f"{run['to_live_tip_s']:.1f} s",
            )
        )
    median = result["catchup_blocks_per_s_median"]
    if median is not None:
        rows.append(
            (
                "catch-up (median)",
                f"{median:,.0f} blocks/s",
                f"target >= {CATCHUP_TARGET_BLOCKS_PER_S:,}",
            )
        )
    width = max(len(row[0]) for row in rows) + 2
    value_width = max(len(row[1]) for row in rows) + 2
    print(f"{'measure':<{width}}{'value':<{value_width}}notes")
    print("-" * (width + value_width + 40))
    for name, value, note in rows:
        print(f"{name:<{width}}{value:<{value_width}}{note}")


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform}


if __name__ == "__main__":
    sys.exit(main())
