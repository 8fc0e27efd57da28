"""The consensus driver against hostile peers: what a peer claims about its
height is believed only when signed, only for real validators, and only when
validators holding more than 1/3 of the power claim it; sync responses that
do not verify commit nothing, crash nothing, and cost the sender its claim.

The driver runs on an in-memory store with a fake gossip node (no trio run:
nothing here awaits).
"""

from __future__ import annotations

import random

import msgspec

from consensus.core import Core
from consensus.sync import SyncResponse
from node.daemon.chain import Chain
from node.daemon.consensus import ConsensusDriver
from sequencer.certificate import ValidatorSet
from sequencer.crypto import PrivateKey, sign_transaction, sign_vote
from sequencer.mempool import Mempool, MempoolConfig
from sequencer.types import Block, Genesis, ValidatorInfo, Vote, VoteKind
from storage.store import Store
from tests.consensus.harness import CHAIN, GENESIS_MS, ID, KEYS, PARAMS, A, certificate

FAR = 10**12
STRANGER = PrivateKey(b"\x99" * 32)


class FakeGossip:
    def __init__(self) -> None:
        self.published: list[bytes] = []
        self.sent: list[tuple[bytes, bytes]] = []

    def publish_nowait(self, topic: object, data: bytes) -> bytes:
        self.published.append(data)
        return b""

    def send_nowait(self, public_key: bytes, topic: object, data: bytes) -> bool:
        self.sent.append((public_key, data))
        return True


def make_driver() -> ConsensusDriver:
    infos = [ValidatorInfo(f"v{i}", k.public_key, 1, "", "") for i, k in enumerate(KEYS)]
    genesis = Genesis(CHAIN, GENESIS_MS, infos, PARAMS)
    store = Store.memory(chain_id=CHAIN)
    chain = Chain(genesis, store, Mempool(MempoolConfig(chain_id=CHAIN), store.next_nonce))
    core = Core(
        chain_id=CHAIN,
        validators=ValidatorSet(infos),
        params=PARAMS,
        anchor=chain.anchor(),
        key=KEYS[0],
    )
    peer_keys = [b""] + [k.public_key for k in KEYS[1:]]
    driver = ConsensusDriver(
        core, chain, FakeGossip(), peer_keys, lambda _id: False, random.Random(1)
    )  # type: ignore[arg-type]
    driver.start()
    return driver


def far_vote(validator: int, height: int = FAR, key: PrivateKey | None = None) -> Vote:
    signer = KEYS[validator] if key is None else key
    return sign_vote(
        signer,
        chain_id=CHAIN,
        kind=VoteKind.PREVOTE,
        height=height,
        round=0,
        block_id=b"",
        validator=validator,
    )


def test_one_validator_claiming_a_far_height_does_not_make_the_node_behind() -> None:
    driver = make_driver()
    driver.on_message(far_vote(3))
    assert driver.peer_heights == {3: FAR}  # signed, so noted ...
    assert not driver.behind  # ... but one validator may be lying
    assert driver.claimed_height() == 0
    driver.on_message(far_vote(2, FAR - 5))
    # Two of four validators (more than 1/3 of the power): one of them is honest.
    assert driver.behind
    assert driver.claimed_height() == FAR - 5
    assert driver.core.height == 1  # the core itself ignored all of it
    assert driver.core.stats["message_far_future"] == 2


def test_unsigned_claims_and_unknown_validators_are_not_noted() -> None:
    driver = make_driver()
    forged = [far_vote(v, key=STRANGER) for v in (1, 2, 3)]
    strangers = [
        msgspec.structs.replace(far_vote(3), validator=v) for v in (0, 4, 1_000, 2**32 - 1)
    ]
    for message in forged + strangers:
        driver.on_message(message)
    assert driver.peer_heights == {}
    assert not driver.behind
    assert driver.counts["height_claims_unsigned"] == 3
    assert driver.catchup.poll(1, 0) == []  # nobody to ask


def test_claims_below_what_is_known_are_not_verified_again() -> None:
    driver = make_driver()
    driver.on_message(far_vote(3))
    driver.on_message(msgspec.structs.replace(far_vote(3, FAR - 1), signature=bytes(64)))
    assert driver.counts["height_claims_unsigned"] == 0  # not news: not even checked
    assert driver.peer_heights == {3: FAR}


def test_a_sync_response_that_does_not_verify_costs_the_sender_its_claim() -> None:
    driver = make_driver()
    driver.on_message(far_vote(3))
    bad = SyncResponse(None, [(A, certificate("A", signers=(1, 2)))])  # no quorum
    driver.on_sync(bad, KEYS[3].public_key)
    assert driver.chain.height == 0
    assert driver.counts["sync_responses_refused"] == 1
    assert driver.peer_heights == {}
    assert driver.catchup.poll(1, 0) == []


def test_a_certified_header_with_a_swapped_body_neither_commits_nor_crashes() -> None:
    # Regression: the body came unchecked into Chain.commit, whose assert on
    # nonces then failed inside the consensus driver.
    driver = make_driver()
    tx = sign_transaction(STRANGER, chain_id=CHAIN, namespace=1, nonce=7, gas_price=1, payload=b"x")
    swapped = SyncResponse(None, [(Block(A.header, [tx]), certificate("A"))])
    driver.on_sync(swapped, KEYS[2].public_key)
    assert driver.chain.height == 0
    assert driver.core.stats["decided_body_mismatch"] == 1
    driver.on_sync(SyncResponse(None, [(A, certificate("A"))]), KEYS[1].public_key)
    assert driver.chain.height == 1
    assert driver.chain.store.block(1) == A
    assert ID["A"] == driver.core.anchor.block_id
