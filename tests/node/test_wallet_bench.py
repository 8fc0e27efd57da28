"""The wallet benchmark end to end, tiny: `scripts/bench.py --only wallet`
with real wrk processes against a real 4-node devnet and 4 bare handlers,
2,000 senders, 2 s of saturation and 2 s at 200 tx/s.

The report's shape and its promises are checked (every 202 matched to its
transaction and final on every node, the bare handler answering 202 to
every body, a positive ratio); no timing is: the machine is shared.

wrk comes from the Debian package `wrk` (`python3 scripts/test.py` installs
it with apt-get when run as root); without it this test skips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.lab.bench import main
from node.lab.wallet_wrk import WRK_MISSING, find_wrk

pytestmark = pytest.mark.skipif(find_wrk() is None, reason=WRK_MISSING)

NODES = 4
CONNECTIONS_PER_NODE = 16
SENDERS = 2_000
RATE = 200


def test_a_tiny_wallet_run_reports_every_figure_and_every_202_is_final(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    argv = ["--only", "wallet", "--out", str(out), "--dir", str(tmp_path / "run")]
    argv += ["--wallet-senders", str(SENDERS), "--wallet-seconds", "2"]
    argv += ["--wallet-rate", str(RATE), "--wallet-rate-seconds", "2", "--wallet-drain-s", "30"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report["runs"]) == {"wallet"}
    run = report["runs"]["wallet"]
    assert run["nodes"] == NODES
    assert run["connections"] == NODES * CONNECTIONS_PER_NODE
    assert run["senders"] >= SENDERS + RATE * 2
    assert run["rate"]["target_tx_s"] == RATE
    assert run["saturation"]["target_tx_s"] is None
    for name in ("saturation", "rate"):
        phase = run[name]
        node, bare = phase["node"], phase["bare"]
        _check_load(node)
        _check_load(bare)
        assert node["acknowledged"] > 0
        assert node["statuses"].get("202", 0) == node["acknowledged"]
        # Every 202 was matched to its transaction, by the tx id of its answer.
        assert node["acks_timed"] == node["acknowledged"]
        assert node["not_final"] == 0, node
        assert node["final_on_every_node"] == node["acknowledged"]
        assert node["not_committed_per_node"] == [0] * NODES
        assert node["finalized"] == node["acknowledged"]
        assert node["acknowledged_tx_s"] > 0
        assert node["finalized_tx_s"] > 0
        for figure in ("latency_202_ms", "finality_ms"):
            assert 0 < node[figure]["p50"] <= node[figure]["p99"] <= node[figure]["max"]
        assert len(node["cpu_s_per_node"]) == NODES
        assert node["cpu_us_per_tx_per_node"] > 0
        assert node["non_202"] == {k: v for k, v in node["statuses"].items() if k != "202"}
        # The bare handler parses every body and answers 202.
        assert set(bare["statuses"]) == {"202"}
        assert bare["requests_s"] > 0
        assert len(bare["server_cpu_s"]) == NODES
        assert isinstance(phase["ratio"], float)
        assert phase["ratio"] > 0
    assert run["ratio"] == run["saturation"]["ratio"]
    assert run["not_final"] == 0
    phases = ("saturation", "rate")
    assert run["acknowledged"] == sum(run[name]["node"]["acknowledged"] for name in phases)
    for words in ("saturation:", f"rate {RATE}/s:", "ratio", "non-202", "client cpu"):
        assert words in table


def _check_load(side: dict[str, Any]) -> None:
    """What every wrk load reports, against the nodes or the bare handlers."""
    assert sum(side["statuses"].values()) == side["answered"]
    assert side["offered"] == side["answered"] + side["unanswered_at_stop"]
    assert side["offered_tx_s"] > 0
    assert side["client_cpu_s"] >= 0
    assert 0 <= side["machine_busy"] <= 1
    assert side["others_cores"] >= 0
    assert set(side["latency_wrk_ms"]) == {"p50", "p99"}
