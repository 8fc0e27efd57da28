"""The wallet client against a fake node serving the API's shapes.

`FakeNode` keeps a dict of submitted transactions and the senders' nonces,
applies a few admission rules, and commits a transaction into a block of its
own (a real Merkle tree, so proofs are genuine) after it has been polled N
times. The real node's RPC is tested with the node; here the subject is the
client: requests, parsing, error mapping and proof checks. The async client
runs the same flows under `trio.run` with the same `httpx.MockTransport`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from node.api.backend import HTTP_STATUS, ErrorCode
from sequencer.client import (
    BAD_PROOF,
    BAD_RESPONSE,
    TIMEOUT,
    UNREACHABLE,
    AsyncClient,
    Client,
    TxStatus,
    Wallet,
)
from sequencer.client_protocol import L1Batch
from sequencer.codec import to_builtins
from sequencer.crypto import save_key, verify_transaction
from sequencer.errors import ClientError, SequencerError
from sequencer.ids import tx_id
from sequencer.merkle import verify_inclusion
from sequencer.types import Transaction
from tests.sequencer.client_fake import (
    ALICE,
    BASE_URL,
    BOB,
    CHAIN,
    OTHER_ID,
    FakeNode,
    canned,
    closed_port,
    error_body,
    failing,
    flip_first_path_hash,
    refusal,
    signed,
)

# ------------------------------------------------------------------ wallet


def test_wallet_signs_the_specification_test_vector() -> None:
    tx = ALICE.sign(0, b"hello", 10)
    assert ALICE.address == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert ALICE.sender.hex() == ALICE.address
    assert (tx.chain_id, tx.namespace, tx.nonce, tx.gas_price) == (CHAIN, 7, 0, 10)
    assert tx_id(tx).hex() == "f233b35f3ba984f0a5cc0001bce78734975320e4be6e247c6ca13f516befeb1b"
    assert verify_transaction(tx)


def test_wallet_namespace_argument_overrides_the_default() -> None:
    tx = ALICE.sign(3, b"x", 1, namespace=9)
    assert tx.namespace == 9
    assert verify_transaction(tx)
    assert BOB.sign(0, b"", 0).namespace == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: Wallet(BOB.key, ""),
        lambda: Wallet(BOB.key, "c" * 65),
        lambda: Wallet(BOB.key, CHAIN, namespace=-1),
        lambda: BOB.sign(-1, b"", 1),
        lambda: BOB.sign(0, b"", 2**64),
        lambda: BOB.sign(True, b"", 1),
    ],
)
def test_wallet_refuses_out_of_range_fields(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        make()


def test_wallet_from_key_file(tmp_path: Any) -> None:
    save_key(BOB.key, tmp_path / "bob.json")
    wallet = Wallet.from_key_file(tmp_path / "bob.json", CHAIN, namespace=4)
    assert wallet.address == BOB.address
    assert verify_transaction(wallet.sign(0, b"p", 1))
    assert "seed" not in repr(wallet)
    assert BOB.key.seed.hex() not in repr(wallet)


# ------------------------------------------------------------------ success paths


def test_send_asks_for_the_nonce_signs_and_submits(client: Client, node: FakeNode) -> None:
    first = client.send(ALICE, b"one", gas_price=5)
    second = client.send(ALICE, b"two")
    assert [node.txs[first].nonce, node.txs[second].nonce] == [0, 1]
    assert node.txs[first].gas_price == 5
    assert node.txs[second].namespace == 7
    assert all(verify_transaction(tx) for tx in node.txs.values())
    assert node.requests == ["GET /accounts/" + ALICE.address, "POST /tx"] * 2


def test_send_with_an_explicit_nonce_does_not_ask(client: Client, node: FakeNode) -> None:
    tid = client.send(BOB, b"p", 3, nonce=4, namespace=2)
    assert (node.txs[tid].nonce, node.txs[tid].namespace) == (4, 2)
    assert node.requests == ["POST /tx"]
    assert client.next_nonce(BOB.sender) == 5


def test_submit_returns_the_transactions_id(client: Client) -> None:
    tx = signed()
    assert client.submit(tx) == tx_id(tx)


def test_next_nonce_of_an_unknown_sender_is_zero(client: Client) -> None:
    assert client.next_nonce(b"\x09" * 32) == 0


def test_tx_status_of_an_unknown_transaction_is_none(client: Client) -> None:
    assert client.tx_status(b"\x01" * 32) is None


def test_tx_status_pending_then_committed_with_a_genuine_proof() -> None:
    node = FakeNode(commit_after_polls=2)
    with Client(BASE_URL, transport=node.transport()) as c:
        tid = c.submit(signed())
        assert c.tx_status(tid) == TxStatus(tid, "pending")
        status = c.tx_status(tid)
    assert status is not None
    assert status.committed
    assert (status.height, status.index) == (1, 2)
    assert status.block_id == bytes.fromhex(node.blocks[0]["block_id"])
    assert status.proof is not None
    tx_root = bytes.fromhex(node.blocks[0]["header"]["tx_root"])
    assert verify_inclusion(tid, status.proof, tx_root)


def test_tx_status_verify_checks_the_proof_against_the_block(
    client: Client, node: FakeNode
) -> None:
    tid = client.submit(signed())
    status = client.tx_status(tid, verify=True)
    assert status is not None
    assert status.committed
    assert node.requests[-2:] == [f"GET /tx/{tid.hex()}", "GET /blocks/1"]


def test_verify_does_not_fetch_a_block_for_a_pending_transaction() -> None:
    node = FakeNode(commit_after_polls=2)
    with Client(BASE_URL, transport=node.transport()) as c:
        tid = c.submit(signed())
        assert c.tx_status(tid, verify=True) == TxStatus(tid, "pending")
    assert node.requests == ["POST /tx", f"GET /tx/{tid.hex()}"]


def test_wait_final_polls_until_committed() -> None:
    node = FakeNode(commit_after_polls=4)
    with Client(BASE_URL, transport=node.transport()) as c:
        tid = c.submit(signed())
        status = c.wait_final(tid, timeout=5.0, poll_s=0.001, verify=True)
    assert status.committed
    assert node.polls[tid] == 4


def test_wait_l1_polls_past_commit_until_a_confirmed_batch_holds_it() -> None:
    node = FakeNode(commit_after_polls=2)
    looks = 0

    def batch_on_the_sixth_look(body: dict[str, Any]) -> None:
        nonlocal looks
        looks += 1
        if body["status"] == "committed" and looks >= 6:
            body["l1"] = {"batch_number": 3, "commitment": "ab" * 32}

    node.edit_status = batch_on_the_sixth_look
    with Client(BASE_URL, transport=node.transport()) as c:
        tid = c.submit(signed())
        final = c.wait_final(tid, timeout=5.0, poll_s=0.001)
        assert final.l1 is None  # committed is enough for "final"
        held = c.wait_final(tid, timeout=5.0, poll_s=0.001, level="l1")
    assert held.l1 == L1Batch(3, bytes.fromhex("ab" * 32))
    assert looks == 6


def test_wait_l1_times_out_naming_what_is_missing() -> None:
    node = FakeNode(commit_after_polls=1)
    with Client(BASE_URL, transport=node.transport()) as c:
        tid = c.submit(signed())
        with pytest.raises(ClientError) as info:
            c.wait_final(tid, timeout=0.05, poll_s=0.01, level="l1")
    assert "committed, in no confirmed L1 batch yet" in info.value.message


def test_wait_final_times_out() -> None:
    node = FakeNode(commit_after_polls=10**9)
    with Client(BASE_URL, transport=node.transport()) as c:
        tid = c.submit(signed())
        started = time.monotonic()
        with pytest.raises(ClientError) as info:
            c.wait_final(tid, timeout=0.05, poll_s=0.01)
    assert time.monotonic() - started < 1.0
    assert (info.value.code, info.value.status) == (TIMEOUT, None)
    assert "still pending" in info.value.message
    assert node.polls[tid] >= 2


def test_wait_final_keeps_polling_a_transaction_the_node_does_not_know_yet() -> None:
    node = FakeNode()
    tx = signed()
    answers = iter([None, None])

    def handle(request: httpx.Request) -> httpx.Response:
        if next(answers, "known") is None:  # gossip has not reached this node yet
            return refusal(ErrorCode.NOT_FOUND)
        if tx_id(tx) not in node.txs:
            node.admit(to_builtins(tx))
        return node.handle(request)

    with Client(BASE_URL, transport=httpx.MockTransport(handle)) as c:
        assert c.wait_final(tx_id(tx), timeout=5.0, poll_s=0.001).committed


def test_status_and_blocks(client: Client, node: FakeNode) -> None:
    tid = client.submit(signed())
    client.wait_final(tid, poll_s=0.001)
    assert client.status() == {"chain_id": CHAIN, "height": 1}
    latest = client.block("latest")
    assert latest == client.block(1)
    assert latest["tx_ids"][2] == tid.hex()
    assert "txs" not in latest
    assert len(client.block(1, full=True)["txs"]) == 5
    assert node.requests[-1] == "GET /blocks/1"


def test_submit_many_returns_ids_and_refusals_in_order(client: Client) -> None:
    good = signed(nonce=0)
    txs = [good, good, signed(BOB, nonce=0), ALICE.sign(1, b"x", 1, namespace=0)]
    wrong_chain = Wallet(BOB.key, "other-chain").sign(1, b"", 1)
    results = client.submit_many([*txs[:3], wrong_chain])
    assert results[0] == tx_id(good)
    assert results[2] == tx_id(txs[2])
    duplicate, foreign = results[1], results[3]
    assert isinstance(duplicate, ClientError)
    assert (duplicate.code, duplicate.status) == ("duplicate", None)
    assert isinstance(foreign, ClientError)
    assert foreign.code == "wrong_chain"
    assert "transaction refused" in foreign.message
    later = client.submit_many([txs[3], signed(nonce=0, payload=b"again")])
    assert later[0] == tx_id(txs[3])
    assert isinstance(later[1], ClientError)
    assert later[1].code == "nonce_too_low"


def test_submit_many_of_nothing_sends_nothing(client: Client, node: FakeNode) -> None:
    assert client.submit_many([]) == []
    assert node.requests == []


def test_unknown_fields_in_answers_are_ignored(client: Client, node: FakeNode) -> None:
    def extend(body: dict[str, Any]) -> None:
        body["finality_ms"] = 812
        if body["proof"] is not None:
            body["proof"]["algorithm"] = "rfc6962-blake3"

    node.edit_status = extend
    tid = client.submit(signed())
    status = client.tx_status(tid, verify=True)
    assert status is not None
    assert status.committed


def test_a_pending_status_may_leave_out_the_location() -> None:
    tid = tx_id(signed())
    transport = canned(200, {"tx_id": tid.hex(), "status": "pending"})
    with Client(BASE_URL, transport=transport) as c:
        assert c.tx_status(tid) == TxStatus(tid, "pending")


def test_a_refused_batch_item_may_name_its_transaction() -> None:
    tx = signed()
    item = error_body("duplicate", "already known") | {"tx_id": tx_id(tx).hex()}
    with Client(BASE_URL, transport=canned(200, {"results": [item]})) as c:
        (result,) = c.submit_many([tx])
    assert isinstance(result, ClientError)
    assert (result.code, result.message) == ("duplicate", "already known")


# ------------------------------------------------------------------ error mapping


@pytest.mark.parametrize(
    ("prepare", "tx", "code", "status"),
    [
        (lambda node: None, Wallet(BOB.key, "other").sign(0, b"", 1), "wrong_chain", 400),
        (
            lambda node: None,
            Transaction(CHAIN, 0, BOB.sender, 0, 1, b"", b"\x00" * 64),
            "bad_signature",
            400,
        ),
        (lambda node: node.admit(to_builtins(signed())), signed(), "duplicate", 409),
        (lambda node: node.next_nonces.update({ALICE.sender: 5}), signed(), "nonce_too_low", 409),
        (lambda node: None, signed(payload=b"x" * 2000), "too_large", 413),
        (lambda node: setattr(node, "capacity", 0), signed(), "mempool_full", 429),
        (lambda node: setattr(node, "ready", False), signed(), "not_ready", 503),
    ],
)
def test_refusals_become_client_errors(
    client: Client,
    node: FakeNode,
    prepare: Callable[[FakeNode], object],
    tx: Transaction,
    code: str,
    status: int,
) -> None:
    prepare(node)
    with pytest.raises(ClientError) as info:
        client.submit(tx)
    assert (info.value.code, info.value.status) == (code, status)
    assert info.value.message
    assert code in str(info.value)
    assert isinstance(info.value, SequencerError)


@pytest.mark.parametrize(("code", "status"), sorted(HTTP_STATUS.items()))
def test_every_stable_error_code_keeps_its_code_and_status(code: ErrorCode, status: int) -> None:
    transport = canned(status, error_body(code, "because"))
    with Client(BASE_URL, transport=transport) as c, pytest.raises(ClientError) as info:
        c.submit(signed())
    assert (info.value.code, info.value.status, info.value.message) == (code, status, "because")


def test_a_refused_batch_raises(client: Client) -> None:
    txs = [signed(nonce=n) for n in range(5)]
    with pytest.raises(ClientError) as info:
        client.submit_many(txs)
    assert (info.value.code, info.value.status) == ("batch_too_large", 413)


def test_errors_other_than_not_found_are_raised_by_tx_status() -> None:
    transport = canned(503, error_body("not_ready"))
    with Client(BASE_URL, transport=transport) as c, pytest.raises(ClientError) as info:
        c.tx_status(b"\x01" * 32)
    assert (info.value.code, info.value.status) == ("not_ready", 503)


def test_a_missing_block_is_not_found(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        client.block(7)
    assert (info.value.code, info.value.status) == ("not_found", 404)


@pytest.mark.parametrize(
    "exc_type", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError]
)
def test_transport_failures_are_unreachable(exc_type: type[httpx.TransportError]) -> None:
    with Client(BASE_URL, transport=failing(exc_type)) as c, pytest.raises(ClientError) as info:
        c.status()
    assert (info.value.code, info.value.status) == (UNREACHABLE, None)
    assert f"GET {BASE_URL}/status" in info.value.message  # names the node
    assert exc_type.__name__ in info.value.message


def test_a_closed_port_is_unreachable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with Client(url, timeout=2.0) as c, pytest.raises(ClientError) as info:
        c.send(ALICE, b"hello")
    assert info.value.code == UNREACHABLE


# ------------------------------------------------------------------ arguments and lifecycle


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.tx_status(b"\x01" * 31),
        lambda c: c.next_nonce("ab" * 32),
        lambda c: c.block(-1),
        lambda c: c.block("first"),
        lambda c: c.block(True),
        lambda c: c.wait_final(b"\x01" * 32, poll_s=0),
        lambda c: c.wait_final(b"\x01" * 32, timeout=-1),
    ],
)
def test_caller_mistakes_are_value_errors(
    client: Client, node: FakeNode, call: Callable[[Client], object]
) -> None:
    with pytest.raises(ValueError, match="must be"):
        call(client)
    assert node.requests == []


def test_context_managers_close_the_connection_pool(node: FakeNode) -> None:
    with Client(BASE_URL, transport=node.transport()) as c:
        pass
    assert c._http.is_closed

    async def main() -> None:
        async with AsyncClient(BASE_URL, transport=node.transport()) as ac:
            pass
        assert ac._http.is_closed

    trio.run(main)


# ------------------------------------------------------------------ async client under trio


def run_on_mock_clock(main: Callable[[], Any]) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_async_client_round_trip_under_trio() -> None:
    node = FakeNode(commit_after_polls=3)

    async def main() -> None:
        async with AsyncClient(BASE_URL, transport=node.transport()) as c:
            tid = await c.send(ALICE, b"hello", gas_price=10)
            assert tid.hex() == "f233b35f3ba984f0a5cc0001bce78734975320e4be6e247c6ca13f516befeb1b"
            assert await c.next_nonce(ALICE.sender) == 1
            assert await c.tx_status(tid) == TxStatus(tid, "pending")
            status = await c.wait_final(tid, verify=True)
            assert (status.height, status.index) == (1, 2)
            assert (await c.block("latest"))["block_id"] == status.block_id.hex()
            assert len((await c.block(1, full=True))["txs"]) == 5
            assert await c.status() == {"chain_id": CHAIN, "height": 1}
            results = await c.submit_many([signed(BOB), signed(BOB)])
            assert results[0] == tx_id(signed(BOB))
            assert isinstance(results[1], ClientError)
            assert results[1].code == "duplicate"
            assert await c.submit_many([]) == []
            assert await c.tx_status(b"\x07" * 32) is None

    run_on_mock_clock(main)
    assert node.polls[tx_id(signed())] == 3


def test_async_wait_final_times_out_on_trio_time() -> None:
    node = FakeNode(commit_after_polls=10**9)

    async def main() -> None:
        async with AsyncClient(BASE_URL, transport=node.transport()) as c:
            tid = await c.submit(signed())
            started = trio.current_time()
            with pytest.raises(ClientError) as info:
                await c.wait_final(tid, timeout=30.0, poll_s=0.5)
            assert trio.current_time() - started == pytest.approx(30.0)
            assert (info.value.code, info.value.status) == (TIMEOUT, None)

    wall = time.monotonic()
    run_on_mock_clock(main)
    assert time.monotonic() - wall < 5.0  # 30 s of trio time, autojumped
    assert node.polls[tx_id(signed())] == 61


def test_async_errors_map_like_the_sync_ones() -> None:
    async def expect(transport: httpx.MockTransport, code: str, status: int | None) -> None:
        async with AsyncClient(BASE_URL, transport=transport) as c:
            with pytest.raises(ClientError) as info:
                await c.submit(signed())
            assert (info.value.code, info.value.status) == (code, status)

    async def main() -> None:
        await expect(canned(409, error_body("nonce_too_low")), "nonce_too_low", 409)
        await expect(canned(413, error_body("batch_too_large")), "batch_too_large", 413)
        await expect(canned(202, {"tx_id": OTHER_ID}), BAD_RESPONSE, 202)
        await expect(failing(httpx.ConnectError), UNREACHABLE, None)
        node = FakeNode()
        node.edit_status = flip_first_path_hash
        async with AsyncClient(BASE_URL, transport=node.transport()) as c:
            tid = await c.submit(signed())
            with pytest.raises(ClientError, match=BAD_PROOF):
                await c.tx_status(tid, verify=True)

    run_on_mock_clock(main)


def test_async_client_reports_a_closed_port_as_unreachable() -> None:
    async def main() -> None:
        async with AsyncClient(f"http://127.0.0.1:{closed_port()}", timeout=2.0) as c:
            with pytest.raises(ClientError) as info:
                await c.status()
            assert info.value.code == UNREACHABLE

    trio.run(main)


# ------------------------------------------------------------------ rate limits


def _limited(
    refusals: int, retry_after: str | None, status: int = 429
) -> tuple[httpx.MockTransport, list[int]]:
    """A node that refuses `refusals` times (429, or 503 overloaded), then answers."""
    calls: list[int] = []
    code = "rate_limited" if status == 429 else "overloaded"

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= refusals:
            headers = {} if retry_after is None else {"retry-after": retry_after}
            return httpx.Response(status, headers=headers, json=error_body(code, "slow"))
        return httpx.Response(200, json={"height": 7})

    return httpx.MockTransport(handle), calls


@pytest.mark.parametrize(
    ("status", "refusals", "retry_after", "answered", "calls", "slept"),
    [
        (429, 0, "1", True, 1, []),
        (429, 2, "1", True, 3, [1.0, 1.0]),  # asked again after the wait the node names
        (429, 3, "0", True, 4, [0.0, 0.0, 0.0]),
        (429, 4, "1", False, 4, [1.0, 1.0, 1.0]),  # three retries, then the caller's error
        (429, 1, "3600", True, 2, [5.0]),  # a long wait is capped
        (429, 1, None, False, 1, []),  # no Retry-After: the caller decides
        (429, 1, "soon", False, 1, []),
        (503, 2, "1", True, 3, [1.0, 1.0]),  # too many connections: the same
        (503, 1, None, False, 1, []),  # not ready, storage failed: no Retry-After
    ],
)
def test_a_refused_request_is_asked_again_after_the_named_wait(
    status: int,
    refusals: int,
    retry_after: str | None,
    answered: bool,
    calls: int,
    slept: list[float],
) -> None:
    transport, seen = _limited(refusals, retry_after, status)
    naps: list[float] = []
    with Client(BASE_URL, transport=transport, sleep=naps.append) as c:
        if answered:
            assert c.status() == {"height": 7}
        else:
            with pytest.raises(ClientError) as raised:
                c.status()
            assert raised.value.code == ("rate_limited" if status == 429 else "overloaded")
    assert (len(seen), naps) == (calls, slept)


def test_the_async_client_waits_out_a_rate_limit_too() -> None:
    transport, seen = _limited(2, "0")

    async def main() -> None:
        async with AsyncClient(
            BASE_URL, transport=httpx.MockTransport(transport.handle_request)
        ) as c:
            assert await c.status() == {"height": 7}

    trio.run(main)
    assert len(seen) == 3
