"""Admission checks: may a proposal, a block or a decided block from a peer be used?

Pure functions of the message, the chain anchor and the validator set, kept
apart from the state machine (`core.py`, `inbox.py`) that acts on their verdicts. Each
returns None for "admit" or a short reason code, which the core counts. Peers'
bad input is never an exception.
"""

from __future__ import annotations

from consensus.anchor import Anchor
from consensus.blocks import ParentInfo, structural_problem
from consensus.messages import DecidedBlock, ProposalMessage
from consensus.proposer import ProposerSchedule
from consensus.votekeeper import Verifier
from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.crypto import proposal_signing_bytes
from sequencer.errors import CertificateError
from sequencer.ids import block_id, commit_id, tx_id, tx_root
from sequencer.types import Block, CommitCertificate, ConsensusParams, Proposal

__all__ = ["Admission"]


class Admission:
    """The checks, bound to one chain's validators, parameters and verifier."""

    def __init__(
        self,
        *,
        chain_id: str,
        validators: ValidatorSet,
        schedule: ProposerSchedule,
        params: ConsensusParams,
        verifier: Verifier,
        clock_drift_ms_max: int,
    ) -> None:
        self._chain_id = chain_id
        self._validators = validators
        self._schedule = schedule
        self._params = params
        self._verify = verifier
        self._drift_ms = clock_drift_ms_max

    def proposal(self, proposal: Proposal) -> str | None:
        """Is this a well-formed proposal signed by the round's proposer?"""
        if proposal.validator != self._schedule.proposer(proposal.height, proposal.round):
            return "wrong_proposer"
        if proposal.pol_round >= proposal.round:
            return "bad_pol_round"
        if proposal.block_id != block_id(proposal.block.header):
            return "block_id_mismatch"
        if not _body_matches(proposal.block):
            # Not the proposer's block: the signature covers the header only,
            # so anyone relaying it could swap the body. Recording it would
            # mark the block id invalid and shut out the genuine proposal.
            return "body_mismatch"
        message = proposal_signing_bytes(
            self._chain_id, proposal.height, proposal.round, proposal.pol_round, proposal.block_id
        )
        public_key = self._validators.public_keys[proposal.validator]
        if not self._verify(public_key, message, proposal.signature):
            return "bad_signature"
        return None

    def block(
        self, message: ProposalMessage, anchor: Anchor, now_ms: int | None = None
    ) -> str | None:
        """valid(v), the part decidable without chain state (see blocks.py);
        without `now_ms`, all of it but the clock check."""
        proposal = message.proposal
        link = self._accepted_link(message, anchor)
        if link is None:
            return "bad_parent_certificate"
        height = anchor.height + 1

        def proposer_of(round: int) -> int:
            return self._schedule.proposer(height, round)

        return structural_problem(
            proposal.block,
            chain_id=self._chain_id,
            parent=ParentInfo(anchor.height, anchor.block_id, anchor.timestamp_ms),
            last_commit_id=link,
            proposal_round=proposal.round,
            proposer_of=proposer_of,
            params=self._params,
            now_ms=now_ms,
            clock_drift_ms_max=self._drift_ms,
        )

    def decided(self, decided: DecidedBlock, anchor: Anchor) -> str | None:
        """Is this the next block, finalized by a valid certificate?"""
        header = decided.block.header
        if header.chain_id != self._chain_id or header.parent_id != anchor.block_id:
            return "wrong_parent"
        if not self._certificate_ok(decided.certificate, anchor.height + 1, block_id(header)):
            return "bad_certificate"
        if not _body_matches(decided.block):
            return "body_mismatch"  # the certificate vouches for the header alone
        if header.last_commit_id == anchor.commit_id:
            return None
        parent = decided.parent_certificate
        if parent is None or commit_id(parent) != header.last_commit_id:
            return "unknown_parent_certificate"
        if not self._parent_ok(parent, anchor):
            return "bad_parent_certificate"
        return None

    def _accepted_link(self, message: ProposalMessage, anchor: Anchor) -> bytes | None:
        """The last_commit_id the block may carry (ours, or the attached
        certificate's if it verifies); None if the attached one is invalid."""
        header = message.proposal.block.header
        ours = anchor.commit_id
        if header.last_commit_id == ours:
            return ours
        parent = message.parent_certificate
        if parent is None or commit_id(parent) != header.last_commit_id:
            return ours  # the structural check then reports wrong_last_commit
        return header.last_commit_id if self._parent_ok(parent, anchor) else None

    def _parent_ok(self, certificate: CommitCertificate, anchor: Anchor) -> bool:
        if anchor.height == 0:
            return False
        return self._certificate_ok(certificate, anchor.height, anchor.block_id)

    def _certificate_ok(self, certificate: CommitCertificate, height: int, value: bytes) -> bool:
        try:
            verify_certificate(
                certificate,
                self._validators,
                self._chain_id,
                height=height,
                block_id=value,
                verifier=self._verify,
            )
        except CertificateError:
            return False
        return True


def _body_matches(block: Block) -> bool:
    """Are these the transactions the header's `tx_root` commits to?"""
    return tx_root(tx_id(tx) for tx in block.txs) == block.header.tx_root
