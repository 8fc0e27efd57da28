"""What this validator says: its proposals and votes, signed, and while a
round lasts everything it holds of the round again.

A message is signed only if the `Signer` agrees: it refuses anything that
conflicts with what it signed before, across restarts too; a refusal is
counted, never raised. A signature that changed the signing state is
persisted (`PersistSigningState`, fsynced by the driver) before the message
that needs it is broadcast. The lock and the valid value, with their polka
and the valid block, are handed to the signing state as they change, so a
restart can restore them (`restore_locks`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from consensus.errors import SigningRefusedError
from consensus.messages import (
    Action,
    Broadcast,
    BroadcastVotes,
    PersistSigningState,
    ProposalMessage,
)
from consensus.proposals import Blocks, Locks, Proposals
from consensus.signer import Signer
from consensus.votekeeper import VoteKeeper
from sequencer.limits import VOTE_BUNDLE_MAX
from sequencer.types import Block, CommitCertificate, Proposal, SigningState, Vote, VoteKind

__all__ = ["Voice", "resend"]


class Voice:
    """Signs and sends for one validator; for an observer (no signer), says nothing."""

    def __init__(
        self,
        signer: Signer | None,
        index: int | None,
        chain_id: str,
        stats: Counter[str],
        emit: Callable[[Action], None],
    ) -> None:
        self._signer = signer
        self._index = index
        self._chain_id = chain_id
        self._stats = stats
        self._emit = emit

    def propose(
        self,
        height: int,
        round: int,
        pol_round: int,
        block: Block,
        value: bytes,
        parent_certificate: CommitCertificate | None,
        pol: list[Vote],
    ) -> ProposalMessage | None:
        """L19 broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩, with
        the proof of lock `pol`; None if the signer refused. `value` is the
        block's id."""
        assert self._signer is not None
        assert self._index is not None
        try:
            signature, changed = self._signer.sign_proposal(height, round, pol_round, value)
        except SigningRefusedError as exc:
            self._stats[f"signing_refused_{exc.reason}"] += 1
            return None
        if changed:
            self.persist()
        proposal = Proposal(
            self._chain_id, height, round, pol_round, value, self._index, signature, block
        )
        message = ProposalMessage(proposal, parent_certificate, pol)
        self._emit(Broadcast(message))
        return message

    def vote(self, kind: VoteKind, height: int, round: int, value: bytes) -> Vote | None:
        """Sign, persist and broadcast our vote; None if the signer refused (or we observe)."""
        if self._signer is None or self._index is None:
            return None
        try:
            signature, changed = self._signer.sign_vote(kind, height, round, value)
        except SigningRefusedError as exc:
            # After a restart: the vote it did sign at this step is among the
            # own votes `start` sent again and the keeper re-sends.
            self._stats[f"signing_refused_{exc.reason}"] += 1
            return None
        if changed:
            self.persist()
        vote = Vote(self._chain_id, kind, height, round, value, self._index, signature)
        self._emit(Broadcast(vote))
        return vote

    def persist(self) -> None:
        """Persist the signing state now (not only with the next signature)."""
        if self._signer is not None:
            self._emit(PersistSigningState(self._signer.state))

    def sync_locks(self, locks: Locks, keeper: VoteKeeper, blocks: Blocks) -> None:
        """Hand the lock, the valid value and their polkas to the signer's state
        (persisted with the next signature, or by `persist`)."""
        if self._signer is None:
            return
        valid = blocks.get(locks.valid_value) if locks.valid_round >= 0 else None
        self._signer.set_locks(
            locks.locked_round,
            locks.locked_value,
            locks.valid_round,
            locks.valid_value,
            locks.polka(keeper),
            None if valid is None else valid.proposal,
            None if valid is None else valid.parent_certificate,
        )

    def restore_locks(
        self, state: SigningState, locks: Locks, keeper: VoteKeeper, blocks: Blocks
    ) -> None:
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
            self._stats["signing_state_locks_dropped"] += 1
            self.sync_locks(locks, keeper, blocks)  # what the next signature persists: no lock
            return
        for vote in state.polka:
            keeper.add(vote)  # verified again: cheap, and the store may be damaged
        for round, value in (
            (state.locked_round, state.locked_block_id),
            (state.valid_round, state.valid_block_id),
        ):
            if round >= 0 and not keeper.has_quorum_for(round, VoteKind.PREVOTE, value):
                self._stats["signing_state_lock_unjustified"] += 1
        locks.locked_round, locks.locked_value = state.locked_round, state.locked_block_id
        locks.valid_round, locks.valid_value = state.valid_round, state.valid_block_id
        if proposal is not None and proposal.block_id == state.valid_block_id:
            blocks.restore(ProposalMessage(proposal, state.valid_parent_certificate))


def resend(
    round: int, rounds_back: int, keeper: VoteKeeper, proposals: Proposals, locks: Locks
) -> list[Action]:
    """A round has lasted `rebroadcast_ms`: what to send again of it.

    Our proposals and every vote we hold (ours and relayed) of this round
    and the `rounds_back` before it, and the prevotes of the rounds a proof
    of lock may point to (our locked and valid rounds, the pol_round of this
    round's proposals). The paper assumes gossip eventually delivers to
    every correct process any message one of them sent or received,
    byzantine ones included; on lossy links, and across crashes that wipe
    a node's memory of what it sent, that takes anti-entropy like this.
    Without it, nodes left in a round others already left could never
    complete it, and a node that missed a polka (or got an equivocator's
    other vote) could never accept (L28) the value others are locked on.
    CometBFT's gossip re-sends votes for the same reasons.
    """
    actions: list[Action] = []
    first = max(0, round - rounds_back)
    votes: list[Vote] = []
    for r in range(first, round + 1):
        if r in proposals.own:
            actions.append(Broadcast(proposals.own[r]))
        for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
            votes.extend(keeper.votes(r, kind))
    pol_rounds = {locks.locked_round, locks.valid_round}
    pol_rounds.update(p.pol_round for p in proposals[round].values())
    for r in sorted(r for r in pol_rounds if 0 <= r < first):
        votes.extend(keeper.votes(r, VoteKind.PREVOTE))
    # One fresh message: gossip would drop each vote re-sent as it was.
    for start in range(0, len(votes), VOTE_BUNDLE_MAX):
        actions.append(BroadcastVotes(votes[start : start + VOTE_BUNDLE_MAX]))
    return actions
