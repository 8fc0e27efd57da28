"""The `upon` rules of Algorithm 1 (L22-L56): which one fires, and what it asks for.

The rules read what the height has seen (votes, proposals, blocks, locks,
peers' rounds) and our round and step, and change none of it (but for their
record of the rules fired, and a block no longer early once our clock got
there): `Rules.next` names the first rule whose condition holds, as an
effect (`Prevote`, `Lock`, ...), and the core carries it out and asks
again, until no rule fires. So a
rule whose condition became true through a state change (not a new message)
still fires, as the paper's semantics require. Rules cite their lines
(`# L22`); deviations from the letter of the paper are marked "Deviation"
with the reason.

The rules that fire "for the first time" in a round (L34, L36, L47) are the
members of `Rule`; `FiredOnce` remembers which fired in which round.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum, auto
from typing import NamedTuple

from consensus.inbox import PeerRounds
from consensus.messages import ProposalMessage, Step, TimeoutKind
from consensus.proposals import Blocks, Locks, Proposals
from consensus.votekeeper import VoteKeeper
from sequencer.types import NIL, VoteKind

__all__ = [
    "Decide",
    "Effect",
    "FiredOnce",
    "Lock",
    "Precommit",
    "Prevote",
    "Rule",
    "Rules",
    "SkipRound",
    "StartTimeout",
    "UpdateValid",
]


class Rule(Enum):
    """The rules that fire at most once per round."""

    PREVOTE_TIMEOUT = auto()  # L34: 2f+1 prevotes of any kind, for the first time
    LOCK = auto()  # L36: a polka for a valid proposal, for the first time
    PRECOMMIT_TIMEOUT = auto()  # L47: 2f+1 precommits of any kind, for the first time


class FiredOnce:
    """Which of the once-per-round rules fired in which round of one height."""

    def __init__(self) -> None:
        self._fired: set[tuple[Rule, int]] = set()

    def fired(self, rule: Rule, round: int) -> bool:
        return (rule, round) in self._fired

    def fire(self, rule: Rule, round: int) -> None:
        self._fired.add((rule, round))


# ------------------------------------------------------------ effects


class Decide(NamedTuple):
    """L49-L54: commit the block of `value` (from `message`), decided in `round`."""

    round: int
    value: bytes
    message: ProposalMessage


class SkipRound(NamedTuple):
    """L55-L56: StartRound(round)."""

    round: int


class Prevote(NamedTuple):
    """L22-L33: prevote `value` (nil: NIL) and go to the prevote step."""

    value: bytes


class StartTimeout(NamedTuple):
    """L34-L35, L47-L48: schedule the timeout of this round's step `kind`."""

    kind: TimeoutKind


class Lock(NamedTuple):
    """L36-L43 at the prevote step: lock on `value`, make it valid, precommit it."""

    value: bytes


class UpdateValid(NamedTuple):
    """L36, L42-L43 past the prevote step: `value` of this round becomes the valid value."""

    value: bytes


class Precommit(NamedTuple):
    """L44-L46: precommit `value` (nil) and go to the precommit step."""

    value: bytes


Effect = Decide | SkipRound | Prevote | StartTimeout | Lock | UpdateValid | Precommit


class Rules:
    """The rules over what one height has seen (each height gets its own)."""

    def __init__(
        self,
        keeper: VoteKeeper,
        proposals: Proposals,
        blocks: Blocks,
        locks: Locks,
        rounds: PeerRounds,
    ) -> None:
        self._keeper = keeper
        self._proposals = proposals
        self._blocks = blocks
        self._locks = locks
        self._rounds = rounds
        self._once = FiredOnce()

    def next(self, round: int, step: Step, now_ms: int) -> Effect | None:
        """The effect of the first rule (in the paper's order) that fires at
        our `round` and `step`, or None."""
        for effect in self._evaluate(round, step, now_ms):
            if effect is not None:
                return effect
        return None

    def _evaluate(self, round: int, step: Step, now_ms: int) -> Iterator[Effect | None]:
        # A generator: a rule is evaluated only if none before it fired.
        yield self._decide()
        yield self._skip_round(round)
        yield self._prevote_proposal(round, step, now_ms)
        yield self._prevote_timeout(round, step)
        yield self._lock(round, step)
        yield self._precommit_nil(round, step)
        yield self._precommit_timeout(round, step)

    def _decide(self) -> Decide | None:
        """L49-L54: a proposal v with 2f+1 precommits for id(v) in any round decides v.

        Deviation: the block may come from any round's proposal (it is named
        by its hash), not only from the deciding round's; this is as safe and
        decides sooner when that round's proposal was lost.
        """
        for round, value in self._keeper.decisions():
            message = self._blocks.get(value)
            if message is not None and self._blocks.valid(value):  # L50
                return Decide(round, value, message)
        return None

    def _skip_round(self, round: int) -> SkipRound | None:
        """L55-L56: f+1 validators in a higher round: go there.

        Deviation: "f+1 in round r" is read as "validators holding more than
        1/3 of the power showed a round of at least r", taking the highest
        such r. At least one of them is honest and got to r or beyond, so
        round r has begun; as in the paper, only liveness depends on it. It
        matters for a node far behind: peers re-send only their latest
        rounds, which need not be the same round for f+1 of them."""
        target = self._rounds.skip_target()
        return SkipRound(target) if target > round else None

    def _prevote_proposal(self, round: int, step: Step, now_ms: int) -> Prevote | None:
        """L22-L27 (no proof-of-lock round) and L28-L33 (proof of lock in round vr)."""
        if step is not Step.PROPOSE:
            return None
        proposal = self._proposals.first(round)
        if proposal is None or self._blocks.verdict(proposal.block_id) is None:
            return None  # no proposal yet, or valid(v) not known yet
        value, vr, locks = proposal.block_id, proposal.pol_round, self._locks
        if vr == -1:  # L22
            acceptable = locks.locked_round == -1 or locks.locked_value == value  # L23
        elif self._keeper.has_quorum_for(vr, VoteKind.PREVOTE, value):  # L28
            acceptable = locks.locked_round <= vr or locks.locked_value == value  # L29
        else:
            return None  # L28 waits for the polka of round vr
        valid = self._blocks.valid_now(value, now_ms)
        return Prevote(value if valid and acceptable else NIL)  # L24/L26, L30/L32

    def _prevote_timeout(self, round: int, step: Step) -> StartTimeout | None:
        """L34-L35: 2f+1 prevotes of any kind, the first time: start the prevote timer."""
        if step is not Step.PREVOTE or self._once.fired(Rule.PREVOTE_TIMEOUT, round):
            return None
        if not self._keeper.has_quorum_any(round, VoteKind.PREVOTE):
            return None
        self._once.fire(Rule.PREVOTE_TIMEOUT, round)
        return StartTimeout(TimeoutKind.PREVOTE)

    def _lock(self, round: int, step: Step) -> Lock | UpdateValid | None:
        """L36-L43: a polka for a valid proposal in this round: lock, precommit (if prevoting)."""
        if step < Step.PREVOTE or self._once.fired(Rule.LOCK, round):
            return None
        value = self._keeper.quorum_value(round, VoteKind.PREVOTE)
        if value is None or value not in self._blocks or not self._blocks.valid(value):
            return None
        self._once.fire(Rule.LOCK, round)
        if step is Step.PREVOTE:  # L37
            return Lock(value)
        if (self._locks.valid_value, self._locks.valid_round) != (value, round):
            return UpdateValid(value)
        return None  # it fired, with nothing left to change

    def _precommit_nil(self, round: int, step: Step) -> Precommit | None:
        """L44-L46: 2f+1 prevotes for nil: precommit nil."""
        if step is not Step.PREVOTE:
            return None
        if not self._keeper.has_quorum_for(round, VoteKind.PREVOTE, NIL):
            return None
        return Precommit(NIL)

    def _precommit_timeout(self, round: int, step: Step) -> StartTimeout | None:
        """L47-L48: 2f+1 precommits of any kind, the first time: start the precommit timer."""
        if step is Step.WAITING or self._once.fired(Rule.PRECOMMIT_TIMEOUT, round):
            return None
        if not self._keeper.has_quorum_any(round, VoteKind.PRECOMMIT):
            return None
        self._once.fire(Rule.PRECOMMIT_TIMEOUT, round)
        return StartTimeout(TimeoutKind.PRECOMMIT)
