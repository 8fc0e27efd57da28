"""Commit certificates: a table of valid and invalid certificates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.crypto import PrivateKey, sign_vote
from sequencer.errors import CertificateError
from sequencer.types import CommitCertificate, ValidatorInfo, VoteKind

CHAIN = "devnet-1"
HEIGHT, ROUND = 12, 2
BLOCK = b"\xb1" * 32
OTHER_BLOCK = b"\xb2" * 32
KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(4)]


def validator_set(powers: list[int]) -> ValidatorSet:
    return ValidatorSet(
        [
            ValidatorInfo(f"v{i}", key.public_key, power, "", "")
            for i, (key, power) in enumerate(zip(KEYS, powers, strict=False))
        ]
    )


def precommit(
    index: int,
    *,
    kind: VoteKind = VoteKind.PRECOMMIT,
    chain: str = CHAIN,
    height: int = HEIGHT,
    round: int = ROUND,
    block: bytes = BLOCK,
) -> tuple[int, bytes]:
    vote = sign_vote(
        KEYS[index],
        chain_id=chain,
        kind=kind,
        height=height,
        round=round,
        block_id=block,
        validator=index,
    )
    return (index, vote.signature)


def cert(signatures: list[tuple[int, bytes]], *, height: int = HEIGHT, block: bytes = BLOCK):
    return CommitCertificate(height, ROUND, block, signatures)


@dataclass
class Case:
    name: str
    powers: list[int]
    make: Callable[[], CommitCertificate]
    reason: str | None  # None: valid
    expect_height: int | None = HEIGHT
    expect_block: bytes | None = BLOCK


EQUAL = [1, 1, 1, 1]
WEIGHTED = [10, 1, 1, 1]

CASES = [
    Case("three of four", EQUAL, lambda: cert([precommit(i) for i in (0, 1, 2)]), None),
    Case("all four", EQUAL, lambda: cert([precommit(i) for i in range(4)]), None),
    Case("any three", EQUAL, lambda: cert([precommit(i) for i in (0, 2, 3)]), None),
    Case("heavy validator alone", WEIGHTED, lambda: cert([precommit(0)]), None),
    Case(
        "no expectations given",
        EQUAL,
        lambda: cert([precommit(i) for i in (1, 2, 3)]),
        None,
        expect_height=None,
        expect_block=None,
    ),
    Case("two of four", EQUAL, lambda: cert([precommit(0), precommit(1)]), "insufficient_power"),
    Case(
        "exactly two thirds",
        [1, 1, 1],
        lambda: cert([precommit(0), precommit(1)]),
        "insufficient_power",
    ),
    Case(
        "light validators only",
        WEIGHTED,
        lambda: cert([precommit(i) for i in (1, 2, 3)]),
        "insufficient_power",
    ),
    Case("empty", EQUAL, lambda: cert([]), "insufficient_power"),
    Case(
        "duplicate signer",
        EQUAL,
        lambda: cert([precommit(0), precommit(0), precommit(1)]),
        "duplicate_signer",
    ),
    Case(
        "duplicate pads power",
        EQUAL,
        lambda: cert([precommit(0), precommit(1), precommit(1), precommit(1)]),
        "duplicate_signer",
    ),
    Case("unsorted", EQUAL, lambda: cert([precommit(1), precommit(0), precommit(2)]), "unsorted"),
    Case(
        "unknown index",
        EQUAL,
        lambda: cert([precommit(0), precommit(1), (4, b"\x00" * 64)]),
        "unknown_validator",
    ),
    Case(
        "huge index",
        EQUAL,
        lambda: cert([precommit(0), precommit(1), (2**32 - 1, b"\x00" * 64)]),
        "unknown_validator",
    ),
    Case(
        "garbage signature",
        EQUAL,
        lambda: cert([precommit(0), precommit(1), (2, b"\x07" * 64)]),
        "bad_signature",
    ),
    Case(
        "signature of another validator",
        EQUAL,
        lambda: cert([precommit(0), precommit(1), (2, precommit(3)[1])]),
        "bad_signature",
    ),
    Case(
        "prevotes, not precommits",
        EQUAL,
        lambda: cert([precommit(i, kind=VoteKind.PREVOTE) for i in (0, 1, 2)]),
        "bad_signature",
    ),
    Case(
        "one prevote among precommits",
        EQUAL,
        lambda: cert([precommit(0), precommit(1), precommit(2, kind=VoteKind.PREVOTE)]),
        "bad_signature",
    ),
    Case(
        "signatures for another height",
        EQUAL,
        lambda: cert([precommit(i, height=HEIGHT + 1) for i in (0, 1, 2)]),
        "bad_signature",
    ),
    Case(
        "signatures for another round",
        EQUAL,
        lambda: cert([precommit(i, round=ROUND + 1) for i in (0, 1, 2)]),
        "bad_signature",
    ),
    Case(
        "signatures for another block",
        EQUAL,
        lambda: cert([precommit(i, block=OTHER_BLOCK) for i in (0, 1, 2)]),
        "bad_signature",
    ),
    Case(
        "nil precommits",
        EQUAL,
        lambda: cert([precommit(i, block=b"") for i in (0, 1, 2)]),
        "bad_signature",
    ),
    Case(
        "signatures for another chain",
        EQUAL,
        lambda: cert([precommit(i, chain="other") for i in (0, 1, 2)]),
        "bad_signature",
    ),
    Case(
        "certificate for another height",
        EQUAL,
        lambda: cert([precommit(i, height=HEIGHT + 1) for i in (0, 1, 2)], height=HEIGHT + 1),
        "wrong_height",
    ),
    Case(
        "certificate for another block",
        EQUAL,
        lambda: cert([precommit(i, block=OTHER_BLOCK) for i in (0, 1, 2)], block=OTHER_BLOCK),
        "wrong_block",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_certificate_table(case: Case) -> None:
    certificate = case.make()
    validators = validator_set(case.powers)

    def run() -> None:
        verify_certificate(
            certificate, validators, CHAIN, height=case.expect_height, block_id=case.expect_block
        )

    if case.reason is None:
        run()
    else:
        with pytest.raises(CertificateError) as info:
            run()
        assert info.value.reason == case.reason


def test_thresholds() -> None:
    validators = validator_set(EQUAL)
    assert validators.total_power == 4
    assert [validators.is_quorum(p) for p in range(5)] == [False, False, False, True, True]
    assert [validators.is_one_third(p) for p in range(5)] == [False, False, True, True, True]
    assert validators.index_of(KEYS[2].public_key) == 2
    assert validators.index_of(b"\x00" * 32) is None
