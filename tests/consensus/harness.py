"""A test harness for one consensus core among four equal validators.

`Node(me)` wraps a real `Core`; peers are just keys that sign messages.
Actions are described as short tuples (`describe`) so that table rows read
like the paper: ("vote", "PREVOTE", 0, "A"), ("timeout", "PROPOSE", 0), ...
Blocks "A" and "B" are two valid blocks for height 1; "nil" is no block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from consensus.blocks import build_block
from consensus.core import Anchor, Core, CoreConfig
from consensus.messages import (
    Action,
    BlockValidated,
    Broadcast,
    Commit,
    Input,
    PersistSigningState,
    ProposalMessage,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    TimeoutElapsed,
    TimeoutKind,
    ValidateBlock,
    ValueReady,
)
from consensus.proposer import ProposerSchedule
from sequencer.certificate import ValidatorSet
from sequencer.crypto import PrivateKey, sign_proposal, sign_vote
from sequencer.ids import block_facts, block_id, genesis_state_root
from sequencer.types import (
    NIL,
    ZERO_ID,
    Block,
    CommitCertificate,
    ConsensusParams,
    SigningState,
    ValidatorInfo,
    Vote,
    VoteKind,
)

CHAIN = "test-1"
KEYS = [PrivateKey(bytes([40 + i]) * 32) for i in range(4)]
VALIDATORS = ValidatorSet(
    [ValidatorInfo(f"v{i}", k.public_key, 1, "", "") for i, k in enumerate(KEYS)]
)
SCHEDULE = ProposerSchedule(VALIDATORS.powers)
PARAMS = ConsensusParams()
GENESIS_MS = 1_000
NOW = 10_000
GENESIS = Anchor(0, ZERO_ID, GENESIS_MS, None)
PREVOTE, PRECOMMIT = VoteKind.PREVOTE, VoteKind.PRECOMMIT


def make_block(*, height: int = 1, round: int = 0, timestamp_ms: int = 2_000) -> Block:
    block, _ = build_block(
        chain_id=CHAIN,
        height=height,
        round=round,
        proposer=SCHEDULE.proposer(height, round),
        timestamp_ms=timestamp_ms,
        parent_id=ZERO_ID,
        last_commit_id=ZERO_ID,
        parent_state_root=genesis_state_root(CHAIN),
        txs=[],
        next_nonce=lambda sender: 0,
    )
    return block


A = make_block(timestamp_ms=2_000)
B = make_block(timestamp_ms=3_000)
# Well-formed and signed, but its parent is wrong: structurally invalid. (A
# body that does not match its header is no proposal at all: see test_hostile.)
BAD = Block(msgspec.structs.replace(A.header, parent_id=b"\x01" * 32), [])
BLOCKS = {"A": A, "B": B, "bad": BAD}
ID = {name: block_id(block.header) for name, block in BLOCKS.items()} | {"nil": NIL}
NAMES = {value: name for name, value in ID.items()}


def proposal(
    name: str, round: int = 0, pol_round: int = -1, *, signer: int | None = None
) -> ProposalMessage:
    """A signed proposal of block `name` (by the round's proposer unless `signer`)."""
    block = BLOCKS[name]
    proposer = SCHEDULE.proposer(1, round) if signer is None else signer
    signed = sign_proposal(
        KEYS[proposer],
        chain_id=CHAIN,
        height=1,
        round=round,
        pol_round=pol_round,
        block_id=ID[name],
        block=block,
        validator=proposer,
    )
    return ProposalMessage(signed, None)


def vote(kind: VoteKind, validator: int, name: str, round: int = 0, height: int = 1) -> Vote:
    return sign_vote(
        KEYS[validator],
        chain_id=CHAIN,
        kind=kind,
        height=height,
        round=round,
        block_id=ID[name],
        validator=validator,
    )


def votes(kind: VoteKind, validators: Iterable[int], name: str, round: int = 0) -> list[Vote]:
    return [vote(kind, v, name, round) for v in validators]


def certificate(name: str, signers: Sequence[int] = (0, 1, 2), round: int = 0) -> CommitCertificate:
    return CommitCertificate(
        1, round, ID[name], [(v, vote(PRECOMMIT, v, name, round).signature) for v in signers]
    )


def valid(name: str) -> BlockValidated:
    return BlockValidated(ID[name], True)


def invalid(name: str) -> BlockValidated:
    return BlockValidated(ID[name], False, "test")


def timeout(kind: TimeoutKind, round: int = 0, height: int = 1) -> TimeoutElapsed:
    return TimeoutElapsed(kind, height, round)


def describe(action: Action) -> tuple:
    """A short, readable form of an action for table comparisons."""
    if isinstance(action, Broadcast):
        message = action.message
        if isinstance(message, Vote):
            return ("vote", message.kind.name, message.round, NAMES.get(message.block_id, "?"))
        p = message.proposal
        return ("proposal", p.round, p.pol_round, NAMES.get(p.block_id, "?"))
    if isinstance(action, ScheduleTimeout):
        return ("timeout", action.kind.name, action.round)
    if isinstance(action, PersistSigningState):
        return ("persist",)
    if isinstance(action, RequestValue):
        return ("request_value", action.round)
    if isinstance(action, ValidateBlock):
        return ("validate", NAMES.get(block_id(action.block.header), "?"))
    if isinstance(action, Commit):
        return ("commit", action.block.header.height, NAMES.get(block_id(action.block.header), "?"))
    if isinstance(action, ReportEvidence):
        return ("evidence",)
    raise AssertionError(f"unknown action {action!r}")


def without_rebroadcast(described: list[tuple]) -> list[tuple]:
    return [d for d in described if d != ("timeout", "REBROADCAST", d[-1])]


class Node:
    """Validator `me` (0..3) running a real core; the proposer of (1, 0) is 1."""

    def __init__(
        self,
        me: int = 0,
        *,
        signing_state: SigningState | None = None,
        wait_for_txs: bool = False,
        anchor: Anchor = GENESIS,
        min_block_interval_ms: int = 0,
    ) -> None:
        self.core = Core(
            chain_id=CHAIN,
            validators=VALIDATORS,
            params=PARAMS,
            anchor=anchor,
            key=KEYS[me],
            signing_state=signing_state,
            config=CoreConfig(
                wait_for_txs=wait_for_txs, min_block_interval_ms=min_block_interval_ms
            ),
        )
        self.actions: list[Action] = self.core.start(NOW)
        self.persisted: SigningState | None = None

    def feed(self, *events: Input | Iterable[Input], now: int = NOW) -> list[Action]:
        """Feed events in order (at `now`); return all resulting actions."""
        actions: list[Action] = []
        for event in events:
            batch = event if isinstance(event, list) else [event]
            for item in batch:
                actions.extend(self.core.step(item, now))
        self.actions = actions
        for action in actions:
            if isinstance(action, PersistSigningState):
                self.persisted = action.state
        return actions

    def said(self) -> list[tuple]:
        return without_rebroadcast([describe(a) for a in self.actions])

    @property
    def state(self) -> tuple:
        core = self.core
        return (core.height, core.round, core.round_step.name)


def value_ready(name: str, round: int = 0) -> ValueReady:
    return ValueReady(1, round, BLOCKS[name], block_facts(BLOCKS[name]))


# Validator 0 prevotes A in round 0; then validators 1 and 2 do: a polka, so 0 locks on A.
PREVOTED_A = [proposal("A"), valid("A")]
LOCKED_A = [*PREVOTED_A, votes(PREVOTE, [1, 2], "A")]
