"""Bad input over HTTP to a real node: the documented status and code, and no change."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from sequencer.codec import to_builtins
from sequencer.crypto import PrivateKey, sign_transaction
from tests.node.cluster import Cluster, running

WALLET = PrivateKey(b"\x42" * 32)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("input") / "devnet") as cluster:
        yield cluster


def tx_json(chain_id: str, nonce: int = 0, payload: bytes = b"ok", **changes: object) -> dict:
    tx = sign_transaction(
        WALLET, chain_id=chain_id, namespace=0, nonce=nonce, gas_price=1, payload=payload
    )
    return to_builtins(tx) | changes


def node_state(cluster: Cluster) -> tuple[int, int, int]:
    status = httpx.get(f"{cluster.url(0)}/status", timeout=5).json()
    return status["height"], status["mempool"]["pending"], status["mempool"]["queued"]


def post(cluster: Cluster, path: str, content: bytes) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return httpx.post(f"{cluster.url(0)}{path}", content=content, headers=headers, timeout=10)


def cases(chain_id: str) -> list[tuple[str, str, bytes, int, str]]:
    good = tx_json(chain_id)
    flipped = good["signature"][:-2] + ("00" if good["signature"][-2:] != "00" else "01")
    return [
        ("malformed-json", "/tx", b"{not json", 400, "malformed"),
        ("bad-hex", "/tx", json.dumps(good | {"sender": "zz" * 32}).encode(), 400, "malformed"),
        ("unknown-field", "/tx", json.dumps(good | {"extra": 1}).encode(), 400, "malformed"),
        (
            "bad-signature",
            "/tx",
            json.dumps(good | {"signature": flipped}).encode(),
            400,
            "bad_signature",
        ),
        ("wrong-chain", "/tx", json.dumps(tx_json("other-chain")).encode(), 400, "wrong_chain"),
        ("oversized-body", "/tx", b"[" + b" " * (2 * 1024 * 1024) + b"]", 413, "body_too_large"),
        ("oversized-batch", "/txs", json.dumps([good] * 1_001).encode(), 413, "batch_too_large"),
        # The signed nonce is 0; a reader keeping the first key would see 7.
        ("a-key-twice", "/tx", b'{"nonce": 7, ' + json.dumps(good).encode()[1:], 400, "malformed"),
    ]


@pytest.mark.parametrize("case", range(8), ids=[c[0] for c in cases("x")])
def test_bad_input_is_refused_and_changes_nothing(cluster: Cluster, case: int) -> None:
    _name, path, content, status, code = cases(cluster.layout.chain_id)[case]
    before = node_state(cluster)
    response = post(cluster, path, content)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert node_state(cluster) == before


def test_duplicate_and_nonce_too_low(cluster: Cluster) -> None:
    chain_id = cluster.layout.chain_id
    first = json.dumps(tx_json(chain_id, nonce=0, payload=b"first")).encode()
    accepted = post(cluster, "/tx", first)
    assert accepted.status_code == 202
    duplicate = post(cluster, "/tx", first)
    # Duplicate while pending; nonce too low if its block was final already.
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] in {"duplicate", "nonce_too_low"}
    with cluster.client(0) as client:
        client.wait_final(bytes.fromhex(accepted.json()["tx_id"]), timeout=30)
    before = node_state(cluster)
    stale = post(cluster, "/tx", json.dumps(tx_json(chain_id, nonce=0, payload=b"again")).encode())
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "nonce_too_low")
    assert node_state(cluster) == before


def test_a_path_that_does_not_exist(cluster: Cluster) -> None:
    response = httpx.get(f"{cluster.url(0)}/nope", timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
