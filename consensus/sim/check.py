"""The simulator's judge: the invariants every run must keep, and the
memoized signature verifier the simulated nodes share.

Safety: agreement (no two honest nodes finalize different blocks at a height),
every certificate valid against the genesis validators, no honest validator
signs two different messages for one (height, round, step), and every
commit applies to the committing node's stored chain. Liveness is checked by
the run (`run.py`): while at most f validators are faulty, and after the
faults heal.
"""

from __future__ import annotations

from consensus.messages import ProposalMessage
from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.crypto import (
    tx_signing_bytes,
    verify_signature,
)
from sequencer.errors import CertificateError
from sequencer.ids import block_id
from sequencer.types import Block, CommitCertificate, Transaction, Vote

__all__ = ["Checker", "Verifier"]

CHAIN_ID = "sim-1"
VIOLATIONS_KEPT_MAX = 20
VERIFIED_CACHED_MAX = 1_000_000


class Verifier:
    """Memoized signature checks: each simulated node verifies every message,
    but the answer for given bytes never changes, so verify once per run."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.real = 0

    def __call__(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, message, signature)
        result = self._cache.get(key)
        if result is None:
            self.real += 1
            if len(self._cache) >= VERIFIED_CACHED_MAX:
                self._cache.clear()
            result = self._cache[key] = verify_signature(public_key, message, signature)
        return result

    def transaction(self, tx: Transaction) -> bool:
        message = tx_signing_bytes(
            tx.chain_id, tx.namespace, tx.sender, tx.nonce, tx.gas_price, tx.payload
        )
        return self(tx.sender, message, tx.signature)


class Checker:
    """Safety and liveness invariants, checked as the run goes."""

    def __init__(
        self,
        validators: ValidatorSet,
        honest: set[int],
        verifier: Verifier,
        honest_validators: set[int] | None = None,
    ) -> None:
        """`honest`: the honest nodes (observers too); `honest_validators`:
        the validator indices whose signatures must never conflict."""
        self._validators = validators
        self._honest = honest
        self._honest_validators = honest if honest_validators is None else honest_validators
        self._verify = verifier
        self.finalized: dict[int, tuple[bytes, int]] = {}  # height -> (block, first node)
        self.rounds: dict[int, int] = {}  # height -> round of the first certificate seen
        self._signed: dict[tuple[int, int, int, int], bytes] = {}
        self.violations: list[str] = []
        self.unsafe = False  # a safety violation: the run stops there

    def violation(self, text: str, *, safety: bool = True) -> None:
        self.unsafe = self.unsafe or safety
        if len(self.violations) < VIOLATIONS_KEPT_MAX:
            self.violations.append(text)

    def on_commit(
        self,
        node: int,
        block: Block,
        certificate: CommitCertificate,
        parent: CommitCertificate | None,
    ) -> None:
        header = block.header
        value = block_id(header)
        self._check_certificate(node, certificate, header.height, value)
        if parent is not None:
            self._check_certificate(node, parent, header.height - 1, header.parent_id)
        if node not in self._honest:
            return
        first = self.finalized.get(header.height)
        if first is None:
            self.finalized[header.height] = (value, node)
            self.rounds[header.height] = certificate.round
        elif first[0] != value:
            self.violation(
                f"agreement: height {header.height}: node {first[1]} finalized "
                f"{first[0].hex()[:12]}, node {node} finalized {value.hex()[:12]}"
            )

    def _check_certificate(
        self, node: int, certificate: CommitCertificate, height: int, value: bytes
    ) -> None:
        try:
            verify_certificate(
                certificate,
                self._validators,
                CHAIN_ID,
                height=height,
                block_id=value,
                verifier=self._verify,
            )
        except CertificateError as exc:
            self.violation(f"certificate: node {node} height {height}: {exc}")

    def on_signed(self, message: ProposalMessage | Vote) -> None:
        """Record what an honest validator signed; two different signatures at
        one (height, round, step) conflict (Ed25519 signatures are
        deterministic: the same bytes always get the same signature).

        Nodes also relay other validators' votes, so the signer is the
        message's validator, not the node that sends it."""
        if isinstance(message, Vote):
            validator = message.validator
            where = (validator, message.height, message.round, int(message.kind) + 1)
            signature = message.signature
        else:
            p = message.proposal
            validator = p.validator
            where = (validator, p.height, p.round, 1)
            signature = p.signature
        if validator not in self._honest_validators:
            return
        previous = self._signed.setdefault(where, signature)
        if previous != signature:
            self.violation(f"conflicting signatures: validator {validator} at {where[1:]}")
