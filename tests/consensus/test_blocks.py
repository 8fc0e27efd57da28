"""Block validity: a table of structural and state problems."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from consensus.blocks import ParentInfo, build_block, next_nonces, state_problem, structural_problem
from consensus.proposer import ProposerSchedule
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.ids import block_id, state_root, tx_id, tx_root
from sequencer.types import ZERO_ID, Block, ConsensusParams, Transaction

CHAIN = "blocks-1"
SCHEDULE = ProposerSchedule([1, 1, 1, 1])
PARENT = ParentInfo(4, b"\x44" * 32, 5_000)
PARENT_ROOT = b"\x55" * 32
LAST_COMMIT = b"\x66" * 32
NOW = 10_000
ALICE, BOB = PrivateKey(b"\xa1" * 32), PrivateKey(b"\xb0" * 32)
NONCES = {ALICE.public_key: 3, BOB.public_key: 0}


def tx(key: PrivateKey, nonce: int, *, chain: str = CHAIN, payload: bytes = b"x") -> Transaction:
    return sign_transaction(
        key, chain_id=chain, namespace=1, nonce=nonce, gas_price=5, payload=payload
    )


def next_nonce(sender: bytes) -> int:
    return NONCES.get(sender, 0)


def make(txs: list[Transaction], **header_changes: object) -> Block:
    block, _ = build_block(
        chain_id=CHAIN,
        height=5,
        round=1,
        proposer=SCHEDULE.proposer(5, 1),
        timestamp_ms=6_000,
        parent_id=PARENT.block_id,
        last_commit_id=LAST_COMMIT,
        parent_state_root=PARENT_ROOT,
        txs=txs,
        next_nonce=next_nonce,
    )
    if header_changes:
        block = Block(msgspec.structs.replace(block.header, **header_changes), block.txs)
    return block


GOOD_TXS = [tx(ALICE, 3), tx(BOB, 0), tx(ALICE, 4)]


DEFAULT_PARAMS = ConsensusParams()


def structural(
    block: Block, params: ConsensusParams = DEFAULT_PARAMS, round: int = 1
) -> str | None:
    return structural_problem(
        block,
        chain_id=CHAIN,
        parent=PARENT,
        last_commit_id=LAST_COMMIT,
        proposal_round=round,
        proposer_of=lambda r: SCHEDULE.proposer(5, r),
        params=params,
        now_ms=NOW,
        clock_drift_ms_max=1_000,
    )


def test_a_built_block_is_valid() -> None:
    block = make(GOOD_TXS)
    assert structural(block) is None
    assert (
        state_problem(
            block, parent_state_root=PARENT_ROOT, next_nonce=next_nonce, is_verified=lambda _: False
        )
        is None
    )
    assert block.header.tx_root == tx_root(tx_id(t) for t in GOOD_TXS)


STRUCTURAL: list[tuple[str, Callable[[], Block], str, dict]] = [
    ("wrong chain", lambda: make(GOOD_TXS, chain_id="other"), "wrong_chain", {}),
    ("wrong height", lambda: make(GOOD_TXS, height=6), "wrong_height", {}),
    ("wrong parent", lambda: make(GOOD_TXS, parent_id=ZERO_ID), "wrong_parent", {}),
    ("wrong last commit", lambda: make(GOOD_TXS, last_commit_id=ZERO_ID), "wrong_last_commit", {}),
    ("round from the future", lambda: make(GOOD_TXS), "round_from_the_future", {"round": 0}),
    ("wrong proposer", lambda: make(GOOD_TXS, proposer=0), "wrong_proposer", {}),
    (
        "timestamp not after parent",
        lambda: make(GOOD_TXS, timestamp_ms=5_000),
        "timestamp_not_after_parent",
        {},
    ),
    (
        "timestamp in the future",
        lambda: make(GOOD_TXS, timestamp_ms=NOW + 1_001),
        "timestamp_in_the_future",
        {},
    ),
    (
        "too many txs",
        lambda: make(GOOD_TXS),
        "too_many_txs",
        {"params": ConsensusParams(max_block_txs=2)},
    ),
    (
        "too much gas",
        lambda: make(GOOD_TXS),
        "too_much_gas",
        {"params": ConsensusParams(max_block_gas=3_000)},
    ),
    ("tx of another chain", lambda: make([tx(ALICE, 3, chain="other")]), "tx_wrong_chain", {}),
    (
        "duplicate tx",
        lambda: Block(make([GOOD_TXS[1]]).header, [GOOD_TXS[1]] * 2),
        "duplicate_tx",
        {},
    ),
    ("wrong tx root", lambda: make(GOOD_TXS, tx_root=b"\x01" * 32), "wrong_tx_root", {}),
    (
        "txs reordered under the root",
        lambda: Block(make(GOOD_TXS).header, GOOD_TXS[::-1]),
        "wrong_tx_root",
        {},
    ),
]


@pytest.mark.parametrize(
    ("case", "block", "reason", "extra"), STRUCTURAL, ids=[c[0] for c in STRUCTURAL]
)
def test_structural_problems(
    case: str, block: Callable[[], Block], reason: str, extra: dict
) -> None:
    assert structural(block(), **extra) == reason


def _forged(t: Transaction) -> Transaction:
    return msgspec.structs.replace(t, signature=bytes(64))


STATE: list[tuple[str, list[Transaction], str]] = [
    ("nonce gap", [tx(ALICE, 4)], "bad_nonce"),
    ("nonce too low", [tx(ALICE, 2)], "bad_nonce"),
    ("nonces out of order", [tx(ALICE, 4), tx(ALICE, 3)], "bad_nonce"),
    ("repeated nonce", [tx(BOB, 0), tx(BOB, 0, payload=b"y")], "bad_nonce"),
    ("bad signature", [_forged(tx(BOB, 0))], "bad_tx_signature"),
]


@pytest.mark.parametrize(("case", "txs", "reason"), STATE, ids=[c[0] for c in STATE])
def test_state_problems(case: str, txs: list[Transaction], reason: str) -> None:
    header = make([]).header
    ids = [tx_id(t) for t in txs]
    changed = {}
    for t in txs:  # a root for whatever the (bad) txs claim, so only the rule under test fails
        changed[t.sender] = t.nonce + 1
    roots = {"tx_root": tx_root(ids), "state_root": state_root(PARENT_ROOT, changed)}
    header = msgspec.structs.replace(header, **roots)
    block = Block(header, txs)
    assert (
        state_problem(
            block, parent_state_root=PARENT_ROOT, next_nonce=next_nonce, is_verified=lambda _: False
        )
        == reason
    )


def test_wrong_state_root() -> None:
    block = make(GOOD_TXS, state_root=b"\x09" * 32)
    assert (
        state_problem(
            block, parent_state_root=PARENT_ROOT, next_nonce=next_nonce, is_verified=lambda _: False
        )
        == "wrong_state_root"
    )


def test_verified_transactions_are_not_verified_again() -> None:
    forged = _forged(tx(BOB, 0))
    block = make([forged])
    calls = []

    def verify(t: Transaction) -> bool:
        calls.append(t)
        return False

    known = {tx_id(forged)}
    assert (
        state_problem(
            block,
            parent_state_root=PARENT_ROOT,
            next_nonce=next_nonce,
            is_verified=known.__contains__,
            verify=verify,
        )
        is None
    )
    assert calls == []


def test_next_nonces() -> None:
    assert next_nonces(GOOD_TXS, next_nonce) == {ALICE.public_key: 5, BOB.public_key: 1}
    assert next_nonces([], next_nonce) == {}
    assert next_nonces([tx(BOB, 1)], next_nonce) is None
    assert block_id(make(GOOD_TXS).header) != block_id(make([]).header)
