"""Every refusal of the HTTP API: each error code is reachable over HTTP, with
its documented status, and a refused request changes nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
import trio

from node.api.backend import HTTP_STATUS, ErrorCode
from node.api.limits import RpcLimits, request_tokens
from node.api.ratelimit import RateLimit, TokenBuckets
from sequencer.ids import tx_id
from sequencer.limits import U64_MAX
from sequencer.types import Transaction
from tests.node.rpc_backend import RpcBackend
from tests.node.rpc_harness import (
    COMMITTED_USER,
    LIMITS,
    TX,
    A,
    Api,
    B,
    C,
    Node,
    TestClient,
    body,
    error_of,
    serve,
    signed,
)

# ------------------------------------------------------------------ every refusal


@dataclasses.dataclass(frozen=True)
class Refusal:
    code: ErrorCode
    send: Callable[[Api], httpx.Response]
    setup: tuple[Transaction, ...] = ()
    mempool: Mapping[str, int] = dataclasses.field(default_factory=dict)
    limits: RpcLimits = LIMITS
    prepare: Callable[[RpcBackend], None] = lambda backend: None


def post(url: str = "/tx", **kwargs: Any) -> Callable[[Api], httpx.Response]:
    return lambda api: api.post(url, **kwargs)


def get(url: str, **kwargs: Any) -> Callable[[Api], httpx.Response]:
    return lambda api: api.get(url, **kwargs)


def after_another_request(send: Callable[[Api], httpx.Response]) -> Callable[[Api], httpx.Response]:
    return lambda api: (api.get("/status"), send(api))[1]


def not_ready(backend: RpcBackend) -> None:
    backend.is_ready = False


def close_store(backend: RpcBackend) -> None:
    backend.store.close()


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in body().items() if k != name}


E = ErrorCode
BAD_SIGNATURE = body(signature=bytes([TX.signature[0] ^ 1, *TX.signature[1:]]).hex())
REFUSALS = [
    pytest.param(Refusal(E.MALFORMED, post(content=b'{"chain_id": ')), id="malformed JSON"),
    pytest.param(Refusal(E.MALFORMED, post(content=b"")), id="empty body"),
    pytest.param(Refusal(E.MALFORMED, post(json=[body()])), id="array for one tx"),
    pytest.param(Refusal(E.MALFORMED, post(json=body(fee=1))), id="unknown field"),
    # The last nonce would win in msgspec; a reader keeping the first would
    # see another transaction than the one the node accepted.
    pytest.param(
        Refusal(E.MALFORMED, post(content=b'{"nonce": 999, ' + json.dumps(body()).encode()[1:])),
        id="a key twice",
    ),
    pytest.param(
        Refusal(
            E.MALFORMED,
            post(content=json.dumps(body()).encode()[:-1] + b', "chain_id": "other"}'),
        ),
        id="a key twice, the last one shadowing",
    ),
    pytest.param(Refusal(E.MALFORMED, post(json=_without("signature"))), id="missing field"),
    pytest.param(Refusal(E.MALFORMED, post(json=body(sender="zz" * 32))), id="bad hex"),
    pytest.param(Refusal(E.MALFORMED, post(json=body(signature="00" * 63))), id="short hex"),
    pytest.param(Refusal(E.MALFORMED, post(json=body(nonce=U64_MAX + 1))), id="nonce above u64"),
    pytest.param(Refusal(E.MALFORMED, post(json=body(nonce="1"))), id="string for integer"),
    pytest.param(Refusal(E.MALFORMED, post("/txs", json=body())), id="batch not an array"),
    pytest.param(Refusal(E.BAD_SIGNATURE, post(json=BAD_SIGNATURE)), id="bad signature"),
    pytest.param(
        Refusal(E.WRONG_CHAIN, post(json=body(signed(chain_id="other-chain")))), id="wrong chain"
    ),
    pytest.param(
        Refusal(E.BELOW_MIN_GAS_PRICE, post(json=body(signed(gas_price=0)))), id="gas price 0"
    ),
    pytest.param(Refusal(E.DUPLICATE, post(json=body()), setup=(TX,)), id="duplicate"),
    pytest.param(
        Refusal(E.NONCE_TOO_LOW, post(json=body(signed(COMMITTED_USER, nonce=0)))),
        id="nonce too low",
    ),
    pytest.param(
        Refusal(E.UNDERPRICED_REPLACEMENT, post(json=body(signed(payload=b"r"))), setup=(TX,)),
        id="underpriced replacement",
    ),
    pytest.param(
        Refusal(
            E.TOO_LARGE, post(json=body(signed(payload=b"x" * 300))), mempool={"tx_bytes_max": 200}
        ),
        id="tx above the mempool size limit",
    ),
    pytest.param(
        Refusal(E.BODY_TOO_LARGE, post(content=b" " * (LIMITS.body_bytes_max + 1))),
        id="body too large (Content-Length)",
    ),
    pytest.param(
        Refusal(E.BODY_TOO_LARGE, lambda api: api.post("/tx", content=iter([b" " * 3000] * 2))),
        id="body too large (chunked)",
    ),
    pytest.param(
        Refusal(E.BODY_TOO_LARGE, post("/txs", content=b" " * (LIMITS.body_bytes_max + 1))),
        id="batch body too large",
    ),
    pytest.param(
        Refusal(
            E.BATCH_TOO_LARGE,
            post("/txs", json=[body(signed(nonce=n)) for n in range(LIMITS.batch_txs_max + 1)]),
        ),
        id="batch too large",
    ),
    pytest.param(
        Refusal(
            E.MEMPOOL_FULL,
            post(json=body(signed(C))),
            setup=(signed(A), signed(B)),
            mempool={"slots_max": 2},
        ),
        id="mempool full",
    ),
    pytest.param(
        Refusal(
            E.SENDER_SLOTS_FULL,
            post(json=body(signed(nonce=2))),
            setup=(signed(nonce=0), signed(nonce=1)),
            mempool={"sender_slots_max": 2},
        ),
        id="sender slots full",
    ),
    pytest.param(
        Refusal(
            E.RATE_LIMITED,
            after_another_request(post(json=body())),
            limits=dataclasses.replace(LIMITS, requests_per_s=1, burst=1),
        ),
        id="rate limited",
    ),
    pytest.param(Refusal(E.NOT_READY, post(json=body()), prepare=not_ready), id="not ready"),
    pytest.param(
        Refusal(E.NOT_READY, post("/txs", json=[body()]), prepare=not_ready),
        id="not ready (batch)",
    ),
    pytest.param(Refusal(E.NOT_FOUND, get(f"/tx/{tx_id(TX).hex()}")), id="unknown tx"),
    pytest.param(Refusal(E.NOT_FOUND, get("/blocks/8")), id="block past the tip"),
    pytest.param(Refusal(E.NOT_FOUND, get("/blocks/0")), id="block 0"),
    pytest.param(Refusal(E.NOT_FOUND, get("/namespaces/7/blocks/8")), id="namespace, no block"),
    pytest.param(Refusal(E.NOT_FOUND, get("/nowhere")), id="unknown route"),
    # Were 307 redirects (Starlette's redirect_slashes); /tx/%2F went to POST-only /tx.
    pytest.param(Refusal(E.NOT_FOUND, get("/health/")), id="trailing slash"),
    pytest.param(Refusal(E.NOT_FOUND, get("/tx/%2F")), id="tx id holding a slash"),
    pytest.param(Refusal(E.NOT_FOUND, get("/accounts/a%2Fb")), id="sender holding a slash"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/tx/zz")), id="tx id not hex"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/tx/" + "ab" * 31)), id="tx id too short"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/blocks/abc")), id="height not a number"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/blocks/-1")), id="negative height"),
    pytest.param(Refusal(E.BAD_REQUEST, get(f"/blocks/{U64_MAX + 1}")), id="height above u64"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/blocks/1?full=yes")), id="full not a boolean"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/blocks?limit=4")), id="range above the max"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/blocks?from=0")), id="range from 0"),
    pytest.param(Refusal(E.BAD_REQUEST, get("/accounts/0x12")), id="sender too short"),
    pytest.param(
        Refusal(E.BAD_REQUEST, get("/namespaces/x/blocks/1")), id="namespace not a number"
    ),
    pytest.param(
        Refusal(E.BAD_REQUEST, get("/events", headers={"Last-Event-ID": "x"})),
        id="bad Last-Event-ID",
    ),
    pytest.param(Refusal(E.BAD_REQUEST, get("/events?namespace=-1")), id="bad event namespace"),
    pytest.param(
        Refusal(E.STORAGE_FAILED, get("/blocks/1"), prepare=close_store), id="storage failed"
    ),
    pytest.param(
        Refusal(E.STORAGE_FAILED, get("/accounts/" + "ab" * 32), prepare=close_store),
        id="storage failed (account)",
    ),
]
# Refused by the backend (after decoding), not by the RPC layer itself.
SUBMIT_REFUSALS = {
    E.BAD_SIGNATURE,
    E.WRONG_CHAIN,
    E.BELOW_MIN_GAS_PRICE,
    E.DUPLICATE,
    E.NONCE_TOO_LOW,
    E.UNDERPRICED_REPLACEMENT,
    E.TOO_LARGE,
    E.MEMPOOL_FULL,
    E.SENDER_SLOTS_FULL,
}


# Refusals of the connection, not of one request's content: a real server
# and real sockets exercise them (tests/node/test_http_limits.py).
CONNECTION_REFUSALS = {
    ErrorCode.REQUEST_TIMEOUT,
    ErrorCode.OVERLOADED,
    ErrorCode.HEADERS_TOO_LARGE,
}


def test_every_error_code_is_exercised() -> None:
    # INTERNAL is a bug, not a refusal: test_unexpected_failure_is_500_json covers it.
    exercised = {param.values[0].code for param in REFUSALS}
    assert exercised == set(ErrorCode) - {ErrorCode.INTERNAL} - CONNECTION_REFUSALS


@pytest.mark.parametrize("case", REFUSALS)
def test_refusal_changes_nothing(case: Refusal) -> None:
    with serve(RpcBackend(**case.mempool), case.limits) as node:
        for tx in case.setup:
            assert node.api.post("/tx", json=body(tx)).status_code == 202
        case.prepare(node.backend)
        before, calls = node.backend.snapshot(), node.backend.submit_calls
        response = case.send(node.api)
        assert (response.status_code, error_of(response)) == (HTTP_STATUS[case.code], case.code)
        assert node.backend.snapshot() == before
        assert node.backend.submit_calls == calls + (case.code in SUBMIT_REFUSALS)


@contextlib.contextmanager
def recursion_limit(limit: int) -> Iterator[None]:
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def test_batch_nested_too_deeply_is_malformed() -> None:
    """Skipping over an item to keep it raw, msgspec recurses into it and raises
    RecursionError past the recursion limit: that was a 500. The limit is pinned
    to Python's default, which a node keeps unless it imports the Ethereum sink
    (py_ecc raises it to 100,000, for the node and for this test session)."""
    depth = 5_000
    limits = dataclasses.replace(LIMITS, body_bytes_max=2 * depth)
    with recursion_limit(1_000), serve(RpcBackend(), limits) as node:
        response = node.api.post("/txs", content=b"[" * depth + b"]" * depth)
        assert (response.status_code, error_of(response)) == (400, "malformed")
        assert node.backend.submit_calls == 0


def test_wrong_method_is_405_json(api: Api) -> None:
    response = api.post("/status")
    assert response.status_code == 405
    assert error_of(response) == "bad_request"
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_unexpected_failure_is_500_json(node: Node) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("secret internals")

    node.backend.status = broken  # type: ignore[method-assign]
    response = node.api.get("/status")
    assert response.status_code == 500
    assert error_of(response) == "internal"
    assert "secret" not in response.text


def test_probes_have_a_rate_limit_of_their_own() -> None:
    limits = dataclasses.replace(LIMITS, requests_per_s=1, burst=1, probe_burst=3)
    with serve(RpcBackend(), limits) as node:
        assert node.api.get("/status").status_code == 200
        assert node.api.get("/status").status_code == 429  # the API bucket is empty...
        probes = [node.api.get(path).status_code for path in ("/health", "/ready", "/metrics")]
        assert probes == [200, 200, 200]  # ...the probes' is not
        response = node.api.get("/metrics")
        assert response.status_code == 429  # but it is bounded too
        assert error_of(response) == "rate_limited"


def _spent_by_limiter(body_bytes: int, response_bytes: int) -> float:
    """Tokens `RateLimit` takes for one request moving these body bytes, each
    side in two messages (as a streamed answer is sent)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        half = response_bytes // 2
        await send({"type": "http.response.body", "body": b"x" * half, "more_body": True})
        await send({"type": "http.response.body", "body": b"x" * (response_bytes - half)})

    full = 1_000_000.0
    buckets = TokenBuckets(1.0, int(full), clock=lambda: 0.0)  # a frozen clock: no refill
    limiter = RateLimit(app, buckets=buckets, probes=TokenBuckets(1.0, 10, lambda: 0.0))
    scope = {"type": "http", "path": "/blocks", "client": ("127.0.0.11", 1)}
    incoming = [
        {"type": "http.request", "body": b"y" * (body_bytes // 2), "more_body": True},
        {"type": "http.request", "body": b"y" * (body_bytes - body_bytes // 2)},
    ]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        pass

    trio.run(limiter, scope, receive, send)
    tokens, _ = buckets._buckets["127.0.0.11"]
    return full - tokens


@pytest.mark.parametrize(
    ("body_bytes", "response_bytes", "tokens"),
    [
        (0, 10, 1),  # a small GET
        (600, 300, 1),  # a single POST /tx
        (4_095, 65_535, 1),
        (4_096, 0, 2),  # a token per 4 KiB of body: transactions to verify
        (0, 65_536, 2),  # and per 64 KiB of response: blocks to encode and write
        (1 << 20, 4 << 20, 1 + 256 + 64),  # the dearest: a whole body, a capped answer
    ],
)
def test_the_rate_limit_charges_by_cost(body_bytes: int, response_bytes: int, tokens: int) -> None:
    assert request_tokens(body_bytes, response_bytes) == tokens
    assert _spent_by_limiter(body_bytes, response_bytes) == tokens


def test_the_default_burst_covers_the_dearest_request() -> None:
    limits = RpcLimits()
    assert limits.dearest_request_tokens == 1 + 256 + 64
    assert limits.burst >= limits.dearest_request_tokens


def test_large_bodies_run_out_long_before_small_requests() -> None:
    limits = dataclasses.replace(LIMITS, requests_per_s=0.001, burst=40, body_bytes_max=64 * 1024)
    with serve(RpcBackend(), limits) as node:
        small = [node.api.get("/status").status_code for _ in range(20)]
        assert set(small) == {200}  # 20 tokens of 40
    with serve(RpcBackend(), limits) as node:
        junk = b"x" * 40_000  # refused as malformed, but received: charged
        cost = request_tokens(len(junk), 200)
        assert cost > 5
        statuses = [node.api.post("/tx", content=junk).status_code for _ in range(40 // cost + 2)]
        assert statuses[-1] == 429
        assert statuses.count(400) <= 40 // cost


def test_rate_limit_refills_per_client() -> None:
    limits = dataclasses.replace(LIMITS, requests_per_s=1, burst=2)
    with serve(RpcBackend(), limits) as node:
        statuses = [node.api.get("/status").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert node.api.get("/status").headers["retry-after"] == "1"
        assert node.api.get("/health").status_code == 200  # probes: a bucket of their own
        with TestClient(node.api.client.app, backend="trio", client=("10.0.0.2", 1)) as other:
            assert other.get("/status").status_code == 200
        node.clock.now += 1.0
        assert node.api.get("/status").status_code == 200
        assert node.api.get("/status").status_code == 429


@pytest.mark.parametrize(
    "field", ["body_bytes_max", "batch_txs_max", "requests_per_s", "burst", "blocks_range_max"]
)
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RpcLimits(**{field: 0})
