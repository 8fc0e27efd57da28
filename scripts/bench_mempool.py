#!/usr/bin/env python3
"""Benchmark the mempool: add, select and commit for 100k transactions from 1k senders.

    python3 scripts/bench_mempool.py                  # prints a table, writes bench-mempool.json
    python3 scripts/bench_mempool.py --txs 200000 --senders 2000 --out m.json

Signatures are not checked by the pool (the caller verifies on entry), so the
transactions carry dummy signatures and signing is not part of any timing.
"add" is measured twice: with the id and size the caller already has (the
node's path) and computing them. Targets: add >= 100k tx/s; select of 5,000
from a 100k pool < 20 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
    import os

    sys.path.insert(0, str(ROOT / "scripts"))
    from bootstrap import ensure_venv  # stdlib-only set-up, shared with the test runner

    python = str(ensure_venv())
    os.execv(python, [python, __file__, *sys.argv[1:]])
sys.path.insert(0, str(ROOT))

from sequencer.codec import encode  # noqa: E402  (after the environment is set up)
from sequencer.ids import tx_id  # noqa: E402
from sequencer.mempool import Mempool, MempoolConfig  # noqa: E402
from sequencer.types import Transaction  # noqa: E402

CHAIN = "bench-1"
NOW_MS = 1_000_000


def make_txs(count: int, senders: int, rng: random.Random) -> list[Transaction]:
    """Each sender's nonces in order, senders interleaved at random (arrival order)."""
    per_sender = count // senders
    keys = [rng.randbytes(32) for _ in range(senders)]
    order = [s for s in range(senders) for _ in range(per_sender)]
    rng.shuffle(order)
    next_nonce = [0] * senders
    txs = []
    for s in order:
        nonce = next_nonce[s]
        next_nonce[s] += 1
        txs.append(
            Transaction(
                CHAIN, s % 8, keys[s], nonce, rng.randint(1, 1_000), rng.randbytes(200), bytes(64)
            )
        )
    return txs


def fresh_pool(count: int) -> Mempool:
    config = MempoolConfig(CHAIN, slots_max=count, queued_slots_max=count, sender_slots_max=1_024)
    return Mempool(config, lambda sender: 0)


def bench_add(
    txs: list[Transaction], known: list[tuple[bytes, int]] | None
) -> tuple[float, Mempool]:
    pool = fresh_pool(len(txs))
    started = time.perf_counter()
    if known is None:
        for tx in txs:
            pool.add(tx, NOW_MS)
    else:
        for tx, (id, size) in zip(txs, known, strict=True):
            pool.add(tx, NOW_MS, id=id, size=size)
    elapsed = time.perf_counter() - started
    assert len(pool) == len(txs)
    return len(txs) / elapsed, pool


def bench_select(pool: Mempool, count: int, repeats: int) -> tuple[float, list]:
    times = []
    chosen = []
    for _ in range(repeats):
        started = time.perf_counter()
        chosen = pool.select(10**12, count)
        times.append((time.perf_counter() - started) * 1000)
    assert len(chosen) == count
    return statistics.median(times), chosen


def bench_commit(pool: Mempool, chosen: list) -> float:
    next_nonces: dict[bytes, int] = {}
    for entry in chosen:
        next_nonces[entry.sender] = entry.nonce + 1
    started = time.perf_counter()
    removed = pool.on_committed(next_nonces)
    elapsed = (time.perf_counter() - started) * 1000
    assert len(removed) == len(chosen)
    return elapsed


def bench_evict(txs: list[Transaction], extra: int, rng: random.Random) -> float:
    """Adds into a full pool, each paying more than the cheapest: each one evicts."""
    _, pool = bench_add(txs, [(tx_id(tx), len(encode(tx))) for tx in txs])
    newcomers = [
        Transaction(CHAIN, 0, rng.randbytes(32), 0, 2_000 + i, b"n", bytes(64))
        for i in range(extra)
    ]
    started = time.perf_counter()
    for tx in newcomers:
        assert pool.add(tx, NOW_MS).ok
    return extra / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=1_000)
    parser.add_argument("--select", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=Path("bench-mempool.json"))
    args = parser.parse_args()
    rng = random.Random(1)
    txs = make_txs(args.txs, args.senders, rng)
    known = [(tx_id(tx), len(encode(tx))) for tx in txs]
    add_known, pool = bench_add(txs, known)
    add_computed, _ = bench_add(txs, None)
    select_ms, chosen = bench_select(pool, args.select, repeats=7)
    commit_ms = bench_commit(pool, chosen)
    evict_rate = bench_evict(txs, 10_000, rng)
    results = {
        "txs": args.txs,
        "senders": args.senders,
        "add_tx_per_s_with_known_id": round(add_known),
        "add_tx_per_s_computing_id": round(add_computed),
        "select_count": args.select,
        "select_ms_median_of_7": round(select_ms, 2),
        "commit_ms_for_selected": round(commit_ms, 2),
        "evicting_add_tx_per_s": round(evict_rate),
        "python": sys.version.split()[0],
    }
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
