"""Restart and catch-up benchmarks of a devnet with a long chain (issue #9).

The functions `scripts/bench_sync.py` runs, importable by other drivers:

    build(root, blocks, *, txs_per_block=0, validators=4, nodes=(0, 1, 2),
          empty_block_ms=200, progress=print) -> dict
        Write a fresh devnet under `root` (free loopback ports, a genesis time
        far enough back) and `blocks` finalized blocks into the stores of
        `nodes` with `node.lab.chainbuild`. `empty_block_ms` > 0 makes the nodes
        finalize an empty block that often once running, so the chain keeps
        growing during a catch-up. Returns {"root", "blocks", "build_s", ...}.

    measure_restart(root, node=0, runs=3) -> dict
        Start node `node` alone `runs` times and time spawn -> `GET /health`
        200 -> `GET /status` answering; stops it after each run. Returns
        {"runs_s": [...], "median_s", "health_median_s", "height"}.

    measure_catchup(root, syncing=3, peers=(0, 1, 2), timeout_s=600) -> dict
        Start `peers`, wait until they finalize again, then start `syncing`
        with an empty store and poll its `/status` until it reaches the
        height the peers had when it started. Catch-up speed is counted from
        its first synced block. Stops every node it started. Returns
        {"blocks_per_s", "blocks", "seconds", "to_first_block_s",
         "target_height", "peers_height_after", ...}.

Every node runs as `python -m node.cli node --home DIR` (`node.ops.procs`), with
`sys.executable` unless `python=` says otherwise. Timings on a shared machine
are noisy: quote medians of several runs.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from node.lab.chainbuild import build_chain, genesis_time_for
from node.ops.devnet import init_devnet, load_layout
from node.ops.procs import NodeProcess, free_base_port, wait_until
from sequencer.genesis import dump_genesis, load_genesis

__all__ = ["build", "measure_catchup", "measure_restart"]

STATUS_POLL_S = 0.05


def build(
    root: str | Path,
    blocks: int,
    *,
    txs_per_block: int = 0,
    validators: int = 4,
    nodes: Sequence[int] = (0, 1, 2),
    empty_block_ms: int = 200,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """A new devnet under `root` (wiped if it holds one) with `blocks` built blocks."""
    root = Path(root)
    if (root / "devnet.json").exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    layout = init_devnet(
        root,
        validators,
        free_base_port(validators),
        genesis_time_ms=genesis_time_for(blocks),
    )
    if empty_block_ms:
        genesis = load_genesis(layout.nodes[0].home / "genesis.json")
        params = msgspec.structs.replace(genesis.consensus, empty_block_interval_ms=empty_block_ms)
        data = dump_genesis(msgspec.structs.replace(genesis, consensus=params))
        for node in layout.nodes:
            (node.home / "genesis.json").write_bytes(data)
    result = build_chain(root, blocks, txs_per_block=txs_per_block, nodes=nodes, progress=progress)
    return {
        "root": str(root),
        "blocks": blocks,
        "txs_per_block": txs_per_block,
        "validators": validators,
        "nodes": list(result.nodes),
        "build_s": round(time.perf_counter() - started, 3),
        "store_bytes": result.store_bytes,
    }


def _processes(root: str | Path, python: str) -> list[NodeProcess]:
    layout = load_layout(root)
    return [NodeProcess(node.home, node.rpc, python=python) for node in layout.nodes]


def measure_restart(
    root: str | Path, node: int = 0, runs: int = 3, *, python: str = sys.executable
) -> dict[str, Any]:
    """Spawn -> /health 200 -> /status answering, for node `node` alone, `runs` times."""
    process = _processes(root, python)[node]
    totals, healths = [], []
    height = -1
    for _ in range(runs):
        started = time.perf_counter()
        process.start()
        try:
            process.wait_healthy()
            healths.append(time.perf_counter() - started)
            status = None
            while status is None:
                status = process.status()
            totals.append(time.perf_counter() - started)
            height = int(status["height"])
        finally:
            process.stop()
    return {
        "node": node,
        "height": height,
        "runs_s": [round(s, 3) for s in totals],
        "health_runs_s": [round(s, 3) for s in healths],
        "median_s": round(statistics.median(totals), 3),
        "health_median_s": round(statistics.median(healths), 3),
    }


def measure_catchup(
    root: str | Path,
    syncing: int = 3,
    peers: Sequence[int] = (0, 1, 2),
    timeout_s: float = 600.0,
    *,
    python: str = sys.executable,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Blocks/s of node `syncing`, from an empty store, fetching from running `peers`."""
    say = progress or (lambda _line: None)
    processes = _processes(root, python)
    node = processes[syncing]
    data = node.home / "data"
    if data.exists():
        shutil.rmtree(data)  # an empty store, as a new node has
    try:
        for index in peers:
            processes[index].start()
        for index in peers:
            processes[index].wait_healthy()
        # The peers must finalize together before the syncing node joins.
        first = max(processes[index].height() for index in peers)
        wait_until(
            lambda: min(processes[index].height() for index in peers) > first,
            60,
            "the peers to finalize a new block",
        )
        target = max(processes[index].height() for index in peers)
        started = time.perf_counter()
        node.start()
        node.wait_healthy()
        say(f"[bench] node{syncing} up, catching up to height {target}")
        first_at = None
        first_height = 0
        height = 0
        deadline = started + timeout_s
        last_report = started
        while height < target:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"node{syncing} at {height} of {target} after {timeout_s} s")
            if not node.running:
                raise RuntimeError(f"node{syncing} exited:\n{node.log_tail()}")
            height = max(height, node.height())
            now = time.perf_counter()
            if first_at is None and height > 0:
                first_at, first_height = now, height
            if now - last_report > 5:
                last_report = now
                say(f"[bench] node{syncing} at {height}/{target}")
            time.sleep(STATUS_POLL_S)
        done = time.perf_counter()
        assert first_at is not None
        seconds = done - first_at
        peers_after = max(processes[index].height() for index in peers)
        # Caught up with the live chain, and finalizing with the others again.
        wait_until(lambda: node.height() >= peers_after, 60, f"node{syncing} at the live tip")
        live_s = time.perf_counter() - started
        blocks = target - first_height
        return {
            "node": syncing,
            "target_height": target,
            "first_synced_height": first_height,
            "blocks": blocks,
            "seconds": round(seconds, 3),
            "blocks_per_s": round(blocks / seconds, 1) if seconds > 0 else None,
            "to_first_block_s": round(first_at - started, 3),
            "to_live_tip_s": round(live_s, 3),
            "peers_height_after": peers_after,
        }
    finally:
        for process in processes:
            process.stop()
