"""The signer: the last line of defence against double signing.

It remembers the last (height, round, step) it signed, with the signature,
in a `SigningState` that the core persists (fsynced) before any signature
leaves the node. A request below that point is refused; a request at that
very point is answered with the stored signature if it asks for the same
bytes, and refused if it asks for different bytes. So after a restart from
the persisted state, the node never signs a conflicting message, whatever
the rest of its state forgot. (CometBFT's FilePV follows the same rule.)

Ed25519 signatures are deterministic, so re-signing identical bytes would
give the same signature anyway; the stored one is returned so that a signer
that holds only the state (an HSM, a remote signer) behaves the same.

The state belongs to one height. Entering a higher height starts a fresh
state there (no lock, no valid value, no votes): a lock is a fact about one
height's rounds, and one carried into the next height would make the node
prevote nil on every fresh proposal there. The state also keeps the
validator's own votes of its last `OWN_VOTE_ROUNDS_KEPT` rounds, so that a
restarted node can send again every vote peers may still be waiting for.
"""

from __future__ import annotations

import msgspec

from consensus.errors import SigningRefusedError
from sequencer.crypto import (
    PrivateKey,
    proposal_signing_bytes,
    verify_signature,
    vote_signing_bytes,
)
from sequencer.limits import OWN_VOTES_MAX
from sequencer.types import (
    NIL,
    CommitCertificate,
    Proposal,
    SigningState,
    SignStep,
    Vote,
    VoteKind,
)

__all__ = ["OWN_VOTE_ROUNDS_KEPT", "Signer"]

# Rounds whose own votes the state keeps. Peers in older rounds do not need
# them: they move on from the later rounds' votes (L55), which are kept.
# Two votes a round, within the wire bound of the state.
OWN_VOTE_ROUNDS_KEPT = 8
assert 2 * OWN_VOTE_ROUNDS_KEPT <= OWN_VOTES_MAX

_STEP_OF_KIND = {VoteKind.PREVOTE: SignStep.PREVOTE, VoteKind.PRECOMMIT: SignStep.PRECOMMIT}


class Signer:
    """Signs proposals and votes for one validator, monotonically."""

    __slots__ = ("_chain_id", "_key", "_validator", "state")

    def __init__(
        self, key: PrivateKey, chain_id: str, state: SigningState | None, validator: int = 0
    ) -> None:
        self._key = key
        self._chain_id = chain_id
        self._validator = validator  # its index in the validator set, for its votes
        self.state = state or SigningState(0, 0, SignStep.NONE, NIL, NIL)

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    def enter_height(self, height: int) -> None:
        """Work on `height` from now on: above the state's, a fresh state there
        (in memory; persisted with the first signature, so a restart before it
        still finds the last height's state, which `enter_height` replaces again)."""
        if height > self.state.height:
            self.state = SigningState(height, 0, SignStep.NONE, NIL, NIL)

    def sign_vote(
        self, kind: VoteKind, height: int, round: int, block_id: bytes
    ) -> tuple[bytes, bool]:
        """(signature, state changed?); raises `SigningRefusedError`. A new vote
        joins the state's own votes."""
        message = vote_signing_bytes(self._chain_id, kind, height, round, block_id)
        signature, changed = self._sign(height, round, _STEP_OF_KIND[kind], block_id, message)
        if changed:
            vote = Vote(self._chain_id, kind, height, round, block_id, self._validator, signature)
            first = round - OWN_VOTE_ROUNDS_KEPT + 1
            kept = [v for v in self.state.votes if v.height == height and v.round >= first]
            self.state = msgspec.structs.replace(self.state, votes=[*kept, vote])
        return signature, changed

    def own_votes(self) -> list[Vote]:
        """Own votes of the state's height: the kept ones, or, in a state written
        before they were kept, the last signed vote rebuilt."""
        state = self.state
        if state.votes:
            return [v for v in state.votes if v.height == state.height]
        kind = {SignStep.PREVOTE: VoteKind.PREVOTE, SignStep.PRECOMMIT: VoteKind.PRECOMMIT}
        if state.step not in kind or not state.signature:
            return []
        return [
            Vote(
                self._chain_id,
                kind[state.step],
                state.height,
                state.round,
                state.block_id,
                self._validator,
                state.signature,
            )
        ]

    def sign_proposal(
        self, height: int, round: int, pol_round: int, block_id: bytes
    ) -> tuple[bytes, bool]:
        message = proposal_signing_bytes(self._chain_id, height, round, pol_round, block_id)
        return self._sign(height, round, SignStep.PROPOSE, block_id, message)

    def set_locks(
        self,
        locked_round: int,
        locked_block_id: bytes,
        valid_round: int,
        valid_block_id: bytes,
        polka: list[Vote],
        valid_proposal: Proposal | None,
        valid_parent_certificate: CommitCertificate | None,
    ) -> None:
        """Record the lock, the valid value and the prevotes that justify them;
        persisted with the next signature (the core may persist sooner)."""
        self.state = msgspec.structs.replace(
            self.state,
            locked_round=locked_round,
            locked_block_id=locked_block_id,
            valid_round=valid_round,
            valid_block_id=valid_block_id,
            polka=polka,
            valid_proposal=valid_proposal,
            valid_parent_certificate=valid_parent_certificate,
        )

    def _sign(
        self, height: int, round: int, step: SignStep, block_id: bytes, message: bytes
    ) -> tuple[bytes, bool]:
        last = self.state
        wanted = (height, round, step)
        signed = (last.height, last.round, last.step)
        if height > last.height:
            self.enter_height(height)
            last = self.state
        elif wanted < signed:
            raise SigningRefusedError(
                "regression", f"already signed at {signed}, refusing to sign at {wanted}"
            )
        if wanted == signed:
            if last.signature and verify_signature(self.public_key, message, last.signature):
                return last.signature, False
            raise SigningRefusedError(
                "conflict", f"already signed different bytes at {wanted}, refusing"
            )
        signature = self._key.sign(message)
        self.state = msgspec.structs.replace(
            last, height=height, round=round, step=step, block_id=block_id, signature=signature
        )
        return signature, True
