"""What one height keeps about proposed values, for the core's rules.

    Proposals   the proposals of each round, by value, and our own
    Blocks      the block of each proposed value, its facts, and valid(v) as far as known
    Locks       lockedValue/lockedRound and validValue/validRound (L36-L43)

The core decides what to record and when (it checks the signatures, counts
the refusals and asks the driver); these hold what it recorded and answer
its lookups. Nothing here signs or sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from consensus.messages import ProposalMessage
from consensus.votekeeper import VoteKeeper
from sequencer.certificate import ValidatorSet
from sequencer.ids import BlockFacts, block_facts
from sequencer.types import NIL, Proposal, Vote, VoteKind

__all__ = ["Blocks", "Locks", "Proposals", "Recorded"]

_NONE: Mapping[bytes, Proposal] = MappingProxyType({})


class Recorded(Enum):
    """What became of a proposal offered to `Proposals.record`."""

    NEW = "new"
    EQUIVOCATION = "equivocation"  # another value of the round's proposer, kept too
    DUPLICATE = "duplicate"
    DROPPED = "dropped"  # the round is full of values no third of the power voted for


class Proposals:
    """The proposals of each round of one height, and the ones we made.

    An equivocating proposer may send any number of values for its round:
    `per_round_max` are kept, and beyond them only values that more than 1/3
    of the power voted for (see `_endorsed`)."""

    def __init__(self, keeper: VoteKeeper, validators: ValidatorSet, per_round_max: int) -> None:
        self._keeper = keeper
        self._validators = validators
        self._per_round_max = per_round_max
        # round -> value -> proposal, in the order received: the first is the
        # one we prevote on (L22, L28).
        self._by_round: dict[int, dict[bytes, Proposal]] = {}
        # Ours by round, to send again while the round lasts (our votes are in the keeper).
        self.own: dict[int, ProposalMessage] = {}

    def __getitem__(self, round: int) -> Mapping[bytes, Proposal]:
        """The proposals of `round` by value (none yet: empty)."""
        return self._by_round.get(round, _NONE)

    def first(self, round: int) -> Proposal | None:
        """The first proposal received for `round`: the one the round's rules see."""
        return next(iter(self[round].values()), None)

    def record(self, proposal: Proposal) -> Recorded:
        by_round = self._by_round.setdefault(proposal.round, {})
        value = proposal.block_id
        if value in by_round:
            return Recorded.DUPLICATE
        if len(by_round) >= self._per_round_max and not self._endorsed(proposal.round, value):
            return Recorded.DROPPED
        outcome = Recorded.EQUIVOCATION if by_round else Recorded.NEW
        by_round[value] = proposal
        return outcome

    def _endorsed(self, round: int, value: bytes) -> bool:
        """Did more than 1/3 of the power vote for `value` in `round`? Then an
        honest validator did, so it is the proposal that matters, however many
        others an equivocating proposer sent first (and there is at most one
        such value for each honest validator, so memory stays bounded)."""
        return any(
            self._validators.is_one_third(self._keeper.power_for(round, kind, value))
            for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT)
        )


class Blocks:
    """The block of each value proposed at one height, its facts (its ids, from
    admission or our own build), and valid(v) as far as known.

    A value's verdict is True or False once known, None while the driver
    checks the state-dependent part (`ValidateBlock`); a value never checked
    has none. The clock is kept apart: a block too far ahead of our clock now
    may not be later, so it is remembered as early rather than invalid."""

    def __init__(self, clock_drift_ms_max: int) -> None:
        self._drift_ms = clock_drift_ms_max
        self._messages: dict[bytes, ProposalMessage] = {}
        self._facts: dict[bytes, BlockFacts] = {}
        self._verdicts: dict[bytes, bool | None] = {}
        # Blocks whose timestamp was too far ahead of our clock when checked:
        # not valid for our prevote until our clock gets there (see `valid_now`).
        self._early: dict[bytes, int] = {}

    def __contains__(self, value: object) -> bool:
        return value in self._messages

    def get(self, value: bytes) -> ProposalMessage | None:
        return self._messages.get(value)

    def facts(self, value: bytes) -> BlockFacts:
        """The facts of a kept block."""
        return self._facts[value]

    def add(self, message: ProposalMessage, facts: BlockFacts) -> None:
        """Keep the block of a recorded proposal (the first message carrying it)."""
        value = message.proposal.block_id
        if value not in self._messages:
            self._messages[value] = message
            self._facts[value] = facts

    def restore(self, message: ProposalMessage) -> None:
        """A block from the signing state: it was validated before it became valid."""
        value = message.proposal.block_id
        self._messages[value] = message
        self._facts[value] = block_facts(message.proposal.block)
        self._verdicts[value] = True

    def trust(self, value: bytes) -> None:
        """Our own block: valid without a check."""
        self._verdicts[value] = True

    def checked(self, value: bytes) -> bool:
        """Has the value a verdict, or is one on its way?"""
        return value in self._verdicts

    def verdict(self, value: bytes) -> bool | None:
        """valid(v) if known (None: not checked, or not answered yet)."""
        return self._verdicts.get(value)

    def reject(self, value: bytes) -> None:
        self._verdicts[value] = False

    def await_verdict(self, value: bytes, timestamp_ms: int, now_ms: int) -> bool:
        """The driver checks the block next. True if its timestamp is too far
        ahead of our clock for now (it is then remembered as early)."""
        early = timestamp_ms > now_ms + self._drift_ms
        if early:
            self._early[value] = timestamp_ms
        self._verdicts[value] = None
        return early

    def validated(self, value: bytes, valid: bool) -> bool:
        """The driver's verdict; False if none was awaited (a stale answer)."""
        if value not in self._verdicts or self._verdicts[value] is not None:
            return False
        self._verdicts[value] = valid
        return True

    @property
    def any_early(self) -> bool:
        """Is a block waiting for our clock? Then time alone can make a rule fire."""
        return bool(self._early)

    def valid(self, value: bytes) -> bool:
        """valid(v) as a quorum's votes need it (L36, L49): more than 1/3 of the
        power is honest among them and checked the timestamp on its own clock,
        so ours is not consulted (a slow clock must not keep a node from
        deciding what the others decided)."""
        return self._verdicts.get(value) is True

    def valid_now(self, value: bytes, now_ms: int) -> bool:
        """valid(v) for our own prevote (L22, L28): also not too far ahead of our clock."""
        if not self.valid(value):
            return False
        timestamp_ms = self._early.get(value)
        if timestamp_ms is None:
            return True
        if timestamp_ms > now_ms + self._drift_ms:
            return False
        del self._early[value]
        return True


class Locks:
    """lockedValue/lockedRound and validValue/validRound of Algorithm 1
    (round -1 and nil: none)."""

    __slots__ = ("locked_round", "locked_value", "valid_round", "valid_value")

    def __init__(
        self,
        locked_round: int = -1,
        locked_value: bytes = NIL,
        valid_round: int = -1,
        valid_value: bytes = NIL,
    ) -> None:
        self.locked_round, self.locked_value = locked_round, locked_value
        self.valid_round, self.valid_value = valid_round, valid_value

    def lock(self, value: bytes, round: int) -> None:
        """L38-L39, with L42-L43."""
        self.locked_value, self.locked_round = value, round
        self.valid_value, self.valid_round = value, round

    def polka(self, keeper: VoteKeeper) -> list[Vote]:
        """The prevotes that justify the lock and the valid value."""
        pairs = {(self.locked_round, self.locked_value), (self.valid_round, self.valid_value)}
        return [
            vote
            for round, value in sorted(pairs)
            if round >= 0
            for vote in keeper.votes_for(round, VoteKind.PREVOTE, value)
        ]
