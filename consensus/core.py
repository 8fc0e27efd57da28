"""The Tendermint state machine: "The latest gossip on BFT consensus"
(Buchman, Kwon, Milosevic, arXiv:1807.04938), Algorithm 1, sans-IO.

`Core.step(input, now_ms) -> list[Action]` is the whole interface: no clock,
no I/O, no randomness. Each handler records what an input says; then the
paper's `upon` rules (`rules.py`) are evaluated against the state until none
fires, each effect carried out here. This module holds the height and round
(L10-L21, L52-L67) and the interface; beside it are what peers send
(`inbox.py`), what we say (`voice.py`), and what a height keeps: votes
(`votekeeper.py`), proposals, blocks and locks (`proposals.py`). Lines of
the paper are cited (`# L22`); deviations from its letter are marked
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

from consensus.admission import Admission
from consensus.anchor import Anchor
from consensus.config import CoreConfig
from consensus.inbox import Heard, Intake, NextHeight, PeerRounds
from consensus.messages import (
    Action,
    BlockValidated,
    Broadcast,
    Commit,
    CoreStatistics,
    DecidedBlock,
    Input,
    ProposalMessage,
    RequestValue,
    ScheduleTimeout,
    Step,
    TimeoutElapsed,
    TimeoutKind,
    TxsAvailable,
    ValueReady,
)
from consensus.proposals import Blocks, Locks, Proposals
from consensus.proposer import ProposerSchedule
from consensus.rules import (
    Decide,
    Effect,
    Lock,
    Precommit,
    Prevote,
    Rules,
    SkipRound,
    StartTimeout,
    UpdateValid,
)
from consensus.signer import Signer
from consensus.voice import Voice, resend
from consensus.votekeeper import Verifier, VoteKeeper
from sequencer.certificate import ValidatorSet
from sequencer.crypto import PrivateKey, verify_signature
from sequencer.ids import BlockFacts
from sequencer.types import (
    NIL,
    Block,
    CommitCertificate,
    ConsensusParams,
    SigningState,
    Vote,
    VoteKind,
)

__all__ = ["Anchor", "Core", "CoreConfig", "CoreStatistics"]

# Every rule that fires changes the state for good; this only guards our bugs.
RULE_FIRINGS_PER_INPUT_MAX = 10_000


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
        self.config = config = config or CoreConfig()
        self._verify = verifier
        self._schedule = ProposerSchedule(validators.powers)
        self._admission = Admission(
            chain_id=chain_id,
            validators=validators,
            schedule=self._schedule,
            params=params,
            verifier=verifier,
            clock_drift_ms_max=config.clock_drift_ms_max,
        )
        index = None if key is None else validators.index_of(key.public_key)
        self.index: int | None = index  # None: an observer, never signs
        self._signer = None if index is None else Signer(key, chain_id, signing_state, index)
        self.stats: Counter[str] = Counter()
        self._actions: list[Action] = []
        self._voice = Voice(self._signer, index, chain_id, self.stats, self._emit)
        self._future = NextHeight(
            len(validators), config.future_messages_per_validator_max, config.future_proposals_max
        )
        self._now = 0
        self._quiet = False  # the input changed nothing the rules read
        # When the latest height's round 0 started (min_block_interval_ms counts from it).
        self._height_began_ms: int | None = None
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

    def statistics(self) -> CoreStatistics:
        keeper = self._keeper
        return CoreStatistics(
            self.height,
            self.round,
            int(self.round_step),
            keeper.vote_count(),
            dict(self.stats),
            dict(keeper.rejected),
        )

    # The lock and the valid value (L36-L43), as Algorithm 1 names them.
    @property
    def locked_round(self) -> int:
        return self._locks.locked_round

    @property
    def locked_value(self) -> bytes:
        return self._locks.locked_value

    @property
    def valid_round(self) -> int:
        return self._locks.valid_round

    @property
    def valid_value(self) -> bytes:
        return self._locks.valid_value

    def _begin(self, now_ms: int) -> None:
        self._now = now_ms
        self._actions = []
        self._quiet = False

    def _finish(self) -> list[Action]:
        # The rules are a function of the state, and none fired when they were
        # last evaluated: an input that changed nothing (a duplicate, a stale
        # or refused message: most of what a node receives) cannot make one
        # fire. Only validity for our prevote also depends on the clock.
        if not (self._quiet and not self._blocks.any_early):
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
        self._keeper = VoteKeeper(height, self.validators, self.chain_id, verifier=self._verify)
        self._proposals = Proposals(
            self._keeper, self.validators, self.config.proposals_per_round_max
        )
        self._blocks = Blocks(self.config.clock_drift_ms_max)
        self._locks = Locks()
        self._rounds = PeerRounds(self.validators)
        self._rules = Rules(self._keeper, self._proposals, self._blocks, self._locks, self._rounds)
        self._intake = Intake(
            chain_id=self.chain_id,
            validators=self.validators,
            config=self.config,
            admission=self._admission,
            anchor=self.anchor,
            keeper=self._keeper,
            proposals=self._proposals,
            blocks=self._blocks,
            rounds=self._rounds,
            future=self._future,
            stats=self.stats,
            emit=self._emit,
        )
        self._awaiting_value = False
        self._interval_timer = False  # a BLOCK_INTERVAL timeout is scheduled
        if self._signer is not None:
            self._signer.enter_height(height)

    def _enter_height(self) -> None:
        if self.params.empty_block_interval_ms:
            self._schedule_timeout(TimeoutKind.EMPTY_BLOCK, self.params.empty_block_interval_ms)
        if not self.config.wait_for_txs:
            self._start_round(0)
        for message, facts in self._future.take():  # admitted when buffered
            if isinstance(message, Vote):
                self._on_vote(message, verified=True)
            else:
                self._on_proposal(message, admitted=facts)
        self._quiet = False  # a new height: the rules must look

    def _resume(self, state: SigningState) -> None:
        """Resume a height after a restart: the locks and their polkas, the valid
        block, and our own votes, sent again (peers may still wait for them)."""
        assert self._signer is not None
        self._voice.restore_locks(state, self._locks, self._keeper, self._blocks)
        own = self._signer.own_votes()
        for vote in own:
            self._keeper.add(vote, verified=True)
            self._rounds.saw(vote.validator, vote.round, self.round)
            self._emit(Broadcast(vote))
        kinds = {v.kind for v in own if v.round == state.round}
        step = Step.PROPOSE
        if VoteKind.PRECOMMIT in kinds:
            step = Step.PRECOMMIT
        elif VoteKind.PREVOTE in kinds:
            step = Step.PREVOTE
        self._start_round(state.round, step)

    def _start_round(self, round: int, resume: Step = Step.PROPOSE) -> None:
        """L11-L21 StartRound(round); `resume`: the step a restarted node had
        reached in it (past PROPOSE it has voted, so it does not propose)."""
        if round == 0:
            self._height_began_ms = self._now
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
        locks = self._locks
        valid = self._blocks.get(locks.valid_value) if locks.valid_value else None
        if valid is not None:  # L15-L16
            self._sign_proposal(
                valid.proposal.block,
                locks.valid_round,
                valid.parent_certificate,
                self._blocks.facts(locks.valid_value),
            )
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

    def _commit(
        self,
        block: Block,
        certificate: CommitCertificate,
        offered_parent: CommitCertificate | None,
        facts: BlockFacts,
    ) -> None:
        """`offered_parent`: the parent certificate that came with the block;
        the block links to it, unless it links to ours (then it is not stored)."""
        header = block.header
        parent = None if header.last_commit_id == self.anchor.commit_id else offered_parent
        self._emit(Commit(block, certificate, parent, facts))
        self.anchor = Anchor(header.height, facts.block_id, header.timestamp_ms, certificate)
        self._reset_height(header.height + 1)  # L52-L53
        # The signer's copy of the locks must reset too: the next height's first
        # signature persists it, and a restart restores locks from it.
        self._sync_locks()
        self._enter_height()  # L54 StartRound(0), when the height starts

    # ------------------------------------------------------------ signing

    def _sign_proposal(
        self,
        block: Block,
        pol_round: int,
        parent_certificate: CommitCertificate | None,
        facts: BlockFacts,
    ) -> None:
        """L19, with the proof of lock (the polka of `pol_round`) attached."""
        value = facts.block_id
        pol = self._keeper.votes_for(pol_round, VoteKind.PREVOTE, value) if pol_round >= 0 else []
        message = self._voice.propose(
            self.height, self.round, pol_round, block, value, parent_certificate, pol
        )
        if message is not None:
            self._proposals.own[self.round] = message
            self._intake.record(message, facts, self._now, trusted=True)

    def _vote(self, kind: VoteKind, value: bytes) -> None:
        """Sign, persist, broadcast and count our own vote (observers only move on)."""
        vote = self._voice.vote(kind, self.height, self.round, value)
        if vote is not None:
            self._keeper.add(vote, verified=True)

    def _sync_locks(self) -> None:
        self._voice.sync_locks(self._locks, self._keeper, self._blocks)

    # ------------------------------------------------------------ peers' messages

    def _on_vote(self, vote: Vote, *, verified: bool = False) -> None:
        heard = self._intake.vote(vote, self.round, verified=verified)
        self._quiet = heard is Heard.NOTHING
        if heard is Heard.WORK:
            self._wake()

    def _on_proposal(self, message: ProposalMessage, *, admitted: BlockFacts | None = None) -> None:
        heard, facts = self._intake.proposal(message, self.round, admitted=admitted)
        self._quiet = heard is Heard.NOTHING
        if heard is Heard.WORK:
            assert facts is not None
            self._wake()
            self._intake.accept(message, facts, self.round, self._now)

    def _wake(self) -> None:
        """A peer works on this height: start it even if our mempool looked empty."""
        if self.round_step is Step.WAITING:
            self._start_round(0)

    # ------------------------------------------------------------ the driver's answers

    def _on_validated(self, result: BlockValidated) -> None:
        if self._blocks.validated(result.block_id, result.valid) and not result.valid:
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
        self._sign_proposal(ready.block, -1, self.anchor.certificate, ready.facts)

    def _on_txs(self, _: TxsAvailable) -> None:
        began = self._height_began_ms
        wait_ms = 0 if began is None else began + self.config.min_block_interval_ms - self._now
        if wait_ms <= 0:
            self._wake()
        elif self.round_step is Step.WAITING and not self._interval_timer:
            self._interval_timer = True
            self._schedule_timeout(TimeoutKind.BLOCK_INTERVAL, wait_ms)

    def _on_decided(self, decided: DecidedBlock) -> None:
        """Catch-up: a finalized block from a peer, trusted once its certificate verifies."""
        header = decided.block.header
        if header.height != self.height:
            self.stats["decided_wrong_height"] += 1
            return
        verdict = self._admission.decided(decided, self.anchor)
        if isinstance(verdict, str):
            self.stats[f"decided_{verdict}"] += 1
            return
        self._commit(decided.block, decided.certificate, decided.parent_certificate, verdict)

    def _on_timeout(self, timeout: TimeoutElapsed) -> None:
        if timeout.height != self.height:
            return
        kind = timeout.kind
        if kind is TimeoutKind.EMPTY_BLOCK or kind is TimeoutKind.BLOCK_INTERVAL:
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
            rounds_back = self.config.rebroadcast_rounds
            self._actions += resend(
                self.round, rounds_back, self._keeper, self._proposals, self._locks
            )
            self._schedule_timeout(TimeoutKind.REBROADCAST, self.config.rebroadcast_ms)

    # ------------------------------------------------------------ the rules' effects

    def _run_rules(self) -> None:
        for _ in range(RULE_FIRINGS_PER_INPUT_MAX):
            # A commit replaces `_rules` with the next height's: read it each time.
            effect = self._rules.next(self.round, self.round_step, self._now)
            if effect is None:
                return
            self._carry_out(effect)
        raise AssertionError("consensus rules keep firing")

    def _carry_out(self, effect: Effect) -> None:
        match effect:
            case Decide(round, value, message):
                certificate = self._keeper.certificate(round, value)
                block, facts = message.proposal.block, self._blocks.facts(value)
                self._commit(block, certificate, message.parent_certificate, facts)  # L51
            case SkipRound(round):
                self._start_round(round)  # L56
            case Prevote(value):
                self._vote(VoteKind.PREVOTE, value)  # L24/L26, L30/L32
                self.round_step = Step.PREVOTE  # L27, L33
            case StartTimeout(kind):
                self._schedule_timeout(kind, self._timeout_ms(kind))  # L35, L48
            case Lock(value):
                self._locks.lock(value, self.round)  # L38-L39, L42-L43
                self._sync_locks()  # persisted with the precommit's signature
                self._vote(VoteKind.PRECOMMIT, value)  # L40
                self.round_step = Step.PRECOMMIT  # L41
            case UpdateValid(value):
                self._locks.valid_value, self._locks.valid_round = value, self.round  # L42-L43
                self._sync_locks()
                self._voice.persist()  # no signature follows: persist the polka now
            case Precommit(value):
                self._vote(VoteKind.PRECOMMIT, value)  # L45
                self.round_step = Step.PRECOMMIT  # L46
