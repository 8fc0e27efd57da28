"""What goes into and comes out of the consensus core.

Wire messages (gossiped between validators) are msgspec structs like the
domain model. Inputs and actions are the core's sans-IO interface: the driver
feeds inputs to `Core.step(input, now_ms)` and executes the returned actions
in order. Actions that produce an answer (`RequestValue`,
`ValidateBlock`) are answered by a later input (`ValueReady`,
`BlockValidated`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from sequencer.ids import BlockFacts
from sequencer.limits import VALIDATORS_MAX
from sequencer.types import Block, CommitCertificate, Proposal, SigningState, Vote, Wire

__all__ = [
    "Action",
    "BlockValidated",
    "Broadcast",
    "BroadcastVotes",
    "Commit",
    "CoreStatistics",
    "DecidedBlock",
    "Equivocation",
    "Input",
    "PersistSigningState",
    "ProposalMessage",
    "ReportEvidence",
    "RequestValue",
    "ScheduleTimeout",
    "Step",
    "TimeoutElapsed",
    "TimeoutKind",
    "TxsAvailable",
    "ValidateBlock",
    "ValueReady",
]


# ------------------------------------------------------------------ wire


class ProposalMessage(Wire):
    """A signed proposal with the certificate its block's header links to.

    Each validator assembles its own certificate for a height from the
    precommits it saw, so certificates of one block differ between nodes;
    the block's `last_commit_id` names one of them. The proposer attaches
    that one (None at height 1), validators check it, and it becomes the
    canonical certificate of the parent height (as CometBFT's LastCommit).

    A proposal with a proof-of-lock round carries that proof: the prevotes
    of `pol_round` for its block (empty otherwise). Validators that missed
    them could not accept the value others are locked on (L28), and re-sent
    copies of the votes do not help: gossip drops a message it delivered in
    the last minutes, even one the core could not use yet (it came too early).
    """

    proposal: Proposal
    parent_certificate: CommitCertificate | None
    pol: Annotated[list[Vote], Meta(max_length=VALIDATORS_MAX)] = msgspec.field(
        default_factory=list
    )


class Equivocation(Wire):
    """Evidence: two different signed votes of one validator for one (height, round, kind)."""

    first: Vote
    second: Vote


# ------------------------------------------------------------------ state


class Step(IntEnum):
    WAITING = 0  # a new height, waiting for transactions (or the empty-block timer)
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


class TimeoutKind(IntEnum):
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    REBROADCAST = 4  # re-send our own messages of a round that does not end
    EMPTY_BLOCK = 5  # start a height without transactions
    BLOCK_INTERVAL = 6  # start a height whose transactions came early (min_block_interval_ms)


# ------------------------------------------------------------------ inputs


class _Input(Struct, frozen=True):
    pass


class TimeoutElapsed(_Input):
    kind: TimeoutKind
    height: int
    round: int


class BlockValidated(_Input):
    """The driver's verdict on the state-dependent checks of a block."""

    block_id: bytes
    valid: bool
    reason: str = ""


class ValueReady(_Input):
    """The block the driver built for our proposal (answer to `RequestValue`),
    with its facts (computed while building it)."""

    height: int
    round: int
    block: Block
    facts: BlockFacts


class DecidedBlock(_Input):
    """A finalized block from catch-up; its certificate is verified by the core."""

    block: Block
    certificate: CommitCertificate
    parent_certificate: CommitCertificate | None = None


class TxsAvailable(_Input):
    """The mempool holds transactions: a waiting height may start."""


Input = (
    ProposalMessage
    | Vote
    | TimeoutElapsed
    | BlockValidated
    | ValueReady
    | DecidedBlock
    | TxsAvailable
)


# ------------------------------------------------------------------ actions


class _Action(Struct, frozen=True):
    pass


class PersistSigningState(_Action):
    """Write and fsync the signing state; the next `Broadcast` depends on it."""

    state: SigningState


class Broadcast(_Action):
    message: ProposalMessage | Vote


class BroadcastVotes(_Action):
    """Re-send votes to every node as one fresh message. Gossip drops a copy of
    a message it already delivered (for minutes), so re-sending a vote as it
    was cannot reach a node whose core dropped the first copy (it was heights
    ahead then, say); a bundle with a fresh envelope can."""

    votes: list[Vote]


class ScheduleTimeout(_Action):
    kind: TimeoutKind
    height: int
    round: int
    delay_ms: int


class RequestValue(_Action):
    """Build a block to propose (the paper's getValue()); answer with `ValueReady`."""

    height: int
    round: int
    proposer: int
    parent_id: bytes
    last_commit_id: bytes
    timestamp_ms_min: int  # strictly after the parent's timestamp
    max_gas: int
    max_txs: int


class ValidateBlock(_Action):
    """Check what the core cannot: nonces, state root, unverified tx signatures."""

    height: int
    block: Block
    facts: BlockFacts  # its ids, computed when the core admitted it


class Commit(_Action):
    """A block is final. `parent_certificate`, when set, replaces the stored
    certificate of the parent height (it is the one the block links to)."""

    block: Block
    certificate: CommitCertificate
    parent_certificate: CommitCertificate | None
    facts: BlockFacts  # its ids, carried since the core admitted or built it


class ReportEvidence(_Action):
    evidence: Equivocation


Action = (
    PersistSigningState
    | Broadcast
    | ScheduleTimeout
    | RequestValue
    | ValidateBlock
    | Commit
    | ReportEvidence
)


class CoreStatistics(Struct, frozen=True):
    """Where consensus is, and what it refused or noted, by what (`Core.stats`)."""

    height: int
    round: int
    step: int
    votes: int  # held for this height
    counts: Mapping[str, int]  # `Core.stats`: refused messages, signing refusals, ...
    votes_rejected: Mapping[str, int]  # by the vote keeper, by `VoteStatus` value
