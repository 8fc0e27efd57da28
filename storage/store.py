"""`Store`: the typed store of a node, the same over every `KV` backend.

It keeps the finalized chain (blocks, certificates, the block-id and tx
indexes, the nonce table, the tip) and the validator's signing state, in the
key schema of `storage.schema`. A finalized block goes in as one atomic
write with `sync=True` (`commit_block`), so after a crash the store holds
each block completely or not at all, and the tip always names a stored block.

Block sync may commit many blocks with `sync=False` and then call `sync()`:
LevelDB writes its log in order, so one synced write makes every earlier
write durable too, and a crash in between loses only a suffix of blocks
(which the node fetches again), never a block in the middle.

The store checks that writes keep the chain well-formed; it does not verify
signatures or compute nonces and state roots: callers (consensus, block
sync) do that before a block counts as finalized. Opening reads two meta
keys and nothing else, so a store with 100k blocks is ready at once.

Reads return None for what is absent. A stored value that does not decode
(or contradicts its key) is `StoreCorruptError`, naming what and where.

A `Store` has no locks: one task owns it (the node's storage owner), and
writes go through one batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import msgspec

from sequencer.codec import decode, encode
from sequencer.errors import DecodeError
from sequencer.ids import BlockFacts
from sequencer.types import (
    Block,
    BlockHeader,
    ChainTip,
    CommitCertificate,
    SigningState,
    Transaction,
    TxLocation,
)
from storage.batch import JournalEntry, WriteBatch, journal_entry
from storage.errors import StoreCorruptError, StoreMismatchError
from storage.kv import KV, MemoryKV
from storage.leveldb import LevelDBKV
from storage.schema import (
    BLOCK_PREFIX,
    CERTIFICATE_PREFIX,
    META_CHAIN_ID_KEY,
    META_GENESIS_KEY,
    META_SCHEMA_KEY,
    SCHEMA_VERSION,
    SIGNING_STATE_KEY,
    TIP_KEY,
    batch_key,
    batch_range,
    block_id_key,
    block_key,
    certificate_key,
    decode_schema_version,
    decode_tx_location,
    decode_u64,
    encode_schema_version,
    height_from_key,
    height_range,
    journal_range,
    nonce_key,
    sender_tx_range,
    tx_key,
)

__all__ = ["Store"]

T = TypeVar("T")

# Decoding only the header of a stored block skips its transactions.
_HeaderOnly = tuple[BlockHeader, msgspec.Raw]


class Store:
    """The typed store over a `KV`; it owns the KV from construction on.

    On an empty KV it records the schema version (and `chain_id`, if given).
    On a used one it checks them: `StoreMismatchError` if they differ, and it
    records `chain_id` if none was. If the check fails the KV is closed.
    """

    __slots__ = ("_batch_open", "_chain_id", "_kv", "_tip", "_tip_read")

    def __init__(
        self, kv: KV, *, chain_id: str | None = None, genesis_hash: bytes | None = None
    ) -> None:
        self._kv = kv
        self._batch_open = False
        # The tip, read once: every write goes through `batch`, which keeps it
        # current (the store owns its KV), and it is read for every block.
        self._tip: ChainTip | None = None
        self._tip_read = False
        try:
            self._chain_id = self._open_meta(chain_id, genesis_hash)
        except BaseException:
            kv.close()
            raise

    @classmethod
    def open(cls, path: str | Path, *, chain_id: str | None = None, create: bool = True) -> Store:
        """The LevelDB store at `path` (a directory), created if missing and `create`."""
        return cls(LevelDBKV(path, create=create), chain_id=chain_id)

    @classmethod
    def memory(cls, kv: MemoryKV | None = None, *, chain_id: str | None = None) -> Store:
        """An in-memory store: on `kv` (to reopen its data), or on fresh data."""
        return cls(MemoryKV() if kv is None else kv, chain_id=chain_id)

    # ------------------------------------------------------------ lifecycle

    @property
    def kv(self) -> KV:
        return self._kv

    @property
    def location(self) -> str:
        return self._kv.location

    @property
    def chain_id(self) -> str | None:
        """The chain id recorded in the store (None until one is given)."""
        return self._chain_id

    @property
    def closed(self) -> bool:
        return self._kv.closed

    def close(self) -> None:
        self._kv.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._kv!r}, chain_id={self._chain_id!r})"

    def _open_meta(self, chain_id: str | None, genesis_hash: bytes | None) -> str | None:
        """Check or record the meta keys; return the chain id in effect."""
        raw_version = self._kv.get(META_SCHEMA_KEY)
        if raw_version is None:
            return self._init_meta(chain_id, genesis_hash)
        version = self._parse(raw_version, decode_schema_version, "the schema version")
        if version < SCHEMA_VERSION:
            raise StoreMismatchError(
                f"database {self.location} was written by an older sequencer (schema "
                f"{version}, this one reads {SCHEMA_VERSION}: block headers have since gained"
                f" namespace_root, the store a sender index): move it aside and start with"
                f" an empty data directory, which catches up from the peers (a devnet:"
                f" `sequencer devnet up --fresh`)"
            )
        if version != SCHEMA_VERSION:
            raise StoreMismatchError(
                f"database {self.location} has schema version {version}, "
                f"this program reads version {SCHEMA_VERSION}: run the newer sequencer "
                "that wrote it"
            )
        raw_chain_id = self._kv.get(META_CHAIN_ID_KEY)
        if raw_chain_id is None:
            if chain_id is not None:
                self._kv.write([(META_CHAIN_ID_KEY, chain_id.encode())], sync=True)
            return chain_id
        stored = self._parse(raw_chain_id, bytes.decode, "the chain id")
        if chain_id is not None and chain_id != stored:
            raise StoreMismatchError(
                f"database {self.location} holds chain {stored!r}, not chain {chain_id!r} "
                "(is this the home of another chain's node?)"
            )
        if genesis_hash is not None:
            self._check_genesis(genesis_hash, stored)
        return stored

    def _check_genesis(self, genesis_hash: bytes, chain_id: str) -> None:
        """Record the genesis hash, or refuse a store started from another genesis."""
        stored = self._kv.get(META_GENESIS_KEY)
        if stored is None:
            self._kv.write([(META_GENESIS_KEY, genesis_hash)], sync=True)
        elif stored != genesis_hash:
            raise StoreMismatchError(
                f"database {self.location} was started from another genesis "
                f"({stored.hex()[:16]}…, this one is {genesis_hash.hex()[:16]}…) of chain "
                f"{chain_id!r}: was genesis.json replaced? Restore it, or move the "
                "database aside to start this chain afresh"
            )

    def _init_meta(self, chain_id: str | None, genesis_hash: bytes | None) -> str | None:
        # Data without a schema version was not written by this program (or
        # lost its meta): refuse rather than guess how to read it.
        if next(self._kv.scan(b"", b"\xff"), None) is not None:
            raise self._corrupt("it holds data but no schema version")
        ops: list[tuple[bytes, bytes | None]] = [
            (META_SCHEMA_KEY, encode_schema_version(SCHEMA_VERSION))
        ]
        if chain_id is not None:
            ops.append((META_CHAIN_ID_KEY, chain_id.encode()))
        if genesis_hash is not None:
            ops.append((META_GENESIS_KEY, genesis_hash))  # one write, as before
        self._kv.write(ops, sync=True)
        return chain_id

    # ------------------------------------------------------------ decoding

    def _corrupt(self, problem: str) -> StoreCorruptError:
        return StoreCorruptError(
            f"database {self.location} is damaged: {problem}; restore the node home from a "
            "backup, or move the database aside and let the node resync from its peers"
        )

    def _decode(self, raw: bytes, cls: type[T], what: str) -> T:
        try:
            return decode(raw, cls)
        except DecodeError as exc:
            raise self._corrupt(f"{what} does not decode ({exc})") from None

    def _parse(self, raw: bytes, parse: Callable[[bytes], T], what: str) -> T:
        """Fixed-layout values (integers, UTF-8): ValueError means corruption."""
        try:
            return parse(raw)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError
            raise self._corrupt(f"{what} does not decode ({exc})") from None

    def _decode_block(self, height: int, raw: bytes) -> Block:
        block = self._decode(raw, Block, f"the block at height {height}")
        self._check_height(height, block.header.height, "block")
        return block

    def _decode_certificate(self, height: int, raw: bytes) -> CommitCertificate:
        certificate = self._decode(raw, CommitCertificate, f"the certificate at height {height}")
        self._check_height(height, certificate.height, "certificate")
        return certificate

    def _check_height(self, key_height: int, value_height: int, kind: str) -> None:
        if value_height != key_height:
            raise self._corrupt(f"the {kind} stored at height {key_height} is for {value_height}")

    # ------------------------------------------------------------ reads

    def tip(self) -> ChainTip | None:
        if not self._tip_read or self._kv.closed:  # a closed store raises, as reads do
            raw = self._kv.get(TIP_KEY)
            self._tip = None if raw is None else self._decode(raw, ChainTip, "the chain tip")
            self._tip_read = True
        return self._tip

    def height(self) -> int:
        """The height of the last finalized block; 0 for an empty store."""
        tip = self.tip()
        return 0 if tip is None else tip.height

    def block_bytes(self, height: int) -> bytes | None:
        """The block's canonical encoding, as stored (to serve without re-encoding)."""
        return self._kv.get(block_key(height))

    def block(self, height: int) -> Block | None:
        raw = self._kv.get(block_key(height))
        return None if raw is None else self._decode_block(height, raw)

    def sized_block(self, height: int) -> tuple[Block, int] | None:
        """The block and the size of its canonical encoding, from one read."""
        raw = self._kv.get(block_key(height))
        return None if raw is None else (self._decode_block(height, raw), len(raw))

    def header(self, height: int) -> BlockHeader | None:
        raw = self._kv.get(block_key(height))
        if raw is None:
            return None
        header, _ = self._decode(raw, _HeaderOnly, f"the block at height {height}")
        self._check_height(height, header.height, "block")
        return header

    def certificate(self, height: int) -> CommitCertificate | None:
        raw = self._kv.get(certificate_key(height))
        return None if raw is None else self._decode_certificate(height, raw)

    def height_of(self, block_id: bytes) -> int | None:
        """The height of a finalized block, by its id."""
        raw = self._kv.get(block_id_key(block_id))
        what = f"the height of block {block_id.hex()}"
        return None if raw is None else self._parse(raw, decode_u64, what)

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        """Where a finalized transaction is: (height, index in the block)."""
        raw = self._kv.get(tx_key(tx_id))
        what = f"the location of transaction {tx_id.hex()}"
        return None if raw is None else self._parse(raw, decode_tx_location, what)

    def sender_txs(self, sender: bytes, first_nonce: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` (nonce, tx_id) of the sender's committed transactions,
        from `first_nonce` on, in nonce order (which is chain order)."""
        start, stop = sender_tx_range(sender, first_nonce)
        found = []
        for key, value in self._kv.scan(start, stop):
            nonce = self._parse(key[33:], decode_u64, "a sender index key")
            if len(value) != 32:
                raise StoreCorruptError(f"the sender index holds {len(value)} bytes, not a tx id")
            found.append((nonce, value))
            if len(found) >= limit:
                break
        return found

    def next_nonce(self, sender: bytes) -> int:
        """The nonce the sender's next transaction must carry (0 if never seen)."""
        raw = self._kv.get(nonce_key(sender))
        what = f"the next nonce of {sender.hex()}"
        return 0 if raw is None else self._parse(raw, decode_u64, what)

    def signing_state(self) -> SigningState | None:
        raw = self._kv.get(SIGNING_STATE_KEY)
        return None if raw is None else self._decode(raw, SigningState, "the signing state")

    # ------------------------------------------------------------ ranges

    def _scan_heights(self, prefix: bytes, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """(height, value) for heights first..last, in one scan; checked eagerly."""
        if first < 1 or last < first - 1:
            raise ValueError(f"invalid height range {first}..{last}")
        start, stop = height_range(prefix, first, last)
        return ((height_from_key(key), value) for key, value in self._kv.scan(start, stop))

    def blocks(self, first: int, last: int) -> Iterator[Block]:
        """The stored blocks of heights first..last (inclusive), in height order.

        `last = first - 1` is an empty range; a range past the tip stops there.
        """
        scan = self._scan_heights(BLOCK_PREFIX, first, last)
        return (self._decode_block(height, raw) for height, raw in scan)

    def finalized_bytes(self, first: int, last: int) -> Iterator[tuple[bytes, bytes]]:
        """(block, certificate) canonical encodings of heights first..last, as
        stored (to serve without decoding and re-encoding), like `finalized`."""
        blocks = self._scan_heights(BLOCK_PREFIX, first, last)
        certificates = self._scan_heights(CERTIFICATE_PREFIX, first, last)
        for height, block in blocks:
            pair = next(certificates, None)
            if pair is None or pair[0] != height:
                raise self._corrupt(f"the block at height {height} has no certificate")
            yield block, pair[1]

    def certificate_bytes(self, height: int) -> bytes | None:
        return self._kv.get(certificate_key(height))

    def certificates(self, first: int, last: int) -> Iterator[CommitCertificate]:
        """The certificates of heights first..last, like `blocks`."""
        scan = self._scan_heights(CERTIFICATE_PREFIX, first, last)
        return (self._decode_certificate(height, raw) for height, raw in scan)

    def finalized(self, first: int, last: int) -> Iterator[tuple[Block, CommitCertificate]]:
        """(block, certificate) pairs of heights first..last, like `blocks`."""
        return self._pair(self.blocks(first, last), self.certificates(first, last))

    def _pair(
        self, blocks: Iterator[Block], certificates: Iterator[CommitCertificate]
    ) -> Iterator[tuple[Block, CommitCertificate]]:
        for block in blocks:
            certificate = next(certificates, None)
            height = block.header.height
            if certificate is None or certificate.height != height:
                raise self._corrupt(f"the block at height {height} has no certificate")
            yield block, certificate

    # ------------------------------------------------------------ writes

    @contextmanager
    def batch(self, *, sync: bool = False) -> Iterator[WriteBatch]:
        """A `WriteBatch` applied atomically when the block ends without error.

        If the block raises, nothing is written. Batches do not nest (each
        checks blocks against the tip as it opened): nesting is an assert.
        """
        assert not self._batch_open, "a write batch is already open on this store"
        batch = WriteBatch(chain_id=self._chain_id, tip=self.tip(), stored_height_of=self.height_of)
        self._batch_open = True
        try:
            yield batch
        finally:
            self._batch_open = False
            ops = batch.seal()
        if ops:  # a batch of replays only has nothing to write
            self._kv.write(ops, sync=sync)
            self._tip, self._tip_read = batch.tip, True

    def sync(self) -> None:
        """Make every earlier write durable: an empty synced write (LevelDB
        appends it to its log and syncs the log, with all before it)."""
        self._kv.write([], sync=True)

    def commit_block(
        self,
        block: Block,
        certificate: CommitCertificate,
        next_nonces: Mapping[bytes, int],
        parent_certificate: CommitCertificate | None = None,
        *,
        sync: bool = True,
        facts: BlockFacts | None = None,
    ) -> bool:
        """Store a finalized block, durably unless `sync` is False (then a later
        synced write or `sync()` makes it durable); False if it was already stored.

        See `WriteBatch.put_finalized` for the arguments and the checks.
        """
        with self.batch(sync=sync) as batch:
            return batch.put_finalized(block, certificate, next_nonces, parent_certificate, facts)

    # ------------------------------------------------------------ mempool journal

    def append_journal(self, entries: Iterable[JournalEntry]) -> None:
        """Journal accepted transactions in one synced write:
        a group commit, so many transactions share one fsync before their 202.

        Safe to call from a worker thread while the owner writes blocks: the
        journal's keys are apart from the chain's, so it takes no batch.
        """
        self._kv.write([journal_entry(seq, time_ms, tx) for seq, time_ms, tx in entries], sync=True)

    def remove_journal(self, seqs: Iterable[int]) -> None:
        """Forget committed, evicted or replaced transactions. Not synced: after a
        crash a forgotten one comes back, and is refused then as stale."""
        with self.batch(sync=False) as batch:
            for seq in seqs:
                batch.delete_journal(seq)

    def journal(self) -> Iterator[JournalEntry]:
        """The journaled transactions, in arrival order."""
        start, stop = journal_range()
        for key, value in self._kv.scan(start, stop):
            seq = self._parse(key[1:], decode_u64, "a journal key")
            time_ms = self._parse(value[:8], decode_u64, f"journal entry {seq}")
            tx = self._decode(value[8:], Transaction, f"journal entry {seq}")
            yield JournalEntry(seq, time_ms, tx)

    # ------------------------------------------------------------ L1 batches

    def save_batch_record(self, number: int, record: bytes) -> None:
        """Durably record batch `number` (the batcher owns the bytes' format)."""
        with self.batch(sync=True) as batch:
            batch.put_batch_record(number, record)

    def batch_record(self, number: int) -> bytes | None:
        return self._kv.get(batch_key(number))

    def batch_records(self, first: int = 0) -> Iterator[tuple[int, bytes]]:
        """(number, record) from batch `first` on, in number order."""
        start, stop = batch_range(first)
        for key, value in self._kv.scan(start, stop):
            yield self._parse(key[1:], decode_u64, "a batch key"), value

    def save_signing_state(self, state: SigningState) -> None:
        """Persist the signing state durably (before a signature leaves the node).

        Safe to call from a worker thread while the owner writes blocks: one
        key apart from the chain's, so it takes no batch.
        """
        self._kv.write([(SIGNING_STATE_KEY, encode(state))], sync=True)
