"""Algorithm 1 of arXiv:1807.04938, rule by rule: a table of
{state reached by `setup`, `event`, expected actions, expected step}.

Four validators of power 1; we are validator `me`. The proposer of height 1
is validator (1 + round) % 4. Rebroadcast timers are left out of the
expected actions (they are not part of the paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from consensus.messages import TimeoutKind
from tests.consensus.harness import (
    ID,
    LOCKED_A,
    PRECOMMIT,
    PREVOTE,
    PREVOTED_A,
    Node,
    invalid,
    proposal,
    timeout,
    valid,
    value_ready,
    vote,
    votes,
)

PROPOSE_T, PREVOTE_T, PRECOMMIT_T = TimeoutKind.PROPOSE, TimeoutKind.PREVOTE, TimeoutKind.PRECOMMIT

PERSIST = ("persist",)


@dataclass
class Row:
    id: str
    expect: list[tuple]
    step: tuple  # (height, round, step name) after the event
    event: Any = None  # None: check what start() did
    setup: list[Any] = field(default_factory=list)
    me: int = 0
    locks: tuple | None = None  # (locked_round, locked, valid_round, valid)


ROWS = [
    Row(
        "L10-L21 start, not the proposer: schedule OnTimeoutPropose",
        [("timeout", "PROPOSE", 0)],
        (1, 0, "PROPOSE"),
    ),
    Row(
        "L14-L18 start as the proposer without validValue: getValue()",
        [("request_value", 0), ("timeout", "PROPOSE", 0)],
        (1, 0, "PROPOSE"),
        me=1,
    ),
    Row(
        "L19 the proposer broadcasts its value with validRound -1 (then L22-L24 prevotes it)",
        [PERSIST, ("proposal", 0, -1, "A"), PERSIST, ("vote", "PREVOTE", 0, "A")],
        (1, 0, "PREVOTE"),
        event=value_ready("A"),
        me=1,
    ),
    Row(
        "L15-L16 L19 the proposer re-proposes validValue with validRound (then L28-L30)",
        [
            PERSIST,
            ("proposal", 1, 0, "A"),
            ("timeout", "PROPOSE", 1),
            PERSIST,
            ("vote", "PREVOTE", 1, "A"),
        ],
        (1, 1, "PREVOTE"),
        event=timeout(PRECOMMIT_T, 0),
        setup=[proposal("A"), valid("A"), votes(PREVOTE, [0, 1], "A")],
        me=2,
    ),
    Row(
        "L22-L24 a valid proposal, not locked: prevote id(v)",
        [PERSIST, ("vote", "PREVOTE", 0, "A")],
        (1, 0, "PREVOTE"),
        event=valid("A"),
        setup=[proposal("A")],
    ),
    Row(
        "L22 a proposal waits for valid(v): the core asks the driver",
        [("validate", "A")],
        (1, 0, "PROPOSE"),
        event=proposal("A"),
    ),
    Row(
        "L22-L26 the driver finds the proposal invalid: prevote nil",
        [PERSIST, ("vote", "PREVOTE", 0, "nil")],
        (1, 0, "PREVOTE"),
        event=invalid("A"),
        setup=[proposal("A")],
    ),
    Row(
        "L22-L26 a structurally invalid proposal: prevote nil without asking",
        [PERSIST, ("vote", "PREVOTE", 0, "nil")],
        (1, 0, "PREVOTE"),
        event=proposal("bad"),
    ),
    Row(
        "L22 a proposal not from proposer(h, r) is ignored",
        [],
        (1, 0, "PROPOSE"),
        event=proposal("A", signer=2),
    ),
    Row(
        "L23 L26 locked on A, a fresh proposal of B: prevote nil",
        [PERSIST, ("vote", "PREVOTE", 1, "nil")],
        (1, 1, "PREVOTE"),
        event=valid("B"),
        setup=[*LOCKED_A, timeout(PRECOMMIT_T, 0), proposal("B", round=1)],
        locks=(0, "A", 0, "A"),
    ),
    Row(
        "L23-L24 locked on A, a fresh proposal of A: prevote A",
        [PERSIST, ("vote", "PREVOTE", 1, "A")],
        (1, 1, "PREVOTE"),
        event=proposal("A", round=1),
        setup=[*LOCKED_A, timeout(PRECOMMIT_T, 0)],
    ),
    Row(
        "L28-L30 a proof of lock in round vr, lockedRound <= vr: prevote id(v) (and L34)",
        [PERSIST, ("vote", "PREVOTE", 1, "A"), ("timeout", "PREVOTE", 1)],
        (1, 1, "PREVOTE"),
        event=valid("A"),
        setup=[
            votes(PREVOTE, [1, 2, 3], "A", 0),
            votes(PREVOTE, [2, 3], "nil", 1),
            proposal("A", round=1, pol_round=0),
        ],
    ),
    Row(
        "L28-L32 a proof of lock older than our lock on another value: prevote nil",
        [PERSIST, ("vote", "PREVOTE", 2, "nil")],
        (1, 2, "PREVOTE"),
        event=valid("A"),
        setup=[
            timeout(PROPOSE_T, 0),
            timeout(PRECOMMIT_T, 0),
            proposal("B", round=1),
            valid("B"),
            votes(PREVOTE, [2, 3], "B", 1),
            timeout(PRECOMMIT_T, 1),
            votes(PREVOTE, [1, 2, 3], "A", 0),
            proposal("A", round=2, pol_round=0),
        ],
        locks=(1, "B", 1, "B"),
    ),
    Row(
        "L28 without the polka of round vr: wait",
        [],
        (1, 1, "PROPOSE"),
        event=valid("A"),
        setup=[timeout(PRECOMMIT_T, 0), proposal("A", round=1, pol_round=0)],
    ),
    Row(
        "L34-L35 2f+1 prevotes of any kind while prevoting: start the prevote timer",
        [("timeout", "PREVOTE", 0)],
        (1, 0, "PREVOTE"),
        event=[vote(PREVOTE, 1, "A"), vote(PREVOTE, 2, "B")],
        setup=[timeout(PROPOSE_T, 0)],
    ),
    Row(
        "L34 the prevote timer starts only the first time",
        [],
        (1, 0, "PREVOTE"),
        event=vote(PREVOTE, 3, "nil"),
        setup=[timeout(PROPOSE_T, 0), vote(PREVOTE, 1, "A"), vote(PREVOTE, 2, "B")],
    ),
    Row(
        "L36-L41 a polka for a valid proposal while prevoting: lock, precommit id(v)",
        [("timeout", "PREVOTE", 0), PERSIST, ("vote", "PRECOMMIT", 0, "A")],
        (1, 0, "PRECOMMIT"),
        event=vote(PREVOTE, 2, "A"),
        setup=[*PREVOTED_A, vote(PREVOTE, 1, "A")],
        locks=(0, "A", 0, "A"),
    ),
    Row(
        "L36 L42-L43 a polka after precommitting nil: only validValue changes",
        [PERSIST],
        (1, 0, "PRECOMMIT"),
        event=votes(PREVOTE, [1, 2], "A"),
        setup=[*PREVOTED_A, timeout(PREVOTE_T, 0)],
        locks=(-1, "nil", 0, "A"),
    ),
    Row(
        "L44-L46 2f+1 prevotes for nil: precommit nil",
        [("timeout", "PREVOTE", 0), PERSIST, ("vote", "PRECOMMIT", 0, "nil")],
        (1, 0, "PRECOMMIT"),
        event=votes(PREVOTE, [1, 2], "nil"),
        setup=[timeout(PROPOSE_T, 0)],
    ),
    Row(
        "L47-L48 2f+1 precommits of any kind: start the precommit timer",
        [("timeout", "PRECOMMIT", 0)],
        (1, 0, "PRECOMMIT"),
        event=[vote(PRECOMMIT, 1, "nil"), vote(PRECOMMIT, 2, "A")],
        setup=[timeout(PROPOSE_T, 0), votes(PREVOTE, [1, 2], "nil")],
    ),
    Row(
        "L47 the precommit timer starts only the first time",
        [],
        (1, 0, "PRECOMMIT"),
        event=vote(PRECOMMIT, 3, "nil"),
        setup=[
            timeout(PROPOSE_T, 0),
            votes(PREVOTE, [1, 2], "nil"),
            vote(PRECOMMIT, 1, "nil"),
            vote(PRECOMMIT, 2, "A"),
        ],
    ),
    Row(
        "L49-L54 a proposal and 2f+1 precommits for it: decide, next height, StartRound(0)",
        [("commit", 1, "A"), ("timeout", "PROPOSE", 0)],
        (2, 0, "PROPOSE"),
        event=votes(PRECOMMIT, [1, 2, 3], "A"),
        setup=PREVOTED_A,
        locks=(-1, "nil", -1, "nil"),
    ),
    Row(
        "L49 2f+1 precommits of an earlier round decide too",
        [("commit", 1, "A"), ("timeout", "PROPOSE", 0)],
        (2, 0, "PROPOSE"),
        event=votes(PRECOMMIT, [1, 2, 3], "A", 0),
        setup=[*PREVOTED_A, timeout(PREVOTE_T, 0), timeout(PRECOMMIT_T, 0)],
    ),
    Row(
        "L50 an invalid value is never decided",
        [("timeout", "PRECOMMIT", 0)],
        (1, 0, "PREVOTE"),
        event=votes(PRECOMMIT, [1, 2, 3], "A"),
        setup=[proposal("A"), invalid("A")],
    ),
    Row(
        "L55-L56 f+1 votes of a higher round: StartRound(that round)",
        [("request_value", 3), ("timeout", "PROPOSE", 3)],
        (1, 3, "PROPOSE"),
        event=votes(PREVOTE, [2, 3], "nil", 3),
    ),
    Row(
        "L55 f votes of a higher round are not enough",
        [],
        (1, 0, "PROPOSE"),
        event=vote(PREVOTE, 2, "nil", 3),
    ),
    Row(
        "L57-L60 OnTimeoutPropose while proposing: prevote nil",
        [PERSIST, ("vote", "PREVOTE", 0, "nil")],
        (1, 0, "PREVOTE"),
        event=timeout(PROPOSE_T, 0),
    ),
    Row(
        "L58 OnTimeoutPropose of another round is ignored",
        [],
        (1, 0, "PROPOSE"),
        event=timeout(PROPOSE_T, 1),
    ),
    Row(
        "L58 OnTimeoutPropose after prevoting is ignored",
        [],
        (1, 0, "PREVOTE"),
        event=timeout(PROPOSE_T, 0),
        setup=PREVOTED_A,
    ),
    Row(
        "L61-L64 OnTimeoutPrevote while prevoting: precommit nil",
        [PERSIST, ("vote", "PRECOMMIT", 0, "nil")],
        (1, 0, "PRECOMMIT"),
        event=timeout(PREVOTE_T, 0),
        setup=[timeout(PROPOSE_T, 0)],
    ),
    Row(
        "L62 OnTimeoutPrevote after precommitting is ignored",
        [],
        (1, 0, "PRECOMMIT"),
        event=timeout(PREVOTE_T, 0),
        setup=[timeout(PROPOSE_T, 0), timeout(PREVOTE_T, 0)],
    ),
    Row(
        "L65-L67 OnTimeoutPrecommit: StartRound(round + 1)",
        [("timeout", "PROPOSE", 1)],
        (1, 1, "PROPOSE"),
        event=timeout(PRECOMMIT_T, 0),
    ),
    Row(
        "L66 OnTimeoutPrecommit of an old round is ignored",
        [],
        (1, 1, "PROPOSE"),
        event=timeout(PRECOMMIT_T, 0),
        setup=[timeout(PRECOMMIT_T, 0)],
    ),
    Row(
        "L66 OnTimeoutPrecommit of another height is ignored",
        [],
        (1, 0, "PROPOSE"),
        event=timeout(PRECOMMIT_T, 0, height=2),
    ),
]


def _name(value: bytes) -> str:
    return next(name for name, known in ID.items() if known == value)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_algorithm_1(row: Row) -> None:
    node = Node(row.me)
    started = node.actions
    node.feed(*row.setup)
    if row.event is not None:
        node.feed(row.event)
    else:
        assert not row.setup
        node.actions = started
    assert node.said() == row.expect
    assert node.state == row.step
    if row.locks is not None:
        core = node.core
        locks = (
            core.locked_round,
            _name(core.locked_value),
            core.valid_round,
            _name(core.valid_value),
        )
        assert locks == row.locks
