"""The reading side of the `ethereum` sink: the scan of the inbox for our batches.

    scanner = InboxScanner(rpc, poster, inbox, "devnet-1", confirmations=2, start_block=0)
    view = await scanner.scan()          # the batches per number, up to the head
    found = view.get(7)

A scan reads blocks `start_block..head` for transactions from the poster to
the inbox whose calldata starts with 0x01, whose receipt says success, and
that decode to a canonical batch of our chain; the others are skipped and
counted by why (`InboxView.skips`: "undecodable", "other_chain",
"reverted"). Blocks at least `confirmations` deep are scanned once and
remembered; the shallower tail is rescanned on every call, so a shallow
reorganisation is seen (a deeper one is not). When one batch number was
mined twice (a replacement race, two posters with one key) the first mined
wins and the later ones are listed in `InboxView.duplicates`.

Apart from `sequencer.l1.ethereum` because reading keeps its own state (the
blocks scanned for good) and needs no key: posting asks it what is there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

import anyio

from sequencer.l1.base import L1UnavailableError, PostedBatch
from sequencer.l1.batch_tx import CALLDATA_PREFIX_HEX, decode_batch_transaction
from sequencer.l1.jsonrpc import EthereumRpc, field, lowercase, quantity
from sequencer.types import BatchCommitment

__all__ = ["SCAN_BLOCKS_PER_REQUEST", "Found", "InboxScanner", "InboxView"]

# The sink's logger: what the scan sees is what the sink reports.
log = logging.getLogger("sequencer.l1.ethereum")

SCAN_BLOCKS_PER_REQUEST = 32  # one JSON-RPC batch of eth_getBlockByNumber


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    """A batch transaction found in a block."""

    batch: BatchCommitment
    encoding: bytes
    tx_hash: str
    nonce: int
    block_number: int


@dataclasses.dataclass(slots=True)
class InboxView:
    """What one scan saw: the winners per batch number, the duplicates, the head,
    and the transactions skipped, by why."""

    final: dict[int, Found]  # blocks at least `confirmations` deep (cached)
    tail: dict[int, Found]  # shallower blocks (rescanned every time)
    duplicates: list[Found]
    head: int
    skips: Counter[str]

    def get(self, number: int) -> Found | None:
        return self.final.get(number) or self.tail.get(number)


class InboxScanner:
    """The batches `sender` sent to `inbox`, read from the chain (see the module doc)."""

    def __init__(
        self,
        rpc: EthereumRpc,
        sender: str,
        inbox: str,
        chain_id: str,
        *,
        confirmations: int,
        start_block: int,
    ) -> None:
        """`sender` and `inbox` are lowercase addresses."""
        self._rpc = rpc
        self.sender = sender
        self.inbox = inbox
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.next_block = start_block  # the first block not yet scanned for good
        self._final: dict[int, Found] = {}
        self._final_duplicates: list[Found] = []
        self._final_skips: Counter[str] = Counter()
        self._lock = anyio.Lock()

    @property
    def final_batches(self) -> int:
        """Batches in the blocks scanned for good."""
        return len(self._final)

    async def scan(self) -> InboxView:
        """Scan the new blocks; the batches of ours per number (see the module doc)."""
        async with self._lock:
            head = await self._rpc.head()
            final_upto = head - max(self.confirmations, 1) + 1
            tail: list[Found] = []
            tail_skips: Counter[str] = Counter()
            first = self.next_block
            while first <= head:
                numbers = range(first, min(head, first + SCAN_BLOCKS_PER_REQUEST - 1) + 1)
                blocks = await self._rpc.blocks(numbers)
                for number, block in zip(numbers, blocks, strict=True):
                    found, skips = await self._batches_in(number, block)
                    if number <= final_upto and number == self.next_block:
                        for item in found:
                            _add(self._final, self._final_duplicates, item)
                        self._final_skips.update(skips)
                        self.next_block = number + 1
                    else:
                        tail.extend(found)
                        tail_skips.update(skips)
                first = numbers[-1] + 1
            view = InboxView(
                self._final, {}, list(self._final_duplicates), head, self._final_skips + tail_skips
            )
            for item in tail:
                _add(view.tail, view.duplicates, item, also=view.final)
            return view

    def posted(self, item: Found, head: int) -> PostedBatch:
        """`item` as the sink lists it, final once `confirmations` deep below `head`."""
        depth = head - item.block_number + 1
        return PostedBatch(item.batch, item.encoding, item.tx_hash, depth >= self.confirmations)

    async def _batches_in(self, number: int, block: object) -> tuple[list[Found], Counter[str]]:
        if not isinstance(block, dict):
            raise L1UnavailableError(f"ethereum: block {number} is not available yet")
        candidates = [
            tx
            for tx in field(block, "transactions", "eth_getBlockByNumber")
            if isinstance(tx, dict)
            and lowercase(tx.get("from")) == self.sender
            and lowercase(tx.get("to")) == self.inbox
            and lowercase(tx.get("input") or tx.get("data")).startswith(CALLDATA_PREFIX_HEX)
        ]
        hashes = [lowercase(tx.get("hash")) for tx in candidates]
        receipts = await self._rpc.receipts(hashes)
        found: list[Found] = []
        skips: Counter[str] = Counter()
        for tx, tx_hash, receipt in zip(candidates, hashes, receipts, strict=True):
            if not isinstance(receipt, dict):
                raise L1UnavailableError(f"ethereum: no receipt yet for {tx_hash} (block {number})")
            if receipt.get("status") in ("0x0", 0):
                skips["reverted"] += 1
                continue
            decoded = decode_batch_transaction(tx, self.inbox, self.chain_id)
            if isinstance(decoded, str):
                skips[decoded] += 1
                continue
            batch, encoding = decoded
            found.append(Found(batch, encoding, tx_hash, quantity(tx.get("nonce")), number))
        return found, skips


def _add(
    index: dict[int, Found],
    duplicates: list[Found],
    item: Found,
    also: dict[int, Found] | None = None,
) -> None:
    """Record `item` as its batch number's winner unless one was mined before it."""
    number = item.batch.batch_number
    if number in index or (also is not None and number in also):
        duplicates.append(item)
        log.warning("batch %d is on the L1 twice; ignoring %s", number, item.tx_hash)
    else:
        index[number] = item
