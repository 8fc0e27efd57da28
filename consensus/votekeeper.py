"""Vote counting for one height (after Malachite's core-votekeeper).

The keeper verifies each vote (validator index, signature), keeps the first
vote of each validator per (round, kind), tallies voting power per value, and
answers the queries the rules ask ("2f+1" is more than 2/3 of the voting
power, "f+1" more than 1/3):

    has_quorum_for    2f+1 votes of a kind for one value, nil included (L28, L44)
    quorum_value      the block with 2f+1 prevotes in a round        (L36)
    has_quorum_any    2f+1 votes of a kind, whatever their values    (L34, L47)
    power_for         the power behind one value (f+1: an honest voter)
    decisions         the (round, block) pairs with 2f+1 precommits  (L49)

The rules are evaluated against the state after every input that changed it
(a proposal or a verdict arriving can make a rule fire as much as a vote), so
they ask these queries rather than react to a vote crossing a threshold; only
the decisions are kept as they are reached, to spare a scan of every round.

A second, different vote of a validator for the same (round, kind) is
equivocation: both signed votes are kept as `Equivocation` evidence. The
"any" totals count each validator once, but an equivocator's power counts
toward each value it voted for, as in the paper's message log. That is safe:
two quorums for different values overlap in more than 1/3 of the power, so
with at most f byzantine power some honest validator would have voted for
both, which it never does. It is also needed: an honest node that first saw
an equivocator's other vote could otherwise never confirm the polka the
others locked on (CometBFT tracks such votes for the same reason). Each
validator is counted for at most `VALUES_PER_VOTER_MAX` values per (round,
kind), so an equivocator cannot grow memory without bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from enum import Enum

from msgspec import Struct

from consensus.messages import Equivocation
from sequencer.certificate import ValidatorSet
from sequencer.crypto import verify_signature, vote_signing_bytes
from sequencer.types import NIL, CommitCertificate, Vote, VoteKind

__all__ = ["AddResult", "Verifier", "VoteKeeper", "VoteStatus"]

# (public key, message, signature) -> valid; the simulator passes a memoizing one.
Verifier = Callable[[bytes, bytes, bytes], bool]

# Distinct values one validator may be counted for in one (round, kind): its
# vote and two conflicting ones. More are kept as evidence only.
VALUES_PER_VOTER_MAX = 3


class VoteStatus(Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    EQUIVOCATION = "equivocation"
    UNKNOWN_VALIDATOR = "unknown_validator"
    BAD_SIGNATURE = "bad_signature"
    WRONG_HEIGHT = "wrong_height"


class AddResult(Struct, frozen=True):
    status: VoteStatus
    evidence: Equivocation | None = None


class _Tally:
    """The votes of one kind in one round."""

    __slots__ = ("by_validator", "power_by_value", "power_total")

    def __init__(self) -> None:
        # validator -> {value: vote}; the first entry is its first vote.
        self.by_validator: dict[int, dict[bytes, Vote]] = {}
        self.power_by_value: Counter[bytes] = Counter()
        self.power_total = 0  # each validator once


class _RoundVotes:
    __slots__ = ("precommits", "prevotes")

    def __init__(self) -> None:
        self.prevotes = _Tally()
        self.precommits = _Tally()

    def tally(self, kind: VoteKind) -> _Tally:
        return self.prevotes if kind is VoteKind.PREVOTE else self.precommits


class VoteKeeper:
    """Votes of one height; votes of other heights are refused (the core routes them)."""

    def __init__(
        self,
        height: int,
        validators: ValidatorSet,
        chain_id: str,
        *,
        verifier: Verifier = verify_signature,
    ) -> None:
        self.height = height
        self._validators = validators
        self._chain_id = chain_id
        self._verify = verifier
        self._rounds: dict[int, _RoundVotes] = {}
        # (round, block) pairs with 2f+1 precommits, kept as they are reached:
        # the state machine asks after every input.
        self._decisions: list[tuple[int, bytes]] = []
        self.rejected: Counter[str] = Counter()
        self.evidence: list[Equivocation] = []

    # ------------------------------------------------------------ adding

    def add(self, vote: Vote, *, verified: bool = False) -> AddResult:
        """Count a vote; `verified` skips the signature check (our own votes)."""
        status = self._admit(vote, verified)
        if status is not None:
            return AddResult(status)
        tally = self._round(vote.round).tally(vote.kind)
        power = self._validators.powers[vote.validator]
        values = tally.by_validator.get(vote.validator)
        if values is not None:
            return self._repeat(tally, values, vote, power)
        tally.by_validator[vote.validator] = {vote.block_id: vote}
        self._count(tally, vote, power)
        tally.power_total += power
        return AddResult(VoteStatus.ADDED)

    def _admit(self, vote: Vote, verified: bool) -> VoteStatus | None:
        """None if the vote may be counted, else why not."""
        status = None
        if vote.height != self.height:
            status = VoteStatus.WRONG_HEIGHT
        elif vote.validator >= len(self._validators):
            status = VoteStatus.UNKNOWN_VALIDATOR
        elif not verified and not self._signature_ok(vote):
            status = VoteStatus.BAD_SIGNATURE
        if status is not None:
            self.rejected[status.value] += 1
        return status

    def signature_ok(self, vote: Vote) -> bool:
        """Does the vote's signature verify (for a validator of the set)?"""
        if not 0 <= vote.validator < len(self._validators):
            return False
        return self._signature_ok(vote)

    def _signature_ok(self, vote: Vote) -> bool:
        message = vote_signing_bytes(
            self._chain_id, vote.kind, vote.height, vote.round, vote.block_id
        )
        return self._verify(self._validators.public_keys[vote.validator], message, vote.signature)

    def _repeat(
        self, tally: _Tally, values: dict[bytes, Vote], vote: Vote, power: int
    ) -> AddResult:
        if vote.block_id in values:
            return AddResult(VoteStatus.DUPLICATE)
        first = next(iter(values.values()))
        evidence = Equivocation(first, vote)
        self.rejected[VoteStatus.EQUIVOCATION.value] += 1
        if len(values) >= VALUES_PER_VOTER_MAX:
            return AddResult(VoteStatus.EQUIVOCATION, evidence)
        if len(self.evidence) < VALUES_PER_VOTER_MAX * len(self._validators):
            self.evidence.append(evidence)
        values[vote.block_id] = vote
        self._count(tally, vote, power)
        return AddResult(VoteStatus.EQUIVOCATION, evidence)

    def _count(self, tally: _Tally, vote: Vote, power: int) -> None:
        """Add the vote's power to its value; precommits reaching 2f+1 for a
        block just now are a decision."""
        before = tally.power_by_value[vote.block_id]
        tally.power_by_value[vote.block_id] = before + power
        if (
            vote.kind is VoteKind.PRECOMMIT
            and vote.block_id != NIL
            and not self._validators.is_quorum(before)
            and self._validators.is_quorum(before + power)
        ):
            self._decisions.append((vote.round, vote.block_id))
            self._decisions.sort()

    def _round(self, round: int) -> _RoundVotes:
        votes = self._rounds.get(round)
        if votes is None:
            votes = self._rounds[round] = _RoundVotes()
        return votes

    # ------------------------------------------------------------ queries

    def _tally(self, round: int, kind: VoteKind) -> _Tally | None:
        votes = self._rounds.get(round)
        return None if votes is None else votes.tally(kind)

    def has_quorum_for(self, round: int, kind: VoteKind, block_id: bytes) -> bool:
        """2f+1 votes of `kind` for `block_id` (NIL: for nil) in `round`."""
        tally = self._tally(round, kind)
        return tally is not None and self._validators.is_quorum(tally.power_by_value[block_id])

    def power_for(self, round: int, kind: VoteKind, block_id: bytes) -> int:
        """The voting power counted for `block_id` in votes of `kind` in `round`."""
        tally = self._tally(round, kind)
        return 0 if tally is None else tally.power_by_value[block_id]

    def has_quorum_any(self, round: int, kind: VoteKind) -> bool:
        tally = self._tally(round, kind)
        return tally is not None and self._validators.is_quorum(tally.power_total)

    def quorum_value(self, round: int, kind: VoteKind) -> bytes | None:
        """The block (not nil) with 2f+1 votes of `kind` in `round`, if any."""
        tally = self._tally(round, kind)
        if tally is None:
            return None
        for block_id, power in tally.power_by_value.items():
            if block_id != NIL and self._validators.is_quorum(power):
                return block_id
        return None

    def decisions(self) -> list[tuple[int, bytes]]:
        """(round, block) pairs with 2f+1 precommits, lowest round first."""
        return self._decisions

    def certificate(self, round: int, block_id: bytes) -> CommitCertificate:
        """The commit certificate: every counted precommit for `block_id` in `round`."""
        tally = self._tally(round, VoteKind.PRECOMMIT)
        assert tally is not None
        assert block_id != NIL
        signatures = sorted(
            (index, values[block_id].signature)
            for index, values in tally.by_validator.items()
            if block_id in values
        )
        certificate = CommitCertificate(self.height, round, block_id, signatures)
        assert self._validators.is_quorum(tally.power_by_value[block_id])
        return certificate

    def votes(self, round: int, kind: VoteKind) -> list[Vote]:
        """Every counted vote of `kind` in `round` (to relay a proof of lock)."""
        tally = self._tally(round, kind)
        if tally is None:
            return []
        return [vote for values in tally.by_validator.values() for vote in values.values()]

    def votes_for(self, round: int, kind: VoteKind, block_id: bytes) -> list[Vote]:
        """The counted votes of `kind` in `round` for `block_id` (to show a polka)."""
        return [vote for vote in self.votes(round, kind) if vote.block_id == block_id]

    def vote_count(self) -> int:
        return sum(
            len(v.prevotes.by_validator) + len(v.precommits.by_validator)
            for v in self._rounds.values()
        )
