"""The benchmark's load generator (node/lab/loadgen.py, its bookkeeping in
node/lab/finality.py): the bookkeeping as a table, and a short real run
against a devnet of node processes."""

from __future__ import annotations

import json
import math
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio

from node.lab.finality import LoadResult, Tracker, follow_events
from node.lab.loadgen import _chunks, _Lane, run_load
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


def _answer(kind: str) -> httpx.Response:
    """A node's answer to one `POST /tx`, by kind."""
    if kind == "202":
        return httpx.Response(202, json={"tx_id": "ab"})
    if kind == "boom":
        raise httpx.ConnectError("refused")
    status = {"rate_limited": 429, "overloaded": 503, "mempool_full": 503}.get(kind, 409)
    if kind == "bad_signature":
        status = 400
    headers = {"retry-after": "0"} if status == 429 else {}
    return httpx.Response(status, json={"error": {"code": kind}}, headers=headers)


# answers the node gives, in order -> (acknowledged?, refused as, requests sent)
RETRY_TABLE = [
    (["202"], True, None, 1),
    (["rate_limited", "202"], True, None, 2),
    (["overloaded", "mempool_full", "boom", "202"], True, None, 4),
    # an earlier attempt got in and its answer was lost: it is in
    (["boom", "duplicate"], True, None, 2),
    (["mempool_full", "nonce_too_low"], True, None, 2),
    # the transaction's own fault is not sent again
    (["bad_signature"], False, "bad_signature", 1),
    # ... and on a first attempt "duplicate" means someone else sent it
    (["duplicate"], False, "duplicate", 1),
    (["nonce_too_low"], False, "nonce_too_low", 1),
]


@pytest.mark.parametrize(("answers", "acked", "refused", "requests"), RETRY_TABLE)
def test_a_refusal_that_passes_is_sent_again(
    answers: list[str], acked: bool, refused: str | None, requests: int
) -> None:
    sent: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return _answer(answers[len(sent) - 1])

    (tx,) = _signed([0])
    tracker = Tracker([tx], window=10, label="t")

    async def main() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client:
            await _Lane(client, "http://node", retry_for_s=30.0).send([0], tracker)

    trio.run(main)
    assert len(sent) == requests
    assert set(sent) == {tx.body}  # the same transaction each time
    assert (not math.isnan(tracker.acked[0])) == acked
    assert tracker.refused == (Counter({refused: 1}) if refused else Counter())
    assert sum(tracker.retried.values()) == requests - 1


def test_a_refusal_that_outlasts_the_retry_time_is_final() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _answer("mempool_full")

    tracker = Tracker(_signed([0, 0]), window=10, label="t")

    async def main() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client:
            await _Lane(client, "http://node", retry_for_s=0.5).send([0, 1], tracker)

    trio.run(main)
    assert tracker.refused == Counter({"mempool_full": 2})
    assert tracker.retried["mempool_full"] >= 4  # 0.1, 0.2, then the rest of the half second


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


def test_a_node_paused_mid_run_delays_only_its_senders_and_loses_nothing(tmp_path: Path) -> None:
    """A node stopped (SIGSTOP) for two seconds of a paced run: its requests
    wait or are sent again when it answers busy; every transaction is final,
    none refused, and the other nodes' requests kept their schedule."""
    with running(tmp_path) as cluster:
        urls = [cluster.url(i) for i in range(cluster.size)]
        signed = presign(cluster.layout.chain_id, count=3_000, senders=200, nodes=4, seed=4)
        paused = cluster.processes[1]
        assert paused is not None

        async def main() -> LoadResult:
            async with trio.open_nursery() as nursery:

                async def pause() -> None:
                    await trio.sleep(2.0)
                    paused.send_signal(signal.SIGSTOP)
                    try:
                        await trio.sleep(2.0)
                    finally:
                        paused.send_signal(signal.SIGCONT)

                nursery.start_soon(pause)
                return await run_load(urls, signed, rate=500, batch=5, progress=False)

        summary = trio.run(main).summary()
    print(json.dumps({k: v for k, v in summary.items()}, default=str))
    assert (summary["finalized"], summary["lost"], summary["refused"]) == (3_000, 0, {})
    assert summary["latency_ms"]["max"] >= 1_000  # the pause was felt ...
    assert summary["lagged_s"] < 1.5  # ... but not by the other nodes' schedule


class _BreaksAfter(httpx.AsyncByteStream):
    """An event stream that sends `body` and then breaks, as a node's cut does."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self):  # type: ignore[override]
        yield self.body
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def test_a_cut_event_stream_is_resumed_after_the_last_block_read() -> None:
    """A node cuts a stream its reader did not drain in time; the reader
    reconnects from the block after the last one it read, missing none."""
    signed = _signed([0, 0])
    a, b = (s.id.hex() for s in signed)
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            return httpx.Response(200, json={"height": 4})
        asked.append(request.url.params.get("from"))
        block = {"5": (5, a), "6": (6, b)}.get(request.url.params["from"])
        if block is None:
            return httpx.Response(200, stream=_BreaksAfter(b": keepalive\n\n"))
        body = f"event: block\nid: {block[0]}\ndata: {json.dumps({'tx_ids': [block[1]]})}\n\n"
        return httpx.Response(200, stream=_BreaksAfter(body.encode()))

    tracker = Tracker(signed, window=10, label="t")

    async def main() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client, trio.open_nursery() as nursery:
            await nursery.start(follow_events, client, "http://node", 0, tracker)
            with trio.fail_after(10):
                while tracker.finished < 2:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert asked[:2] == ["5", "6"]
    assert not any(math.isnan(f) for f in tracker.final)
    assert tracker.retried["events_reconnect"] >= 2
