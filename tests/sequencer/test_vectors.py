"""Normative vectors of the wire formats, with expected bytes written out by hand.

The expected encodings below are derived from the MessagePack spec, not from
our encoder, so a change in field order, integer width or str/bin choice fails.
"""

from __future__ import annotations

from blake3 import blake3

from sequencer import ids
from sequencer.codec import encode
from sequencer.crypto import (
    PrivateKey,
    proposal_signing_bytes,
    sign_transaction,
    tx_signing_bytes,
    verify_transaction,
    vote_signing_bytes,
)
from sequencer.types import ZERO_ID, BatchCommitment, BlockHeader, CommitCertificate, VoteKind


def test_transaction_vector() -> None:
    key = PrivateKey(bytes(range(32)))
    tx = sign_transaction(
        key, chain_id="devnet-1", namespace=7, nonce=0, gas_price=10, payload=b"hello"
    )
    assert tx.sender.hex() == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert ids.tx_id(tx).hex() == "f233b35f3ba984f0a5cc0001bce78734975320e4be6e247c6ca13f516befeb1b"
    assert verify_transaction(tx)
    assert ids.gas(tx) == 1000 + 16 * 5
    # What ingest computes once and carries: the same id, and the encoding's size.
    assert ids.tx_facts(tx) == (ids.tx_id(tx), len(encode(tx)))


def test_tx_signing_bytes_layout() -> None:
    sender = bytes(range(32))
    expected = (
        b"\x97"  # fixarray of 7
        + b"\xa9seq/tx/v1"  # fixstr 9
        + b"\xa8devnet-1"  # fixstr 8
        + b"\x07"  # namespace, positive fixint
        + b"\xc4\x20"
        + sender  # bin8 of 32
        + b"\xcd\x01\x00"  # nonce 256, uint16
        + b"\xcf"
        + (2**64 - 1).to_bytes(8, "big")  # gas price, uint64
        + b"\xc4\x05hello"  # payload, bin8 of 5
    )
    assert tx_signing_bytes("devnet-1", 7, sender, 256, 2**64 - 1, b"hello") == expected


def test_vote_signing_bytes_layout() -> None:
    block = b"\x11" * 32
    expected = b"\x96\xabseq/vote/v1\xa1c\x02\x05\x00\xc4\x20" + block
    assert vote_signing_bytes("c", VoteKind.PRECOMMIT, 5, 0, block) == expected
    nil = b"\x96\xabseq/vote/v1\xa1c\x01\x05\x03\xc4\x00"
    assert vote_signing_bytes("c", VoteKind.PREVOTE, 5, 3, b"") == nil


def test_proposal_signing_bytes_layout() -> None:
    block = b"\x22" * 32
    expected = b"\x96\xafseq/proposal/v1\xa1c\x05\x01\xff\xc4\x20" + block  # -1 is 0xff
    assert proposal_signing_bytes("c", 5, 1, -1, block) == expected


def test_block_id_is_hash_of_header_array() -> None:
    header = BlockHeader(
        "c",
        1,
        0,
        1_700_000_000_000,
        ZERO_ID,
        b"\x01" * 32,
        b"\x04" * 32,
        b"\x02" * 32,
        3,
        ZERO_ID,
    )
    expected = (
        b"\x9a\xa1c\x01\x00"  # an array of 10: namespace_root is the 7th field
        + b"\xcf"
        + (1_700_000_000_000).to_bytes(8, "big")
        + b"\xc4\x20"
        + ZERO_ID
        + b"\xc4\x20"
        + b"\x01" * 32
        + b"\xc4\x20"
        + b"\x04" * 32
        + b"\xc4\x20"
        + b"\x02" * 32
        + b"\x03"
        + b"\xc4\x20"
        + ZERO_ID
    )
    assert encode(header) == expected
    assert ids.block_id(header) == blake3(expected).digest()


def test_commit_id_is_hash_of_certificate_array() -> None:
    cert = CommitCertificate(2, 1, b"\x33" * 32, [(0, b"\x44" * 64), (2, b"\x55" * 64)])
    expected = (
        b"\x94\x02\x01\xc4\x20"
        + b"\x33" * 32
        + b"\x92"
        + b"\x92\x00\xc4\x40"
        + b"\x44" * 64
        + b"\x92\x02\xc4\x40"
        + b"\x55" * 64
    )
    assert encode(cert) == expected
    assert ids.commit_id(cert) == blake3(expected).digest()


def test_state_roots() -> None:
    assert ids.genesis_state_root("devnet-1") == blake3(b"seq/genesis/devnet-1").digest()
    parent = b"\x09" * 32
    a, b = b"\x01" * 32, b"\x02" * 32
    pairs = b"\x92" + b"\x92\xc4\x20" + a + b"\x01" + b"\x92\xc4\x20" + b + b"\x05"
    assert ids.state_root(parent, {b: 5, a: 1}) == blake3(parent + pairs).digest()
    assert ids.state_root(parent, {}) == blake3(parent + b"\x90").digest()


def test_batch_commitment_layout() -> None:
    batch = BatchCommitment("c", 0, 1, 300, b"\x66" * 32, b"\x77" * 32)
    expected = (
        b"\x97\xacseq/batch/v1\xa1c\x00\x01\xcd\x01\x2c"
        + b"\xc4\x20"
        + b"\x66" * 32
        + b"\xc4\x20"
        + b"\x77" * 32
    )
    assert ids.encode_batch(batch) == expected
    assert ids.batch_commitment(batch) == blake3(expected).digest()
    assert ids.decode_batch(expected) == batch
