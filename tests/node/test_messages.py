"""The node's gossip encodings (node/daemon/messages.py): round trips and refusals."""

from __future__ import annotations

import pytest

from consensus.sync import SyncRequest
from node.daemon.messages import (
    TX_BATCH_MAX,
    VoteBundle,
    decode_consensus,
    decode_sync,
    decode_txs,
    encode_consensus,
    encode_sync,
    encode_txs,
)
from sequencer.codec import encode
from sequencer.crypto import PrivateKey, sign_transaction, sign_vote
from sequencer.errors import DecodeError
from sequencer.limits import VOTE_BUNDLE_MAX
from sequencer.types import Vote, VoteKind

KEY = PrivateKey(b"\x07" * 32)


def _tx(nonce: int):
    return sign_transaction(
        KEY, chain_id="devnet-1", namespace=0, nonce=nonce, gas_price=1, payload=b"p" * 200
    )


def test_a_batch_of_transactions_round_trips() -> None:
    txs = [_tx(n) for n in range(3)]
    assert decode_txs(encode_txs(txs)) == txs


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"T", "no array"),
        (b"T" + encode([]), "an empty batch"),
        (encode([_tx(0)]), "no kind byte"),
        (b"V" + encode([_tx(0)]), "the wrong kind"),
        (b"T" + encode(_tx(0)), "one transaction, not an array"),
        (b"T" + encode([_tx(0)] * (TX_BATCH_MAX + 1)), "too many"),
        (b"T" + encode([_tx(0)])[:-1], "truncated"),
    ],
)
def test_malformed_transaction_batches_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError):
        decode_txs(data)


def test_an_empty_batch_cannot_be_encoded() -> None:
    with pytest.raises(AssertionError):
        encode_txs([])


def test_kinds_do_not_cross_topics() -> None:
    request = encode_sync(SyncRequest(1, 4))
    assert decode_sync(request) == SyncRequest(1, 4)
    with pytest.raises(DecodeError):
        decode_consensus(request)
    with pytest.raises(DecodeError):
        decode_txs(request)


def _vote(round_: int) -> Vote:
    return sign_vote(
        KEY,
        chain_id="devnet-1",
        kind=VoteKind.PREVOTE,
        height=1,
        round=round_,
        block_id=b"\x01" * 32,
        validator=0,
    )


def test_a_vote_bundle_round_trips() -> None:
    bundle = VoteBundle(nonce=b"\x05" * 16, votes=[_vote(0), _vote(1)])
    assert decode_consensus(encode_consensus(bundle)) == bundle


@pytest.mark.parametrize(
    ("bundle", "why"),
    [
        ([b"\x05" * 16, []], "no votes"),
        ([b"\x05" * 4, ["vote"]], "a short nonce"),
        ([b"\x05" * 16, ["vote"] * (VOTE_BUNDLE_MAX + 1)], "too many votes"),
    ],
)
def test_malformed_vote_bundles_are_refused(bundle: list, why: str) -> None:
    vote = _vote(0)
    fields = [bundle[0], [vote if v == "vote" else v for v in bundle[1]]]
    with pytest.raises(DecodeError):
        decode_consensus(b"B" + encode(fields))
