"""The vote keeper: queries, evidence, rejection, certificates."""

from __future__ import annotations

from consensus.votekeeper import VoteKeeper, VoteStatus
from sequencer.certificate import verify_certificate
from sequencer.crypto import PrivateKey, sign_vote
from tests.consensus.harness import CHAIN, ID, KEYS, PRECOMMIT, PREVOTE, VALIDATORS, vote


def fresh() -> VoteKeeper:
    return VoteKeeper(1, VALIDATORS, CHAIN)


A, NIL = ID["A"], b""


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


def test_decisions_are_kept_once_each_lowest_round_first() -> None:
    keeper = fresh()
    for i in range(3):
        keeper.add(vote(PRECOMMIT, i, "B", 2))
    for i in range(4):
        keeper.add(vote(PRECOMMIT, i, "A"))
    keeper.add(vote(PRECOMMIT, 3, "B", 2))  # past the quorum: no second decision
    keeper.add(vote(PRECOMMIT, 3, "nil"))  # an equivocation, for nil: decides nothing
    assert keeper.decisions() == [(0, A), (2, ID["B"])]
