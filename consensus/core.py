"""The Tendermint state machine: "The latest gossip on BFT consensus"
(Buchman, Kwon, Milosevic, arXiv:1807.04938), Algorithm 1, sans-IO.

`Core.step(input, now_ms) -> list[Action]` is the whole interface: no clock,
no I/O, no randomness. Each handler records what an input says; then
`_run_rules` evaluates the paper's `upon` rules against the state until none
fires, so a rule whose condition became true through a state change (not a
new message) still fires, as the paper's semantics require. Rules cite their
lines (`# L22`). Deviations from the letter of the paper are marked
"Deviation" with the reason.

Values are blocks, identified by `block_id`; `valid(v)` is the structural
check here plus the driver's state check (`ValidateBlock` / `BlockValidated`).
Signatures come from a `Signer`, which refuses to sign anything conflicting
with what it signed before; the signing state is persisted (an action the
driver fsyncs) before the message that needs it is broadcast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from msgspec import Struct

from consensus.admission import Admission
from consensus.anchor import Anchor
from consensus.errors import SigningRefusedError
from consensus.messages import (
    Action,
    BlockValidated,
    Broadcast,
    BroadcastVotes,
    Commit,
    DecidedBlock,
    Input,
    PersistSigningState,
    ProposalMessage,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    Step,
    TimeoutElapsed,
    TimeoutKind,
    TxsAvailable,
    ValidateBlock,
    ValueReady,
)
from consensus.proposer import ProposerSchedule
from consensus.signer import Signer
from consensus.votekeeper import Verifier, VoteKeeper, VoteStatus
from sequencer.certificate import ValidatorSet
from sequencer.crypto import PrivateKey, verify_signature
from sequencer.ids import block_id
from sequencer.limits import VOTE_BUNDLE_MAX
from sequencer.types import (
    NIL,
    Block,
    CommitCertificate,
    ConsensusParams,
    Proposal,
    SigningState,
    Vote,
    VoteKind,
)

__all__ = ["Anchor", "Core", "CoreConfig"]

# Every rule that fires changes the state for good; this only guards our bugs.
RULE_FIRINGS_PER_INPUT_MAX = 10_000


class CoreConfig(Struct, frozen=True):
    """Node-local knobs (the protocol parameters are in the genesis)."""

    rebroadcast_ms: int = 1_000  # when a round lasts this long, re-send its messages
    rebroadcast_rounds: int = 4  # ... and those of this many rounds before it
    wait_for_txs: bool = True  # a height starts on TxsAvailable (or a peer's message)
    # Messages further ahead than this are not kept; only their validator's
    # round is noted, for L55.
    rounds_ahead_max: int = 32
    # Buffered messages of the next height, per validator (signature checked
    # first, so no one fills another validator's share) ...
    future_messages_per_validator_max: int = 12
    future_proposals_max: int = 16  # ... and proposals in all (they carry whole blocks)
    # Distinct proposals kept from one equivocating proposer in one round,
    # beyond those whose value more than 1/3 of the power voted for.
    proposals_per_round_max: int = 4
    clock_drift_ms_max: int = 10_000  # how far a block's timestamp may run ahead of ours


class Core:
    """One validator's (or observer's) consensus state machine."""

    def __init__(
        self,
        *,
        chain_id: str,
        validators: ValidatorSet,
        params: ConsensusParams,
        anchor: Anchor,
        key: PrivateKey | None = None,
        signing_state: SigningState | None = None,
        config: CoreConfig | None = None,
        verifier: Verifier = verify_signature,
    ) -> None:
        self.chain_id = chain_id
        self.validators = validators
        self.params = params
        self.config = config or CoreConfig()
        self._verify = verifier
        self._schedule = ProposerSchedule(validators.powers)
        self._admission = Admission(
            chain_id=chain_id,
            validators=validators,
            schedule=self._schedule,
            params=params,
            verifier=verifier,
            clock_drift_ms_max=self.config.clock_drift_ms_max,
        )
        index = None if key is None else validators.index_of(key.public_key)
        self.index: int | None = index  # None: an observer, never signs
        self._signer = None if index is None else Signer(key, chain_id, signing_state, index)
        self.stats: Counter[str] = Counter()
        self._actions: list[Action] = []
        self._future: dict[int, list[ProposalMessage | Vote]] = {}  # validator -> messages
        self._future_proposals = 0
        self._now = 0
        self._quiet = False  # the input changed nothing the rules read
        self.anchor = anchor
        self._reset_height(anchor.height + 1)
        self._handlers: dict[type, Callable] = {
            ProposalMessage: self._on_proposal,
            Vote: self._on_vote,
            TimeoutElapsed: self._on_timeout,
            BlockValidated: self._on_validated,
            ValueReady: self._on_value,
            DecidedBlock: self._on_decided,
            TxsAvailable: self._on_txs,
        }

    # ------------------------------------------------------------ interface

    def start(self, now_ms: int) -> list[Action]:
        """Enter the height after the anchor; resume what the signing state
        records of it (a state of an earlier height is left behind)."""
        self._begin(now_ms)
        signer = self._signer
        if signer is not None:
            signer.enter_height(self.height)
        if signer is not None and signer.state.height == self.height and signer.state.step:
            self._resume(signer.state)
        else:
            self._enter_height()
        return self._finish()

    def step(self, event: Input, now_ms: int) -> list[Action]:
        self._begin(now_ms)
        self._handlers[type(event)](event)
        return self._finish()

    def proposer(self, height: int, round: int) -> int:
        return self._schedule.proposer(height, round)

    def statistics(self) -> dict[str, int]:
        return {
            "height": self.height,
            "round": self.round,
            "step": int(self.round_step),
            "votes": self._keeper.vote_count(),
            **self.stats,
            **{f"vote_rejected_{k}": v for k, v in self._keeper.rejected.items()},
        }

    def _begin(self, now_ms: int) -> None:
        self._now = now_ms
        self._actions = []
        self._quiet = False

    def _finish(self) -> list[Action]:
        # The rules are a function of the state, and none fired when they were
        # last evaluated: an input that changed nothing (a duplicate, a stale
        # or refused message: most of what a node receives) cannot make one
        # fire. Only validity for our prevote also depends on the clock.
        if not (self._quiet and not self._early):
            self._run_rules()
        actions, self._actions = self._actions, []
        return actions

    def _emit(self, action: Action) -> None:
        self._actions.append(action)

    # ------------------------------------------------------------ heights and rounds

    def _reset_height(self, height: int) -> None:
        """L52-L53: a new height with empty locks and message log."""
        self.height = height
        self.round = 0
        self.round_step = Step.WAITING
        self.locked_round, self.locked_value = -1, NIL
        self.valid_round, self.valid_value = -1, NIL
        self._keeper = VoteKeeper(height, self.validators, self.chain_id, verifier=self._verify)
        self._proposals: dict[int, dict[bytes, Proposal]] = {}
        self._first_proposal: dict[int, bytes] = {}
        self._blocks: dict[bytes, ProposalMessage] = {}
        self._validity: dict[bytes, bool | None] = {}
        self._fired: set[tuple[int, int]] = set()
        self._own_proposals: dict[int, ProposalMessage] = {}  # our votes are in the keeper
        self._awaiting_value = False
        # Blocks whose timestamp was too far ahead of our clock when checked:
        # not valid for our prevote until our clock gets there (see `_valid_now`).
        self._early: dict[bytes, int] = {}
        # The highest round each validator showed at this height, in a message
        # whose signature verified, kept even beyond `rounds_ahead_max` (L55).
        self._round_of: dict[int, int] = {}
        self._skip_to: int | None = None  # L55's target, recomputed when None
        if self._signer is not None:
            self._signer.enter_height(height)

    def _enter_height(self) -> None:
        if self.params.empty_block_interval_ms:
            self._schedule_timeout(TimeoutKind.EMPTY_BLOCK, self.params.empty_block_interval_ms)
        if not self.config.wait_for_txs:
            self._start_round(0)
        buffered, self._future, self._future_proposals = self._future, {}, 0
        for messages in buffered.values():
            for message in messages:  # their signatures verified when buffered
                if isinstance(message, Vote):
                    self._on_vote(message, verified=True)
                else:
                    self._on_proposal(message, verified=True)
        self._quiet = False  # a new height: the rules must look

    def _resume(self, state: SigningState) -> None:
        """Resume a height after a restart: the locks and their polkas, the valid
        block, and our own votes, sent again (peers may still wait for them)."""
        assert self._signer is not None
        self._restore_locks(state)
        own = self._signer.own_votes()
        for vote in own:
            self._keeper.add(vote, verified=True)
            self._saw_round(vote.validator, vote.round)
            self._emit(Broadcast(vote))
        kinds = {v.kind for v in own if v.round == state.round}
        step = Step.PROPOSE
        if VoteKind.PRECOMMIT in kinds:
            step = Step.PRECOMMIT
        elif VoteKind.PREVOTE in kinds:
            step = Step.PREVOTE
        self._start_round(state.round, step)

    def _restore_locks(self, state: SigningState) -> None:
        """The lock and valid value of a stored state, unless the state shows
        they belong to another height: a state written before locks were reset
        between heights may carry the last height's lock, with its polka (of
        that height) and its valid proposal. Such locks are dropped. Any other
        lock is kept even if its polka does not add up (a damaged store):
        keeping a lock can cost liveness, dropping a real one could cost safety."""
        proposal = state.valid_proposal
        stale = any(vote.height != state.height for vote in state.polka) or (
            proposal is not None and proposal.height != state.height
        )
        if stale:
            self.stats["signing_state_locks_dropped"] += 1
            self._sync_locks()  # what the next signature persists: no stale lock
            return
        for vote in state.polka:
            self._keeper.add(vote)  # verified again: cheap, and the store may be damaged
        for round, value in (
            (state.locked_round, state.locked_block_id),
            (state.valid_round, state.valid_block_id),
        ):
            if round >= 0 and not self._keeper.has_quorum_for(round, VoteKind.PREVOTE, value):
                self.stats["signing_state_lock_unjustified"] += 1
        self.locked_round, self.locked_value = state.locked_round, state.locked_block_id
        self.valid_round, self.valid_value = state.valid_round, state.valid_block_id
        if proposal is not None and proposal.block_id == state.valid_block_id:
            value = proposal.block_id
            self._blocks[value] = ProposalMessage(proposal, state.valid_parent_certificate)
            self._validity[value] = True  # validated before it became valid

    def _start_round(self, round: int, resume: Step = Step.PROPOSE) -> None:
        """L11-L21 StartRound(round); `resume`: the step a restarted node had
        reached in it (past PROPOSE it has voted, so it does not propose)."""
        self.round = round  # L12
        self.round_step = Step.PROPOSE  # L13
        self._quiet = False
        self._awaiting_value = False
        self._schedule_timeout(TimeoutKind.REBROADCAST, self.config.rebroadcast_ms)
        if resume is not Step.PROPOSE:
            self.round_step = resume
        elif self.index is not None and self.proposer(self.height, round) == self.index:  # L14
            self._propose()  # L15-L19
        # L21 schedules OnTimeoutPropose for non-proposers. Deviation: the
        # proposer schedules it too, so a proposer that cannot build or sign
        # (say, its signer refuses after a restart) still moves on.
        self._schedule_timeout(TimeoutKind.PROPOSE, self._timeout_ms(TimeoutKind.PROPOSE))

    def _propose(self) -> None:
        """L15-L19: propose validValue if we have it, else ask for a new value."""
        valid = self._blocks.get(self.valid_value) if self.valid_value else None
        if valid is not None:  # L15-L16
            self._sign_proposal(valid.proposal.block, self.valid_round, valid.parent_certificate)
            return
        self._awaiting_value = True  # L18 getValue(), answered by ValueReady
        self._emit(
            RequestValue(
                height=self.height,
                round=self.round,
                proposer=self.index,
                parent_id=self.anchor.block_id,
                last_commit_id=self.anchor.commit_id,
                timestamp_ms_min=self.anchor.timestamp_ms + 1,
                max_gas=self.params.max_block_gas,
                max_txs=self.params.max_block_txs,
            )
        )

    def _timeout_ms(self, kind: TimeoutKind) -> int:
        p = self.params
        base, delta = {
            TimeoutKind.PROPOSE: (p.timeout_propose_ms, p.timeout_propose_delta_ms),
            TimeoutKind.PREVOTE: (p.timeout_prevote_ms, p.timeout_prevote_delta_ms),
            TimeoutKind.PRECOMMIT: (p.timeout_precommit_ms, p.timeout_precommit_delta_ms),
        }[kind]
        return base + delta * self.round

    def _schedule_timeout(self, kind: TimeoutKind, delay_ms: int) -> None:
        self._emit(ScheduleTimeout(kind, self.height, self.round, delay_ms))

    # ------------------------------------------------------------ signing

    def _sign_proposal(
        self, block: Block, pol_round: int, parent_certificate: CommitCertificate | None
    ) -> None:
        """L19 broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩."""
        assert self._signer is not None
        assert self.index is not None
        value = block_id(block.header)
        try:
            signature, changed = self._signer.sign_proposal(
                self.height, self.round, pol_round, value
            )
        except SigningRefusedError as exc:
            self.stats[f"signing_refused_{exc.reason}"] += 1
            return
        if changed:
            self._emit(PersistSigningState(self._signer.state))
        proposal = Proposal(
            self.chain_id, self.height, self.round, pol_round, value, self.index, signature, block
        )
        pol = []
        if pol_round >= 0:  # the proof of lock travels with the proposal
            pol = [
                vote
                for vote in self._keeper.votes(pol_round, VoteKind.PREVOTE)
                if vote.block_id == value
            ]
        message = ProposalMessage(proposal, parent_certificate, pol)
        self._emit(Broadcast(message))
        self._own_proposals[self.round] = message
        self._record_proposal(message, trusted=True)

    def _vote(self, kind: VoteKind, value: bytes) -> None:
        """Sign, persist, broadcast and count our own vote (observers only move on)."""
        if self._signer is None or self.index is None:
            return
        try:
            signature, changed = self._signer.sign_vote(kind, self.height, self.round, value)
        except SigningRefusedError as exc:
            # After a restart: the vote it did sign at this step is among the
            # own votes `start` sent again and the keeper re-sends.
            self.stats[f"signing_refused_{exc.reason}"] += 1
            return
        if changed:
            self._emit(PersistSigningState(self._signer.state))
        vote = Vote(self.chain_id, kind, self.height, self.round, value, self.index, signature)
        self._emit(Broadcast(vote))
        self._keeper.add(vote, verified=True)

    def _sync_locks(self) -> None:
        """Hand the lock, the valid value and their polkas to the signer's state."""
        if self._signer is None:
            return
        pairs = {(self.locked_round, self.locked_value), (self.valid_round, self.valid_value)}
        polka = [
            vote
            for round, value in sorted(pairs)
            if round >= 0
            for vote in self._keeper.votes(round, VoteKind.PREVOTE)
            if vote.block_id == value
        ]
        valid = self._blocks.get(self.valid_value) if self.valid_round >= 0 else None
        self._signer.set_locks(
            self.locked_round,
            self.locked_value,
            self.valid_round,
            self.valid_value,
            polka,
            None if valid is None else valid.proposal,
            None if valid is None else valid.parent_certificate,
        )

    # ------------------------------------------------------------ inputs

    def _admit(self, height: int, round: int, message: ProposalMessage | Vote) -> bool:
        """Is a message for now? Buffer the next height's; note the round of a
        far one; drop the rest, counted."""
        if height < self.height:
            self.stats["message_stale"] += 1
        elif height == self.height + 1:
            self._buffer_next_height(message)
        elif height > self.height + 1:
            self.stats["message_far_future"] += 1
        elif round > self.round + self.config.rounds_ahead_max:
            self.stats["message_round_too_far"] += 1
            self._note_far_round(message)
        else:
            return True
        return False

    def _note_far_round(self, message: ProposalMessage | Vote) -> None:
        """A message too many rounds ahead to keep still shows that its
        validator got that far; L55 counts it, once its signature verifies
        (or anyone could move us to any round). One check per validator and
        new round: a validator can cost us a verification only by going higher."""
        validator, round = _validator_round(message)
        if not 0 <= validator < len(self.validators):
            return
        if round <= self._round_of.get(validator, -1):
            return
        if self._signed(message):
            self._saw_round(validator, round)
        else:
            self.stats["message_round_too_far_bad_signature"] += 1

    def _signed(self, message: ProposalMessage | Vote) -> bool:
        """Does the signature verify (and, for a proposal, is it well formed)?"""
        if isinstance(message, ProposalMessage):
            return self._admission.proposal(message.proposal) is None
        return self._keeper.signature_ok(message)

    def _saw_round(self, validator: int | None, round: int) -> None:
        if validator is not None and round > self._round_of.get(validator, -1):
            self._round_of[validator] = round
            # Only rounds above ours can move L55's target (ours only grows).
            if round > self.round:
                self._skip_to = None
                self._quiet = False

    def _buffer_next_height(self, message: ProposalMessage | Vote) -> None:
        """Peers a step ahead: keep their messages for when we get there.

        Bounded per validator, and only once the signature verifies: a peer
        can fill its own share, never another validator's. A message dropped
        here may not come back soon (gossip drops a repeat it has seen), so a
        byzantine validator must not be able to crowd out honest ones."""
        config = self.config
        validator = _validator_round(message)[0]
        if not 0 <= validator < len(self.validators):
            self.stats["message_future_unknown_validator"] += 1
            return
        kept = self._future.setdefault(validator, [])
        proposal = isinstance(message, ProposalMessage)
        if message in kept:
            self.stats["message_future_duplicate"] += 1
        elif len(kept) >= config.future_messages_per_validator_max or (
            proposal and self._future_proposals >= config.future_proposals_max
        ):
            self.stats["message_future_dropped"] += 1
        elif not self._signed(message):
            self.stats["message_future_bad_signature"] += 1
        else:
            kept.append(message)
            self._future_proposals += proposal

    def _on_vote(self, vote: Vote, *, verified: bool = False) -> None:
        self._quiet = True  # unless the vote changes something below
        if vote.chain_id != self.chain_id:
            self.stats["vote_wrong_chain"] += 1
            return
        if not self._admit(vote.height, vote.round, vote):
            return
        self._count_vote(vote, verified=verified)

    def _count_vote(self, vote: Vote, *, verified: bool) -> None:
        result = self._keeper.add(vote, verified=verified)
        self.stats[f"vote_{result.status.value}"] += 1
        if result.evidence is not None:
            self._emit(ReportEvidence(result.evidence))
        if result.status is VoteStatus.ADDED or result.status is VoteStatus.EQUIVOCATION:
            self._quiet = False
            self._saw_round(vote.validator, vote.round)
        if result.status is VoteStatus.ADDED:
            self._wake()

    def _wake(self) -> None:
        """A peer works on this height: start it even if our mempool looked empty."""
        if self.round_step is Step.WAITING:
            self._start_round(0)

    def _on_proposal(self, message: ProposalMessage, *, verified: bool = False) -> None:
        self._quiet = True  # unless it is recorded below
        proposal = message.proposal
        if proposal.chain_id != self.chain_id:
            self.stats["proposal_wrong_chain"] += 1
            return
        if not self._admit(proposal.height, proposal.round, message):
            return
        problem = None if verified else self._admission.proposal(proposal)
        if problem is not None:
            self.stats[f"proposal_{problem}"] += 1
            return
        self._quiet = False
        self._saw_round(proposal.validator, proposal.round)
        self._wake()
        self._add_proof_of_lock(message)
        self._record_proposal(message, trusted=False)

    def _add_proof_of_lock(self, message: ProposalMessage) -> None:
        """Count the prevotes a proposal carries for its pol_round (each verified,
        and only those that are what they claim to prove)."""
        proposal = message.proposal
        if not message.pol:
            return
        if proposal.pol_round < 0 or len(message.pol) > len(self.validators):
            self.stats["proposal_pol_refused"] += 1
            return
        for vote in message.pol:
            if (
                vote.kind is VoteKind.PREVOTE
                and vote.height == proposal.height
                and vote.round == proposal.pol_round
                and vote.block_id == proposal.block_id
                and vote.chain_id == self.chain_id
            ):
                self._count_vote(vote, verified=False)
            else:
                self.stats["proposal_pol_vote_refused"] += 1

    def _record_proposal(self, message: ProposalMessage, *, trusted: bool) -> None:
        proposal = message.proposal
        by_round = self._proposals.setdefault(proposal.round, {})
        value = proposal.block_id
        if value in by_round:
            self.stats["proposal_duplicate"] += 1
            return
        if len(by_round) >= self.config.proposals_per_round_max and not self._endorsed(
            proposal.round, value
        ):
            self.stats["proposal_dropped"] += 1
            return
        if by_round:
            self.stats["proposal_equivocation"] += 1
        by_round[value] = proposal
        self._first_proposal.setdefault(proposal.round, value)
        self._blocks.setdefault(value, message)
        if trusted:
            self._validity[value] = True
        elif value not in self._validity:
            self._check_block(message)

    def _endorsed(self, round: int, value: bytes) -> bool:
        """Did more than 1/3 of the power vote for `value` in `round`? Then an
        honest validator did, so it is the proposal that matters, however many
        others an equivocating proposer sent first (and there is at most one
        such value for each honest validator, so memory stays bounded)."""
        return any(
            self.validators.is_one_third(self._keeper.power_for(round, kind, value))
            for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT)
        )

    def _check_block(self, message: ProposalMessage) -> None:
        """valid(v), part one: what the core can decide alone; then ask the driver.

        The clock check is kept apart: a block that is too far ahead of our
        clock now may not be later, so it is remembered as early rather than
        invalid (see `_valid_now`)."""
        value = message.proposal.block_id
        problem = self._admission.block(message, self.anchor)
        if problem is not None:
            self.stats[f"block_invalid_{problem}"] += 1
            self._validity[value] = False
            return
        timestamp_ms = message.proposal.block.header.timestamp_ms
        if timestamp_ms > self._now + self.config.clock_drift_ms_max:
            self.stats["block_early"] += 1
            self._early[value] = timestamp_ms
        self._validity[value] = None
        self._emit(ValidateBlock(self.height, message.proposal.block))

    def _on_validated(self, result: BlockValidated) -> None:
        if result.block_id in self._validity and self._validity[result.block_id] is None:
            self._validity[result.block_id] = result.valid
            if not result.valid:
                self.stats[f"block_invalid_{result.reason or 'state'}"] += 1

    def _on_value(self, ready: ValueReady) -> None:
        if not (
            self._awaiting_value
            and (ready.height, ready.round) == (self.height, self.round)
            and self.round_step is Step.PROPOSE
        ):
            self.stats["value_late"] += 1
            return
        self._awaiting_value = False
        # A fresh value has no proof-of-lock round, whatever validRound says.
        self._sign_proposal(ready.block, -1, self.anchor.certificate)

    def _on_txs(self, _: TxsAvailable) -> None:
        self._wake()

    def _on_decided(self, decided: DecidedBlock) -> None:
        """Catch-up: a finalized block from a peer, trusted once its certificate verifies."""
        header = decided.block.header
        if header.height != self.height:
            self.stats["decided_wrong_height"] += 1
            return
        problem = self._admission.decided(decided, self.anchor)
        if problem is not None:
            self.stats[f"decided_{problem}"] += 1
            return
        parent = None
        if header.last_commit_id != self.anchor.commit_id:
            parent = decided.parent_certificate
        self._commit(decided.block, decided.certificate, parent)

    def _on_timeout(self, timeout: TimeoutElapsed) -> None:
        if timeout.height != self.height:
            return
        kind = timeout.kind
        if kind is TimeoutKind.EMPTY_BLOCK:
            self._wake()
        elif timeout.round != self.round:
            return
        elif kind is TimeoutKind.PROPOSE and self.round_step is Step.PROPOSE:  # L57-L60
            self._vote(VoteKind.PREVOTE, NIL)  # L59
            self.round_step = Step.PREVOTE  # L60
        elif kind is TimeoutKind.PREVOTE and self.round_step is Step.PREVOTE:  # L61-L64
            self._vote(VoteKind.PRECOMMIT, NIL)  # L63
            self.round_step = Step.PRECOMMIT  # L64
        elif kind is TimeoutKind.PRECOMMIT:  # L65-L67
            self._start_round(self.round + 1)
        elif kind is TimeoutKind.REBROADCAST and self.round_step is not Step.WAITING:
            self._rebroadcast()

    def _rebroadcast(self) -> None:
        """A round has lasted `rebroadcast_ms`: re-send what peers may lack.

        Our proposals and every vote we hold (ours and relayed) of this round
        and the few before it, and the prevotes of the rounds a proof of lock
        may point to (our locked and valid rounds, the pol_round of this
        round's proposals). The paper assumes gossip eventually delivers to
        every correct process any message one of them sent or received,
        byzantine ones included; on lossy links, and across crashes that wipe
        a node's memory of what it sent, that takes anti-entropy like this.
        Without it, nodes left in a round others already left could never
        complete it, and a node that missed a polka (or got an equivocator's
        other vote) could never accept (L28) the value others are locked on.
        CometBFT's gossip re-sends votes for the same reasons.
        """
        first = max(0, self.round - self.config.rebroadcast_rounds)
        votes: list[Vote] = []
        for round in range(first, self.round + 1):
            if round in self._own_proposals:
                self._emit(Broadcast(self._own_proposals[round]))
            for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
                votes.extend(self._keeper.votes(round, kind))
        pol_rounds = {self.locked_round, self.valid_round}
        pol_rounds.update(p.pol_round for p in self._proposals.get(self.round, {}).values())
        for round in sorted(r for r in pol_rounds if 0 <= r < first):
            votes.extend(self._keeper.votes(round, VoteKind.PREVOTE))
        # One fresh message: gossip would drop each vote re-sent as it was.
        for start in range(0, len(votes), VOTE_BUNDLE_MAX):
            self._emit(BroadcastVotes(votes[start : start + VOTE_BUNDLE_MAX]))
        self._schedule_timeout(TimeoutKind.REBROADCAST, self.config.rebroadcast_ms)

    # ------------------------------------------------------------ the upon rules

    def _run_rules(self) -> None:
        rules = (
            self._rule_decide,
            self._rule_skip_round,
            self._rule_prevote_proposal,
            self._rule_prevote_timeout,
            self._rule_lock,
            self._rule_precommit_nil,
            self._rule_precommit_timeout,
        )
        for _ in range(RULE_FIRINGS_PER_INPUT_MAX):
            if not any(rule() for rule in rules):
                return
        raise AssertionError("consensus rules keep firing")

    def _valid(self, value: bytes) -> bool:
        """valid(v) as a quorum's votes need it (L36, L49): more than 1/3 of the
        power is honest among them and checked the timestamp on its own clock,
        so ours is not consulted (a slow clock must not keep a node from
        deciding what the others decided)."""
        return self._validity.get(value) is True

    def _valid_now(self, value: bytes) -> bool:
        """valid(v) for our own prevote (L22, L28): also not too far ahead of our clock."""
        if not self._valid(value):
            return False
        timestamp_ms = self._early.get(value)
        if timestamp_ms is None:
            return True
        if timestamp_ms > self._now + self.config.clock_drift_ms_max:
            return False
        del self._early[value]
        return True

    def _rule_decide(self) -> bool:
        """L49-L54: a proposal v with 2f+1 precommits for id(v) in any round decides v.

        Deviation: the block may come from any round's proposal (it is named
        by its hash), not only from the deciding round's; this is as safe and
        decides sooner when that round's proposal was lost.
        """
        for round, value in self._keeper.decisions():
            message = self._blocks.get(value)
            if message is None or not self._valid(value):  # L50
                continue
            certificate = self._keeper.certificate(round, value)
            parent = None
            if message.proposal.block.header.last_commit_id != self.anchor.commit_id:
                parent = message.parent_certificate
            self._commit(message.proposal.block, certificate, parent)  # L51
            return True
        return False

    def _commit(
        self, block: Block, certificate: CommitCertificate, parent: CommitCertificate | None
    ) -> None:
        self._emit(Commit(block, certificate, parent))
        header = block.header
        self.anchor = Anchor(header.height, block_id(header), header.timestamp_ms, certificate)
        self._reset_height(header.height + 1)  # L52-L53
        # The signer's copy of the locks must reset too: the next height's first
        # signature persists it, and a restart restores locks from it.
        self._sync_locks()
        self._enter_height()  # L54 StartRound(0), when the height starts

    def _rule_skip_round(self) -> bool:
        """L55-L56: f+1 validators in a higher round: go there.

        Deviation: "f+1 in round r" is read as "validators holding more than
        1/3 of the power showed a round of at least r", taking the highest
        such r. At least one of them is honest and got to r or beyond, so
        round r has begun; as in the paper, only liveness depends on it. It
        matters for a node far behind: peers re-send only their latest
        rounds, which need not be the same round for f+1 of them."""
        if self._skip_to is None:
            self._skip_to = self._highest_round_with_a_third()
        if self._skip_to <= self.round:
            return False
        self._start_round(self._skip_to)  # L56
        return True

    def _highest_round_with_a_third(self) -> int:
        power = 0
        for validator, round in sorted(self._round_of.items(), key=lambda e: -e[1]):
            power += self.validators.powers[validator]
            if self.validators.is_one_third(power):
                return round
        return -1

    def _rule_prevote_proposal(self) -> bool:
        """L22-L27 (no proof-of-lock round) and L28-L33 (proof of lock in round vr)."""
        if self.round_step is not Step.PROPOSE:
            return False
        value = self._first_proposal.get(self.round)
        if value is None or self._validity.get(value) is None:
            return False  # no proposal yet, or valid(v) not known yet
        vr = self._proposals[self.round][value].pol_round
        if vr == -1:  # L22
            acceptable = self.locked_round == -1 or self.locked_value == value  # L23
        elif self._keeper.has_quorum_for(vr, VoteKind.PREVOTE, value):  # L28
            acceptable = self.locked_round <= vr or self.locked_value == value  # L29
        else:
            return False  # L28 waits for the polka of round vr
        chosen = value if self._valid_now(value) and acceptable else NIL
        self._vote(VoteKind.PREVOTE, chosen)  # L24/L26, L30/L32
        self.round_step = Step.PREVOTE  # L27, L33
        return True

    def _rule_prevote_timeout(self) -> bool:
        """L34-L35: 2f+1 prevotes of any kind, the first time: start the prevote timer."""
        if self.round_step is not Step.PREVOTE or (34, self.round) in self._fired:
            return False
        if not self._keeper.has_quorum_any(self.round, VoteKind.PREVOTE):
            return False
        self._fired.add((34, self.round))
        self._schedule_timeout(TimeoutKind.PREVOTE, self._timeout_ms(TimeoutKind.PREVOTE))
        return True

    def _rule_lock(self) -> bool:
        """L36-L43: a polka for a valid proposal in this round: lock, precommit (if prevoting)."""
        if self.round_step < Step.PREVOTE or (36, self.round) in self._fired:
            return False
        value = self._keeper.quorum_value(self.round, VoteKind.PREVOTE)
        if value is None or value not in self._blocks or not self._valid(value):
            return False
        self._fired.add((36, self.round))
        if self.round_step is Step.PREVOTE:  # L37
            self.locked_value, self.locked_round = value, self.round  # L38-L39
            self.valid_value, self.valid_round = value, self.round  # L42-L43
            self._sync_locks()  # persisted with the precommit's signature
            self._vote(VoteKind.PRECOMMIT, value)  # L40
            self.round_step = Step.PRECOMMIT  # L41
        elif (self.valid_value, self.valid_round) != (value, self.round):
            self.valid_value, self.valid_round = value, self.round  # L42-L43
            self._sync_locks()
            if self._signer is not None:  # no signature follows: persist the polka now
                self._emit(PersistSigningState(self._signer.state))
        return True

    def _rule_precommit_nil(self) -> bool:
        """L44-L46: 2f+1 prevotes for nil: precommit nil."""
        if self.round_step is not Step.PREVOTE:
            return False
        if not self._keeper.has_quorum_for(self.round, VoteKind.PREVOTE, NIL):
            return False
        self._vote(VoteKind.PRECOMMIT, NIL)  # L45
        self.round_step = Step.PRECOMMIT  # L46
        return True

    def _rule_precommit_timeout(self) -> bool:
        """L47-L48: 2f+1 precommits of any kind, the first time: start the precommit timer."""
        if self.round_step is Step.WAITING or (47, self.round) in self._fired:
            return False
        if not self._keeper.has_quorum_any(self.round, VoteKind.PRECOMMIT):
            return False
        self._fired.add((47, self.round))
        self._schedule_timeout(TimeoutKind.PRECOMMIT, self._timeout_ms(TimeoutKind.PRECOMMIT))
        return True


def _validator_round(message: ProposalMessage | Vote) -> tuple[int, int]:
    if isinstance(message, Vote):
        return message.validator, message.round
    return message.proposal.validator, message.proposal.round
