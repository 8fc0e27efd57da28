"""Validator sets and the commit-certificate check.

A certificate is valid iff its indices are strictly increasing (so distinct),
every index names a validator, every signature verifies as a *precommit* for
the certificate's (height, round, block_id), and the signers' power is more
than 2/3 of the total. Anyone holding the genesis file can run this check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sequencer.crypto import verify_signature, vote_signing_bytes
from sequencer.errors import CertificateError
from sequencer.types import CommitCertificate, Genesis, ValidatorInfo, VoteKind

__all__ = ["ValidatorSet", "verify_certificate"]


class ValidatorSet:
    """The ordered validators of a genesis; index = position in the list."""

    __slots__ = ("_index_by_key", "powers", "public_keys", "total_power")

    def __init__(self, validators: Sequence[ValidatorInfo]) -> None:
        assert validators, "a validator set is never empty (genesis guarantees it)"
        self.public_keys: tuple[bytes, ...] = tuple(v.public_key for v in validators)
        self.powers: tuple[int, ...] = tuple(v.power for v in validators)
        self.total_power = sum(self.powers)
        self._index_by_key = {key: i for i, key in enumerate(self.public_keys)}

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ValidatorSet:
        return cls(genesis.validators)

    def __len__(self) -> int:
        return len(self.public_keys)

    def index_of(self, public_key: bytes) -> int | None:
        return self._index_by_key.get(public_key)

    def is_quorum(self, power: int) -> bool:
        """More than 2/3 of the total power (a polka, a commit)."""
        return 3 * power > 2 * self.total_power

    def is_one_third(self, power: int) -> bool:
        """More than 1/3 of the total (f+1: at least one honest validator)."""
        return 3 * power > self.total_power


def verify_certificate(
    certificate: CommitCertificate,
    validators: ValidatorSet,
    chain_id: str,
    *,
    height: int | None = None,
    block_id: bytes | None = None,
    verifier: Callable[[bytes, bytes, bytes], bool] = verify_signature,
) -> None:
    """Raise `CertificateError` unless `certificate` is valid.

    `height` and `block_id`, when given, are what the certificate must
    finalize (the block the caller holds). `verifier(public_key, message,
    signature)` checks one signature (a memoizing one in the simulator).
    """
    if height is not None and certificate.height != height:
        raise CertificateError(
            "wrong_height", f"certificate is for height {certificate.height}, expected {height}"
        )
    if block_id is not None and certificate.block_id != block_id:
        raise CertificateError("wrong_block", "certificate is for a different block")
    power = _signer_power(certificate, validators)
    if not validators.is_quorum(power):
        raise CertificateError(
            "insufficient_power",
            f"signers hold {power} of {validators.total_power} voting power, need more than 2/3",
        )
    message = vote_signing_bytes(
        chain_id, VoteKind.PRECOMMIT, certificate.height, certificate.round, certificate.block_id
    )
    for index, signature in certificate.signatures:
        if not verifier(validators.public_keys[index], message, signature):
            raise CertificateError(
                "bad_signature", f"signature of validator {index} is not a valid precommit"
            )


def _signer_power(certificate: CommitCertificate, validators: ValidatorSet) -> int:
    """Check indices (sorted, distinct, known) and sum their power."""
    power = 0
    previous = -1
    for index, _ in certificate.signatures:
        if index == previous:
            raise CertificateError("duplicate_signer", f"validator {index} signs twice")
        if index < previous:
            raise CertificateError("unsorted", "signatures are not sorted by validator index")
        if index >= len(validators):
            raise CertificateError(
                "unknown_validator",
                f"validator index {index} is not in the set of {len(validators)}",
            )
        power += validators.powers[index]
        previous = index
    return power
