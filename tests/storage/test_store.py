"""The shared `Store` suite: every test runs on the memory and LevelDB backends."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import msgspec
import pytest

from sequencer.certificate import verify_certificate
from sequencer.codec import decode, encode
from sequencer.ids import block_facts
from sequencer.ids import tx_id as id_of
from sequencer.types import ZERO_ID, Block, SignStep, Transaction, TxLocation
from storage import (
    SCHEMA_VERSION,
    Store,
    StoreClosedError,
    StoreConflictError,
    StoreCorruptError,
    StoreMismatchError,
)
from storage.schema import (
    META_GENESIS_KEY,
    META_SCHEMA_KEY,
    TIP_KEY,
    block_key,
    certificate_key,
    encode_schema_version,
    nonce_key,
    tx_key,
)
from tests.storage import chain
from tests.storage.backends import Backend
from tests.storage.chain import (
    CHAIN_ID,
    SIGNING_STATE,
    USER_KEYS,
    VALIDATOR_SET,
    Finalized,
    build_chain,
    certify,
    next_block,
    with_header,
)

CHAIN = build_chain(8)
USER = USER_KEYS[1].public_key


def commit_all(store: Store, chain: tuple[Finalized, ...] = CHAIN) -> None:
    for item in chain:
        assert store.commit_block(*item.args()) is True


def assert_holds(store: Store, chain: tuple[Finalized, ...]) -> None:
    """Every read API returns what was committed for `chain`."""
    last = chain[-1]
    tip = store.tip()
    assert tip is not None
    assert (tip.height, tip.block_id) == (last.height, last.block_id)
    assert (tip.state_root, tip.commit_id) == (last.block.header.state_root, last.commit_id)
    assert store.height() == last.height
    for item in chain:
        height = item.height
        assert store.block(height) == item.block
        raw = store.block_bytes(height)
        assert raw == encode(item.block)
        assert decode(raw, Block) == item.block
        assert store.header(height) == item.block.header
        assert store.certificate(height) == item.certificate
        assert store.height_of(item.block_id) == height
        for index, tx_id in enumerate(item.tx_ids):
            assert store.tx_location(tx_id) == TxLocation(height, index)
    for key in USER_KEYS:
        assert store.next_nonce(key.public_key) == last.nonces_after.get(key.public_key, 0)
    assert list(store.blocks(1, last.height)) == [item.block for item in chain]


def assert_empty(store: Store) -> None:
    assert store.tip() is None
    assert store.height() == 0
    first = CHAIN[0]
    assert store.block(1) is None
    assert store.block_bytes(1) is None
    assert store.header(1) is None
    assert store.certificate(1) is None
    assert store.height_of(first.block_id) is None
    assert all(store.tx_location(tx_id) is None for item in CHAIN for tx_id in item.tx_ids)
    assert all(store.next_nonce(key.public_key) == 0 for key in USER_KEYS)
    assert list(store.blocks(1, 10)) == []
    assert list(store.certificates(1, 10)) == []


def test_the_test_chain_is_realistic() -> None:
    assert [len(item.block.txs) for item in CHAIN] == [1, 2, 3, 0, 1, 2, 3, 0]
    for item in CHAIN:
        verify_certificate(
            item.certificate, VALIDATOR_SET, CHAIN_ID, height=item.height, block_id=item.block_id
        )
    for parent, child in itertools.pairwise(CHAIN):
        assert child.block.header.parent_id == parent.block_id
        assert child.block.header.last_commit_id == parent.commit_id


def test_empty_store_reads_nothing(backend: Backend) -> None:
    store = backend.open()
    assert_empty(store)
    assert store.signing_state() is None
    assert store.chain_id == CHAIN_ID


def test_commit_then_every_read_returns_it(backend: Backend) -> None:
    store = backend.open()
    for count, item in enumerate(CHAIN, start=1):
        assert store.commit_block(*item.args()) is True
        assert_holds(store, CHAIN[:count])
    assert store.block(len(CHAIN) + 1) is None
    assert store.certificate(len(CHAIN) + 1) is None


def test_ids_the_caller_computed_are_stored_as_computed_here(backend: Backend) -> None:
    store = backend.open()
    for count, item in enumerate(CHAIN, start=1):
        assert store.commit_block(*item.args(), facts=block_facts(item.block)) is True
        assert_holds(store, CHAIN[:count])


def test_reopened_store_has_everything_and_continues(backend: Backend) -> None:
    store = backend.open()
    commit_all(store, CHAIN[:5])
    store = backend.reopen(store)
    assert_holds(store, CHAIN[:5])
    commit_all(store, CHAIN[5:])
    store = backend.reopen(store, chain_id=None)
    assert store.chain_id == CHAIN_ID
    assert_holds(store, CHAIN)


def test_ranges(backend: Backend) -> None:
    store = backend.open()
    commit_all(store)
    blocks = [item.block for item in CHAIN]
    certificates = [item.certificate for item in CHAIN]
    assert list(store.blocks(1, 8)) == blocks
    assert list(store.blocks(3, 5)) == blocks[2:5]
    assert list(store.blocks(4, 4)) == [blocks[3]]
    assert list(store.blocks(4, 3)) == []  # last = first - 1: empty
    assert list(store.blocks(7, 100)) == blocks[6:]  # stops at the tip
    assert list(store.blocks(9, 20)) == []
    assert list(store.certificates(2, 6)) == certificates[1:6]
    assert list(store.certificates(8, 2**64 - 1)) == certificates[7:]
    assert list(store.finalized(6, 9)) == list(zip(blocks[5:], certificates[5:], strict=True))


@pytest.mark.parametrize(("first", "last"), [(0, 3), (5, 3), (-1, 2), (1, -1)])
def test_invalid_range_is_refused_before_iterating(backend: Backend, first: int, last: int) -> None:
    store = backend.open()
    for method in (store.blocks, store.certificates, store.finalized):
        with pytest.raises(ValueError, match="invalid height range"):
            method(first, last)  # no next(): the check is eager


def test_batch_interrupted_by_an_exception_writes_nothing(backend: Backend) -> None:
    store = backend.open()

    def crash_in_batch() -> None:
        with store.batch(sync=True) as batch:
            for item in CHAIN[:3]:
                assert batch.put_finalized(*item.args()) is True
            batch.put_signing_state(SIGNING_STATE)
            raise RuntimeError("crash before the end of the batch")

    with pytest.raises(RuntimeError, match="crash"):
        crash_in_batch()
    assert_empty(store)
    assert store.signing_state() is None
    store = backend.reopen(store)
    assert_empty(store)
    commit_all(store)  # and the store is still usable
    assert_holds(store, CHAIN)


def test_batch_of_many_blocks_is_applied_at_the_end(backend: Backend) -> None:
    store = backend.open()
    with store.batch() as batch:
        for item in CHAIN[:4]:
            assert batch.put_finalized(*item.args()) is True
        assert store.height() == 0  # nothing visible yet
        assert batch.tip is not None
        assert batch.tip.height == 4
        assert batch.put_finalized(*CHAIN[2].args()) is False  # replay of a pending block
        batch.put_signing_state(SIGNING_STATE)
    assert_holds(store, CHAIN[:4])
    assert store.signing_state() == SIGNING_STATE


def test_write_batch_is_dead_after_its_block(backend: Backend) -> None:
    store = backend.open()
    with store.batch() as batch:
        pass
    with pytest.raises(AssertionError, match="after its `with` block"):
        batch.put_finalized(*CHAIN[0].args())
    with pytest.raises(AssertionError, match="after its `with` block"):
        batch.put_signing_state(SIGNING_STATE)
    assert store.height() == 0


def test_write_batches_do_not_nest(backend: Backend) -> None:
    store = backend.open()
    with store.batch(), pytest.raises(AssertionError, match="already open"), store.batch():
        pass
    with store.batch() as batch:  # the failed attempt left no batch open
        batch.put_finalized(*CHAIN[0].args())
    assert store.height() == 1


def _conflicts() -> dict[str, tuple[int, Finalized, str]]:
    """name: (blocks committed first, the conflicting block, message pattern)."""
    third = CHAIN[2]
    other_block = next_block(CHAIN[1], timestamp_ms=1)
    return {
        "gap": (1, third, "must be at height 2"),
        "gap on empty store": (0, CHAIN[1], "must be at height 1"),
        "wrong parent": (2, with_header(third, parent_id=CHAIN[0].block_id), "has parent"),
        "wrong last commit": (2, with_header(third, last_commit_id=ZERO_ID), "last_commit_id"),
        "first block with a parent": (0, with_header(CHAIN[0], parent_id=b"\1" * 32), "parent"),
        "certificate of another height": (
            2,
            Finalized(third.block, CHAIN[1].certificate, third.next_nonces, third.nonces_after),
            "certificate is for height 2",
        ),
        "certificate of another block": (
            2,
            Finalized(third.block, other_block.certificate, third.next_nonces, third.nonces_after),
            "not for block",
        ),
        "different block below the tip": (4, other_block, "refusing to overwrite"),
        "different block at the tip": (2, next_block(CHAIN[0], timestamp_ms=1), "refusing"),
        "block of another chain": (2, next_block(CHAIN[1], chain_id="other"), "chain 'other'"),
    }


CONFLICTS = _conflicts()


@pytest.mark.parametrize("name", CONFLICTS)
def test_conflicting_commit_is_refused_and_changes_nothing(backend: Backend, name: str) -> None:
    committed, bad, pattern = CONFLICTS[name]
    store = backend.open()
    commit_all(store, CHAIN[:committed])

    def state() -> list[object]:
        nonces = [store.next_nonce(key.public_key) for key in USER_KEYS]
        locations = [store.tx_location(tx_id) for tx_id in bad.tx_ids]
        return [store.tip(), store.signing_state(), nonces, locations]

    before = state()
    with pytest.raises(StoreConflictError, match=pattern):
        store.commit_block(*bad.args())
    assert state() == before
    assert store.height_of(bad.block_id) is None
    if committed:
        assert_holds(store, CHAIN[:committed])
    else:
        assert_empty(store)


def test_replay_of_a_stored_block_is_a_no_op(backend: Backend) -> None:
    store = backend.open()
    commit_all(store, CHAIN[:4])
    for item in CHAIN[:4]:
        assert store.commit_block(*item.args()) is False
    # Another valid certificate for the same block: the first one stays.
    third = CHAIN[2]
    other_certificate = certify(third.block.header, round=1, signers=(1, 2, 3))
    assert store.commit_block(third.block, other_certificate, third.next_nonces) is False
    assert store.certificate(3) == third.certificate
    assert_holds(store, CHAIN[:4])


def test_next_block_makes_its_parent_certificate_canonical(backend: Backend) -> None:
    """Nodes build different certificates for one block; the next block's
    last_commit_id picks one, which then replaces the one stored."""
    store = backend.open()
    first = CHAIN[0]
    assert store.commit_block(*first.args()) is True
    theirs = certify(first.block.header, round=0, signers=(1, 2, 3))
    assert theirs != first.certificate
    second = next_block(dataclasses.replace(first, certificate=theirs))
    with pytest.raises(StoreConflictError, match="last_commit_id"):
        store.commit_block(*second.args())  # links to a certificate we do not hold
    stranger = certify(CHAIN[1].block.header, signers=(0, 1, 2))
    with pytest.raises(StoreConflictError, match="parent certificate"):
        store.commit_block(*second.args(), parent_certificate=stranger)
    assert store.certificate(1) == first.certificate
    assert store.commit_block(*second.args(), parent_certificate=theirs) is True
    assert store.certificate(1) == theirs
    tip = store.tip()
    assert tip is not None
    assert tip.height == 2
    assert tip.commit_id == second.commit_id
    verify_certificate(theirs, VALIDATOR_SET, CHAIN_ID, height=1, block_id=first.block_id)
    store = backend.reopen(store)
    assert store.certificate(1) == theirs


def test_parent_certificate_equal_to_the_stored_one_changes_nothing(backend: Backend) -> None:
    store = backend.open()
    commit_all(store, CHAIN[:1])
    second = CHAIN[1]
    assert store.commit_block(*second.args(), parent_certificate=CHAIN[0].certificate)
    assert_holds(store, CHAIN[:2])


def test_signing_state_round_trips_and_survives_reopen(backend: Backend) -> None:
    store = backend.open()
    store.save_signing_state(SIGNING_STATE)
    assert store.signing_state() == SIGNING_STATE
    store = backend.reopen(store)
    assert store.signing_state() == SIGNING_STATE
    newer = msgspec.structs.replace(SIGNING_STATE, height=6, round=0, step=SignStep.PREVOTE)
    store.save_signing_state(newer)
    store = backend.reopen(store)
    assert store.signing_state() == newer
    assert store.height() == 0  # the signing state is not a block


def test_chain_id_is_recorded_and_checked(backend: Backend) -> None:
    store = backend.open(chain_id=None)
    assert store.chain_id is None
    store = backend.reopen(store, chain_id="first-chain")  # recorded on a later open
    assert store.chain_id == "first-chain"
    store = backend.reopen(store, chain_id=None)
    assert store.chain_id == "first-chain"
    store.close()
    with pytest.raises(StoreMismatchError, match="'first-chain', not chain 'second-chain'"):
        backend.open(chain_id="second-chain")
    assert backend.open(chain_id="first-chain").chain_id == "first-chain"


def test_another_genesis_under_the_same_chain_id_is_refused(backend: Backend) -> None:
    first, second = b"\x01" * 32, b"\x02" * 32
    Store(backend.open_kv(), chain_id="chain", genesis_hash=first).close()
    kv = backend.open_kv()
    with pytest.raises(StoreMismatchError, match=r"another genesis.*genesis\.json replaced"):
        Store(kv, chain_id="chain", genesis_hash=second)
    assert kv.closed
    Store(backend.open_kv(), chain_id="chain", genesis_hash=first).close()
    # A store from before genesis hashes were recorded takes the first one given.
    legacy = backend.open_kv()
    legacy.write([(META_GENESIS_KEY, None)], sync=True)
    Store(legacy, chain_id="chain", genesis_hash=second).close()
    with pytest.raises(StoreMismatchError, match="another genesis"):
        Store(backend.open_kv(), chain_id="chain", genesis_hash=first)


def test_schema_version_mismatch_is_refused(backend: Backend) -> None:
    store = backend.open()
    store.kv.write([(META_SCHEMA_KEY, encode_schema_version(SCHEMA_VERSION + 1))], sync=True)
    store.close()
    with pytest.raises(StoreMismatchError, match=r"schema version 4, this program reads version 3"):
        backend.open()


def test_store_from_before_namespace_roots_is_refused_with_what_to_do(backend: Backend) -> None:
    store = backend.open()
    store.kv.write([(META_SCHEMA_KEY, encode_schema_version(1))], sync=True)
    store.close()
    with pytest.raises(StoreMismatchError) as caught:
        backend.open()
    message = str(caught.value)
    assert "\n" not in message
    assert "older sequencer (schema 1" in message
    assert "namespace_root" in message
    assert "empty data directory" in message


def test_failed_open_closes_its_kv(backend: Backend) -> None:
    backend.open(chain_id="one").close()
    kv = backend.open_kv()
    with pytest.raises(StoreMismatchError):
        Store(kv, chain_id="two")
    assert kv.closed
    assert backend.open(chain_id="one").chain_id == "one"  # not left locked


def test_use_after_close_raises(backend: Backend) -> None:
    with backend.open() as store:
        commit_all(store, CHAIN[:3])
        blocks = store.blocks(1, 3)
        assert next(blocks) == CHAIN[0].block
    assert store.closed
    store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        next(blocks)
    calls = [
        store.tip,
        store.height,
        lambda: store.block(1),
        lambda: store.block_bytes(1),
        lambda: store.header(1),
        lambda: store.certificate(1),
        lambda: store.height_of(CHAIN[0].block_id),
        lambda: store.tx_location(CHAIN[0].tx_ids[0]),
        lambda: store.next_nonce(USER_KEYS[0].public_key),
        lambda: store.blocks(1, 2),
        lambda: store.certificates(1, 2),
        store.signing_state,
        lambda: store.commit_block(*CHAIN[3].args()),
        lambda: store.save_signing_state(SIGNING_STATE),
    ]
    for call in calls:
        with pytest.raises(StoreClosedError, match="closed"):
            call()


def _corrupt(backend: Backend, key: bytes, value: bytes | None) -> Store:
    """A store holding CHAIN[:3] in which `key` was overwritten (or deleted)."""
    store = backend.open()
    commit_all(store, CHAIN[:3])
    store.kv.write([(key, value)], sync=False)
    return backend.reopen(store)


def test_garbage_block_is_reported_as_corruption(backend: Backend) -> None:
    store = _corrupt(backend, block_key(2), b"\xc1garbage")
    for read in (store.block, store.header):
        with pytest.raises(StoreCorruptError, match="block at height 2 does not decode"):
            read(2)
    with pytest.raises(StoreCorruptError, match="restore") as info:
        list(store.blocks(1, 3))
    assert store.location in str(info.value)
    assert store.block_bytes(2) == b"\xc1garbage"  # raw bytes are served as stored
    assert store.block(3) == CHAIN[2].block  # the rest is readable


def test_block_under_the_wrong_height_is_corruption(backend: Backend) -> None:
    store = _corrupt(backend, block_key(2), encode(CHAIN[0].block))
    with pytest.raises(StoreCorruptError, match="block stored at height 2 is for 1"):
        store.block(2)
    with pytest.raises(StoreCorruptError, match="block stored at height 2 is for 1"):
        store.header(2)


@pytest.mark.parametrize(
    ("key", "read", "pattern"),
    [
        (TIP_KEY, lambda store: store.tip(), "chain tip"),
        (certificate_key(1), lambda store: store.certificate(1), "certificate at height 1"),
        (tx_key(CHAIN[0].tx_ids[0]), lambda s: s.tx_location(CHAIN[0].tx_ids[0]), "location"),
        (nonce_key(USER), lambda store: store.next_nonce(USER), "next nonce"),
        (b"S", lambda store: store.signing_state(), "signing state"),
    ],
)
def test_garbage_values_are_reported_as_corruption(
    backend: Backend, key: bytes, read: Callable[[Store], object], pattern: str
) -> None:
    store = _corrupt(backend, key, b"\x00\x01\x02")
    with pytest.raises(StoreCorruptError, match=pattern):
        read(store)


def test_missing_certificate_in_a_range_is_corruption(backend: Backend) -> None:
    store = _corrupt(backend, certificate_key(2), None)
    pairs = store.finalized(1, 3)
    assert next(pairs) == (CHAIN[0].block, CHAIN[0].certificate)
    with pytest.raises(StoreCorruptError, match="height 2 has no certificate"):
        next(pairs)


def test_data_without_schema_version_is_refused(backend: Backend) -> None:
    kv = backend.open_kv()
    kv.write([(block_key(1), encode(CHAIN[0].block))], sync=True)
    with pytest.raises(StoreCorruptError, match="no schema version"):
        Store(kv)


def _journal_txs(count: int) -> list:
    return [
        Transaction(CHAIN_ID, 0, USER, nonce, 5, b"j%d" % nonce, bytes(64))
        for nonce in range(count)
    ]


def test_journal_keeps_arrival_order_and_survives_reopen(backend: Backend) -> None:
    store = backend.open()
    txs = _journal_txs(5)
    # Out of order on purpose: the journal iterates by arrival sequence.
    store.append_journal(
        [(seq, 1_000 + seq, tx) for seq, tx in zip((7, 2, 300, 5, 9), txs, strict=False)]
    )
    store.remove_journal([5, 9])
    expected = [(2, 1_002, txs[1]), (7, 1_007, txs[0]), (300, 1_300, txs[2])]
    assert list(store.journal()) == expected
    store = backend.reopen(store)
    assert list(store.journal()) == expected
    assert store.height() == 0  # the journal is not the chain


def test_journal_group_commit_is_one_synced_write(backend: Backend) -> None:
    if backend.name != "memory":
        pytest.skip("counts synced writes of the in-memory backend")
    store = backend.open()
    before = backend.data.synced_writes
    store.append_journal([(seq, 0, tx) for seq, tx in enumerate(_journal_txs(100))])
    assert backend.data.synced_writes == before + 1
    store.remove_journal(range(50))
    assert backend.data.synced_writes == before + 1  # removals need no fsync
    assert len(list(store.journal())) == 50


def test_journal_entries_can_go_in_the_commit_batch(backend: Backend) -> None:
    store = backend.open()
    store.append_journal([(1, 0, _journal_txs(1)[0])])
    first = CHAIN[0]
    with store.batch(sync=True) as batch:
        batch.put_finalized(*first.args())
        batch.delete_journal(1)
    assert list(store.journal()) == []
    assert store.height() == 1


def test_a_damaged_journal_entry_is_corruption(backend: Backend) -> None:
    store = backend.open()
    store.kv.write([(b"J" + (4).to_bytes(8, "big"), b"\x00" * 8 + b"\xc1")], sync=True)
    with pytest.raises(StoreCorruptError, match="journal entry 4"):
        list(store.journal())


def test_batch_records_are_durable_and_ordered_by_number(backend: Backend) -> None:
    store = backend.open()
    for number in (2, 0, 300, 1):  # numbers order the records, not writing order
        store.save_batch_record(number, b"record %d" % number)
    store.save_batch_record(1, b"record 1, updated")
    store = backend.reopen(store)
    assert [n for n, _ in store.batch_records()] == [0, 1, 2, 300]
    assert store.batch_record(1) == b"record 1, updated"
    assert store.batch_record(3) is None
    assert [n for n, _ in store.batch_records(2)] == [2, 300]
    assert store.height() == 0  # batch records are not the chain


def test_unsynced_commits_then_one_sync(backend: Backend) -> None:
    """Block sync stores a response's blocks unsynced, then one synced write."""
    store = backend.open()
    before = backend.data.synced_writes if backend.name == "memory" else 0
    for item in CHAIN[:-1]:
        assert store.commit_block(*item.args(), sync=False) is True
    assert store.height() == CHAIN[-2].height  # visible at once, durable or not
    store.sync()
    if backend.name == "memory":
        assert backend.data.synced_writes == before + 1
    store = backend.reopen(store)
    assert_holds(store, CHAIN[:-1])
    assert store.commit_block(*CHAIN[-1].args()) is True  # the tip read back continues


def test_finalized_bytes_are_the_stored_canonical_encodings(backend: Backend) -> None:
    store = backend.open()
    commit_all(store)
    pairs = list(store.finalized_bytes(2, 5))
    assert pairs == [(encode(b), encode(c)) for b, c in store.finalized(2, 5)]
    assert [decode(raw, Block).header.height for raw, _ in pairs] == [2, 3, 4, 5]
    assert store.certificate_bytes(4) == encode(store.certificate(4))
    assert store.certificate_bytes(99) is None
    # A range past the tip stops there.
    assert list(store.finalized_bytes(8, 20)) == [
        (encode(CHAIN[7].block), store.certificate_bytes(8))
    ]


def test_the_tip_is_read_once_and_kept_current(backend: Backend) -> None:
    store = backend.open()
    commit_all(store, CHAIN[:3])
    reads = store.tip()
    assert reads is not None
    assert store.tip() is reads  # cached, not decoded again
    with store.batch() as batch:
        batch.put_finalized(*CHAIN[3].args())
        assert store.tip() is reads  # a batch's writes show when it ends
    tip = store.tip()
    assert tip is not None
    assert tip.height == CHAIN[3].height
    store.close()
    with pytest.raises(StoreClosedError):
        store.tip()


def test_a_senders_committed_transactions_by_nonce(backend: Backend) -> None:
    """The sender index: (nonce, tx_id) in nonce order, paged from a nonce."""
    store = backend.open()
    items = chain.build_chain(6)
    for item in items:
        store.commit_block(*item.args())
    by_sender: dict[bytes, list[tuple[int, bytes]]] = {}
    for item in items:
        for tx in item.block.txs:
            by_sender.setdefault(tx.sender, []).append((tx.nonce, id_of(tx)))
    for sender, expected in by_sender.items():
        assert store.sender_txs(sender, 0, 100) == sorted(expected)
        assert store.sender_txs(sender, 1, 1) == sorted(expected)[1:2]
    assert store.sender_txs(bytes(32), 0, 10) == []
