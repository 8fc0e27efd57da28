"""The fast path of `POST /tx` and `POST /txs` (`node.api.fastpath`) answers
exactly as the Starlette routes behind it do.

Each case is sent, as raw ASGI messages, to two apps over two identical
fresh backends: `build_app(...)` (the fast path in front) and its `.app`
(the Starlette app alone, as served before the fast path). What each app
sends back (every message: status, headers in order, body bytes), how many
messages it read, what the backend was left holding and what the rate
limiter charged must be identical; and the Starlette app behind the fast
path must not have seen the request at all.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from node.api.fastpath import FastPath
from node.api.limits import RpcLimits
from node.api.rpc import build_app
from sequencer.codec import to_builtins
from storage.errors import StorageError
from tests.node.rpc_backend import RpcBackend
from tests.node.rpc_harness import LIMITS, TX, B, C, Clock, signed

Message = dict[str, Any]

GOOD = msgspec.json.encode(to_builtins(TX))
GOOD_B = msgspec.json.encode(to_builtins(signed(B)))
WRONG_CHAIN = msgspec.json.encode(to_builtins(signed(C, chain_id="another-chain")))
BAD_SIGNATURE = msgspec.json.encode({**to_builtins(signed(B)), "payload": "00ff"})
DUPLICATE_KEYS = GOOD[:-1] + b',"nonce":0}'
SLOW = RpcLimits(**{**dataclasses.asdict(LIMITS), "body_timeout_s": 2.0})
STINGY = RpcLimits(**{**dataclasses.asdict(LIMITS), "requests_per_s": 1.0, "burst": 2})


@dataclasses.dataclass(frozen=True)
class Request:
    body: bytes | None = b""  # one message; None: none (the script's messages only)
    path: str = "/tx"
    method: str = "POST"
    headers: tuple[tuple[bytes, bytes], ...] | None = None  # default: JSON, Content-Length
    script: tuple[Message, ...] = ()  # messages after the body's, then no more ever
    root_path: str = ""

    def scope(self) -> dict[str, Any]:
        headers = self.headers
        if headers is None:
            headers = ((b"content-type", b"application/json"),)
            if self.body is not None:
                headers += ((b"content-length", str(len(self.body)).encode()),)
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.1"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.root_path + self.path,
            "raw_path": (self.root_path + self.path).encode(),
            "query_string": b"",
            "root_path": self.root_path,
            "headers": [(b"host", b"node"), *headers],
            "client": ("127.0.0.1", 4000),
            "server": ("node", 80),
        }

    def messages(self) -> list[Message]:
        first = [] if self.body is None else [{"type": "http.request", "body": self.body}]
        return [*first, *self.script]


def chunks(data: bytes, size: int) -> tuple[Message, ...]:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return tuple(
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    )


def more(body: bytes) -> Message:
    return {"type": "http.request", "body": body, "more_body": True}


def failing_submit(error: Exception) -> Callable[[RpcBackend], None]:
    def prepare(backend: RpcBackend) -> None:
        async def submit(txs: list[Any]) -> list[Any]:
            raise error

        backend.submit = submit  # type: ignore[method-assign]

    return prepare


def not_ready(backend: RpcBackend) -> None:
    backend.is_ready = False


def storage_failed(backend: RpcBackend) -> None:
    backend.storage_failure = "writing the mempool journal: disk full"


def pooled(backend: RpcBackend) -> None:
    trio.run(backend.submit, [TX])


CHUNKED = ((b"content-type", b"application/json"), (b"transfer-encoding", b"chunked"))
BIG = b" " * (LIMITS.body_bytes_max + 1)


@dataclasses.dataclass(frozen=True)
class Case:
    requests: tuple[Request, ...]
    limits: RpcLimits = LIMITS
    prepare: Callable[[RpcBackend], None] = lambda backend: None
    fast: bool = True  # whether the fast path takes these requests


CASES = {
    "good tx": Case((Request(GOOD),)),
    "good tx in chunks": Case((Request(None, headers=CHUNKED, script=chunks(GOOD, 50)),)),
    "good tx, text/plain": Case((Request(GOOD, headers=((b"content-type", b"text/plain"),)),)),
    "good tx, no headers": Case((Request(GOOD, headers=()),)),
    "two Content-Length headers, first wins": Case(
        (Request(GOOD, headers=((b"content-length", b"5000"), (b"content-length", b"10"))),)
    ),
    "the same tx twice": Case((Request(GOOD), Request(GOOD))),
    "already pooled": Case((Request(GOOD),), prepare=pooled),
    "malformed JSON": Case((Request(b'{"chain_id": '),)),
    "not an object": Case((Request(b"[1, 2]"),)),
    "duplicate keys": Case((Request(DUPLICATE_KEYS),)),
    "wrong chain": Case((Request(WRONG_CHAIN),)),
    "bad signature": Case((Request(BAD_SIGNATURE),)),
    "missing body": Case((Request(b""),)),
    "no body message yet, then an empty end": Case(
        (Request(None, headers=(), script=({"type": "http.request"},)),)
    ),
    "oversized, declared": Case((Request(BIG),)),
    "oversized, chunked": Case((Request(None, headers=CHUNKED, script=chunks(BIG, 1024)),)),
    "body exactly at the limit": Case((Request(b" " * LIMITS.body_bytes_max),)),
    "invalid Content-Length": Case((Request(GOOD, headers=((b"content-length", b"12x"),)),)),
    "body never completes": Case(
        (Request(None, headers=CHUNKED, script=(more(GOOD[:40]),)),), limits=SLOW
    ),
    "declared body never comes": Case((Request(None, headers=((b"content-length", b"90"),)),)),
    "client leaves mid-body": Case(
        (Request(None, headers=CHUNKED, script=(more(GOOD[:40]), {"type": "http.disconnect"})),)
    ),
    "rate limited": Case((Request(GOOD), Request(GOOD_B), Request(GOOD_B)), limits=STINGY),
    "rate limited by body size": Case(
        (Request(b" " * 5000), Request(GOOD)),
        limits=RpcLimits(**{**dataclasses.asdict(STINGY), "body_bytes_max": 8192}),
    ),
    "not ready": Case((Request(GOOD),), prepare=not_ready),
    "storage failed": Case((Request(GOOD),), prepare=storage_failed),
    "storage fails in submit": Case(
        (Request(GOOD),), prepare=failing_submit(StorageError("the journal write failed"))
    ),
    "a bug in submit": Case((Request(GOOD),), prepare=failing_submit(KeyError("bug"))),
    # POST /txs
    "batch": Case(
        (Request(b"[" + GOOD + b"," + WRONG_CHAIN + b"," + b"{}" + b"," + GOOD_B + b"]", "/txs"),)
    ),
    "empty batch": Case((Request(b"[]", "/txs"),)),
    "batch, not an array": Case((Request(GOOD, "/txs"),)),
    "batch too large": Case((Request(b"[" + b",".join([GOOD] * 5) + b"]", "/txs"),)),
    "batch oversized": Case((Request(BIG, "/txs"),)),
    "batch never completes": Case(
        (Request(None, "/txs", headers=CHUNKED, script=(more(b"["),)),), limits=SLOW
    ),
    "batch, not ready": Case((Request(b"[]", "/txs"),), prepare=not_ready),
    "batch, storage failed": Case((Request(b"[]", "/txs"),), prepare=storage_failed),
    "batch, storage fails in submit": Case(
        (Request(b"[" + GOOD + b"]", "/txs"),), prepare=failing_submit(StorageError("gone"))
    ),
    "batch, rate limited": Case(
        (Request(b"[]", "/txs"), Request(b"[]", "/txs"), Request(b"[]", "/txs")), limits=STINGY
    ),
    # Not the fast path's: the Starlette app answers them in both apps.
    "GET /tx": Case((Request(None, method="GET", headers=()),), fast=False),
    "HEAD /txs": Case((Request(None, "/txs", method="HEAD", headers=()),), fast=False),
    "PUT /tx": Case((Request(GOOD, method="PUT"),), fast=False),
    "POST /tx/": Case((Request(GOOD, "/tx/"),), fast=False),
    "POST /tx/{id}": Case((Request(GOOD, "/tx/" + "00" * 32),), fast=False),
    "POST /txs/": Case((Request(b"[]", "/txs/"),), fast=False),
    "lowercase method": Case((Request(GOOD, method="post"),), fast=False),
    "under a root path": Case((Request(GOOD, root_path="/api"),), fast=False),
    "GET /status": Case((Request(None, "/status", method="GET", headers=()),), fast=False),
}


@dataclasses.dataclass
class Outcome:
    answers: list[list[Message]]
    reads: list[int]
    pool: tuple[Any, ...]
    buckets: dict[str, tuple[float, float]]
    starlette_calls: int


async def _exchange(app: Any, request: Request) -> tuple[list[Message], int]:
    sent: list[Message] = []
    script = request.messages()
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        if reads <= len(script):
            return script[reads - 1]
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(request.scope(), receive, send)
    return sent, reads


def run(case: Case, *, fast: bool) -> Outcome:
    backend = RpcBackend()
    case.prepare(backend)
    clock = Clock()
    full = build_app(backend, case.limits, clock=clock)
    calls = 0
    starlette = full.app

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await starlette(scope, receive, send)

    full.app = counted  # type: ignore[assignment]
    app = full if fast else starlette

    async def main() -> list[tuple[list[Message], int]]:
        results = []
        for request in case.requests:
            results.append(await _exchange(app, request))
            clock.now += 0.25
        return results

    results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return Outcome(
        answers=[answer for answer, _ in results],
        reads=[reads for _, reads in results],
        pool=backend.snapshot(),
        buckets=dict(full.buckets._buckets),
        starlette_calls=calls,
    )


@pytest.mark.parametrize("name", CASES)
def test_the_fast_path_answers_as_the_starlette_routes(name: str) -> None:
    case = CASES[name]
    fast, starlette = run(case, fast=True), run(case, fast=False)
    assert fast.answers == starlette.answers
    assert fast.reads == starlette.reads
    assert fast.pool == starlette.pool
    assert fast.buckets == starlette.buckets
    assert fast.starlette_calls == (0 if case.fast else len(case.requests))


def _status(answer: list[Message]) -> int | None:
    return answer[0]["status"] if answer else None


def _header(answer: list[Message], name: bytes) -> bytes | None:
    return dict(answer[0]["headers"]).get(name)


def _code(answer: list[Message]) -> str:
    return str(json.loads(answer[1]["body"])["error"]["code"])


def test_the_cases_reach_what_they_name() -> None:
    """The table is not vacuous: each refusal really is answered as named."""

    def answers(name: str) -> list[list[Message]]:
        return run(CASES[name], fast=True).answers

    (good,) = answers("good tx")
    assert _status(good) == 202
    assert good[0]["headers"] == [
        (b"content-length", str(len(good[1]["body"])).encode()),
        (b"content-type", b"application/json"),
    ]
    assert json.loads(good[1]["body"]) == {"tx_id": json.loads(good[1]["body"])["tx_id"]}
    expected = {
        "malformed JSON": (400, "malformed"),
        "duplicate keys": (400, "malformed"),
        "wrong chain": (400, "wrong_chain"),
        "bad signature": (400, "bad_signature"),
        "missing body": (400, "malformed"),
        "oversized, declared": (413, "body_too_large"),
        "oversized, chunked": (413, "body_too_large"),
        "invalid Content-Length": (400, "malformed"),
        "body never completes": (408, "request_timeout"),
        "declared body never comes": (408, "request_timeout"),
        "not ready": (503, "not_ready"),
        "storage failed": (503, "storage_failed"),
        "storage fails in submit": (503, "storage_failed"),
        "a bug in submit": (500, "internal"),
        "already pooled": (409, "duplicate"),
        "batch, not an array": (400, "malformed"),
        "batch too large": (413, "batch_too_large"),
        "batch never completes": (408, "request_timeout"),
    }
    for name, (status, code) in expected.items():
        answer = answers(name)[-1]
        assert (_status(answer), _code(answer)) == (status, code), name
    for name in ("oversized, declared", "body never completes", "declared body never comes"):
        assert _header(answers(name)[-1], b"connection") == b"close", name
    limited = answers("rate limited")
    assert [_status(answer) for answer in limited] == [202, 202, 429]
    assert _header(limited[-1], b"retry-after") == b"1"
    assert _code(limited[-1]) == "rate_limited"
    assert [_status(answer) for answer in answers("rate limited by body size")] == [400, 429]
    assert answers("client leaves mid-body") == [[]]
    (batch,) = answers("batch")
    results = json.loads(batch[1]["body"])["results"]
    assert [("tx_id" in r, r.get("error", {}).get("code")) for r in results] == [
        (True, None),
        (False, "wrong_chain"),
        (False, "malformed"),
        (True, None),
    ]
    assert isinstance(build_app(RpcBackend()), FastPath)
