"""Peers' proposals and votes: routed, checked, counted and recorded.

    Intake       one height's intake: each message by height and round
    NextHeight   the next height's messages, buffered per validator
    PeerRounds   the highest round each validator showed at this height (L55)

A message of this height (and not too many rounds ahead) is checked and goes
into the vote keeper or the proposal book, where the rules read it; one of
the next height is buffered, one too many rounds ahead only noted for L55,
and the rest dropped. Every refusal is counted in the core's `stats`, never
raised: peers' bad input is not an error of ours. The buffers bound what a
byzantine validator can make us keep.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import Enum, auto

from consensus.admission import Admission
from consensus.anchor import Anchor
from consensus.config import CoreConfig
from consensus.messages import Action, ProposalMessage, ReportEvidence, ValidateBlock
from consensus.proposals import Blocks, Proposals, Recorded
from consensus.votekeeper import VoteKeeper, VoteStatus
from sequencer.certificate import ValidatorSet
from sequencer.ids import BlockFacts
from sequencer.types import Vote, VoteKind

__all__ = ["Heard", "Intake", "Message", "NextHeight", "PeerRounds"]

Message = ProposalMessage | Vote


def _sender(message: Message) -> tuple[int, int]:
    """(validator, round) of a proposal or a vote."""
    if isinstance(message, Vote):
        return message.validator, message.round
    return message.proposal.validator, message.proposal.round


class Heard(Enum):
    """What a peer's message did to the height."""

    NOTHING = auto()  # refused, stale, a duplicate, kept for later: the rules need not look
    NEWS = auto()  # it changed what the rules read
    # A new vote, or a proposal admitted (then `accept` it): a peer works on
    # this height, so it may start even if our mempool looked empty.
    WORK = auto()


class Intake:
    """One height's intake of peers' messages (each height gets its own).

    A proposal is taken in two calls, `proposal` (is it for now, well formed
    and signed?) and `accept` (its proof of lock and its block), so that the
    core can start a waiting height in between: its timers are scheduled
    before the block goes to the driver for checking. Our own proposals are
    recorded here too (`record`), so that a round's proposals are kept in
    one place, in the order they came."""

    def __init__(
        self,
        *,
        chain_id: str,
        validators: ValidatorSet,
        config: CoreConfig,
        admission: Admission,
        anchor: Anchor,
        keeper: VoteKeeper,
        proposals: Proposals,
        blocks: Blocks,
        rounds: PeerRounds,
        future: NextHeight,
        stats: Counter[str],
        emit: Callable[[Action], None],
    ) -> None:
        self._chain_id = chain_id
        self._validators = validators
        self._rounds_ahead_max = config.rounds_ahead_max
        self._admission = admission
        self._anchor = anchor
        self._height = anchor.height + 1
        self._keeper = keeper
        self._proposals = proposals
        self._blocks = blocks
        self._rounds = rounds
        self._future = future
        self._stats = stats
        self._emit = emit

    def vote(self, vote: Vote, round: int, *, verified: bool) -> Heard:
        """A vote, while we are in `round`; `verified`: its signature was checked."""
        if vote.chain_id != self._chain_id:
            self._stats["vote_wrong_chain"] += 1
            return Heard.NOTHING
        aside = self._route(vote.height, vote.round, vote, round)
        return self._count(vote, round, verified=verified) if aside is None else aside

    def proposal(
        self, message: ProposalMessage, round: int, *, admitted: BlockFacts | None
    ) -> tuple[Heard, BlockFacts | None]:
        """A proposal, while we are in `round`; `admitted`: its block's facts
        if it was admitted already (buffered for this height). WORK and the
        block's facts if it is for now (then `accept` it)."""
        proposal = message.proposal
        if proposal.chain_id != self._chain_id:
            self._stats["proposal_wrong_chain"] += 1
            return Heard.NOTHING, None
        aside = self._route(proposal.height, proposal.round, message, round)
        if aside is not None:
            return aside, None
        verdict = self._admission.proposal(proposal) if admitted is None else admitted
        if isinstance(verdict, str):
            self._stats[f"proposal_{verdict}"] += 1
            return Heard.NOTHING, None
        self._rounds.saw(proposal.validator, proposal.round, round)
        return Heard.WORK, verdict

    def accept(self, message: ProposalMessage, facts: BlockFacts, round: int, now_ms: int) -> None:
        """An admitted proposal: count its proof of lock, record it, check its block."""
        self._add_proof_of_lock(message, round)
        self.record(message, facts, now_ms, trusted=False)

    def record(
        self, message: ProposalMessage, facts: BlockFacts, now_ms: int, *, trusted: bool
    ) -> None:
        """Record a proposal; `trusted`: ours, its block valid without a check."""
        recorded = self._proposals.record(message.proposal)
        if recorded is not Recorded.NEW:
            self._stats[f"proposal_{recorded.value}"] += 1
        if recorded is Recorded.DUPLICATE or recorded is Recorded.DROPPED:
            return
        value = message.proposal.block_id
        self._blocks.add(message, facts)
        if trusted:
            self._blocks.trust(value)
        elif not self._blocks.checked(value):
            self._check_block(message, self._blocks.facts(value), now_ms)

    def _route(self, height: int, round: int, message: Message, current: int) -> Heard | None:
        """None if a message is for now. Else buffer the next height's, note
        the round of a far one, drop the rest, counted; and say what that did."""
        if height < self._height:
            self._stats["message_stale"] += 1
        elif height == self._height + 1:
            problem = self._future.add(message, self._admitted)
            if problem is not None:
                self._stats[f"message_future_{problem}"] += 1
        elif height > self._height + 1:
            self._stats["message_far_future"] += 1
        elif round > current + self._rounds_ahead_max:
            self._stats["message_round_too_far"] += 1
            return self._note_far_round(message, current)
        else:
            return None
        return Heard.NOTHING

    def _note_far_round(self, message: Message, current: int) -> Heard:
        """A message too many rounds ahead to keep still shows that its
        validator got that far; L55 counts it, once its signature verifies
        (or anyone could move us to any round). One check per validator and
        new round: a validator can cost us a verification only by going higher."""
        validator, round = _sender(message)
        if not 0 <= validator < len(self._validators):
            return Heard.NOTHING
        if round <= self._rounds.highest(validator):
            return Heard.NOTHING
        if self._admitted(message) is False:
            self._stats["message_round_too_far_bad_signature"] += 1
            return Heard.NOTHING
        return Heard.NEWS if self._rounds.saw(validator, round, current) else Heard.NOTHING

    def _admitted(self, message: Message) -> BlockFacts | bool:
        """Does the signature verify (and, for a proposal, is it well formed:
        then its block's facts)? False if not."""
        if isinstance(message, ProposalMessage):
            verdict = self._admission.proposal(message.proposal)
            return False if isinstance(verdict, str) else verdict
        return self._keeper.signature_ok(message)

    def _count(self, vote: Vote, round: int, *, verified: bool) -> Heard:
        result = self._keeper.add(vote, verified=verified)
        self._stats[f"vote_{result.status.value}"] += 1
        if result.evidence is not None:
            self._emit(ReportEvidence(result.evidence))
        if result.status is VoteStatus.ADDED:
            self._rounds.saw(vote.validator, vote.round, round)
            return Heard.WORK
        if result.status is VoteStatus.EQUIVOCATION:
            self._rounds.saw(vote.validator, vote.round, round)
            return Heard.NEWS
        return Heard.NOTHING

    def _add_proof_of_lock(self, message: ProposalMessage, round: int) -> None:
        """Count the prevotes a proposal carries for its pol_round (each verified,
        and only those that are what they claim to prove)."""
        proposal = message.proposal
        if not message.pol:
            return
        if proposal.pol_round < 0 or len(message.pol) > len(self._validators):
            self._stats["proposal_pol_refused"] += 1
            return
        for vote in message.pol:
            if (
                vote.kind is VoteKind.PREVOTE
                and vote.height == proposal.height
                and vote.round == proposal.pol_round
                and vote.block_id == proposal.block_id
                and vote.chain_id == self._chain_id
            ):
                # Whatever it did, the proposal's WORK already started the height.
                self._count(vote, round, verified=False)
            else:
                self._stats["proposal_pol_vote_refused"] += 1

    def _check_block(self, message: ProposalMessage, facts: BlockFacts, now_ms: int) -> None:
        """valid(v), part one: what the core can decide alone; then ask the driver.
        The clock check is kept apart (see `Blocks`)."""
        value = message.proposal.block_id
        problem = self._admission.block(message, self._anchor, facts)
        if problem is not None:
            self._stats[f"block_invalid_{problem}"] += 1
            self._blocks.reject(value)
            return
        timestamp_ms = message.proposal.block.header.timestamp_ms
        if self._blocks.await_verdict(value, timestamp_ms, now_ms):
            self._stats["block_early"] += 1
        self._emit(ValidateBlock(self._height, message.proposal.block, facts))


class NextHeight(Mapping[int, Sequence[Message]]):
    """Peers a step ahead: their messages, kept for when we get there.

    Bounded per validator, and only once the signature verifies: a peer
    can fill its own share, never another validator's. A message dropped
    here may not come back soon (gossip drops a repeat it has seen), so a
    byzantine validator must not be able to crowd out honest ones."""

    def __init__(self, validators: int, per_validator_max: int, proposals_max: int) -> None:
        self._validators = validators
        self._per_validator_max = per_validator_max
        self._proposals_max = proposals_max  # in all: they carry whole blocks
        self._kept: dict[int, list[Message]] = {}  # validator -> its messages
        self._facts: dict[bytes, BlockFacts] = {}  # a kept proposal's block's, by value
        self._proposals = 0

    def __getitem__(self, validator: int) -> Sequence[Message]:
        return self._kept[validator]

    def __iter__(self) -> Iterator[int]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def add(self, message: Message, admitted: Callable[[Message], BlockFacts | bool]) -> str | None:
        """Keep a message of the next height; None if kept, else why not.
        `admitted` is asked last: it is the expensive check (False: refused;
        a proposal's block's facts, kept with it)."""
        validator = _sender(message)[0]
        if not 0 <= validator < self._validators:
            return "unknown_validator"
        kept = self._kept.setdefault(validator, [])
        proposal = isinstance(message, ProposalMessage)
        if message in kept:
            return "duplicate"
        if len(kept) >= self._per_validator_max or (
            proposal and self._proposals >= self._proposals_max
        ):
            return "dropped"
        verdict = admitted(message)
        if verdict is False:
            return "bad_signature"
        kept.append(message)
        if isinstance(verdict, BlockFacts) and isinstance(message, ProposalMessage):
            self._facts[message.proposal.block_id] = verdict
        self._proposals += proposal
        return None

    def take(self) -> list[tuple[Message, BlockFacts | None]]:
        """Every kept message, in the order kept by validator (their signatures
        verified), with a proposal's block's facts; the buffer is empty after."""
        kept, self._kept, self._proposals = self._kept, {}, 0
        facts, self._facts = self._facts, {}
        return [
            (message, _facts_of(message, facts))
            for messages in kept.values()
            for message in messages
        ]


def _facts_of(message: Message, facts: Mapping[bytes, BlockFacts]) -> BlockFacts | None:
    return facts[message.proposal.block_id] if isinstance(message, ProposalMessage) else None


class PeerRounds:
    """The highest round each validator showed at this height, in a message
    whose signature verified, kept even beyond `rounds_ahead_max` (L55)."""

    def __init__(self, validators: ValidatorSet) -> None:
        self._validators = validators
        self._round_of: dict[int, int] = {}
        self._skip_to: int | None = None  # L55's target, recomputed when None

    def highest(self, validator: int) -> int:
        """The highest round `validator` showed (-1: none)."""
        return self._round_of.get(validator, -1)

    def saw(self, validator: int, round: int, current: int) -> bool:
        """`validator` showed `round`. True if that can move L55's target:
        only rounds above ours (`current`) can, as ours only grows."""
        if round <= self.highest(validator):
            return False
        self._round_of[validator] = round
        if round <= current:
            return False
        self._skip_to = None
        return True

    def skip_target(self) -> int:
        """The highest round r such that validators holding more than 1/3 of
        the power showed a round of at least r (-1: none)."""
        if self._skip_to is None:
            power, self._skip_to = 0, -1
            for validator, round in sorted(self._round_of.items(), key=lambda e: -e[1]):
                power += self._validators.powers[validator]
                if self._validators.is_one_third(power):
                    self._skip_to = round
                    break
        return self._skip_to
