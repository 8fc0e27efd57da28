"""The HTTP API (`node.api.rpc`) over a backend of real parts (`tests.node.rpc_backend`).

Requests go through Starlette's TestClient on trio, the event loop Hypercorn
serves the app on. Every answer is also checked against the app's own
OpenAPI document (`Api`), so the document stays true for schemathesis.
Shapes are the API's, field by field; blocks and certificates are decoded
back and compared with what was committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import trio
from starlette.routing import Route, WebSocketRoute

from node.api.backend import ErrorCode, Finalized
from node.api.openapi import ERROR_CODES, build_openapi
from node.api.rpc import build_app
from sequencer.certificate import verify_certificate
from sequencer.codec import from_builtins, to_builtins
from sequencer.ids import tx_id
from sequencer.limits import U64_MAX
from sequencer.merkle import verify_inclusion
from sequencer.namespaces import verify_absence, verify_presence
from sequencer.types import (
    BlockHeader,
    CommitCertificate,
    InclusionProof,
    NamespaceAbsence,
    NamespaceEntry,
    Transaction,
)
from tests.node.rpc_backend import BATCHES, CHAIN, GENESIS, METRICS, PEERS, RpcBackend
from tests.node.rpc_harness import (
    COMMITTED_USER,
    LIMITS,
    TX,
    Api,
    B,
    C,
    Node,
    body,
    error_of,
    serve,
    signed,
)
from tests.storage.chain import CHAIN_ID, VALIDATOR_SET

# ------------------------------------------------------------------ submitting


def test_post_tx_accepts_journals_and_shows_pending(node: Node) -> None:
    response = node.api.post("/tx", json=body())
    assert response.status_code == 202
    assert response.json() == {"tx_id": tx_id(TX).hex()}
    assert tx_id(TX) in node.backend.mempool
    assert [tx for _, _, tx in node.backend.store.journal()] == [TX]
    status = node.api.get(f"/tx/{tx_id(TX).hex()}")
    assert status.json() == {"tx_id": tx_id(TX).hex(), "status": "pending"}


def test_an_acknowledged_then_evicted_tx_says_evicted_and_why() -> None:
    with serve(RpcBackend(slots_max=1)) as node:
        cheap = signed(nonce=0, gas_price=1)
        rich = signed(nonce=0, gas_price=50, key=B)
        assert node.api.post("/tx", json=body(cheap)).status_code == 202
        assert node.api.post("/tx", json=body(rich)).status_code == 202
        answer = node.api.get(f"/tx/{tx_id(cheap).hex()}").json()
        assert answer["status"] == "evicted"
        assert "paying 50" in answer["reason"]
    with serve(RpcBackend()) as node:
        gapped = signed(nonce=9, gas_price=60, key=C)
        assert node.api.post("/tx", json=body(gapped)).status_code == 202
        assert node.api.get(f"/tx/{tx_id(gapped).hex()}").json()["status"] == "queued"


@pytest.mark.parametrize(
    "spell",
    [lambda h: "0x" + h, str.upper, lambda h: "0X" + h.upper()],
    ids=["0x prefix", "upper case", "0X and upper case"],
)
def test_post_tx_accepts_any_hex_spelling(node: Node, spell: Callable[[str], str]) -> None:
    raw = body()
    spelled = {
        k: spell(v) if k in ("sender", "payload", "signature") else v for k, v in raw.items()
    }
    response = node.api.post("/tx", json=spelled)
    assert response.json() == {"tx_id": tx_id(TX).hex()}


def test_post_txs_answers_each_item_in_order(node: Node) -> None:
    second = signed(nonce=1)
    items = [body(), {**body(second), "fee": 1}, body(second), body()]
    response = node.api.post("/txs", json=items)
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {"tx_id": tx_id(TX).hex()}
    assert list(results[1]) == ["error"]
    assert results[1]["error"]["code"] == "malformed"
    assert "fee" in results[1]["error"]["message"]
    assert results[2] == {"tx_id": tx_id(second).hex()}
    assert results[3]["error"]["code"] == "duplicate"
    assert len(node.backend.mempool) == 2
    assert node.backend.submit_calls == 1  # the valid items, in one call


def test_post_txs_at_the_batch_limit_and_empty(node: Node) -> None:
    full = [body(signed(nonce=n)) for n in range(LIMITS.batch_txs_max)]
    assert len(node.api.post("/txs", json=full).json()["results"]) == LIMITS.batch_txs_max
    assert node.api.post("/txs", json=[]).json() == {"results": []}


def test_body_limit_is_inclusive(node: Node) -> None:
    raw = msgspec.json.encode(body())
    exact = raw + b" " * (LIMITS.body_bytes_max - len(raw))
    assert node.api.post("/tx", content=exact + b" ").status_code == 413
    assert node.api.post("/tx", content=exact).status_code == 202


def test_chunked_body_is_cut_off_at_the_limit() -> None:
    """Without Content-Length the app stops reading an endless body at the limit."""
    reads, sent = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b" " * 1024, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.1"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/tx",
        "raw_path": b"/tx",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"node"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 4000),
        "server": ("node", 80),
    }
    trio.run(build_app(RpcBackend(), LIMITS), scope, receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "body_too_large"
    assert reads == LIMITS.body_bytes_max // 1024 + 1


# ------------------------------------------------------------------ transactions and blocks


COMMITTED = [(item, index, tx) for item in CHAIN for index, tx in enumerate(item.block.txs)]


@pytest.mark.parametrize(
    ("item", "index", "tx"), COMMITTED, ids=[f"h{i.height}-{n}" for i, n, _ in COMMITTED]
)
def test_committed_tx_has_a_proof_to_the_tx_root(
    api: Api, item: Any, index: int, tx: Transaction
) -> None:
    answer = api.get(f"/tx/{tx_id(tx).hex()}").json()
    batch = next((b for b in BATCHES if b["first_height"] <= item.height <= b["last_height"]), None)
    keys = ["tx_id", "status", "height", "index", "block_id", "proof"]
    assert list(answer) == keys + (["l1"] if batch else [])
    if batch is not None:  # once a confirmed L1 batch holds its block
        assert answer["l1"] == {k: batch[k] for k in ("batch_number", "commitment")}
    assert (answer["tx_id"], answer["status"]) == (tx_id(tx).hex(), "committed")
    assert (answer["height"], answer["index"]) == (item.height, index)
    assert answer["block_id"] == item.block_id.hex()
    proof = from_builtins(answer["proof"], InclusionProof)
    assert (proof.index, proof.size) == (index, len(item.block.txs))
    assert verify_inclusion(tx_id(tx), proof, item.block.header.tx_root)


HEADER_FIELDS = list(BlockHeader.__struct_fields__)


@pytest.mark.parametrize("item", CHAIN, ids=[f"height {i.height}" for i in CHAIN])
def test_block_by_height(api: Api, item: Any) -> None:
    answer = api.get(f"/blocks/{item.height}").json()
    assert list(answer) == ["block_id", "header", "tx_ids", "certificate"]
    assert answer["block_id"] == item.block_id.hex()
    assert list(answer["header"]) == HEADER_FIELDS
    assert from_builtins(answer["header"], BlockHeader) == item.block.header
    assert answer["tx_ids"] == [i.hex() for i in item.tx_ids]
    assert list(answer["certificate"]) == ["height", "round", "block_id", "signatures"]
    certificate = from_builtins(answer["certificate"], CommitCertificate)
    assert certificate == item.certificate
    verify_certificate(certificate, VALIDATOR_SET, CHAIN_ID, block_id=item.block_id)
    assert answer["certificate"]["signatures"][0] == [0, item.certificate.signatures[0][1].hex()]


def test_full_block_and_latest(api: Api) -> None:
    last = CHAIN[-1]
    full = api.get(f"/blocks/{last.height}?full=true").json()
    assert [from_builtins(tx, Transaction) for tx in full["txs"]] == last.block.txs
    assert api.get("/blocks/latest?full=true").json() == full
    assert "txs" not in api.get("/blocks/latest?full=false").json()


def test_no_latest_block_before_the_first() -> None:
    with serve(RpcBackend(height=0)) as node:
        response = node.api.get("/blocks/latest")
        assert (response.status_code, error_of(response)) == (404, "not_found")


@pytest.mark.parametrize(
    ("query", "heights"),
    [
        ("", [1, 2, 3]),
        ("?from=2&limit=2", [2, 3]),
        ("?from=6", [6, 7]),
        ("?from=8", []),
        (f"?from={U64_MAX}&limit=3", []),
    ],
    ids=["defaults", "from and limit", "up to the tip", "past the tip", "at u64 max"],
)
def test_block_range(api: Api, query: str, heights: list[int]) -> None:
    blocks = api.get(f"/blocks{query}").json()["blocks"]
    assert [b["header"]["height"] for b in blocks] == heights
    for answer in blocks:
        assert answer == api.get(f"/blocks/{answer['header']['height']}").json()


def test_block_range_full(api: Api) -> None:
    (answer,) = api.get("/blocks?from=7&limit=1&full=true").json()["blocks"]
    assert answer == api.get("/blocks/7?full=true").json()


@pytest.mark.parametrize(
    ("namespace", "height", "indexes"),
    [(7, 7, [0, 2]), (9, 7, [1, 3]), (11, 7, [4]), (8, 7, []), (7, 4, []), (7, 3, [0, 1, 2])],
    ids=["7", "9", "11", "none in it", "empty block", "all of a block"],
)
def test_namespace_view(api: Api, namespace: int, height: int, indexes: list[int]) -> None:
    """One answer verifies on its own: header, certificate, entry or absence, txs."""
    item = CHAIN[height - 1]
    answer = api.get(f"/namespaces/{namespace}/blocks/{height}").json()
    assert list(answer) == NAMESPACE_VIEW_KEYS
    assert (answer["height"], answer["namespace"]) == (height, namespace)
    assert answer["block_id"] == item.block_id.hex()
    header = from_builtins(answer["header"], BlockHeader)
    assert header == item.block.header
    certificate = from_builtins(answer["certificate"], CommitCertificate)
    verify_certificate(certificate, VALIDATOR_SET, CHAIN_ID, height=height, block_id=item.block_id)
    expected = [item.block.txs[i] for i in indexes]
    txs = [
        from_builtins({k: v for k, v in t.items() if k != "tx_id"}, Transaction)
        for t in answer["txs"]
    ]
    assert txs == expected
    assert [t["tx_id"] for t in answer["txs"]] == [tx_id(tx).hex() for tx in expected]
    root = header.namespace_root
    if indexes:
        assert answer["absence"] is None
        entry = from_builtins(answer["entry"], NamespaceEntry)
        proof = from_builtins(answer["entry_proof"], InclusionProof)
        assert verify_presence(namespace, root, entry, proof, txs) == [tx_id(t) for t in txs]
    else:
        assert (answer["entry"], answer["entry_proof"]) == (None, None)
        verify_absence(namespace, root, from_builtins(answer["absence"], NamespaceAbsence))


NAMESPACE_VIEW_KEYS = [
    "namespace",
    "height",
    "block_id",
    "header",
    "certificate",
    "entry",
    "entry_proof",
    "txs",
    "absence",
]


def test_account_nonces(node: Node) -> None:
    sender = COMMITTED_USER.public_key
    committed = CHAIN[-1].nonces_after[sender]
    assert node.api.get(f"/accounts/{sender.hex()}").json() == {
        "sender": sender.hex(),
        "committed_nonce": committed,
        "next_nonce": committed,
    }
    for nonce in (committed, committed + 2):  # one pending, one queued behind a gap
        assert node.api.post("/tx", json=body(signed(COMMITTED_USER, nonce))).status_code == 202
    answer = node.api.get(f"/accounts/0x{sender.hex().upper()}").json()
    assert (answer["committed_nonce"], answer["next_nonce"]) == (committed, committed + 1)
    fresh = node.api.get(f"/accounts/{C.public_key.hex()}").json()
    assert (fresh["committed_nonce"], fresh["next_nonce"]) == (0, 0)


# ------------------------------------------------------------------ node and operations


def test_status_validators_peers(node: Node) -> None:
    assert node.api.get("/status").json() == node.backend.status()
    validators = node.api.get("/validators").json()
    assert validators["chain_id"] == CHAIN_ID
    assert validators["total_power"] == len(GENESIS.validators)
    assert validators["validators"] == [
        {"index": i, **to_builtins(v)} for i, v in enumerate(GENESIS.validators)
    ]
    assert node.api.get("/peers").json() == {"peers": PEERS}


def test_batches(node: Node) -> None:
    assert node.api.get("/batches").json() == {"batches": BATCHES}
    assert node.api.get("/batches", params={"from": 1, "limit": 1}).json() == {
        "batches": BATCHES[1:2]
    }
    assert node.api.get("/batches/2").json() == BATCHES[2]
    missing = node.api.get("/batches/3")
    assert (missing.status_code, error_of(missing)) == (404, "not_found")
    bad = node.api.get("/batches", params={"limit": 0})
    assert (bad.status_code, error_of(bad)) == (400, "bad_request")


def test_health_ready_metrics(node: Node) -> None:
    assert node.api.get("/health").json() == {"status": "ok"}
    assert node.api.get("/ready").json() == {"status": "ready"}
    metrics = node.api.get("/metrics")
    assert metrics.content == METRICS
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    node.backend.is_ready = False
    not_ready = node.api.get("/ready")
    assert (not_ready.status_code, error_of(not_ready)) == (503, "not_ready")
    assert node.api.get("/health").status_code == 200


# ------------------------------------------------------------------ server-sent events


def parse_events(text: str) -> list[dict[str, str]]:
    """SSE frames as {field: value}; a comment line is the field ""."""
    frames = []
    for frame in filter(None, text.split("\n\n")):
        frames.append(dict(line.partition(": ")[::2] for line in frame.split("\n")))
    return frames


def blocks_of(text: str) -> list[dict[str, Any]]:
    frames = [f for f in parse_events(text) if f.get("event") == "block"]
    for frame in frames:
        assert frame["id"] == str(json.loads(frame["data"])["header"]["height"])
    return [json.loads(f["data"]) for f in frames]


def live(*heights: int) -> list[Finalized]:
    return [Finalized(CHAIN[h - 1].block, CHAIN[h - 1].certificate) for h in heights]


def test_events_stream_finalized_blocks(api: Api) -> None:
    response = api.get("/events?from=5")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    blocks = blocks_of(response.text)
    assert blocks == [api.get(f"/blocks/{h}?full=true").json() for h in (5, 6, 7)]


def test_events_namespace_filter(api: Api) -> None:
    """Every block (for progress), each as the namespace's view with its proof."""
    views = blocks_of(api.get("/events?from=5&namespace=9").text)
    assert [v["height"] for v in views] == [5, 6, 7]
    for view in views:
        assert view == api.get(f"/namespaces/9/blocks/{view['height']}").json()
    assert [[tx["namespace"] for tx in v["txs"]] for v in views] == [[], [], [9, 9]]
    assert [v["absence"] is None for v in views] == [False, False, True]


@pytest.mark.parametrize(
    ("url", "headers", "heights"),
    [
        ("/events?from=3", {"Last-Event-ID": "5"}, [6, 7]),
        ("/events", {"Last-Event-ID": "6"}, [7]),
        ("/events?from=7", {}, [7]),
        ("/events?from=1", {"Last-Event-ID": "7"}, []),
    ],
    ids=["Last-Event-ID wins over from", "Last-Event-ID alone", "from alone", "up to date"],
)
def test_events_resume(api: Api, url: str, headers: dict[str, str], heights: list[int]) -> None:
    blocks = blocks_of(api.get(url, headers=headers).text)
    assert [b["header"]["height"] for b in blocks] == heights


def test_events_start_after_the_tip_by_default() -> None:
    backend = RpcBackend(height=5)
    backend.live = live(6, 7)
    with serve(backend) as node:
        assert [b["header"]["height"] for b in blocks_of(node.api.get("/events").text)] == [6, 7]


def test_events_keepalive_when_idle() -> None:
    backend = RpcBackend(height=5)
    backend.live, backend.live_delay_s = live(6), 0.3
    with serve(backend, keepalive_s=0.05) as node:
        frames = parse_events(node.api.get("/events?from=5").text)
        kinds = [f.get("event", f.get("")) for f in frames]
        assert kinds[0] == "block"
        assert kinds[-1] == "block"
        assert "keepalive" in kinds[1:-1]
        assert set(kinds[1:-1]) == {"keepalive"}


def test_events_stop_when_the_client_leaves() -> None:
    backend = RpcBackend()
    backend.endless = True
    with serve(backend, keepalive_s=0.01) as node:
        with node.api.client.stream("GET", "/events?from=7") as response:
            lines = response.iter_lines()
            assert next(lines) == "event: block"
            assert next(lines) == "id: 7"
        # The endless stream was cancelled: the app answers the next request.
        assert node.api.get("/health").status_code == 200


def test_events_report_a_storage_failure() -> None:
    with serve(RpcBackend()) as node:
        node.backend.store.close()
        (frame,) = parse_events(node.api.get("/events?from=1").text)
        assert frame["event"] == "error"
        assert json.loads(frame["data"])["error"]["code"] == "storage_failed"


# ------------------------------------------------------------------ OpenAPI


def test_openapi_describes_every_route(api: Api) -> None:
    response = api.get("/openapi.json")
    doc = json.loads(response.content)
    assert doc == json.loads(json.dumps(build_openapi(LIMITS)))
    assert doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = api.client.app.routes  # type: ignore[attr-defined]
    served = {
        (route.path, method)
        for route in routes
        if isinstance(route, Route)
        for method in route.methods - {"HEAD"}
    }
    assert documented == served
    # OpenAPI has no WebSocket operations: the one WebSocket route is /events.
    assert [r.path for r in routes if isinstance(r, WebSocketRoute)] == ["/events"]


def test_openapi_documents_404_wherever_a_path_parameter_is(api: Api) -> None:
    """A path parameter holding `/` routes nowhere: 404, whatever the operation."""
    doc = api.get("/openapi.json").json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if "{" in path:
                assert "404" in operation["responses"], f"{method.upper()} {path}"


def test_openapi_error_codes_and_limits(api: Api) -> None:
    doc = api.get("/openapi.json").json()
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["properties"]["code"]["enum"] == ERROR_CODES
    assert set(ERROR_CODES) == {code.value for code in ErrorCode}
    assert (
        doc["paths"]["/txs"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "maxItems"
        ]
        == LIMITS.batch_txs_max
    )


# ------------------------------------------------------------------ POST /tx?wait=final


def test_wait_final_answers_202_with_the_status_when_it_times_out(node: Node) -> None:
    """This backend commits nothing: the wait ends at its timeout, still pending."""
    response = node.api.post("/tx?wait=final&timeout_ms=200", json=body())
    assert response.status_code == 202
    assert response.json() == {"tx_id": tx_id(TX).hex(), "status": "pending"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("wait=soon", "`wait` must be final"),
        ("wait=final&timeout_ms=60001", "`timeout_ms` must be at most 60000"),
    ],
)
def test_wait_refuses_bad_parameters_and_changes_nothing(
    node: Node, query: str, message: str
) -> None:
    response = node.api.post(f"/tx?{query}", json=body())
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)
    assert tx_id(TX) not in node.backend.mempool


def test_wait_final_of_a_refused_transaction_is_the_refusal(node: Node) -> None:
    assert node.api.post("/tx", json=body()).status_code == 202
    again = node.api.post("/tx?wait=final", json=body())
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate"


# ------------------------------------------------------------------ search


def test_a_senders_transactions_by_nonce_paged(api: Api) -> None:
    sender = CHAIN[0].block.txs[0].sender if CHAIN[0].block.txs else CHAIN[1].block.txs[0].sender
    theirs = sorted(
        (tx.nonce, tx_id(tx).hex(), item.height, index)
        for item in CHAIN
        for index, tx in enumerate(item.block.txs)
        if tx.sender == sender
    )
    assert len(theirs) >= 3
    answer = api.get(f"/accounts/{sender.hex()}/txs").json()
    assert [(t["nonce"], t["tx_id"], t["height"], t["index"]) for t in answer["txs"]] == theirs
    assert answer["next_from_nonce"] is None
    pages, cursor = [], 0
    while cursor is not None:
        page = api.get(f"/accounts/{sender.hex()}/txs?from_nonce={cursor}&limit=2").json()
        pages += page["txs"]
        cursor = page["next_from_nonce"]
    assert [t["nonce"] for t in pages] == [n for n, *_ in theirs]
    assert api.get(f"/accounts/{'00' * 32}/txs").json()["txs"] == []
    assert api.get(f"/accounts/{sender.hex()}/txs?limit=1001").status_code == 400


def test_a_namespaces_transactions_over_heights(api: Api) -> None:
    pages, cursor = [], 1
    while cursor is not None:  # the test limits allow a few heights per request
        page = api.get(f"/namespaces/9/txs?from={cursor}&to=7").json()
        assert (page["from"], page["to"]) == (cursor, 7)
        pages += page["txs"]
        cursor = page["next_from"]
    expected = [
        (item.height, index, tx_id(tx).hex())
        for item in CHAIN
        for index, tx in enumerate(item.block.txs)
        if tx.namespace == 9
    ]
    assert [(t["height"], t["index"], t["tx_id"]) for t in pages] == expected
    assert all(t["tx"]["namespace"] == 9 for t in pages)
    tail = api.get("/namespaces/7/txs?from=6").json()
    assert {t["height"] for t in tail["txs"]} <= {6, 7}
    assert api.get("/namespaces/7/txs?from=5&to=3").status_code == 400
    assert api.get("/namespaces/7/txs?from=99").json()["txs"] == []
