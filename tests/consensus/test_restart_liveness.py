"""Regression tests for the liveness bugs found by the simulator, and for the
weaknesses a byzantine peer or a skewed clock could use: each fails without
its fix (the seeds that found them replay in `test_simulation.py`)."""

from __future__ import annotations

import msgspec

from consensus.core import Anchor
from consensus.messages import BlockValidated, Broadcast, Commit, ProposalMessage, TimeoutKind
from sequencer.crypto import sign_proposal, sign_vote
from sequencer.ids import block_id
from sequencer.types import NIL, Block, SigningState, SignStep, Vote, VoteKind
from tests.consensus.harness import (
    CHAIN,
    ID,
    KEYS,
    LOCKED_A,
    NOW,
    PRECOMMIT,
    PREVOTE,
    SCHEDULE,
    A,
    Node,
    certificate,
    make_block,
    proposal,
    timeout,
    valid,
    vote,
    votes,
)

# Validator 3 prevoted A in round 0 with 0 and 1: it is locked on A.
LOCKED_A_BY_THREE = [
    proposal("A"),
    BlockValidated(ID["A"], True),
    *votes(PREVOTE, [0, 1], "A"),
]
AFTER_A = Anchor(1, ID["A"], A.header.timestamp_ms, certificate("A"))


def signed_proposal(block: Block, round: int = 0, pol_round: int = -1) -> ProposalMessage:
    height = block.header.height
    proposer = SCHEDULE.proposer(height, round)
    signed = sign_proposal(
        KEYS[proposer],
        chain_id=CHAIN,
        height=height,
        round=round,
        pol_round=pol_round,
        block_id=block_id(block.header),
        block=block,
        validator=proposer,
    )
    return ProposalMessage(signed, None)


def raw_vote(kind: VoteKind, validator: int, value: bytes, round: int, height: int = 1) -> Vote:
    return sign_vote(
        KEYS[validator],
        chain_id=CHAIN,
        kind=kind,
        height=height,
        round=round,
        block_id=value,
        validator=validator,
    )


# ------------------------------------------------------------------ bug 1: a lock crossing heights


def test_a_lock_of_one_height_is_not_carried_into_the_next_by_a_restart() -> None:
    node = Node(0)
    node.feed(*LOCKED_A)
    stored = node.persisted  # height 1, locked on A in round 0
    assert stored is not None
    assert stored.locked_round == 0
    # A is decided; the node restarts before it signs anything at height 2.
    restarted = Node(0, signing_state=stored, anchor=AFTER_A)
    restarted.feed(timeout(TimeoutKind.PROPOSE, 0, height=2))  # its first signature there
    state = restarted.persisted
    assert state is not None
    assert (state.height, state.step) == (2, SignStep.PREVOTE)
    assert (state.locked_round, state.locked_block_id) == (-1, NIL)
    assert (state.valid_round, state.valid_proposal, state.polka) == (-1, None, [])
    # Restarted again from that state, it is not locked.
    again = Node(0, signing_state=state, anchor=AFTER_A)
    assert (again.core.locked_round, again.core.valid_round) == (-1, -1)


def test_a_stored_lock_of_another_height_is_refused_on_restore() -> None:
    # What a store written before the fix holds: height 2, the locks of height 1.
    prevote_nil = raw_vote(PREVOTE, 0, NIL, 0, height=2)
    stale = SigningState(
        2,
        0,
        SignStep.PREVOTE,
        NIL,
        prevote_nil.signature,
        locked_round=0,
        locked_block_id=ID["A"],
        valid_round=0,
        valid_block_id=ID["A"],
        polka=votes(PREVOTE, [0, 1, 2], "A"),
        valid_proposal=proposal("A").proposal,
    )
    node = Node(0, signing_state=stale, anchor=AFTER_A)
    core = node.core
    assert (core.locked_round, core.locked_value, core.valid_round) == (-1, NIL, -1)
    assert core.stats["signing_state_locks_dropped"] == 1
    # Its next signature stores no lock either.
    node.feed(timeout(TimeoutKind.PROPOSE, 0, height=2))  # its prevote there was nil
    node.feed(*[raw_vote(PREVOTE, v, NIL, 0, height=2) for v in (1, 2)])
    assert node.persisted is not None
    assert (node.persisted.locked_round, node.persisted.polka) == (-1, [])


# ------------------------------------------------------------------ bug 2: own votes forgotten


def test_a_restarted_node_sends_every_vote_it_signed_at_its_height() -> None:
    node = Node(0)
    node.feed(*LOCKED_A)  # prevoted and precommitted A in round 0
    node.feed(timeout(TimeoutKind.PRECOMMIT, 0))  # round 1
    node.feed(timeout(TimeoutKind.PROPOSE, 1))  # prevote nil in round 1 (locked on A)
    restarted = Node(0, signing_state=node.persisted)
    sent = {
        (a.message.kind.name, a.message.round, a.message.block_id)
        for a in restarted.actions
        if isinstance(a, Broadcast) and isinstance(a.message, Vote)
    }
    assert sent == {("PREVOTE", 0, ID["A"]), ("PRECOMMIT", 0, ID["A"]), ("PREVOTE", 1, NIL)}
    assert restarted.state == (1, 1, "PREVOTE")


def test_the_stored_own_votes_are_bounded_to_the_last_rounds() -> None:
    from consensus.signer import OWN_VOTE_ROUNDS_KEPT

    node = Node(0)
    for round in range(3 * OWN_VOTE_ROUNDS_KEPT):
        node.feed(timeout(TimeoutKind.PROPOSE, round), timeout(TimeoutKind.PREVOTE, round))
        node.feed(*[raw_vote(PRECOMMIT, v, NIL, round) for v in (1, 2)])
        node.feed(timeout(TimeoutKind.PRECOMMIT, round))
    assert node.persisted is not None
    rounds = sorted({v.round for v in node.persisted.votes})
    assert len(node.persisted.votes) <= 2 * OWN_VOTE_ROUNDS_KEPT
    assert rounds[-1] == node.persisted.round
    assert rounds[0] > node.persisted.round - OWN_VOTE_ROUNDS_KEPT


# ------------------------------------------------------------------ bug 3: far behind in rounds


def test_a_node_far_behind_in_rounds_skips_to_where_a_third_of_the_power_is() -> None:
    node = Node(0)
    far = node.core.config.rounds_ahead_max + 70
    node.feed(raw_vote(PREVOTE, 1, NIL, far + 40))
    assert node.state[1] == 0  # one validator alone may be byzantine
    node.feed(raw_vote(PRECOMMIT, 2, NIL, far))
    # 1 and 2 hold more than 1/3 of the power at rounds >= far: one is honest.
    assert node.state[1] == far
    assert node.core.stats["message_round_too_far"] == 2


def test_forged_far_round_messages_move_nobody() -> None:
    node = Node(0)
    far = node.core.config.rounds_ahead_max + 70
    forged = [
        msgspec.structs.replace(raw_vote(PREVOTE, v, NIL, far), signature=bytes(64))
        for v in (1, 2, 3)
    ]
    node.feed(*forged)
    assert node.state[1] == 0
    assert node.core.stats["message_round_too_far_bad_signature"] == 3


# ------------------------------------------------------------------ weaknesses


def test_a_node_whose_clock_is_behind_still_decides_what_a_quorum_precommitted() -> None:
    node = Node(0)
    drift = node.core.config.clock_drift_ms_max
    early = make_block(timestamp_ms=NOW + drift + 5_000)  # ahead of this node's clock
    value = block_id(early.header)
    node.feed(signed_proposal(early))
    node.feed(BlockValidated(value, True))
    assert ("vote", "PREVOTE", 0, "nil") in node.said()  # too early for its clock
    node.feed(*[raw_vote(PRECOMMIT, v, value, 0) for v in (1, 2, 3)])
    assert [a.block for a in node.actions if isinstance(a, Commit)] == [early]


def test_a_block_too_early_for_one_round_can_be_prevoted_in_a_later_one() -> None:
    node = Node(0)
    drift = node.core.config.clock_drift_ms_max
    early = make_block(timestamp_ms=NOW + drift + 5_000)
    value = block_id(early.header)
    core = node.core
    core.step(signed_proposal(early), NOW)
    core.step(BlockValidated(value, True), NOW)
    later = NOW + 6_000
    for event in [timeout(TimeoutKind.PREVOTE, 0), *votes(PRECOMMIT, [1, 2], "nil")]:
        core.step(event, later)
    core.step(timeout(TimeoutKind.PRECOMMIT, 0), later)
    actions = core.step(signed_proposal(early, round=1), later)
    prevotes = [
        a.message.block_id
        for a in actions
        if isinstance(a, Broadcast) and isinstance(a.message, Vote)
    ]
    assert prevotes == [value]


def test_an_equivocating_proposer_cannot_crowd_out_the_proposal_a_quorum_votes_for() -> None:
    node = Node(0)
    limit = node.core.config.proposals_per_round_max
    junk = [make_block(timestamp_ms=5_000 + i) for i in range(limit)]
    for block in junk:
        node.feed(signed_proposal(block))
        node.feed(BlockValidated(block_id(block.header), True))
    chosen = make_block(timestamp_ms=4_000)
    value = block_id(chosen.header)
    node.feed(*[raw_vote(PREVOTE, v, value, 0) for v in (1, 2, 3)])
    node.feed(signed_proposal(chosen))  # the round is full, but a quorum voted for it
    assert node.core.stats["proposal_dropped"] == 0
    node.feed(BlockValidated(value, True))
    assert (node.core.locked_round, node.core.locked_value) == (0, value)
    precommits = [
        a.message.block_id
        for a in node.actions
        if isinstance(a, Broadcast) and isinstance(a.message, Vote)
    ]
    assert precommits == [value]


def test_an_unendorsed_extra_proposal_is_still_dropped() -> None:
    node = Node(0)
    limit = node.core.config.proposals_per_round_max
    for i in range(limit + 3):
        node.feed(signed_proposal(make_block(timestamp_ms=5_000 + i)))
    assert node.core.stats["proposal_dropped"] == 3
    assert len(node.core._proposals[0]) == limit


def test_a_proposal_carries_its_proof_of_lock_to_a_node_that_missed_it() -> None:
    # The node never saw round 0's polka for A (say it came too early, and
    # gossip will not deliver those votes again for minutes).
    def at_round_two() -> Node:
        node = Node(0)
        node.feed(*votes(PREVOTE, [1, 2], "nil", round=2))  # f+1 in round 2: go there (L55)
        assert node.state == (1, 2, "PROPOSE")
        return node

    bare = proposal("A", round=2, pol_round=0)
    without = at_round_two()
    without.feed(bare, valid("A"))
    assert [d for d in without.said() if d[0] == "vote"] == []  # L28 waits for the polka
    carried = ProposalMessage(bare.proposal, None, votes(PREVOTE, [1, 2, 3], "A", round=0))
    node = at_round_two()
    node.feed(carried, valid("A"))
    assert ("vote", "PREVOTE", 2, "A") in node.said()  # L28-L30


def test_a_proof_of_lock_that_proves_something_else_is_not_counted() -> None:
    node = Node(0)
    node.feed(*votes(PREVOTE, [1, 2], "nil", round=2))
    bare = proposal("A", round=2, pol_round=0)
    wrong = [*votes(PREVOTE, [1], "B", round=0), *votes(PREVOTE, [2], "A", round=1)]
    wrong.append(vote(PRECOMMIT, 3, "A", round=0))
    node.feed(ProposalMessage(bare.proposal, None, wrong), valid("A"))
    assert node.core.stats["proposal_pol_vote_refused"] == 3
    assert not node.core._keeper.votes(0, PREVOTE)


def test_a_re_proposal_attaches_the_polka_it_names() -> None:
    node = Node(3)  # the proposer of (1, 2)
    node.feed(*LOCKED_A_BY_THREE, *votes(PREVOTE, [0, 1], "nil", round=2))
    sent = [
        a.message
        for a in node.actions
        if isinstance(a, Broadcast) and isinstance(a.message, ProposalMessage)
    ]
    assert sent
    assert sent[0].proposal.pol_round == 0
    assert {v.validator for v in sent[0].pol} == {0, 1, 3}
