"""The light client (`sequencer.light`, checks in `sequencer.light_protocol`)
and the namespace follower (`sequencer.follow`), against a node that serves
a fixed chain honestly or lies (`tests.sequencer.light_server`)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import trio

from sequencer.errors import CertificateError, ProofError, VerificationError
from sequencer.follow import NamespaceFollower
from sequencer.ids import commit_id, tx_id
from sequencer.light import AsyncLightClient, LightClient
from sequencer.light_protocol import Linker
from tests.node.rpc_backend import CHAIN, GENESIS
from tests.sequencer.light_server import ChainServer
from tests.storage.chain import certify

URL = "http://node.test"
TIP = len(CHAIN)  # 7: namespaces 7, 9, 7, 9, 11


def light(server: ChainServer) -> LightClient:
    return LightClient(URL, GENESIS, transport=server.transport())


def refused(check) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        check()
    return caught.value


# ------------------------------------------------------------------ honest node


def test_every_block_verifies_and_the_range_links() -> None:
    with light(ChainServer()) as client:
        blocks = list(client.blocks(1, TIP))
        assert [b.height for b in blocks] == list(range(1, TIP + 1))
        assert [b.block_id for b in blocks] == [item.block_id for item in CHAIN]
        full = client.block(TIP, full=True)
        assert full.txs == tuple(CHAIN[-1].block.txs)


def test_every_committed_transaction_verifies() -> None:
    with light(ChainServer()) as client:
        for item in CHAIN:
            for index, tx in enumerate(item.block.txs):
                found = client.tx(tx_id(tx))
                assert (found.block.height, found.status.index) == (item.height, index)


@pytest.mark.parametrize(("namespace", "count"), [(7, 2), (9, 2), (11, 1), (8, 0), (0, 0)])
def test_namespace_presence_and_absence_verify(namespace: int, count: int) -> None:
    with light(ChainServer()) as client:
        view = client.namespace(namespace, TIP)
        expected = [tx for tx in CHAIN[-1].block.txs if tx.namespace == namespace]
        assert list(view.txs) == expected
        assert len(view.txs) == count


def test_the_async_client_checks_the_same() -> None:
    server = ChainServer()

    async def main() -> None:
        async with AsyncLightClient(URL, GENESIS, transport=_async(server)) as client:
            assert [b.height async for b in client.blocks(1, TIP)] == list(range(1, TIP + 1))
            assert len((await client.namespace(9, TIP)).txs) == 2
            tx = CHAIN[-1].block.txs[0]
            assert (await client.tx(tx_id(tx))).block.height == TIP

    trio.run(main)


def _async(server: ChainServer):
    import httpx

    sync = server.transport()

    class Async(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = sync.handle_request(request)
            return httpx.Response(
                response.status_code, headers=response.headers, content=response.read()
            )

    return Async()


def test_a_certificate_replaced_by_another_valid_one_is_settled_by_asking_again() -> None:
    """The node served its own certificate for block 3 while it was the tip;
    block 4 names another valid one (the canonical, served from then on):
    the client asks for block 3 again and links."""
    server = ChainServer()
    original = server.certificates[3]
    other = certify(CHAIN[2].block.header, signers=(1, 2, 3))
    assert commit_id(other) != commit_id(original)
    server.certificates[3] = other
    with light(server) as client:
        linker = Linker()
        client.link(linker, client.block(3))
        server.certificates[3] = original
        client.link(linker, client.block(4))
    assert server.requests == ["/blocks/3", "/blocks/4", "/blocks/3"]
    assert linker.height == 4


# ------------------------------------------------------------------ lying node


def _drop_one_namespace_tx(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
    if kind == "namespace" and height == TIP and body["txs"]:
        body = copy.deepcopy(body)
        del body["txs"][0]
    return body


def _drop_and_fix_count(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
    body = _drop_one_namespace_tx(kind, height, body)
    if kind == "namespace" and height == TIP and body["entry"]:
        body["entry"]["count"] -= 1
    return body


def _claim_absence(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
    """Hide namespace 9 by showing its neighbours' entries 7 and 11 as adjacent."""
    if kind == "namespace" and height == TIP and body["entry"]:
        other = ChainServer()
        seven, eleven = other.view(7, TIP), other.view(11, TIP)
        body = copy.deepcopy(body) | {"entry": None, "entry_proof": None, "txs": []}
        body["absence"] = {
            "left": {"entry": seven["entry"], "proof": seven["entry_proof"]},
            "right": {"entry": eleven["entry"], "proof": eleven["entry_proof"]},
        }
    return body


@pytest.mark.parametrize(
    ("lie", "reason"),
    [
        (_drop_one_namespace_tx, "wrong_count"),
        (_drop_and_fix_count, "entry_not_in_table"),
        (_claim_absence, "not_adjacent"),
    ],
    ids=["one tx left out", "left out and the count fixed", "absence claimed"],
)
def test_a_namespace_view_with_a_transaction_left_out_is_caught(lie, reason: str) -> None:
    with light(ChainServer(lie)) as client:
        error = refused(lambda: client.namespace(9, TIP))
    assert isinstance(error, ProofError)
    assert error.reason == reason


def _edit(kind_wanted: str, height_wanted: int, change) -> Any:
    def lie(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
        if kind == kind_wanted and height == height_wanted:
            body = copy.deepcopy(body)
            change(body)
        return body

    return lie


BLOCK_LIES = {
    "header changed": (
        _edit("block", 5, lambda b: b["header"].update(timestamp_ms=1)),
        "wrong_block_id",
    ),
    "header and block id changed": (
        _edit("block", 5, lambda b: (b["header"].update(timestamp_ms=1), b.pop("block_id"))),
        "wrong_block",
    ),
    "a signature short of a quorum": (
        _edit("block", 5, lambda b: b["certificate"]["signatures"].pop()),
        "insufficient_power",
    ),
    "a tx id left out": (_edit("block", 5, lambda b: b["tx_ids"].pop()), "wrong_tx_root"),
    "another chain": (
        _edit("block", 5, lambda b: b["header"].update(chain_id="other")),
        "wrong_chain",
    ),
}


@pytest.mark.parametrize(("lie", "reason"), BLOCK_LIES.values(), ids=BLOCK_LIES.keys())
def test_a_lying_block_answer_is_caught(lie, reason: str) -> None:
    with light(ChainServer(lie)) as client:
        error = refused(lambda: list(client.blocks(1, TIP)))
    assert error.reason == reason


def test_a_range_that_skips_or_forks_is_caught() -> None:
    server = ChainServer()
    with light(server) as client:
        linker = Linker()
        client.link(linker, client.block(3))
        error = refused(lambda: client.link(linker, client.block(5)))
        assert error.reason == "not_next"
        linker = Linker(4, bytes(32))  # resuming from a block this chain does not have
        error = refused(lambda: client.link(linker, client.block(5)))
        assert error.reason == "wrong_parent"


def test_a_last_commit_id_naming_no_served_certificate_is_caught() -> None:
    server = ChainServer()
    server.certificates[3] = certify(CHAIN[2].block.header, signers=(1, 2, 3))
    with light(server) as client:
        error = refused(lambda: list(client.blocks(1, TIP)))
    assert error.reason == "wrong_last_commit"


def test_a_transaction_proof_that_does_not_reach_the_root_is_caught() -> None:
    def lie(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
        if kind == "tx":
            body = copy.deepcopy(body)
            body["proof"]["path"][0] = "00" * 32
        return body

    tx = CHAIN[-1].block.txs[1]
    with light(ChainServer(lie)) as client:
        assert refused(lambda: client.tx(tx_id(tx))).reason == "not_included"


def test_a_transaction_served_at_a_false_index_is_caught() -> None:
    # Block 3 holds 3 transactions; the last one's audit path is also the path
    # of item 1 of 2, so it verifies against tx_root at the wrong place.
    def lie(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
        if kind == "tx":
            body = copy.deepcopy(body)
            body["index"] = body["proof"]["index"] = 1
            body["proof"]["size"] = 2
        return body

    tx = CHAIN[2].block.txs[2]
    with light(ChainServer()) as client:
        assert client.tx(tx_id(tx)).status.index == 2
    with light(ChainServer(lie)) as client:
        assert refused(lambda: client.tx(tx_id(tx))).reason == "wrong_index"


def test_a_certificate_from_unknown_keys_is_caught() -> None:
    def lie(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
        if kind == "block":
            body = copy.deepcopy(body)
            body["certificate"]["signatures"][0][1] = "11" * 64
        return body

    with light(ChainServer(lie)) as client:
        assert isinstance(refused(lambda: client.block(2)), CertificateError)


# ------------------------------------------------------------------ the follower


def follower(server: ChainServer, namespace: int, **options: Any) -> NamespaceFollower:
    return NamespaceFollower(
        URL, GENESIS, namespace, until=TIP, transport=server.transport(), **options
    )


def test_follow_yields_every_block_with_the_namespace_part_verified() -> None:
    with follower(ChainServer(), 9) as views:
        seen = list(views)
    assert [v.block.height for v in seen] == list(range(1, TIP + 1))
    assert [tx for v in seen for tx in v.txs] == [
        tx for item in CHAIN for tx in item.block.txs if tx.namespace == 9
    ]


def test_follow_resumes_after_a_verified_block() -> None:
    linker = Linker(CHAIN[3].height, CHAIN[3].block_id)
    with follower(ChainServer(), 7, start=5, linker=linker) as views:
        assert [v.block.height for v in views] == [5, 6, 7]


def test_follow_stops_at_a_lying_node() -> None:
    heights: list[int] = []

    def follow() -> None:
        with follower(ChainServer(_drop_one_namespace_tx), 9) as views:
            heights.extend(view.block.height for view in views)

    assert refused(follow).reason == "wrong_count"
    assert heights == list(range(1, TIP))  # nothing of the lying block was yielded
