"""A short chaos run of a 4-validator devnet (the chaos tier): kill -9,
restarts while idle and right after a commit, partitions, loss and
duplication under steady load, then every safety and liveness check of
`node.lab.chaos`, the in-run stall bound included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.lab.chaos import main

# Its 45 s plan holds seven kinds of fault, the two restart moments among
# them. An earlier plan of this test found a node restarted after kill -9
# staying behind for good: its catch-up requests were byte-identical to ones
# peers had seen, and dropped as seen (fixed: each request carries a fresh
# nonce).
SEED = 120


# When a POST to a paused node times out while httpx is sending its body,
# httpx leaves the body's async generator unclosed, and trio warns when it is
# collected. That is the client library's cleanup, not the node's behaviour.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object ByteStream.__aiter__"
    ":pytest.PytestUnraisableExceptionWarning"
)
def test_a_short_chaos_run_keeps_every_promise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "chaos.json"
    status = main(
        ["--validators", "4", "--duration", "45", "--seed", str(SEED), "--out", str(report)]
    )
    out = capsys.readouterr().out
    summary = out.strip().splitlines()[-1] if status == 0 else out
    assert "forks: 0, lost: 0, duplicated: 0, conflicting signatures: 0" in summary, out[-3000:]
    result = json.loads(report.read_text())
    assert result["seed"] == SEED
    assert result["equivocations"] == 0
    assert result["faults_injected"] >= 5
    assert result["acknowledged"] > 1_000
    assert result["finalized"] >= result["acknowledged"]
    assert result["l1_ok"]
    assert result["stalls_over_bound"] == 0, result["problems"]
    # 0 when every look found the height grown since the last (a slow machine).
    assert 0 <= result["longest_stall_s"] <= result["stall_bound_s"]
    assert result["restarts"] >= 5  # kill, twice after a commit, twice while idle
    assert status == 0, out[-3000:]
    assert summary.endswith("-> OK")
