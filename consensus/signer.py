"""The signer: the last line of defence against double signing (DESIGN 4).

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
from sequencer.types import (
    NIL,
    CommitCertificate,
    Proposal,
    SigningState,
    SignStep,
    Vote,
    VoteKind,
)

__all__ = ["Signer"]

_STEP_OF_KIND = {VoteKind.PREVOTE: SignStep.PREVOTE, VoteKind.PRECOMMIT: SignStep.PRECOMMIT}


class Signer:
    """Signs proposals and votes for one validator, monotonically."""

    __slots__ = ("_chain_id", "_key", "state")

    def __init__(self, key: PrivateKey, chain_id: str, state: SigningState | None) -> None:
        self._key = key
        self._chain_id = chain_id
        self.state = state or SigningState(0, 0, SignStep.NONE, NIL, NIL)

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    def sign_vote(
        self, kind: VoteKind, height: int, round: int, block_id: bytes
    ) -> tuple[bytes, bool]:
        """(signature, state changed?); raises `SigningRefusedError`."""
        message = vote_signing_bytes(self._chain_id, kind, height, round, block_id)
        return self._sign(height, round, _STEP_OF_KIND[kind], block_id, message)

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
        if wanted < signed:
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
