"""The RPC benchmark's own parts (`node.lab.rpcbench`): its raw client reads
every framing the node answers with, the candidate burst never undercharges
a large answer, and a short run goes end to end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from node.api.limits import RpcLimits
from node.lab.rawhttp import Connection
from node.lab.rpcbench import MAX_REQUEST_TOKENS, candidate_burst, core_share, main


def test_the_core_share_is_taken_at_the_dearest_kind() -> None:
    capacity = {
        "status": {"tokens_per_node0_cpu_s": 500.0},
        "range": {"tokens_per_node0_cpu_s": 1_300.0},
        "tx": {"tokens_per_node0_cpu_s": 250.0},
        "idle": {"tokens_per_node0_cpu_s": None},  # nothing measured: left out
    }
    assert core_share(200.0, capacity) == (0.8, "tx")


def test_the_candidate_burst_covers_the_dearest_request() -> None:
    assert candidate_burst(1_000.0) == 2_000
    assert candidate_burst(10.0) == MAX_REQUEST_TOKENS == RpcLimits().dearest_request_tokens


async def _serve_canned(answers: Sequence[bytes], task_status: Any) -> None:
    """Answer each request on one connection with the next of `answers`."""

    async def handler(stream: trio.SocketStream) -> None:
        buffer = b""
        for answer in answers:
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive_some(65536)
            buffer = buffer.split(b"\r\n\r\n", 1)[1]
            await stream.send_all(answer)
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handler, listeners)


def test_the_client_reads_lengths_chunks_and_closes() -> None:
    big = b"z" * 300_000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (big[:70_000], big[70_000:]))
    answers = [
        b"HTTP/1.1 200 \r\ncontent-length: %d\r\n\r\n%s" % (len(big), big),
        b"HTTP/1.1 200 \r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n",
        b"HTTP/1.1 503 \r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    ]

    async def run() -> list[tuple[int, int]]:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_serve_canned, answers)
            connection = Connection(f"http://127.0.0.1:{port}")
            got = [await connection.request("GET", "/blocks") for _ in answers]
            assert connection._stream is None  # closed after `connection: close`
            nursery.cancel_scope.cancel()
        return got

    assert trio.run(run) == [(200, len(big)), (200, len(big)), (503, 2)]


@pytest.mark.slow
def test_a_short_run_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench-rpc.json"
    argv = ["--seconds", "0.5", "--tx-count", "500", "--build-txs", "40", "--out", str(out)]
    assert main([*argv, "--wallet-rate", "50", "--dir", str(tmp_path / "run")]) == 0
    report = json.loads(out.read_text())
    assert set(report["capacity"]) == {"status", "block", "range", "tx"}
    assert report["capacity"]["range"]["tokens_per_request"] > 10  # a token per 64 KiB
    assert set(report["interference"]) == {"a", "b", "c", "d"}
    assert report["interference"]["c"]["wallet_429"] == 0
