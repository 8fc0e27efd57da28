"""Ingest (node/daemon/ingest.py): each transaction's signature is checked at most
once per node, and the cheap refusals come before it."""

from __future__ import annotations

import msgspec
import pytest
import trio

from node.daemon.ingest import Ingest
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.ids import tx_id
from sequencer.mempool import Mempool, MempoolConfig
from sequencer.types import Transaction

CHAIN = "devnet-1"
KEY = PrivateKey(b"\x05" * 32)


class _Gossip:
    def __init__(self) -> None:
        self.published: list[bytes] = []

    def publish_nowait(self, topic: object, data: bytes) -> bytes:
        self.published.append(data)
        return b""


def _tx(nonce: int) -> Transaction:
    return sign_transaction(
        KEY, chain_id=CHAIN, namespace=0, nonce=nonce, gas_price=1, payload=b"x"
    )


def _ingest(committed: int = 0) -> Ingest:
    mempool = Mempool(MempoolConfig(CHAIN), lambda sender: committed)
    ingest = Ingest(mempool, None, _Gossip(), lambda: 1_000, lambda: None, lambda tx: None)  # type: ignore[arg-type]
    return ingest


def test_a_peers_transaction_is_verified_once() -> None:
    ingest = _ingest()
    ingest.from_peer([_tx(0), _tx(1)])
    ingest.from_peer([_tx(0)])  # gossiped again: a duplicate, not verified again
    assert ingest.counts["signatures_verified"] == 2
    assert ingest.counts["peer_accepted"] == 2


def test_one_verified_in_a_proposal_is_not_verified_again() -> None:
    ingest = _ingest()
    seen = {tx_id(_tx(0))}
    ingest.is_verified = seen.__contains__
    ingest.from_peer([_tx(0)])
    assert ingest.counts["signatures_verified"] == 0
    assert ingest.counts["peer_accepted"] == 1


def test_a_committed_transaction_is_refused_before_its_signature() -> None:
    ingest = _ingest(committed=5)
    ingest.from_peer([_tx(3)])
    assert ingest.counts["signatures_verified"] == 0
    assert ingest.counts["peer_refused"] == 1


@pytest.mark.parametrize("cached", [False, True])
def test_a_forged_signature_is_refused_unless_those_bytes_verified(cached: bool) -> None:
    forged = msgspec.structs.replace(_tx(0), signature=bytes(64))
    ingest = _ingest()
    if cached:  # a cache hit means these exact bytes verified: it cannot be this
        ingest.is_verified = {tx_id(_tx(0))}.__contains__
    ingest.from_peer([forged])
    assert ingest.counts["peer_refused"] == 1
    assert ingest.counts["signatures_verified"] == 1


def test_nonce_refusals_name_the_limit_and_the_nonce_expected_next() -> None:
    mempool = Mempool(MempoolConfig(CHAIN, sender_slots_max=3), lambda sender: 5)
    ingest = Ingest(mempool, None, _Gossip(), lambda: 1_000, lambda: None, lambda tx: None)  # type: ignore[arg-type]
    sender = KEY.public_key.hex()

    async def submit(nonces: list[int]) -> list[str]:
        results = await ingest.submit([_tx(n) for n in nonces])
        return [r.message for r in results]

    messages = trio.run(submit, [5, 6, 7, 8, 4])
    assert messages[:3] == ["", "", ""]  # accepted
    assert messages[3] == (
        f"sender {sender} already has 3 transactions in the pool (at most"
        " mempool.sender_slots_max = 3 per sender); the node expects nonce 8 next and takes"
        " more of this sender's as those commit"
    )
    assert messages[4] == (
        f"nonce 4 is below sender {sender}'s next nonce on the chain, 5; the node expects"
        " nonce 8 next"
    )
