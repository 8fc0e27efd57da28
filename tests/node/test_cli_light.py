"""`sequencer verify …` and `sequencer follow`, run as real processes against a
node on a loopback socket that serves a fixed chain honestly or lies
(`tests.sequencer.light_server`)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sequencer.genesis import dump_genesis
from sequencer.ids import tx_id
from tests.node.rpc_backend import CHAIN, GENESIS
from tests.sequencer.light_server import ChainServer

SEQUENCER = Path(sys.executable).parent / "sequencer"
TIP = len(CHAIN)


@pytest.fixture
def genesis(tmp_path: Path) -> Path:
    path = tmp_path / "genesis.json"
    path.write_bytes(dump_genesis(GENESIS))
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SEQUENCER), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def drop_one_at_tip(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
    """Leave out the second transaction of a namespace's part of the last block."""
    if kind == "namespace" and height == TIP and len(body["txs"]) == 2:
        body = copy.deepcopy(body)
        del body["txs"][1]
    return body


def expected_lines(namespace: int) -> list[dict[str, Any]]:
    lines = []
    for item in CHAIN:
        mine = [tx for tx in item.block.txs if tx.namespace == namespace]
        for position, tx in enumerate(mine):
            lines.append(
                {
                    "height": item.height,
                    "block_id": item.block_id.hex(),
                    "position": position,
                    "count": len(mine),
                    "tx_id": tx_id(tx).hex(),
                }
            )
    return lines


def read_lines(path: Path) -> list[dict[str, Any]]:
    keys = ("height", "block_id", "position", "count", "tx_id")
    return [{k: json.loads(line)[k] for k in keys} for line in path.read_text().splitlines()]


def test_verify_block_range_tx_and_namespace(genesis: Path) -> None:
    with ChainServer().serve() as url:
        blocks = run("verify", "block", "1", "--to", TIP, "--rpc", url, "--genesis", genesis)
        assert blocks.returncode == 0, blocks.stderr
        assert f"heights 1..{TIP} verified and linked" in blocks.stdout
        tx = CHAIN[-1].block.txs[2]
        found = run("verify", "tx", tx_id(tx).hex(), "--rpc", url, "--genesis", genesis, "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout) | {"block_id": None} == {
            "tx_id": tx_id(tx).hex(),
            "height": TIP,
            "index": 2,
            "block_id": None,
            "verified": True,
        }
        absent = run(
            "verify", "namespace", "8", "--height", TIP, "--rpc", url, "--genesis", genesis
        )
        assert absent.returncode == 0, absent.stderr
        assert "none of its transactions (absence proof)" in absent.stdout


def test_verify_namespace_catches_a_transaction_left_out(genesis: Path) -> None:
    with ChainServer(drop_one_at_tip).serve() as url:
        result = run(
            "verify", "namespace", "9", "--height", TIP, "--rpc", url, "--genesis", genesis
        )
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line == (
        f"error: namespace 9 at height {TIP}: the table says namespace 9 has 2 transactions,"
        " the proof carries 1"
    )


def test_follow_writes_each_transaction_once_and_resumes_from_its_file(
    tmp_path: Path, genesis: Path
) -> None:
    out = tmp_path / "seven.jsonl"
    with ChainServer().serve() as url:
        first = run(
            "follow",
            "--namespace",
            "7",
            "--to",
            5,
            "--out",
            out,
            "--rpc",
            url,
            "--genesis",
            genesis,
        )
        assert first.returncode == 0, first.stderr
        assert read_lines(out) == [e for e in expected_lines(7) if e["height"] <= 5]
        # A torn write: half of the next line. The resume drops it.
        with out.open("a") as file:
            file.write('{"height": 6, "blo')
        rest = run(
            "follow",
            "--namespace",
            "7",
            "--to",
            TIP,
            "--out",
            out,
            "--rpc",
            url,
            "--genesis",
            genesis,
        )
        assert rest.returncode == 0, rest.stderr
    assert "after block" in rest.stderr
    assert read_lines(out) == expected_lines(7)


def test_follow_stops_at_a_lying_node_before_printing_its_block(
    tmp_path: Path, genesis: Path
) -> None:
    with ChainServer(drop_one_at_tip).serve() as url:
        result = run(
            "follow", "--namespace", "7", "--to", TIP, "--rpc", url, "--genesis", genesis, "--quiet"
        )
    assert result.returncode == 1
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    before = [e["tx_id"] for e in expected_lines(7) if e["height"] < TIP]
    assert [p["tx_id"] for p in printed] == before
    assert before
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: namespace 7 at height {TIP}: the table says")


def test_follow_refuses_bad_arguments_in_one_line(genesis: Path) -> None:
    result = run("follow", "--namespace", "9", "--from", "0", "--genesis", genesis)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: --from must be a height (1 or more), got 0"]
