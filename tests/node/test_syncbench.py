"""`node.lab.syncbench`, the steps of `scripts/bench_sync.py`, on a short chain."""

from __future__ import annotations

from pathlib import Path

from node.lab.syncbench import build, measure_catchup, measure_restart


def test_build_restart_and_catch_up_on_a_short_chain(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    built = build(root, 300, empty_block_ms=100, progress=None)
    assert (built["blocks"], built["nodes"]) == (300, [0, 1, 2])
    restart = measure_restart(root, node=0, runs=1)
    assert restart["height"] == 300
    assert 0 < restart["health_median_s"] <= restart["median_s"] < 30
    catchup = measure_catchup(root, syncing=3, peers=(0, 1, 2), timeout_s=60, progress=None)
    assert catchup["target_height"] > 300
    assert catchup["blocks"] > 0
    assert catchup["blocks_per_s"] > 0
    assert catchup["peers_height_after"] >= catchup["target_height"]
    # Every process stopped: a second measurement starts them afresh.
    assert measure_restart(root, node=3, runs=1)["height"] >= catchup["target_height"]
