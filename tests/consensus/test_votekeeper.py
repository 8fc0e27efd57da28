"""The vote keeper: thresholds reported once, evidence, rejection, certificates."""

from __future__ import annotations

import pytest

from consensus.votekeeper import ThresholdKind, VoteKeeper, VoteStatus
from sequencer.certificate import verify_certificate
from sequencer.crypto import PrivateKey, sign_vote
from tests.consensus.harness import CHAIN, ID, KEYS, PRECOMMIT, PREVOTE, VALIDATORS, vote

T = ThresholdKind


def fresh() -> VoteKeeper:
    return VoteKeeper(1, VALIDATORS, CHAIN)


def thresholds(keeper: VoteKeeper, *votes_in: object) -> list[list[tuple]]:
    """For each vote added, the thresholds it newly crossed."""
    out = []
    for v in votes_in:
        result = keeper.add(v)
        out.append([(t.kind, t.round, t.block_id) for t in result.thresholds])
    return out


A, NIL = ID["A"], b""


@pytest.mark.parametrize(
    ("name", "votes_in", "expected"),
    [
        (
            "polka for a value, then polka any, reported on the third vote",
            [vote(PREVOTE, i, "A") for i in range(4)],
            [[], [(T.SKIP_ROUND, 0, NIL)], [(T.POLKA_VALUE, 0, A), (T.POLKA_ANY, 0, NIL)], []],
        ),
        (
            "polka for nil",
            [vote(PREVOTE, i, "nil") for i in range(3)],
            [[], [(T.SKIP_ROUND, 0, NIL)], [(T.POLKA_NIL, 0, NIL), (T.POLKA_ANY, 0, NIL)]],
        ),
        (
            "mixed prevotes: polka any only",
            [vote(PREVOTE, 0, "A"), vote(PREVOTE, 1, "B"), vote(PREVOTE, 2, "nil")],
            [[], [(T.SKIP_ROUND, 0, NIL)], [(T.POLKA_ANY, 0, NIL)]],
        ),
        (
            "precommits for a value",
            [vote(PRECOMMIT, i, "A") for i in range(3)],
            [[], [(T.SKIP_ROUND, 0, NIL)], [(T.PRECOMMIT_VALUE, 0, A), (T.PRECOMMIT_ANY, 0, NIL)]],
        ),
        (
            "precommits for nil: any only (nil decides nothing)",
            [vote(PRECOMMIT, i, "nil") for i in range(3)],
            [[], [(T.SKIP_ROUND, 0, NIL)], [(T.PRECOMMIT_ANY, 0, NIL)]],
        ),
        (
            "f+1 in a round counts validators across vote kinds once",
            [
                vote(PREVOTE, 2, "nil", 5),
                vote(PRECOMMIT, 2, "nil", 5),
                vote(PRECOMMIT, 3, "nil", 5),
            ],
            [[], [], [(T.SKIP_ROUND, 5, NIL)]],
        ),
        (
            "rounds are counted apart",
            [vote(PREVOTE, 0, "A", 0), vote(PREVOTE, 1, "A", 1), vote(PREVOTE, 2, "A", 2)],
            [[], [], []],
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_thresholds_are_reported_once(name: str, votes_in: list, expected: list) -> None:
    assert thresholds(fresh(), *votes_in) == expected


def test_queries_follow_the_tallies() -> None:
    keeper = fresh()
    for i in range(3):
        keeper.add(vote(PREVOTE, i, "A"))
    keeper.add(vote(PREVOTE, 3, "nil"))
    assert keeper.has_quorum_for(0, PREVOTE, A)
    assert not keeper.has_quorum_for(0, PREVOTE, NIL)
    assert keeper.has_quorum_any(0, PREVOTE)
    assert not keeper.has_quorum_any(0, PRECOMMIT)
    assert keeper.quorum_value(0, PREVOTE) == A
    assert keeper.quorum_value(1, PREVOTE) is None
    assert keeper.skip_round(0) is None
    keeper.add(vote(PREVOTE, 1, "nil", 4))
    keeper.add(vote(PREVOTE, 2, "nil", 4))
    assert keeper.skip_round(0) == 4
    assert keeper.skip_round(4) is None


def test_duplicates_are_ignored() -> None:
    keeper = fresh()
    first = vote(PREVOTE, 0, "A")
    assert keeper.add(first).status is VoteStatus.ADDED
    assert keeper.add(first).status is VoteStatus.DUPLICATE
    assert keeper.vote_count() == 1


def test_equivocation_is_evidence_and_counts_per_value() -> None:
    keeper = fresh()
    a, nil = vote(PREVOTE, 3, "A"), vote(PREVOTE, 3, "nil")
    keeper.add(a)
    result = keeper.add(nil)
    assert result.status is VoteStatus.EQUIVOCATION
    assert result.evidence is not None
    assert (result.evidence.first, result.evidence.second) == (a, nil)
    assert keeper.evidence == [result.evidence]
    assert keeper.rejected["equivocation"] == 1
    # The equivocator counts for each value, but once in "any".
    keeper.add(vote(PREVOTE, 0, "nil"))
    keeper.add(vote(PREVOTE, 1, "nil"))
    assert keeper.has_quorum_for(0, PREVOTE, NIL)
    assert not keeper.has_quorum_for(0, PREVOTE, A)
    keeper.add(vote(PREVOTE, 2, "A"))
    assert keeper.votes(0, PREVOTE).count(a) == 1


def test_an_equivocator_is_counted_for_at_most_three_values() -> None:
    keeper = fresh()
    values = [bytes([i]) * 32 for i in range(5)]
    statuses = []
    for value in values:
        signed = sign_vote(
            KEYS[0], chain_id=CHAIN, kind=PREVOTE, height=1, round=0, block_id=value, validator=0
        )
        statuses.append(keeper.add(signed).status)
    assert statuses[0] is VoteStatus.ADDED
    assert statuses[1:] == [VoteStatus.EQUIVOCATION] * 4
    assert len(keeper.votes(0, PREVOTE)) == 3


def test_bad_votes_are_rejected_and_counted() -> None:
    keeper = fresh()
    stranger = PrivateKey(b"\x77" * 32)
    forged = sign_vote(
        stranger, chain_id=CHAIN, kind=PREVOTE, height=1, round=0, block_id=A, validator=2
    )
    unknown = sign_vote(
        stranger, chain_id=CHAIN, kind=PREVOTE, height=1, round=0, block_id=A, validator=4
    )
    other_chain = sign_vote(
        KEYS[1], chain_id="other", kind=PREVOTE, height=1, round=0, block_id=A, validator=1
    )
    assert keeper.add(forged).status is VoteStatus.BAD_SIGNATURE
    assert keeper.add(unknown).status is VoteStatus.UNKNOWN_VALIDATOR
    assert keeper.add(other_chain).status is VoteStatus.BAD_SIGNATURE
    assert keeper.add(vote(PREVOTE, 1, "A", height=2)).status is VoteStatus.WRONG_HEIGHT
    assert dict(keeper.rejected) == {"bad_signature": 2, "unknown_validator": 1, "wrong_height": 1}
    assert keeper.vote_count() == 0


def test_certificate_from_precommits_verifies() -> None:
    keeper = fresh()
    for i in (3, 1, 0):
        keeper.add(vote(PRECOMMIT, i, "A"))
    keeper.add(vote(PRECOMMIT, 2, "nil"))
    certificate = keeper.certificate(0, A)
    assert [index for index, _ in certificate.signatures] == [0, 1, 3]
    verify_certificate(certificate, VALIDATORS, CHAIN, height=1, block_id=A)
    assert keeper.decisions() == [(0, A)]
