"""A `node.api.backend.Backend` for the RPC tests, built from real parts.

The store is a real `Store.memory()` holding a finalized chain of signed
blocks with real certificates (`tests.storage.chain`), plus a last block whose
transactions span several namespaces; the mempool is a real `Mempool` over
that store's nonces; `submit` really verifies signatures and chain ids,
admits into the pool, journals what it accepted and maps `AddStatus` to the
API's `ErrorCode` (the node runtime has its own mapping).

`finalized()` yields the stored blocks from the asked height, then the `live`
ones (after `live_delay_s` each), then stops, so a test's SSE stream ends;
with `endless=True` it then waits forever, like a node between blocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from consensus.blocks import block_namespace_root
from node.api.backend import ErrorCode, Finalized, SubmitResult
from node.daemon.ingest import ADD_ERRORS
from sequencer.crypto import sign_transaction, verify_transaction
from sequencer.ids import block_id, state_root, tx_id, tx_root
from sequencer.mempool import Mempool, MempoolConfig
from sequencer.types import Block, BlockHeader, Genesis, Transaction, ValidatorInfo
from storage import Store
from tests.storage import chain
from tests.storage.chain import CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, certify

# The namespaces of the last block's transactions, in block order.
LAST_BLOCK_NAMESPACES = (7, 9, 7, 9, 11)
GENESIS = Genesis(
    chain_id=CHAIN_ID,
    genesis_time_ms=1_700_000_000_000,
    validators=[
        ValidatorInfo(
            f"v{i}",
            key.public_key,
            1,
            f"/ip4/127.0.0.1/udp/{26656 + i}",
            f"http://127.0.0.1:{26600 + i}",
        )
        for i, key in enumerate(VALIDATOR_KEYS)
    ],
)
METRICS = (
    b"# HELP sequencer_height Finalized height.\n"
    b"# TYPE sequencer_height gauge\n"
    b"sequencer_height 7\n"
)
BATCHES = [
    {
        "batch_number": number,
        "first_height": 2 * number + 1,
        "last_height": 2 * number + 2,
        "commitment": bytes([number]).hex() * 32,
        "encoding": "9700",
        "l1_reference": f"file:{number + 1}",
        "state": "confirmed",
        "posted_ms": 1_000 + number,
    }
    for number in range(3)
]
PEERS = [{"peer_id": "12D3KooWtest", "address": "/ip4/127.0.0.1/udp/26657"}]


def namespaced_block(parent: chain.Finalized, namespaces: Sequence[int]) -> chain.Finalized:
    """The block after `parent` with one transaction per namespace given."""
    nonces = dict(parent.nonces_after)
    txs = []
    for i, namespace in enumerate(namespaces):
        key = USER_KEYS[i % len(USER_KEYS)]
        nonce = nonces.get(key.public_key, 0)
        nonces[key.public_key] = nonce + 1
        payload = f"namespace {namespace} tx {i}".encode()
        txs.append(
            sign_transaction(
                key,
                chain_id=CHAIN_ID,
                namespace=namespace,
                nonce=nonce,
                gas_price=10,
                payload=payload,
            )
        )
    changed = {tx.sender: tx.nonce + 1 for tx in txs}
    header = BlockHeader(
        chain_id=CHAIN_ID,
        height=parent.height + 1,
        round=1,
        timestamp_ms=parent.block.header.timestamp_ms + 1000,
        parent_id=block_id(parent.block.header),
        tx_root=tx_root(tx_id(tx) for tx in txs),
        namespace_root=block_namespace_root(txs, [tx_id(tx) for tx in txs]),
        state_root=state_root(parent.block.header.state_root, changed),
        proposer=2,
        last_commit_id=parent.commit_id,
    )
    return chain.Finalized(Block(header, txs), certify(header, round=1), changed, nonces)


def build_test_chain() -> tuple[chain.Finalized, ...]:
    """Heights 1..6 of `chain.build_chain` (0 to 3 txs each), then the namespaced block 7."""
    items = list(chain.build_chain(6))
    items.append(namespaced_block(items[-1], LAST_BLOCK_NAMESPACES))
    return tuple(items)


CHAIN = build_test_chain()


class RpcBackend:
    """See the module docstring. Attributes a test may change: `is_ready`,
    `now_ms`, `live`, `live_delay_s`, `endless`, `storage_failure`."""

    def __init__(self, *, height: int = len(CHAIN), **mempool_limits: int) -> None:
        self.genesis = GENESIS
        self.store = Store.memory(chain_id=CHAIN_ID)
        for item in CHAIN[:height]:
            self.store.commit_block(*item.args())
        self.mempool = Mempool(MempoolConfig(CHAIN_ID, **mempool_limits), self.store.next_nonce)
        self.is_ready = True
        self.storage_failure: str | None = None
        self.now_ms = 1_700_000_100_000
        self.live: list[Finalized] = []
        self.live_delay_s = 0.0
        self.endless = False
        self.submit_calls = 0

    # -------------------------------------------------------------- Backend

    def ready(self) -> bool:
        return self.is_ready and self.storage_failure is None

    def failure(self) -> str | None:
        return self.storage_failure

    async def submit(self, txs: list[Transaction]) -> list[SubmitResult]:
        self.submit_calls += 1
        return [self._admit(tx) for tx in txs]

    def status(self) -> dict[str, Any]:
        stats = self.mempool.statistics()
        return {
            "chain_id": CHAIN_ID,
            "height": self.store.height(),
            "ready": self.is_ready,
            "mempool": {"pending": stats.pending, "queued": stats.queued},
        }

    def peers(self) -> list[dict[str, Any]]:
        return PEERS

    def batches(self, first: int, limit: int) -> list[dict[str, Any]]:
        return [batch for batch in BATCHES if batch["batch_number"] >= first][:limit]

    def batch(self, number: int) -> dict[str, Any] | None:
        return next((b for b in BATCHES if b["batch_number"] == number), None)

    def l1_batch_of(self, height: int) -> tuple[int, bytes] | None:
        for b in BATCHES:
            if b["first_height"] <= height <= b["last_height"] and b["state"] == "confirmed":
                return b["batch_number"], bytes.fromhex(b["commitment"])
        return None

    async def finalized(self, from_height: int) -> AsyncIterator[Finalized]:
        tip = self.store.height()
        if from_height <= tip:
            for block, certificate in self.store.finalized(from_height, tip):
                yield Finalized(block, certificate)
        for item in self.live:
            await anyio.sleep(self.live_delay_s)
            if item.block.header.height >= from_height:
                yield item
        if self.endless:
            await anyio.sleep_forever()

    def metrics(self) -> bytes:
        return METRICS

    # -------------------------------------------------------------- helpers

    def _admit(self, tx: Transaction) -> SubmitResult:
        id = tx_id(tx)
        if tx.chain_id != self.genesis.chain_id:
            return SubmitResult(
                id, ErrorCode.WRONG_CHAIN, f"chain {tx.chain_id!r} is not {CHAIN_ID!r}"
            )
        if not verify_transaction(tx):
            return SubmitResult(id, ErrorCode.BAD_SIGNATURE, "the signature does not verify")
        added = self.mempool.add(tx, self.now_ms, id=id)
        if not added.ok:
            code = ADD_ERRORS[added.status]
            return SubmitResult(id, code, f"refused: {added.status.value.replace('_', ' ')}")
        assert added.added is not None
        self.store.append_journal([(added.added.seq, self.now_ms, tx)])
        self.store.remove_journal(entry.seq for entry in added.removed)
        return SubmitResult(id)

    def snapshot(self) -> tuple[Any, ...]:
        """What a refused request must not change: the pool and its journal."""
        stats = self.mempool.statistics()
        journal = [] if self.store.closed else [seq for seq, _, _ in self.store.journal()]
        return len(self.mempool), stats.pending, stats.queued, journal
