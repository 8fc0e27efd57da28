"""Chaos runs: a devnet of real node processes under steady signed load,
perturbed from a seed, then healed and audited.

    python3 scripts/chaos.py                          # 4 validators, 60 s, random seed
    python3 scripts/chaos.py --validators 7 --duration 300 --seed 42 --out chaos.json
    python3 scripts/chaos.py --disk                   # also fill one node's disk (root)

The plan (`node.lab.chaos_plan`) is printed as it runs; it includes restarts at
the moments that once wedged a cluster (a node restarted twice while the
chain is idle, a node killed the moment it commits). Partitions, loss,
duplication and clock jumps go through each node's chaos control
(`node.daemon.chaos_control`: `chaos.json` in its home, then SIGUSR1); kill -9,
pauses and restarts through the processes; a full disk through a small
tmpfs mounted on one node's data directory and a ballast file.

During the run, liveness is checked whenever it is owed (no split, the load
running, at most f nodes faulty, which the plan guarantees): the highest
height among the nodes that are not faulty must grow at least every
`--stall-bound` seconds. The longest such stall is reported.

After the last episode everything is healed and checked (`node.lab.audit`):
identical block ids at every height on every node, every certificate valid
against genesis, no validator's precommits for two blocks at one
(height, round) and no equivocation reported by any node, every
acknowledged (202) transaction finalized exactly once, all nodes within
`CONVERGED_HEIGHTS` of each other within `CONVERGE_S` of healing, no stall
beyond the bound, and node 0's file L1 contiguous and matching the chain. One summary line; exit
status 1 on any violation; the seed replays the plan.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx
import trio

from node.lab.chaos_net import ChaosNet
from node.lab.chaos_plan import plan
from node.lab.chaos_report import check, summary_line
from node.lab.chaos_run import Run
from node.lab.loadgen import SteadyLoad
from node.lab.presign import presign

__all__ = ["main"]

SENDERS = 32
STALL_BOUND_S = 20.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chaos",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--validators", type=int, choices=(4, 7), default=4)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of chaos")
    parser.add_argument("--seed", type=int, help="plan seed (default: random, printed)")
    parser.add_argument("--rate", type=float, default=100.0, help="offered tx/s (default 100)")
    parser.add_argument(
        "--stall-bound",
        type=float,
        default=STALL_BOUND_S,
        help="seconds the height may stand still while liveness is owed "
        f"(default {STALL_BOUND_S:g})",
    )
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--dir", help="devnet directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the devnet directory")
    parser.add_argument(
        "--disk", action="store_true", help="also fill one node's disk (tmpfs; needs root)"
    )
    args = parser.parse_args(argv)
    if args.duration < 10 or args.duration > 24 * 3600:
        parser.error("--duration must be 10..86400 seconds")
    if not 1 <= args.stall_bound <= 3_600:
        parser.error("--stall-bound must be 1..3600 seconds")
    if not 1 <= args.rate <= 2_000:
        parser.error("--rate must be 1..2000 tx/s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    replay = f"--seed {seed} --validators {args.validators} --duration {args.duration:g}"
    replay += " --disk" if args.disk else ""
    print(f"[chaos] seed {seed} (replay: scripts/chaos.py {replay})", flush=True)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="sequencer-chaos-"))
    chaos = ChaosNet(root / "devnet", args.validators, disk=args.disk)
    episodes = plan(seed, args.validators, args.duration, disk_node=chaos.disk_node)
    print(f"[chaos] {len(episodes)} episodes planned; devnet under {root}", flush=True)
    run = Run(chaos, episodes, args)
    try:
        chaos.net.start_all()
        count = int(args.rate * (args.duration + 10))
        signed = presign(
            chaos.net.layout.chain_id,
            count=count,
            senders=SENDERS,
            nodes=args.validators,
            seed=seed,
        )

        async def go() -> None:
            limits = httpx.Limits(max_connections=SENDERS + 4 * args.validators + 8)
            async with httpx.AsyncClient(limits=limits, timeout=5.0) as client:
                load = SteadyLoad(client, chaos.net.urls, signed, SENDERS, args.rate)
                await run.execute(load, client)

        trio.run(go)
        result = check(run, chaos)
    finally:
        chaos.stop()
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    result["seed"] = seed
    result["episodes"] = [e.describe() for e in episodes]
    for problem in result["problems"]:
        print(f"[chaos] PROBLEM {problem}")
    line = summary_line(result, seed, args)
    result["summary"] = line
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(line, flush=True)
    if not result["ok"]:
        print(f"[chaos] replay with: scripts/chaos.py {replay}", flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
