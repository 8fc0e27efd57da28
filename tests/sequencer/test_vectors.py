"""Normative vectors of the wire formats, with expected bytes written out by hand.

The expected encodings below are derived from the MessagePack spec, not from
our encoder, so a change in field order, integer width or str/bin choice fails.
"""

from __future__ import annotations

from pathlib import Path

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
from sequencer.namespaces import NamespaceTable, verify_absence, verify_presence
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


# A block of three transactions of the transaction vector's key (namespaces 7,
# 9, 7), with its namespace table and proofs. docs/protocol.md states them.
BLOCK_VECTOR = {
    "tx_ids": [
        "f233b35f3ba984f0a5cc0001bce78734975320e4be6e247c6ca13f516befeb1b",
        "0678555b2be23ee18ffb78b1c8771bd0c0a6d3cba1244493b77def35bcb1fc23",
        "5c4e8a3a87c2b143c94bde7234a499ae94011e618ddebda688bee0a3cb88bcc3",
    ],
    "entry_7": "930702c420bc3395278b5a7736add5cc19f11faada4c142a544540be4f049006fcf0c49e9d",
    "entry_9": "930901c420b76e9723eff6b018766ff8dd4098edd57abd5390bd95857b107cceb76add10d1",
    "tx_root": "36351fd2b7c37dd625d47099f851647c62e0301ced7efd59fcd1c6d8d49a6103",
    "namespace_root": "8aaba9fbb688984409587478cce493b42ff7faf8fae9e78748eff764b296fee8",
    "state_root": "a91f7efdeab98569bbcd8b9bb116710429cf0311b6ceeb61d51c15fc6f78b147",
    "block_id": "2a774916bed6e23ae4bb88597309e1feef78fe8bfe21433e63472780b0bb534d",
    "leaf_7": "a39e7a6acda1172504ba633ac16b4c367ecdb3b0f0db4bca3d7c7c66e1fe74fe",
    "leaf_9": "72ce01d34981fd3d2e64d6c4d61a0d41c7cd85f814d40ea756feb1debac676e8",
}


def _vector_block() -> tuple[list, BlockHeader]:
    key = PrivateKey(bytes(range(32)))
    txs = [
        sign_transaction(key, chain_id="devnet-1", namespace=ns, nonce=n, gas_price=10, payload=p)
        for ns, n, p in [(7, 0, b"hello"), (9, 1, b"world"), (7, 2, b"!")]
    ]
    ids_ = [ids.tx_id(tx) for tx in txs]
    table = NamespaceTable.of_block(txs, ids_)
    root = ids.state_root(ids.genesis_state_root("devnet-1"), {key.public_key: 3})
    header = BlockHeader(
        "devnet-1",
        1,
        0,
        1_700_000_000_000,
        ZERO_ID,
        ids.tx_root(ids_),
        table.root,
        root,
        0,
        ZERO_ID,
    )
    return txs, header


def test_block_and_namespace_table_vector() -> None:
    txs, header = _vector_block()
    v = BLOCK_VECTOR
    assert [ids.tx_id(tx).hex() for tx in txs] == v["tx_ids"]
    table = NamespaceTable.of_block(txs, [ids.tx_id(tx) for tx in txs])
    assert [encode(entry).hex() for entry in table.entries] == [v["entry_7"], v["entry_9"]]
    # By hand: each ns_tx_root is the Merkle root of that namespace's ids in
    # block order; the table's root hashes the two encoded entries as leaves.
    t0, t1, t2 = (bytes.fromhex(h) for h in v["tx_ids"])

    def leaf(item: bytes) -> bytes:
        return blake3(b"\x00" + item).digest()

    def node(left: bytes, right: bytes) -> bytes:
        return blake3(b"\x01" + left + right).digest()

    assert table.entries[0].ns_tx_root == node(leaf(t0), leaf(t2))
    assert table.entries[1].ns_tx_root == leaf(t1)
    leaf_7, leaf_9 = leaf(bytes.fromhex(v["entry_7"])), leaf(bytes.fromhex(v["entry_9"]))
    assert (leaf_7.hex(), leaf_9.hex()) == (v["leaf_7"], v["leaf_9"])
    assert node(leaf_7, leaf_9).hex() == v["namespace_root"] == header.namespace_root.hex()
    assert header.tx_root == node(node(leaf(t0), leaf(t1)), leaf(t2))
    assert header.tx_root.hex() == v["tx_root"]
    assert header.state_root.hex() == v["state_root"]
    assert ids.block_id(header).hex() == v["block_id"]


def test_presence_and_absence_proof_vectors() -> None:
    txs, header = _vector_block()
    v = BLOCK_VECTOR
    table = NamespaceTable.of_block(txs, [ids.tx_id(tx) for tx in txs])
    presence = table.presence(7)
    assert presence is not None
    assert (presence.proof.index, presence.proof.size) == (0, 2)
    assert [h.hex() for h in presence.proof.path] == [v["leaf_9"]]
    mine = [txs[0], txs[2]]
    assert verify_presence(7, header.namespace_root, presence.entry, presence.proof, mine)
    absence = table.absence(8)  # between 7 (index 0) and 9 (index 1)
    assert absence.left is not None
    assert absence.right is not None
    assert (absence.left.entry.namespace, absence.right.entry.namespace) == (7, 9)
    assert [h.hex() for h in absence.right.proof.path] == [v["leaf_7"]]
    verify_absence(8, header.namespace_root, absence)
    assert table.absence(3).left is None  # before the first entry
    assert table.absence(10).right is None  # after the last


def test_the_specification_states_the_vectors() -> None:
    spec = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    for value in [*BLOCK_VECTOR["tx_ids"], *(v for k, v in BLOCK_VECTOR.items() if k != "tx_ids")]:
        assert value in spec, value
