"""Seeds on every core: the pool behind `python -m consensus.simulate --jobs`,
and the campaign of `scripts/simulate_campaign.py`: seed ranges over
validator counts and fault classes, resumable, with a summary table.

A seed whose run raises (an assertion in the core, the host or the
simulator) is a finding like any violation: it comes back as a result with
the exception as its violation, and the campaign goes on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consensus.config import CoreConfig
from consensus.sim.run import RunResult, run_seed
from consensus.sim.scenario import FAULT_CLASSES, parse_faults

__all__ = ["main", "run_one", "run_seeds"]


def run_one(
    task: tuple[int, int, int, frozenset[str], int | None]
    | tuple[int, int, int, frozenset[str], int | None, CoreConfig | None],
) -> RunResult:
    validators, seed, heights, faults, byzantine, *rest = task
    config = rest[0] if rest else None
    try:
        return run_seed(
            validators=validators,
            seed=seed,
            heights=heights,
            faults=faults,
            byzantine=byzantine,
            config=config,
        )
    except Exception as exc:  # a finding, not a reason to stop the campaign
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return RunResult(
            seed=seed,
            validators=validators,
            heights=heights,
            faults=",".join(sorted(faults)),
            violations=[
                f"exception: {type(exc).__name__}: {exc} "
                f"(at {where.filename}:{where.lineno} in {where.name})"
            ],
            reached=0,
            messages=0,
            sim_ms=0,
            events=0,
        )


def run_seeds(
    *,
    validators: int,
    seeds: Sequence[int],
    heights: int,
    faults: frozenset[str],
    byzantine: int | None,
    jobs: int,
    config: CoreConfig | None = None,
) -> Iterator[RunResult]:
    """Results in seed order; `jobs` processes (1: in this process); `config`:
    every node's core knobs."""
    tasks = [(validators, seed, heights, faults, byzantine, config) for seed in seeds]
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield run_one(task)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs) as pool:
        yield from pool.imap(run_one, tasks, chunksize=max(1, min(16, len(tasks) // (jobs * 8))))


# ------------------------------------------------------------------ the campaign

CAMPAIGN_HELP = """\
    python3 scripts/simulate_campaign.py                        # the default plan
    python3 scripts/simulate_campaign.py --seeds 25000 --validators 4 7 10 16 --classes all crash
    python3 scripts/simulate_campaign.py --state campaign.jsonl  # resume an interrupted one
    python3 scripts/simulate_campaign.py --first-seed 7000000 --out table.md

Each (validators, class) row runs `--seeds` seeds (scaled down for larger
clusters by `--scale`) from
`--first-seed`, in chunks. Every finished chunk is appended to `--state` (JSON
lines), so a run that is stopped resumes where it was with the same command.
The table shows per row: seeds, seeds/s (per core and in all), violations
and failed seeds; every failing seed is listed with the command that replays
it. Exit status 1 if any seed failed.
"""

CHUNK = 50
# Larger clusters cost about N^2 per height: fewer seeds by default.
SCALE = {4: 1.0, 7: 0.5, 10: 0.25, 16: 0.1}
FAILURES_SHOWN_MAX = 50


@dataclass
class Row:
    validators: int
    faults: str
    seeds: int = 0
    failed: int = 0
    violations: int = 0
    seconds: float = 0.0  # worker time: seeds / seconds is seeds/s per core
    done_chunks: set[int] = field(default_factory=set)
    failures: list[tuple[int, str]] = field(default_factory=list)


def chunks(first: int, count: int) -> Iterator[tuple[int, int]]:
    for start in range(first, first + count, CHUNK):
        yield start, min(CHUNK, first + count - start)


def run_chunk(task: tuple[int, str, int, int, int]) -> dict:
    validators, faults, start, count, heights = task
    names = parse_faults(faults)
    began = time.process_time()
    failures = []
    violations = 0
    for seed in range(start, start + count):
        result = run_one((validators, seed, heights, names, None))
        if result.violations:
            violations += len(result.violations)
            failures.append((seed, result.violations[0]))
    return {
        "validators": validators,
        "faults": faults,
        "start": start,
        "count": count,
        "heights": heights,
        "violations": violations,
        "failures": failures,
        "seconds": time.process_time() - began,
    }


def load_state(path: Path | None, rows: dict[tuple[int, str], Row], heights: int) -> None:
    if path is None or not path.exists():
        return
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        row = rows.get((record["validators"], record["faults"]))
        if row is None or record.get("heights") != heights:
            continue
        add(row, record)


def add(row: Row, record: dict) -> None:
    if record["start"] in row.done_chunks:
        return
    row.done_chunks.add(record["start"])
    row.seeds += record["count"]
    row.violations += record["violations"]
    row.failed += len(record["failures"])
    row.seconds += record["seconds"]
    row.failures.extend((seed, text) for seed, text in record["failures"])


def table(rows: list[Row], elapsed: float, jobs: int) -> str:
    lines = [
        "| N | class | seeds | seeds/s per core | violations | failed seeds |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        rate = row.seeds / row.seconds if row.seconds else 0.0
        lines.append(
            f"| {row.validators} | {row.faults} | {row.seeds:,} | {rate:.2f} "
            f"| {row.violations} | {row.failed} |"
        )
    seeds = sum(r.seeds for r in rows)
    core_seconds = sum(r.seconds for r in rows)
    lines.append(
        f"| all | | {seeds:,} | {seeds / core_seconds if core_seconds else 0:.2f} "
        f"| {sum(r.violations for r in rows)} | {sum(r.failed for r in rows)} |"
    )
    lines.append("")
    lines.append(
        f"{seeds:,} seeds in {elapsed / 60:.1f} min on {jobs} processes "
        f"({core_seconds / 3600:.2f} core-hours this session and before)"
    )
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/simulate_campaign.py",
        description="A simulator campaign: seed ranges over validator counts and fault "
        "classes, on every core, resumable, with a summary table.",
        epilog=CAMPAIGN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--validators", type=int, nargs="+", default=[4, 7, 10, 16])
    parser.add_argument(
        "--classes", nargs="+", default=[c for c in FAULT_CLASSES], choices=list(FAULT_CLASSES)
    )
    parser.add_argument("--seeds", type=int, default=400, help="seeds per row at N = 4")
    parser.add_argument(
        "--scale",
        type=float,
        nargs="*",
        default=None,
        help="seed fraction per --validators entry (default: 1, 0.5, 0.25, 0.1 for 4, 7, 10, 16)",
    )
    parser.add_argument(
        "--class-scale",
        nargs="*",
        default=[],
        metavar="CLASS=F",
        help="seed fraction per fault class (default 1 each), e.g. all=0.25 crash=0.4: "
        "spend the hours where a seed is cheap without dropping a class",
    )
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--heights", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--state", type=Path, help="JSON lines of finished chunks (resumable)")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    if args.scale is not None and len(args.scale) != len(args.validators):
        parser.error("--scale needs one fraction per --validators entry")
    if args.seeds < 1 or args.jobs < 1 or args.heights < 1:
        parser.error("--seeds, --jobs and --heights must be positive")
    class_scale = {}
    for item in args.class_scale:
        name, _, value = item.partition("=")
        if name not in FAULT_CLASSES:
            known = ", ".join(FAULT_CLASSES)
            parser.error(f"--class-scale: unknown class {name!r} (one of {known})")
        try:
            fraction = float(value)
        except ValueError:
            parser.error(f"--class-scale: {item!r} is not CLASS=FRACTION")
        if not fraction > 0:
            parser.error(f"--class-scale: the fraction of {name} must be positive")
        class_scale[name] = fraction
    args.class_scale = class_scale
    return args


def replay_command(
    validators: int, heights: int, faults: str, seed: int, byzantine: int | None = None
) -> str:
    parts = [
        "python -m consensus.simulate",
        f"--validators {validators}",
        f"--heights {heights}",
        f"--faults {faults}",
    ]
    if byzantine is not None:
        parts.append(f"--byzantine {byzantine}")
    return " ".join([*parts, f"--seed {seed}"])


def main(argv: list[str], clock: Callable[[], float] = time.perf_counter) -> int:
    """`clock` (seconds) times the campaign for its progress lines and table only."""
    args = parse_args(argv)
    scale = args.scale or [SCALE.get(n, 0.1) for n in args.validators]
    rows = {
        (n, c): Row(n, c)
        for n, fraction in zip(args.validators, scale, strict=True)
        for c in args.classes
    }
    counts = {
        (n, c): max(1, int(args.seeds * fraction * args.class_scale.get(c, 1.0)))
        for n, fraction in zip(args.validators, scale, strict=True)
        for c in args.classes
    }
    load_state(args.state, rows, args.heights)
    tasks = [
        (n, c, start, count, args.heights)
        for (n, c), row in rows.items()
        for start, count in chunks(args.first_seed, counts[(n, c)])
        if start not in row.done_chunks
    ]
    # Rows advance together (a campaign stopped early covers every row in
    # proportion), and within a round the big clusters go first: their chunks
    # are the longest, so they are not left to run alone at the end.
    tasks.sort(key=lambda t: ((t[2] - args.first_seed) / counts[(t[0], t[1])], -t[0]))
    total = sum(counts.values())
    done = sum(r.seeds for r in rows.values())
    print(
        f"[campaign] {total:,} seeds in {len(rows)} rows; {done:,} done before; "
        f"{len(tasks)} chunks of up to {CHUNK} to run on {args.jobs} processes",
        flush=True,
    )
    started = clock()
    state = args.state.open("a") if args.state else None
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(args.jobs) as pool:
            for record in pool.imap_unordered(run_chunk, tasks):
                row = rows[(record["validators"], record["faults"])]
                add(row, record)
                done += record["count"]
                if state is not None:
                    state.write(json.dumps(record) + "\n")
                    state.flush()
                rate = done / max(1e-9, clock() - started)
                print(
                    f"[campaign] N={record['validators']} {record['faults']} seeds "
                    f"{record['start']}..{record['start'] + record['count'] - 1}: "
                    f"{len(record['failures'])} failed; {done:,}/{total:,} "
                    f"({rate:.1f} seeds/s)",
                    flush=True,
                )
    finally:
        if state is not None:
            state.close()
    report = table(list(rows.values()), clock() - started, args.jobs)
    failures = [(row, seed, text) for row in rows.values() for seed, text in sorted(row.failures)]
    print(report)
    for row, seed, text in failures[:FAILURES_SHOWN_MAX]:
        command = replay_command(row.validators, args.heights, row.faults, seed)
        print(f"FAILED N={row.validators} {row.faults} seed {seed}: {text}\n  replay: {command}")
    if len(failures) > FAILURES_SHOWN_MAX:
        print(f"... and {len(failures) - FAILURES_SHOWN_MAX} more failed seeds")
    if args.out:
        args.out.write_text(report + "\n")
    return 1 if failures else 0
