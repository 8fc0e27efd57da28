"""The benchmark's load generator (node/lab/loadgen.py, its bookkeeping in
node/lab/finality.py): the bookkeeping as a table, and a short real run
against a devnet of node processes."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import trio

from node.lab.finality import LoadResult
from node.lab.loadgen import _chunks, run_load
from node.lab.presign import Signed, presign
from node.lab.rawhttp import RawConnection
from tests.node.cluster import running

NAN = math.nan


def _signed(nodes: list[int]) -> list[Signed]:
    return [Signed(bytes([i]) * 32, b"{}", node) for i, node in enumerate(nodes)]


def test_requests_go_to_one_node_each_and_alternate_in_order() -> None:
    chunks = _chunks(_signed([0, 1, 0, 1, 0, 0, 1]), nodes=2, batch=2)
    assert chunks == [[0, 2], [1, 3], [4, 5], [6]]


def test_each_sender_keeps_one_node_and_its_nonces_in_order() -> None:
    signed = presign("devnet-1", count=12, senders=3, nodes=2, payload_bytes=10)
    assert [s.node for s in signed[:3]] == [0, 1, 0]
    assert len({s.id for s in signed}) == 12
    assert b'"nonce":3' in signed[9].body  # the 10th goes out as sender 0's fourth


def test_the_summary_counts_what_happened_to_each_transaction() -> None:
    result = LoadResult(
        sent=[0.0, 0.0, 0.0, 0.5, 0.5],
        acked=[0.01, 0.01, NAN, 0.51, 0.52],
        final=[0.1, 0.3, NAN, 1.0, NAN],
        refused=Counter({"duplicate": 1}),
        lagged_s=0.0,
    )
    summary = result.summary()
    assert summary["acknowledged"] == 4
    assert summary["finalized"] == 3
    assert summary["lost"] == 1  # acknowledged, never final
    assert summary["refused"] == {"duplicate": 1}
    assert summary["duration_s"] == 1.0
    assert summary["committed_tx_s"] == 3.0
    assert summary["latency_ms"] == {"p50": 300.0, "p99": 500.0, "max": 500.0}


def test_a_short_run_against_real_nodes_finalizes_every_transaction(tmp_path: Path) -> None:
    with running(tmp_path) as cluster:
        urls = [cluster.url(i) for i in range(cluster.size)]
        chain_id = cluster.layout.chain_id
        batched = presign(chain_id, count=400, senders=40, nodes=4, seed=1)
        result = trio.run(lambda: run_load(urls, batched, batch=50, progress=False))
        summary = result.summary()
        assert (summary["finalized"], summary["lost"], summary["refused"]) == (400, 0, {})

        single = presign(chain_id, count=40, senders=40, nodes=4, seed=2)
        result = trio.run(lambda: run_load(urls, single, rate=200, batch=1, progress=False))
        assert result.summary()["finalized"] == 40

        # Offered again: every one is refused, and none counts as final.
        again = trio.run(lambda: run_load(urls, single, batch=1, drain_s=5, progress=False))
        assert again.summary()["refused"] == {"nonce_too_low": 40}
        assert again.summary()["finalized"] == 0


def test_the_raw_client_speaks_to_the_node(tmp_path: Path) -> None:
    (tx,) = presign("devnet-1", count=1, senders=1, nodes=1, seed=3)

    async def post() -> tuple[int, bytes]:
        async with RawConnection(cluster.url(0)) as connection:
            first = await connection.post("/tx", tx.body)
            second = await connection.post("/tx", tx.body)  # same connection, kept alive
            return first[0], second[1]

    with running(tmp_path) as cluster:
        status, body = trio.run(post)
    assert status == 202
    assert b"duplicate" in body
