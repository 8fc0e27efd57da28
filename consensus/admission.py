"""Admission checks: may a proposal, a block or a decided block from a peer be used?

Pure functions of the message, the chain anchor and the validator set, kept
apart from the state machine (`core.py`, `inbox.py`) that acts on their
verdicts. Each returns a short reason code, which the core counts, or what
admitting the block computed: its `BlockFacts` (its id and its transactions'
ids), which the block carries from here on (the block check, the driver's
state check, the commit), so that none of them hashes it again. Peers' bad
input is never an exception.
"""

from __future__ import annotations

from consensus.anchor import Anchor
from consensus.blocks import ParentInfo, block_namespace_root, structural_problem
from consensus.messages import DecidedBlock, ProposalMessage
from consensus.proposer import ProposerSchedule
from consensus.votekeeper import Verifier
from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.crypto import proposal_signing_bytes
from sequencer.errors import CertificateError
from sequencer.ids import BlockFacts, block_facts, block_id, commit_id, tx_id, tx_root
from sequencer.types import Block, BlockHeader, CommitCertificate, ConsensusParams, Proposal

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

    def proposal(self, proposal: Proposal) -> BlockFacts | str:
        """Is this a well-formed proposal signed by the round's proposer? Its
        block's facts if so, else why not."""
        if proposal.validator != self._schedule.proposer(proposal.height, proposal.round):
            return "wrong_proposer"
        if proposal.pol_round >= proposal.round:
            return "bad_pol_round"
        if proposal.block_id != block_id(proposal.block.header):
            return "block_id_mismatch"
        facts = BlockFacts(proposal.block_id, [tx_id(tx) for tx in proposal.block.txs])
        if not _body_matches(proposal.block, facts):
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
        return facts

    def block(
        self,
        message: ProposalMessage,
        anchor: Anchor,
        facts: BlockFacts,
        now_ms: int | None = None,
    ) -> str | None:
        """valid(v), the part decidable without chain state (see blocks.py);
        without `now_ms`, all of it but the clock check. `facts` are the
        block's, from `proposal` or our own build."""
        proposal = message.proposal
        header = proposal.block.header
        link = self._link_problem(header, message.parent_certificate, anchor)
        if link == "bad_parent_certificate":
            return link
        # An unknown certificate: the structural check reports wrong_last_commit.
        last_commit_id = header.last_commit_id if link is None else anchor.commit_id
        height = anchor.height + 1

        def proposer_of(round: int) -> int:
            return self._schedule.proposer(height, round)

        return structural_problem(
            proposal.block,
            chain_id=self._chain_id,
            parent=ParentInfo(anchor.height, anchor.block_id, anchor.timestamp_ms),
            last_commit_id=last_commit_id,
            proposal_round=proposal.round,
            proposer_of=proposer_of,
            params=self._params,
            now_ms=now_ms,
            clock_drift_ms_max=self._drift_ms,
            tx_ids=facts.tx_ids,
        )

    def decided(self, decided: DecidedBlock, anchor: Anchor) -> BlockFacts | str:
        """Is this the next block, finalized by a valid certificate? Its facts
        if so, else why not."""
        header = decided.block.header
        if header.chain_id != self._chain_id or header.parent_id != anchor.block_id:
            return "wrong_parent"
        facts = block_facts(decided.block)
        if not self._certificate_ok(decided.certificate, anchor.height + 1, facts.block_id):
            return "bad_certificate"
        if not _body_matches(decided.block, facts):
            return "body_mismatch"  # the certificate vouches for the header alone
        if (
            block_namespace_root(decided.block.txs, facts.tx_ids, header.tx_root)
            != header.namespace_root
        ):
            # Certified, yet its validators let a wrong table through: keep it
            # out of the store, where rollups would read proofs against it.
            return "wrong_namespace_root"
        link = self._link_problem(header, decided.parent_certificate, anchor)
        return facts if link is None else link

    def _link_problem(
        self, header: BlockHeader, parent: CommitCertificate | None, anchor: Anchor
    ) -> str | None:
        """Does the block link to a certificate of its parent that we accept:
        ours, or the one it came with once that verifies? (Nodes build
        different certificates for one block from the precommits they saw.)"""
        if header.last_commit_id == anchor.commit_id:
            return None
        if parent is None or commit_id(parent) != header.last_commit_id:
            return "unknown_parent_certificate"
        if not self._parent_ok(parent, anchor):
            return "bad_parent_certificate"
        return None

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


def _body_matches(block: Block, facts: BlockFacts) -> bool:
    """Are these the transactions the header's `tx_root` commits to?"""
    return tx_root(facts.tx_ids) == block.header.tx_root
