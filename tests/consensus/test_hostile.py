"""Hostile input against the consensus core, and a hostile validator in the
deterministic simulator.

Core tier (`tests.consensus.harness`): messages from non-validators change
nothing; an equivocating validator yields evidence once and the honest
three still decide; votes at absurd heights are dropped; a block body that
does not match its (signed, certified) header is refused both as a proposal
and as a catch-up block.

Simulator tier: validator 3 of 4 runs no core. It signs votes at height
10**12 so that every honest node sees it "ahead" and asks it for blocks, and
answers those requests with forged responses (genuine headers and
certificates with swapped bodies, certificates that do not verify, blocks
that do not chain, absurd heights). The honest three must keep finalizing
with every invariant of the checker intact.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import msgspec
import pytest

from consensus.messages import Commit, DecidedBlock, ProposalMessage, ReportEvidence
from consensus.simcheck import CHAIN_ID as SIM_CHAIN
from consensus.simnet import Faults
from consensus.simulation import Disk, Simulation, sender_key, sim_tx, validator_key
from consensus.sync import SyncRequest, SyncResponse
from sequencer.crypto import PrivateKey, sign_proposal, sign_transaction, sign_vote
from sequencer.ids import block_id
from sequencer.types import Block, CommitCertificate, Vote, VoteKind
from tests.consensus.harness import (
    CHAIN,
    ID,
    PRECOMMIT,
    PREVOTE,
    A,
    Node,
    certificate,
    proposal,
    valid,
    vote,
    votes,
)

FAR = 10**12
STRANGER = PrivateKey(b"\x99" * 32)


def stranger_vote(validator: int, kind: VoteKind = PREVOTE, height: int = 1) -> Vote:
    """A vote claiming to be validator `validator`'s, signed by a key outside the set."""
    return sign_vote(
        STRANGER,
        chain_id=CHAIN,
        kind=kind,
        height=height,
        round=0,
        block_id=ID["A"],
        validator=validator,
    )


def forged_tx(nonce: int = 7) -> Any:
    return sign_transaction(
        STRANGER, chain_id=CHAIN, namespace=1, nonce=nonce, gas_price=1, payload=b"forged"
    )


# ------------------------------------------------------------------ non-validators


def test_messages_signed_by_non_validators_change_nothing() -> None:
    node = Node(0)
    before = (node.state, node.core.statistics()["votes"])
    stranger_proposal = ProposalMessage(
        sign_proposal(
            STRANGER,
            chain_id=CHAIN,
            height=1,
            round=0,
            pol_round=-1,
            block_id=ID["A"],
            block=A,
            validator=1,  # the round's proposer, but not its key
        ),
        None,
    )
    hostile = [
        *(stranger_vote(v, kind) for v in range(4) for kind in (PREVOTE, PRECOMMIT)),
        stranger_vote(4),
        stranger_vote(2**32 - 1),
        stranger_proposal,
    ]
    node.feed(*hostile)
    assert node.said() == []
    assert (node.state, node.core.statistics()["votes"]) == before
    stats = node.core.statistics()
    assert stats["vote_rejected_bad_signature"] == 8
    assert stats["vote_rejected_unknown_validator"] == 2
    assert stats["proposal_bad_signature"] == 1
    # Seven forged precommits for A: no commit, even with the real block known.
    node.feed(proposal("A"), valid("A"))
    assert not [a for a in node.actions if isinstance(a, Commit)]


def test_votes_at_absurd_heights_and_rounds_are_dropped_and_counted() -> None:
    node = Node(0)
    far = [vote(PREVOTE, 3, "A", height=FAR), vote(PRECOMMIT, 2, "A", height=2**64 - 1)]
    node.feed(*far, vote(PREVOTE, 3, "A", round=2**64 - 1))
    assert node.said() == []
    assert node.state == (1, 0, "PROPOSE")
    stats = node.core.statistics()
    assert stats["message_far_future"] == 2
    assert stats["message_round_too_far"] == 1


# ------------------------------------------------------------------ equivocation


def test_an_equivocator_yields_evidence_once_and_the_height_still_decides() -> None:
    node = Node(0)
    node.feed(proposal("A"), valid("A"))
    # Validator 3 prevotes and precommits both A and B, each twice.
    twice = [vote(k, 3, name) for k in (PREVOTE, PRECOMMIT) for name in ("A", "B", "A", "B")]
    node.feed(*twice)
    evidence = [a.evidence for a in node.actions if isinstance(a, ReportEvidence)]
    assert len(evidence) == 2  # one per (round, kind), not one per repeat
    assert {(e.first.kind, e.first.block_id, e.second.block_id) for e in evidence} == {
        (PREVOTE, ID["A"], ID["B"]),
        (PRECOMMIT, ID["A"], ID["B"]),
    }
    node.feed(votes(PREVOTE, [1, 2], "A"), votes(PRECOMMIT, [1, 2], "A"))
    (commit,) = [a for a in node.actions if isinstance(a, Commit)]
    assert commit.block == A
    assert node.state[0] == 2


# ------------------------------------------------------------------ swapped bodies


def test_a_relayed_proposal_with_a_swapped_body_does_not_shut_out_the_real_one() -> None:
    # Regression: the proposer signs the header only, so a relay could swap
    # the body; the core recorded the block id as invalid, prevoted nil and
    # then ignored the genuine proposal as a duplicate.
    node = Node(0)
    genuine = proposal("A")
    swapped = ProposalMessage(
        msgspec.structs.replace(genuine.proposal, block=Block(A.header, [forged_tx()])), None
    )
    node.feed(swapped)
    assert node.said() == []
    assert node.core.stats["proposal_body_mismatch"] == 1
    node.feed(genuine, valid("A"))
    assert ("vote", "PREVOTE", 0, "A") in node.said()


@pytest.mark.parametrize("nonce", [0, 7], ids=["applies", "bad-nonce"])
def test_a_certified_header_with_a_swapped_body_is_not_committed(nonce: int) -> None:
    # Regression: catch-up committed whatever body came with a valid
    # certificate; with a bad nonce the node's chain then failed an assert.
    node = Node(0)
    node.feed(DecidedBlock(Block(A.header, [forged_tx(nonce)]), certificate("A")))
    assert node.said() == []
    assert node.core.stats["decided_body_mismatch"] == 1
    node.feed(DecidedBlock(A, certificate("A")))
    assert node.said()[0] == ("commit", 1, "A")


# ------------------------------------------------------------------ the simulator


class HostileValidator:
    """Validator `index` in a simulation, running no core: it claims far heights
    and answers sync requests with forged responses, in rotation."""

    FORGERIES = ("swapped_body", "bad_certificate", "no_chain", "far_height", "empty")

    def __init__(self, sim: Simulation, index: int) -> None:
        self.sim = sim
        self.index = index
        self.key = validator_key(index)
        self.rng = random.Random(sim.seed)
        self.alive = True
        self.byzantine = True
        self.crash_after_actions = None
        self.restarts = 0
        self.disk = Disk()
        self.sent: Counter[str] = Counter()

    def boot(self) -> None:
        self.sim.queue.after(100, self._claim)
        self.sim.queue.after(100, self._push)

    def crash(self) -> None:
        """Hostile validators do not crash."""

    def _claim(self) -> None:
        """Sign a vote (and forge one for validator 0) at an absurd height."""
        height = FAR + self.rng.randrange(1_000)
        own = sign_vote(
            self.key,
            chain_id=SIM_CHAIN,
            kind=VoteKind.PREVOTE,
            height=height,
            round=0,
            block_id=b"",
            validator=self.index,
        )
        forged = msgspec.structs.replace(own, validator=0)  # not validator 0's signature
        self.sim.network.broadcast(self.index, own)
        self.sim.network.broadcast(self.index, forged)
        self.sent["claims"] += 1
        self.sim.queue.after(300, self._claim)

    def _push(self) -> None:
        """Unasked, send each lagging honest node the next block with a swapped body."""
        best = self._best()
        for index in sorted(self.sim.honest):
            height = self.sim.nodes[index].disk.height
            if height < best.height:
                block, cert = best.block_at(height + 1)
                parent = best.certificates[height - 1] if height else None
                self.sent["pushed_swapped_body"] += 1
                forged = self._forge("swapped_body", [(block, cert)], parent)
                self.sim.network.send(self.index, index, forged)
        self.sim.queue.after(25, self._push)

    def _best(self) -> Disk:
        return max(
            (self.sim.nodes[i].disk for i in sorted(self.sim.honest)), key=lambda d: d.height
        )

    def receive(self, source: int, message: Any) -> None:
        if not isinstance(message, SyncRequest):
            return
        best = self._best()
        first = message.from_height
        if best.height == 0:
            return
        if first <= best.height:
            blocks = [best.block_at(h) for h in range(first, min(best.height, first + 3) + 1)]
            parent = best.certificates[first - 2] if first > 1 else None
        else:  # nothing certified to start from: relabel the tip as the height asked for
            block, cert = best.block_at(best.height)
            header = msgspec.structs.replace(
                block.header, height=first, parent_id=block_id(block.header)
            )
            blocks = [(Block(header, block.txs), cert)]
            parent = cert
        kinds = self.FORGERIES if first <= best.height else self.FORGERIES[1:]
        kind = kinds[self.rng.randrange(len(kinds))]
        self.sent[kind] += 1
        self.sim.network.send(self.index, source, self._forge(kind, blocks, parent))

    def _forge(
        self,
        kind: str,
        blocks: list[tuple[Block, CommitCertificate]],
        parent: CommitCertificate | None,
    ) -> SyncResponse:
        if kind == "swapped_body":
            swapped = [forged_sim_tx(self._best())]
            blocks = [(Block(b.header, swapped), c) for b, c in blocks]
        elif kind == "bad_certificate":
            blocks = [
                (
                    b,
                    msgspec.structs.replace(
                        c, signatures=[(i, bytes(64)) for i, _ in c.signatures]
                    ),
                )
                for b, c in blocks
            ]
        elif kind == "no_chain":
            blocks = [
                (Block(msgspec.structs.replace(b.header, parent_id=b"\x07" * 32), b.txs), c)
                for b, c in blocks
            ]
        elif kind == "far_height":
            blocks = [
                (Block(msgspec.structs.replace(b.header, height=FAR), b.txs), c) for b, c in blocks
            ]
        else:
            blocks = []
        return SyncResponse(parent, blocks)


def forged_sim_tx(disk: Disk) -> Any:
    """A well-signed transaction from a simulated sender, with a nonce that fits."""
    return sim_tx(0, disk.next_nonce(sender_key(0).public_key))


def hostile_run(seed: int, heights: int) -> tuple[Simulation, HostileValidator, Any]:
    # Seven validators, so that the honest six can finalize while one of them,
    # crashed and restarted, lags and asks the liar for blocks.
    faults = Faults(loss=0.05, latency_ms=(1, 40), crashes=True)
    sim = Simulation(validators=7, seed=seed, heights=heights, faults=faults)
    hostile = HostileValidator(sim, 6)
    sim.nodes[6] = hostile  # type: ignore[call-overload]
    sim.network.receivers[6] = hostile.receive
    sim.honest.discard(6)  # the checker and the crash schedule share this set
    return sim, hostile, sim.run()


@pytest.mark.parametrize("seed", [1, 3, 4])
def test_a_hostile_validator_cannot_stall_or_fool_catch_up(seed: int) -> None:
    sim, hostile, result = hostile_run(seed, heights=20)
    assert result.ok, result.violations
    assert result.reached >= 20
    # The attack was delivered: honest nodes asked the liar, got each kind of
    # forgery, and refused each for its reason.
    assert all(hostile.sent[kind] for kind in HostileValidator.FORGERIES[1:]), hostile.sent
    refused: Counter[str] = Counter()
    for index in sim.honest:
        core = sim.nodes[index].core
        assert core is not None
        refused.update(core.stats)
    # Far-height answers start at no height that was asked for: catch-up drops
    # them before the core sees them.
    for reason in ("body_mismatch", "bad_certificate", "wrong_parent"):
        assert refused[f"decided_{reason}"] > 0, refused
    assert refused["message_far_future"] > 0


def test_the_hostile_run_replays_exactly() -> None:
    first = hostile_run(4, heights=6)[2]
    again = hostile_run(4, heights=6)[2]
    assert (first.messages, first.events, first.sim_ms) == (
        again.messages,
        again.events,
        again.sim_ms,
    )
