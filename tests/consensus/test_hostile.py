"""Hostile input against the consensus core, and a hostile validator in the
deterministic simulator.

Core tier (`tests.consensus.harness`): messages from non-validators change
nothing; an equivocating validator yields evidence once and the honest
three still decide; votes at absurd heights are dropped; a block body that
does not match its (signed, certified) header is refused both as a proposal
and as a catch-up block.

Simulator tier: of seven validators, one answers catch-up requests with
forged responses (certificates that do not verify, swapped bodies, invented
heights that do not chain, nothing) and one spams votes at absurd rounds and
heights and votes forged for others. Honest nodes crash, lag and catch up;
they must keep finalizing with every invariant of the checker intact.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from consensus.messages import Commit, DecidedBlock, ProposalMessage, ReportEvidence
from consensus.sim.run import RunResult, Simulation
from consensus.sim.scenario import CrashPlan, Scenario
from sequencer.crypto import PrivateKey, sign_proposal, sign_transaction, sign_vote
from sequencer.ids import block_id
from sequencer.types import Block, CommitCertificate, Vote, VoteKind
from tests.consensus.harness import (
    CHAIN,
    ID,
    KEYS,
    PRECOMMIT,
    PREVOTE,
    A,
    Node,
    certificate,
    proposal,
    valid,
    vote,
    votes,
)

FAR = 10**12
STRANGER = PrivateKey(b"\x99" * 32)


def stranger_vote(validator: int, kind: VoteKind = PREVOTE, height: int = 1) -> Vote:
    """A vote claiming to be validator `validator`'s, signed by a key outside the set."""
    return sign_vote(
        STRANGER,
        chain_id=CHAIN,
        kind=kind,
        height=height,
        round=0,
        block_id=ID["A"],
        validator=validator,
    )


def forged_tx(nonce: int = 7) -> Any:
    return sign_transaction(
        STRANGER, chain_id=CHAIN, namespace=1, nonce=nonce, gas_price=1, payload=b"forged"
    )


# ------------------------------------------------------------------ non-validators


def test_messages_signed_by_non_validators_change_nothing() -> None:
    node = Node(0)
    before = (node.state, node.core.statistics().votes)
    stranger_proposal = ProposalMessage(
        sign_proposal(
            STRANGER,
            chain_id=CHAIN,
            height=1,
            round=0,
            pol_round=-1,
            block_id=ID["A"],
            block=A,
            validator=1,  # the round's proposer, but not its key
        ),
        None,
    )
    hostile = [
        *(stranger_vote(v, kind) for v in range(4) for kind in (PREVOTE, PRECOMMIT)),
        stranger_vote(4),
        stranger_vote(2**32 - 1),
        stranger_proposal,
    ]
    node.feed(*hostile)
    assert node.said() == []
    assert (node.state, node.core.statistics().votes) == before
    stats = node.core.statistics()
    assert stats.votes_rejected["bad_signature"] == 8
    assert stats.votes_rejected["unknown_validator"] == 2
    assert stats.counts["proposal_bad_signature"] == 1
    # Seven forged precommits for A: no commit, even with the real block known.
    node.feed(proposal("A"), valid("A"))
    assert not [a for a in node.actions if isinstance(a, Commit)]


def test_votes_at_absurd_heights_and_rounds_are_dropped_and_counted() -> None:
    node = Node(0)
    far = [vote(PREVOTE, 3, "A", height=FAR), vote(PRECOMMIT, 2, "A", height=2**64 - 1)]
    node.feed(*far, vote(PREVOTE, 3, "A", round=2**64 - 1))
    assert node.said() == []
    assert node.state == (1, 0, "PROPOSE")
    stats = node.core.statistics()
    assert stats.counts["message_far_future"] == 2
    assert stats.counts["message_round_too_far"] == 1


# ------------------------------------------------------------------ equivocation


def test_an_equivocator_yields_evidence_once_and_the_height_still_decides() -> None:
    node = Node(0)
    node.feed(proposal("A"), valid("A"))
    # Validator 3 prevotes and precommits both A and B, each twice.
    twice = [vote(k, 3, name) for k in (PREVOTE, PRECOMMIT) for name in ("A", "B", "A", "B")]
    node.feed(*twice)
    evidence = [a.evidence for a in node.actions if isinstance(a, ReportEvidence)]
    assert len(evidence) == 2  # one per (round, kind), not one per repeat
    assert {(e.first.kind, e.first.block_id, e.second.block_id) for e in evidence} == {
        (PREVOTE, ID["A"], ID["B"]),
        (PRECOMMIT, ID["A"], ID["B"]),
    }
    node.feed(votes(PREVOTE, [1, 2], "A"), votes(PRECOMMIT, [1, 2], "A"))
    (commit,) = [a for a in node.actions if isinstance(a, Commit)]
    assert commit.block == A
    assert node.state[0] == 2


# ------------------------------------------------------------------ swapped bodies


def test_a_relayed_proposal_with_a_swapped_body_does_not_shut_out_the_real_one() -> None:
    # Regression: the proposer signs the header only, so a relay could swap
    # the body; the core recorded the block id as invalid, prevoted nil and
    # then ignored the genuine proposal as a duplicate.
    node = Node(0)
    genuine = proposal("A")
    swapped = ProposalMessage(
        msgspec.structs.replace(genuine.proposal, block=Block(A.header, [forged_tx()])), None
    )
    node.feed(swapped)
    assert node.said() == []
    assert node.core.stats["proposal_body_mismatch"] == 1
    node.feed(genuine, valid("A"))
    assert ("vote", "PREVOTE", 0, "A") in node.said()


@pytest.mark.parametrize("nonce", [0, 7], ids=["applies", "bad-nonce"])
def test_a_certified_header_with_a_swapped_body_is_not_committed(nonce: int) -> None:
    # Regression: catch-up committed whatever body came with a valid
    # certificate; with a bad nonce the node's chain then failed an assert.
    node = Node(0)
    node.feed(DecidedBlock(Block(A.header, [forged_tx(nonce)]), certificate("A")))
    assert node.said() == []
    assert node.core.stats["decided_body_mismatch"] == 1
    node.feed(DecidedBlock(A, certificate("A")))
    assert node.said()[0] == ("commit", 1, "A")


def test_a_certified_header_with_a_wrong_namespace_root_is_not_committed() -> None:
    # Validators holding a quorum certified a header whose namespace table
    # does not match its body: catch-up keeps it out of the store, where
    # rollups would read proofs against it.
    node = Node(0)
    header = msgspec.structs.replace(A.header, namespace_root=b"\x05" * 32)
    id_ = block_id(header)
    signatures = [
        (
            v,
            sign_vote(
                KEYS[v],
                chain_id=CHAIN,
                kind=PRECOMMIT,
                height=1,
                round=0,
                block_id=id_,
                validator=v,
            ).signature,
        )
        for v in (0, 1, 2)
    ]
    node.feed(DecidedBlock(Block(header, []), CommitCertificate(1, 0, id_, signatures)))
    assert node.said() == []
    assert node.core.stats["decided_wrong_namespace_root"] == 1
    node.feed(DecidedBlock(A, certificate("A")))
    assert node.said()[0] == ("commit", 1, "A")


# ------------------------------------------------------------------ the simulator


def hostile_run(seed: int, heights: int) -> tuple[Simulation, RunResult]:
    """Seven validators: 6 serves catch-up with forgeries (tampered certificates,
    swapped bodies, invented heights, nothing), 5 spams far-round, far-height
    and forged votes; honest nodes crash now and then, lag, and must catch up
    past the liar."""
    crashes = tuple(
        CrashPlan(
            node=at // 2_000 % 5,
            at_ms=at,
            trigger="time",
            actions=0,
            down_ms=5_000,
            lose_unsynced=True,
        )
        for at in range(1_000, 22_000, 2_000)
    )
    scenario = Scenario(
        seed=seed,
        validators=7,
        names=frozenset({"crash", "byzantine", "storage"}),
        powers=(1,) * 7,
        byzantine={5: "spam", 6: "lying_sync"},
        latency_ms=(1, 40),
        crashes=crashes,
        crash_down_max=2,
        chaos_ms=24_000,
    )
    sim = Simulation(scenario, heights=heights)
    return sim, sim.run()


@pytest.mark.parametrize("seed", [1, 3, 7])  # seeds where honest nodes asked the liar
def test_a_hostile_validator_cannot_stall_or_fool_catch_up(seed: int) -> None:
    sim, result = hostile_run(seed, heights=30)
    assert result.ok, result.violations
    assert result.reached >= 30
    refused = sim.core_stats
    # The attack was delivered: lagging honest nodes asked the liar, got its
    # forgeries, refused each for its reason, and forgot what it claimed.
    assert refused["sync_responses_refused"] > 0, refused
    reasons = ("decided_bad_certificate", "decided_body_mismatch", "decided_wrong_parent")
    assert sum(refused[reason] for reason in reasons) > 0, refused
    assert refused["message_far_future"] > 0
    assert refused["message_round_too_far"] > 0


def test_the_hostile_run_replays_exactly() -> None:
    first = hostile_run(4, heights=8)[1]
    again = hostile_run(4, heights=8)[1]
    assert (first.messages, first.events, first.sim_ms) == (
        again.messages,
        again.events,
        again.sim_ms,
    )
