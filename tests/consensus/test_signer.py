"""The signer never signs conflicting messages, before or after a restart."""

from __future__ import annotations

import pytest

from consensus.errors import SigningRefusedError
from consensus.signer import Signer
from sequencer.crypto import verify_vote
from sequencer.types import Vote
from tests.consensus.harness import CHAIN, ID, KEYS, PRECOMMIT, PREVOTE

A, B, NIL = ID["A"], ID["B"], b""


def fresh() -> Signer:
    return Signer(KEYS[0], CHAIN, None)


def test_signatures_verify_and_the_state_advances() -> None:
    signer = fresh()
    signature, changed = signer.sign_vote(PREVOTE, 1, 0, A)
    assert changed
    assert verify_vote(Vote(CHAIN, PREVOTE, 1, 0, A, 0, signature), KEYS[0].public_key)
    assert (signer.state.height, signer.state.round, signer.state.step) == (1, 0, 2)
    assert signer.state.signature == signature


def test_identical_request_reuses_the_stored_signature() -> None:
    signer = fresh()
    first, _ = signer.sign_vote(PREVOTE, 1, 0, A)
    again, changed = signer.sign_vote(PREVOTE, 1, 0, A)
    assert again == first
    assert not changed  # nothing new to persist


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ((PREVOTE, 1, 0, A), (PREVOTE, 1, 0, B), "conflict"),
        ((PREVOTE, 1, 0, A), (PREVOTE, 1, 0, NIL), "conflict"),
        ((PRECOMMIT, 1, 0, A), (PREVOTE, 1, 0, A), "regression"),
        ((PREVOTE, 1, 2, A), (PRECOMMIT, 1, 1, A), "regression"),
        ((PREVOTE, 2, 0, A), (PRECOMMIT, 1, 5, A), "regression"),
    ],
)
def test_conflicts_and_regressions_are_refused(first: tuple, second: tuple, reason: str) -> None:
    signer = fresh()
    signer.sign_vote(*first)
    state = signer.state
    with pytest.raises(SigningRefusedError) as info:
        signer.sign_vote(*second)
    assert info.value.reason == reason
    assert signer.state == state


def test_after_a_restart_from_the_persisted_state_nothing_conflicting_is_signed() -> None:
    before = fresh()
    signature, _ = before.sign_vote(PRECOMMIT, 3, 1, A)
    persisted = before.state
    after = Signer(KEYS[0], CHAIN, persisted)
    assert after.sign_vote(PRECOMMIT, 3, 1, A) == (signature, False)
    for request in [(PRECOMMIT, 3, 1, B), (PRECOMMIT, 3, 1, NIL), (PREVOTE, 3, 1, A)]:
        with pytest.raises(SigningRefusedError):
            after.sign_vote(*request)
    assert after.sign_vote(PREVOTE, 3, 2, B)[1]  # a later round is fine


def test_a_proposal_at_the_same_round_after_its_prevote_is_refused() -> None:
    signer = fresh()
    signer.sign_proposal(1, 0, -1, A)
    signer.sign_vote(PREVOTE, 1, 0, A)
    with pytest.raises(SigningRefusedError):
        signer.sign_proposal(1, 0, -1, B)
    same = Signer(KEYS[0], CHAIN, None)
    first, _ = same.sign_proposal(1, 0, -1, A)
    assert same.sign_proposal(1, 0, -1, A) == (first, False)
    with pytest.raises(SigningRefusedError):  # same block, other pol_round: other bytes
        same.sign_proposal(1, 0, 0, A)
