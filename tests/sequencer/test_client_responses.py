"""The wallet client refuses answers it cannot trust: answers that do not
parse, and proofs or blocks that do not check out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sequencer import client as client_module
from sequencer.client import (
    BAD_PROOF,
    BAD_RESPONSE,
    Client,
)
from sequencer.errors import ClientError
from sequencer.ids import tx_id
from tests.sequencer.client_fake import (
    ALICE,
    BASE_URL,
    OTHER_ID,
    FakeNode,
    canned,
    flip_first_path_hash,
    signed,
)

# ------------------------------------------------------------------ bad responses


def status_body(**changes: Any) -> dict[str, Any]:
    tid = tx_id(signed())
    body = {"tx_id": tid.hex(), "status": "committed", "height": 1, "index": 0}
    body |= {"block_id": "cd" * 32, "proof": {"index": 0, "size": 1, "path": []}}
    return body | changes


def block_body(**changes: Any) -> dict[str, Any]:
    body = {"block_id": "cd" * 32, "header": {}, "tx_ids": [], "certificate": {}}
    return body | changes


def call_submit(c: Client) -> object:
    return c.submit(signed())


def call_submit_many(c: Client) -> object:
    return c.submit_many([signed(nonce=0), signed(nonce=1)])


def call_tx_status(c: Client) -> object:
    return c.tx_status(tx_id(signed()))


def call_next_nonce(c: Client) -> object:
    return c.next_nonce(ALICE.sender)


def call_block(c: Client) -> object:
    return c.block(1)


def call_full_block(c: Client) -> object:
    return c.block(1, full=True)


@pytest.mark.parametrize(
    ("call", "status", "body"),
    [
        (call_submit, 202, {"id": "00" * 32}),
        (call_submit, 202, {"tx_id": "zz" * 32}),
        (call_submit, 202, {"tx_id": "00" * 31}),
        (call_submit, 202, {"tx_id": OTHER_ID}),  # not the id of what was sent
        (call_submit, 202, ["not", "an", "object"]),
        (call_submit, 400, {"detail": "a framework's own error shape"}),
        (call_submit, 429, {"error": {"message": "no code"}}),
        (call_submit_many, 200, {"results": [{"tx_id": tx_id(signed(nonce=0)).hex()}]}),
        (call_submit_many, 200, {"results": [{}, {}]}),
        (call_submit_many, 200, {"results": [{"tx_id": 7}, {"tx_id": 8}]}),
        (call_submit_many, 200, {"results": [{"error": {"code": ""}}] * 2}),
        (call_tx_status, 200, status_body(tx_id=OTHER_ID)),
        (call_tx_status, 200, status_body(status="finalized")),
        (call_tx_status, 200, status_body(proof=None)),
        (call_tx_status, 200, status_body(height=0)),
        (call_tx_status, 200, status_body(index=1)),  # the proof says 0
        (call_tx_status, 200, status_body(proof={"index": 0, "size": 1, "path": ["00"]})),
        (call_tx_status, 200, status_body(proof={"index": 0, "size": 2**64, "path": []})),
        (call_tx_status, 200, status_body(height="1")),
        (call_next_nonce, 200, {"next_nonce": -1}),
        (call_next_nonce, 200, {"next_nonce": 2**64}),
        (call_next_nonce, 200, {"nonce": 3}),
        (call_block, 200, block_body(tx_ids=None)),
        (call_block, 200, {"block_id": "cd" * 32}),
        (call_full_block, 200, block_body()),  # no txs
        (call_full_block, 200, block_body(tx_ids=["00" * 32], txs=[])),
    ],
)
def test_answers_that_do_not_parse_are_bad_responses(
    call: Callable[[Client], object], status: int, body: Any
) -> None:
    with Client(BASE_URL, transport=canned(status, body)) as c, pytest.raises(ClientError) as info:
        call(c)
    assert (info.value.code, info.value.status) == (BAD_RESPONSE, status)


@pytest.mark.parametrize(
    ("status", "content"),
    [(200, b"<html>ok</html>"), (502, b"<html>Bad Gateway</html>"), (200, b"\xff\xfe")],
)
def test_non_json_answers_are_bad_responses(status: int, content: bytes) -> None:
    transport = canned(status, content=content)
    with Client(BASE_URL, transport=transport) as c, pytest.raises(ClientError) as info:
        c.status()
    assert (info.value.code, info.value.status) == (BAD_RESPONSE, status)


def test_an_unknown_route_is_not_an_unknown_transaction() -> None:
    # A 404 without the error object (wrong base URL, older node) must not
    # read as "the node does not know this transaction".
    transport = canned(404, content=b"Not Found")
    with Client(BASE_URL, transport=transport) as c, pytest.raises(ClientError) as info:
        c.tx_status(b"\x01" * 32)
    assert (info.value.code, info.value.status) == (BAD_RESPONSE, 404)
    assert "Not Found" in info.value.message


def test_an_oversized_answer_is_a_bad_response(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "RESPONSE_BYTES_MAX", 100)
    transport = canned(200, {"chain_id": "x" * 200})
    with Client(BASE_URL, transport=transport) as c, pytest.raises(ClientError) as info:
        c.status()
    assert info.value.code == BAD_RESPONSE
    assert "over 100 bytes" in info.value.message


# ------------------------------------------------------------------ proof verification


def claim_another_index(body: dict[str, Any]) -> None:
    if body["proof"] is not None:
        body["index"] = body["proof"]["index"] = 3


def name_another_block(body: dict[str, Any]) -> None:
    if body["block_id"] is not None:
        body["block_id"] = "ee" * 32


@pytest.mark.parametrize("tamper", [flip_first_path_hash, claim_another_index, name_another_block])
def test_a_proof_that_does_not_check_out_is_bad_proof(
    client: Client, node: FakeNode, tamper: Callable[[dict[str, Any]], None]
) -> None:
    node.edit_status = tamper
    tid = client.submit(signed())
    status = client.tx_status(tid)  # unverified: served as is
    assert status is not None
    assert status.committed
    with pytest.raises(ClientError) as info:
        client.tx_status(tid, verify=True)
    assert (info.value.code, info.value.status) == (BAD_PROOF, None)
    with pytest.raises(ClientError, match=BAD_PROOF):
        client.wait_final(tid, verify=True)


def change_tx_root(body: dict[str, Any]) -> None:
    body["header"]["tx_root"] = "00" * 32  # the header no longer hashes to block_id


def serve_another_height(body: dict[str, Any]) -> None:
    body["header"]["height"] = 2


@pytest.mark.parametrize("tamper", [change_tx_root, serve_another_height])
def test_a_block_that_is_not_the_one_named_is_bad_proof(
    client: Client, node: FakeNode, tamper: Callable[[dict[str, Any]], None]
) -> None:
    node.edit_block = tamper
    tid = client.submit(signed())
    with pytest.raises(ClientError) as info:
        client.tx_status(tid, verify=True)
    assert info.value.code == BAD_PROOF


def test_a_block_header_that_does_not_parse_is_a_bad_response(
    client: Client, node: FakeNode
) -> None:
    node.edit_block = lambda body: body["header"].pop("tx_root")
    tid = client.submit(signed())
    with pytest.raises(ClientError) as info:
        client.tx_status(tid, verify=True)
    assert info.value.code == BAD_RESPONSE
    assert "tx_root" in info.value.message
