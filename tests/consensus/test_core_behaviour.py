"""The core beyond Algorithm 1's lines: restarts, evidence, catch-up,
buffering, waiting for transactions, canonical parent certificates, observers."""

from __future__ import annotations

import msgspec

from consensus.blocks import build_block
from consensus.core import Anchor, Core, CoreConfig
from consensus.messages import (
    BlockValidated,
    Broadcast,
    Commit,
    DecidedBlock,
    PersistSigningState,
    ProposalMessage,
    ScheduleTimeout,
    TimeoutKind,
    TxsAvailable,
)
from sequencer.crypto import PrivateKey, sign_proposal, sign_vote
from sequencer.ids import block_id, commit_id
from sequencer.types import Block, Vote
from tests.consensus.harness import (
    CHAIN,
    ID,
    KEYS,
    LOCKED_A,
    NOW,
    PARAMS,
    PRECOMMIT,
    PREVOTE,
    SCHEDULE,
    VALIDATORS,
    A,
    Node,
    certificate,
    proposal,
    timeout,
    valid,
    value_ready,
    vote,
    votes,
)

# ------------------------------------------------------------------ restarts


def test_restart_resumes_the_round_with_locks_polka_block_and_own_votes() -> None:
    before = Node(0)
    before.feed(*LOCKED_A)
    assert before.persisted is not None
    assert before.persisted.locked_round == 0
    after = Node(0, signing_state=before.persisted)
    core = after.core
    # It prevoted and precommitted A in round 0: it resumes there, past voting.
    assert after.state == (1, 0, "PRECOMMIT")
    assert (core.locked_round, core.locked_value) == (0, ID["A"])
    assert core._keeper.has_quorum_for(0, PREVOTE, ID["A"])  # the polka came back
    assert ID["A"] in core._blocks  # and so did the block, to re-propose it
    # Both its votes leave again: a peer that missed either may wait for it.
    started = after.said()
    assert ("vote", "PREVOTE", 0, "A") in started
    assert ("vote", "PRECOMMIT", 0, "A") in started
    assert ("persist",) not in started
    # Nothing new is signed in that round.
    after.feed(timeout(TimeoutKind.PROPOSE, 0))
    assert after.said() == []


def test_a_restarted_validator_sends_its_vote_again_with_the_same_signature() -> None:
    before = Node(0)
    before.feed(proposal("A"), valid("A"))
    original = next(a.message for a in before.actions if isinstance(a, Broadcast))
    after = Node(0, signing_state=before.persisted)
    resent = [a.message for a in after.actions if isinstance(a, Broadcast)]
    assert resent == [original]
    after.feed(proposal("A"), valid("A"))
    assert after.said() == [("validate", "A")]  # it already prevoted: no new vote


def test_a_restarted_proposer_never_proposes_a_second_block() -> None:
    before = Node(1)
    before.feed(value_ready("A"))
    assert ("proposal", 0, -1, "A") in before.said()
    after = Node(1, signing_state=before.persisted)
    # It prevoted its own proposal: it resumes past proposing, and asks for no value.
    assert not [d for d in after.said() if d[0] in ("proposal", "request_value")]
    after.feed(value_ready("B"))
    assert not [d for d in after.said() if d[0] == "proposal"]
    assert after.core.stats["value_late"] == 1


def test_a_restarted_proposer_that_only_proposed_refuses_a_different_block() -> None:
    before = Node(1)
    assert before.core._signer is not None
    before.core._signer.sign_proposal(1, 0, -1, ID["A"])  # crashed right after signing
    after = Node(1, signing_state=before.core._signer.state)
    assert ("request_value", 0) in after.said()
    after.feed(value_ready("B"))
    assert not [d for d in after.said() if d[0] == "proposal"]
    assert after.core.stats["signing_refused_conflict"] == 1


def test_a_new_height_clears_the_persisted_lock() -> None:
    node = Node(0)
    node.feed(*LOCKED_A, vote(PRECOMMIT, 1, "A"), vote(PRECOMMIT, 2, "A"))
    assert node.state[0] == 2
    node.feed(timeout(TimeoutKind.PROPOSE, 0, height=2))
    assert node.persisted is not None
    assert (node.persisted.height, node.persisted.locked_round) == (2, -1)
    assert node.persisted.polka == []
    assert node.persisted.valid_proposal is None


# ------------------------------------------------------------------ bad input


def test_equivocation_is_reported_once_as_evidence() -> None:
    node = Node(0)
    node.feed(vote(PREVOTE, 3, "A"), vote(PREVOTE, 3, "B"), vote(PREVOTE, 3, "B"))
    assert node.said().count(("evidence",)) == 1


def test_bad_votes_and_proposals_are_dropped_and_counted() -> None:
    node = Node(0)
    forged = msgspec.structs.replace(vote(PREVOTE, 2, "A"), signature=bytes(64))
    stranger = sign_vote(
        PrivateKey(b"\x99" * 32),
        chain_id=CHAIN,
        kind=PREVOTE,
        height=1,
        round=0,
        block_id=ID["A"],
        validator=9,
    )
    bad_proposal = proposal("A")
    bad_proposal = ProposalMessage(
        msgspec.structs.replace(bad_proposal.proposal, signature=bytes(64)), None
    )
    mismatched = ProposalMessage(
        msgspec.structs.replace(proposal("A").proposal, block_id=ID["B"]), None
    )
    node.feed(forged, stranger, bad_proposal, mismatched, proposal("A", pol_round=0))
    assert node.said() == []
    stats = node.core.statistics()
    assert stats.votes_rejected["bad_signature"] == 1
    assert stats.votes_rejected["unknown_validator"] == 1
    assert stats.counts["proposal_bad_signature"] == 1
    assert stats.counts["proposal_block_id_mismatch"] == 1
    assert stats.counts["proposal_bad_pol_round"] == 1
    assert stats.votes == 0


# ------------------------------------------------------------------ catch-up


def test_a_decided_block_with_a_valid_certificate_is_committed() -> None:
    node = Node(0)
    node.feed(DecidedBlock(A, certificate("A")))
    assert node.said() == [("commit", 1, "A"), ("timeout", "PROPOSE", 0)]
    assert node.state == (2, 0, "PROPOSE")


def test_a_decided_block_without_a_quorum_is_refused() -> None:
    node = Node(0)
    node.feed(DecidedBlock(A, certificate("A", signers=(0, 1))))
    node.feed(DecidedBlock(A, certificate("B")))
    assert node.said() == []
    assert node.core.stats["decided_bad_certificate"] == 2
    assert node.state == (1, 0, "PROPOSE")


def test_next_height_messages_are_buffered_and_replayed() -> None:
    node = Node(0)
    early = vote(PREVOTE, 2, "nil", height=2)
    node.feed(early)
    assert node.core._keeper.vote_count() == 0
    node.feed(DecidedBlock(A, certificate("A")))
    assert node.core._keeper.vote_count() == 1
    node.feed(vote(PREVOTE, 2, "nil", height=5))
    assert node.core.stats["message_far_future"] == 1


# ------------------------------------------------------------------ waiting for work


def test_a_height_waits_for_transactions_or_a_peer() -> None:
    node = Node(0, wait_for_txs=True)
    assert node.said() == []
    assert node.state == (1, 0, "WAITING")
    node.feed(TxsAvailable())
    assert node.said() == [("timeout", "PROPOSE", 0)]
    other = Node(0, wait_for_txs=True)
    other.feed(vote(PREVOTE, 1, "nil"))
    assert other.state == (1, 0, "PROPOSE")


def _decided_height_one(node: Node) -> None:
    """Height 1 decides A (validator 1 proposes; 1 and 2 vote with us)."""
    node.feed(proposal("A"), valid("A"), votes(PREVOTE, [1, 2], "A"))
    node.feed(votes(PRECOMMIT, [1, 2], "A"))
    assert node.state == (2, 0, "WAITING")


def _interval_timeouts(actions: list) -> list[tuple[int, int]]:
    return [
        (a.height, a.delay_ms)
        for a in actions
        if isinstance(a, ScheduleTimeout) and a.kind is TimeoutKind.BLOCK_INTERVAL
    ]


def test_a_height_whose_transactions_come_early_waits_out_the_minimum_interval() -> None:
    node = Node(0, wait_for_txs=True, min_block_interval_ms=50)
    node.feed(TxsAvailable())  # the first height has nothing to wait for
    assert node.state == (1, 0, "PROPOSE")
    _decided_height_one(node)
    # Height 1 began at NOW: transactions 10 ms later wait the other 40 ms ...
    assert _interval_timeouts(node.feed(TxsAvailable(), now=NOW + 10)) == [(2, 40)]
    assert node.state == (2, 0, "WAITING")
    # ... once: more transactions meanwhile schedule nothing more.
    assert _interval_timeouts(node.feed(TxsAvailable(), now=NOW + 20)) == []
    node.feed(timeout(TimeoutKind.BLOCK_INTERVAL, round=0, height=2), now=NOW + 50)
    assert node.state == (2, 0, "PROPOSE")


def test_a_peer_starts_a_waiting_height_at_once_and_a_late_one_does_not_wait() -> None:
    node = Node(0, wait_for_txs=True, min_block_interval_ms=50)
    node.feed(TxsAvailable())
    _decided_height_one(node)
    node.feed(TxsAvailable(), now=NOW + 10)
    node.feed(vote(PREVOTE, 1, "nil", height=2), now=NOW + 11)  # a peer works on height 2
    assert node.state == (2, 0, "PROPOSE")

    late = Node(0, wait_for_txs=True, min_block_interval_ms=50)
    late.feed(TxsAvailable())
    _decided_height_one(late)
    assert _interval_timeouts(late.feed(TxsAvailable(), now=NOW + 50)) == []
    assert late.state == (2, 0, "PROPOSE")


def test_without_a_minimum_interval_transactions_start_the_next_height_at_once() -> None:
    node = Node(0, wait_for_txs=True)
    node.feed(TxsAvailable())
    _decided_height_one(node)
    node.feed(TxsAvailable(), now=NOW + 1)
    assert node.state == (2, 0, "PROPOSE")


# ------------------------------------------------------------------ parent certificates


def _height_two(parent_certificate: object) -> tuple[Block, ProposalMessage]:
    proposer = SCHEDULE.proposer(2, 0)
    block, _ = build_block(
        chain_id=CHAIN,
        height=2,
        round=0,
        proposer=proposer,
        timestamp_ms=4_000,
        parent_id=ID["A"],
        last_commit_id=commit_id(parent_certificate),
        parent_state_root=A.header.state_root,
        txs=[],
        next_nonce=lambda sender: 0,
    )
    signed = sign_proposal(
        KEYS[proposer],
        chain_id=CHAIN,
        height=2,
        round=0,
        pol_round=-1,
        block_id=block_id(block.header),
        block=block,
        validator=proposer,
    )
    return block, ProposalMessage(signed, parent_certificate)


def _precommits(block: Block, signers: tuple[int, ...]) -> list[Vote]:
    return [
        sign_vote(
            KEYS[i],
            chain_id=CHAIN,
            kind=PRECOMMIT,
            height=2,
            round=0,
            block_id=block_id(block.header),
            validator=i,
        )
        for i in signers
    ]


def test_the_next_block_decides_which_certificate_of_the_parent_is_canonical() -> None:
    ours, theirs = certificate("A", (0, 1, 2)), certificate("A", (1, 2, 3))
    anchor = Anchor(1, ID["A"], A.header.timestamp_ms, ours)
    node = Node(0, anchor=anchor)
    block, message = _height_two(theirs)
    node.feed(message, BlockValidated(block_id(block.header), True))
    node.feed(*_precommits(block, (1, 2, 3)))
    commits = [a for a in node.actions if isinstance(a, Commit)]
    assert len(commits) == 1
    assert commits[0].parent_certificate == theirs


def test_a_block_linking_to_an_unknown_certificate_gets_prevote_nil() -> None:
    ours, theirs = certificate("A", (0, 1, 2)), certificate("A", (1, 2, 3))
    node = Node(0, anchor=Anchor(1, ID["A"], A.header.timestamp_ms, ours))
    _, message = _height_two(theirs)
    node.feed(ProposalMessage(message.proposal, None))
    assert node.said() == [("persist",), ("vote", "PREVOTE", 0, "nil")]
    assert node.core.stats["block_invalid_wrong_last_commit"] == 1


# ------------------------------------------------------------------ observers


def test_an_observer_follows_but_never_signs() -> None:
    core = Core(
        chain_id=CHAIN,
        validators=VALIDATORS,
        params=PARAMS,
        anchor=Anchor(0, bytes(32), 1_000, None),
        key=PrivateKey(b"\x33" * 32),
        config=CoreConfig(wait_for_txs=False),
    )
    actions = core.start(10_000)
    for event in [
        proposal("A"),
        valid("A"),
        *votes(PREVOTE, [1, 2, 3], "A"),
        *votes(PRECOMMIT, [1, 2, 3], "A"),
    ]:
        actions += core.step(event, 10_000)
    assert not [a for a in actions if isinstance(a, Broadcast | PersistSigningState)]
    assert [a.block for a in actions if isinstance(a, Commit)] == [A]


def test_the_next_height_buffer_is_bounded_per_validator() -> None:
    node = Node(0)
    config = node.core.config
    early_proposal = _height_two(certificate("A"))[1]  # by validator 2
    for _ in range(5):
        node.feed(early_proposal)  # the same one: kept once
    # Validator 3 floods signed next-height votes: it fills its own share only.
    for round in range(3 * config.future_messages_per_validator_max):
        node.feed(vote(PREVOTE, 3, "nil", round=round, height=2))
    for validator in (1, 2):
        node.feed(vote(PREVOTE, validator, "nil", height=2))
    kept = node.core._future
    assert len(kept[3]) == config.future_messages_per_validator_max
    assert (len(kept[1]), len(kept[2])) == (1, 2)
    assert node.core.stats["message_future_dropped"] == 2 * config.future_messages_per_validator_max
    assert node.core.stats["message_future_duplicate"] == 4


def test_unsigned_next_height_messages_are_not_buffered() -> None:
    node = Node(0)
    forged = [
        msgspec.structs.replace(vote(PREVOTE, v, "nil", height=2), signature=bytes(64))
        for v in (1, 2, 3)
    ]
    stranger = msgspec.structs.replace(vote(PREVOTE, 3, "nil", height=2), validator=9)
    node.feed(*forged, stranger)
    assert sum(len(kept) for kept in node.core._future.values()) == 0
    assert node.core.stats["message_future_bad_signature"] == 3
    assert node.core.stats["message_future_unknown_validator"] == 1
