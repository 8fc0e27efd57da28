"""Fuzzing the consensus and sync message decoders (`node.daemon.messages`) and what
the core makes of whatever decodes.

Arbitrary bytes and mutated valid encodings (bit flips, cuts, insertions,
huge length headers, a wrong kind byte) only ever raise `DecodeError`. What
does decode goes into a real core (`tests.consensus.harness`) as a peer's
message or a catch-up block: the core never raises, commits nothing it
cannot verify, and still decides when the honest votes arrive.
`tests/sequencer/test_codec.py` fuzzes the transaction and block codecs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.messages import Commit, DecidedBlock, ProposalMessage
from consensus.sync import SYNC_BLOCKS_MAX, SyncRequest, SyncResponse
from node.daemon.messages import (
    decode_consensus,
    decode_sync,
    decode_txs,
    encode_consensus,
    encode_sync,
    encode_txs,
)
from sequencer.errors import DecodeError
from sequencer.types import Vote
from tests.consensus.harness import (
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
from tests.strategies import certificates, mutated, transactions

# Valid encodings to mutate: real signed messages of the harness's chain.
CONSENSUS = [
    encode_consensus(proposal("A")),
    encode_consensus(ProposalMessage(proposal("B", round=1).proposal, certificate("A"))),
    encode_consensus(vote(PREVOTE, 2, "A")),
    encode_consensus(vote(PRECOMMIT, 3, "nil")),
]
SYNC = [
    encode_sync(SyncRequest(1, SYNC_BLOCKS_MAX)),
    encode_sync(SyncResponse(None, [(A, certificate("A"))])),
    encode_sync(SyncResponse(certificate("A"), [])),
]
DECODERS = [decode_consensus, decode_sync, decode_txs]


def decoded_or_none(decoder: object, data: bytes) -> object:
    try:
        return decoder(data)  # type: ignore[operator]
    except DecodeError:
        return None


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
def test_arbitrary_bytes_only_raise_decode_error(decoder: object) -> None:
    @given(st.sampled_from([b"P", b"V", b"Q", b"R", b""]), st.binary(max_size=600))
    def check(kind: bytes, data: bytes) -> None:
        decoded_or_none(decoder, kind + data)

    check()


@given(st.sampled_from(CONSENSUS + SYNC).flatmap(mutated), st.sampled_from(DECODERS))
def test_mutated_messages_only_raise_decode_error(data: bytes, decoder: object) -> None:
    decoded_or_none(decoder, data)


@given(
    st.sampled_from(CONSENSUS).flatmap(
        lambda data: st.sampled_from([b"Q", b"R", b"X"]).map(lambda kind: kind + data[1:])
    )
)
def test_a_wrong_kind_byte_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_consensus(data)


@pytest.mark.parametrize(
    ("decoder", "data"),
    [
        (decode_sync, b"R\x92\xc0\xdd\xff\xff\xff\xff"),  # 4G blocks announced
        (decode_sync, b"R\x92\xc0" + b"\xdc\x00\x41" + b"\xc0" * 65),  # 65 blocks
        (decode_consensus, b"V\x97\xdb\xff\xff\xff\xff"),  # a 4 GiB chain id
        (decode_txs, b"T\x91\x97\xa1x\x01\xc4\x20" + bytes(32) + b"\x00\x00\xc6\xff\xff\xff\xff"),
        (decode_txs, b"T\xdd\xff\xff\xff\xff"),  # 4G transactions announced
    ],
    ids=[
        "blocks-array32",
        "blocks-over-the-bound",
        "chain-id-str32",
        "payload-bin32",
        "txs-array32",
    ],
)
def test_huge_declared_counts_fail_fast(decoder: object, data: bytes) -> None:
    with pytest.raises(DecodeError):
        decoder(data + bytes(64))  # type: ignore[operator]


@given(st.lists(transactions, min_size=1, max_size=3), st.binary(max_size=8))
def test_transactions_round_trip_and_trailing_bytes_are_refused(txs: list, tail: bytes) -> None:
    assert decode_txs(encode_txs(txs)) == txs
    if tail:
        with pytest.raises(DecodeError):
            decode_txs(encode_txs(txs) + tail)


# ------------------------------------------------------------------ into the core


def feed_decoded(node: Node, message: object) -> None:
    if isinstance(message, ProposalMessage | Vote):
        node.feed(message)
    elif isinstance(message, SyncResponse):
        parent = message.parent_certificate
        for block, cert in message.blocks:
            node.feed(DecidedBlock(block, cert, parent))
            parent = None


@settings(max_examples=150)
@given(st.lists(st.sampled_from(CONSENSUS + SYNC).flatmap(mutated), max_size=6))
def test_whatever_decodes_leaves_the_core_able_to_decide(hostile: list[bytes]) -> None:
    node = Node(0)
    for data in hostile:
        message = decoded_or_none(decode_consensus, data) or decoded_or_none(decode_sync, data)
        feed_decoded(node, message)
        commits = [a for a in node.actions if isinstance(a, Commit)]
        # A mutated message may still be the genuine one (a no-op mutation or
        # an unsigned field); anything committed is the real block A.
        assert all(c.block == A for c in commits)
    if node.core.height == 1:
        node.feed(proposal("A"), valid("A"), votes(PREVOTE, [1, 2], "A"))
        node.feed(votes(PRECOMMIT, [1, 2], "A"))
    assert node.core.height == 2
    assert node.core.anchor.block_id == certificate("A").block_id


@given(certificates, st.lists(certificates, max_size=3))
def test_catch_up_blocks_with_random_certificates_are_refused(parent, certs: list) -> None:
    node = Node(0)
    for cert in certs:
        node.feed(DecidedBlock(A, cert, parent))
    assert node.core.height == 1
    assert not [a for a in node.actions if isinstance(a, Commit)]
