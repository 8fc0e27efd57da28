"""The `ethereum` sink: batch commitments as transactions on an Ethereum chain.

    sink = EthereumSink("http://127.0.0.1:8545", key_hex, inbox, "devnet-1", confirmations=2)
    reference = await sink.post(batch, encode_batch(batch))   # the transaction hash
    await sink.wait_confirmed(reference)
    await sink.aclose()

A batch is one transaction from the poster's account to the batch inbox
address, no value, calldata `0x01 || encoding`, signed with
eth-account, with the fees of `jsonrpc.EthereumRpc.fees_now` (EIP-1559 when
the chain has a base fee, legacy otherwise) and gas from `eth_estimateGas`
plus 20%. All JSON-RPC goes through `jsonrpc.EthereumRpc`.

Reading (`posted`) scans blocks `start_block..head` for transactions from
the poster to the inbox whose calldata starts with 0x01, whose receipt says
success, and that decode to a canonical batch of our chain; the others are
skipped and counted (`skipped_undecodable`, `skipped_other_chain`,
`skipped_reverted`). Blocks at least `confirmations` deep are scanned once
and remembered; the shallower tail is rescanned on every call, so a shallow
reorganisation is seen (a deeper one is not). When one batch number was mined
twice (a replacement race, two posters with one key) the first mined wins and
the later ones are listed in `duplicates`.

Posting is idempotent. `post` looks, in this order, on the L1 (the scan), at
the transactions this object sent, and at the poster's transactions pending
in the node's mempool (`eth_getTransactionCount` "pending" above "latest"
means some are; they are listed with `txpool_content`, else from the pending
block, and adopted so `wait_confirmed` can bump them — this is how a
restarted poster finds the transaction its previous run left in the
mempool). Same batch number and encoding: its hash is returned and nothing is
sent; another encoding: `L1ConflictError`, for a pending transaction too (a
batch we signed is never replaced by other bytes). A transaction of ours
for the batch that is neither on the L1 nor pending any more (dropped, or
reverted) and whose nonce went to another transaction is sent again.
Otherwise it signs with the pending nonce. "nonce too low" (or a replacement
refusal) at sending means another transaction took the nonce meanwhile,
perhaps ours mined: it looks again, a few times, before giving up with
`L1UnavailableError`.

`wait_confirmed` polls the receipts of every version signed for the batch's
nonce. Mined with status 1 and `confirmations` blocks deep (0: once mined):
done. Status 0: `L1Error`. Pending longer than `stuck_after_s` since the
last send: re-signed with the same nonce and fees raised by
`fee_bump_percent` (and to at least the current estimate), at most
`BUMPS_MAX` times. The nonce taken by a transaction that is none of those
versions: the batch is looked up on the L1 again and, when absent, sent anew
with a fresh nonce (the old reference keeps working: it follows the batch).
The reference `post` returned may thus not be the hash that got mined:
`mined_hash(reference)` says which one did, and `posted()` lists that one.

Errors are those of `jsonrpc`: `L1UnavailableError` when trying later may work
(no answer within `request_timeout_s`, a rate limit, a syncing node), else
`L1Error` (insufficient funds, a malformed answer); a key-less `reader` cannot
post. Arguments that are our bug (a batch of another chain, an encoding that
is not the batch's) are `ValueError`s, as in the file sink.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import Counter
from fractions import Fraction
from typing import Any

import anyio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from sequencer.errors import DecodeError
from sequencer.ids import decode_batch, encode_batch
from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, PostedBatch
from sequencer.l1.jsonrpc import (
    NONCE_TOO_LOW,
    UNDERPRICED,
    EthereumRpc,
    Fees,
    RpcError,
    field,
    lowercase,
    quantity,
)
from sequencer.types import BatchCommitment

__all__ = ["BUMPS_MAX", "CALLDATA_PREFIX", "EthereumSink", "EthereumSinkStatistics"]

log = logging.getLogger("sequencer.l1.ethereum")

CALLDATA_PREFIX = b"\x01"  # the version byte before the encoding
BUMPS_MAX = 16  # fee replacements per nonce: 1.125^16 is about 6.6 times the first fees
GAS_MARGIN_DIVISOR = 5  # gas limit = estimate + estimate / 5
FEE_BUMP_PERCENT_MIN = 10.0  # geth refuses a replacement that raises fees by less
SCAN_BLOCKS_PER_REQUEST = 32  # one JSON-RPC batch of eth_getBlockByNumber
POST_ATTEMPTS_MAX = 4  # nonces lost to a race before `post` gives up for now
TRACKED_NONCES_MAX = 1024  # transactions remembered for wait_confirmed

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


# ------------------------------------------------------------------ records


@dataclasses.dataclass(slots=True)
class _Sent:
    """One nonce of ours carrying one batch, and every version signed for it."""

    nonce: int
    batch_number: int
    encoding: bytes
    gas: int
    fees: Fees
    hashes: list[str]  # oldest first; any one of them may be mined
    sent_at: float  # anyio clock, when the newest version was sent (or adopted)
    bumps: int = 0
    mined: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Found:
    """A batch transaction found in a block."""

    batch: BatchCommitment
    encoding: bytes
    tx_hash: str
    nonce: int
    block_number: int


@dataclasses.dataclass(slots=True)
class _View:
    """What one scan saw: the winners per batch number, the duplicates, the head."""

    final: dict[int, _Found]  # blocks at least `confirmations` deep (cached)
    tail: dict[int, _Found]  # shallower blocks (rescanned every time)
    duplicates: list[_Found]
    head: int

    def get(self, number: int) -> _Found | None:
        return self.final.get(number) or self.tail.get(number)


@dataclasses.dataclass(frozen=True, slots=True)
class EthereumSinkStatistics:
    next_block: int  # the first block not yet scanned for good
    batches: int
    duplicates: int
    skipped_undecodable: int
    skipped_other_chain: int
    skipped_reverted: int
    tracked_transactions: int
    replacements: int


# ------------------------------------------------------------------ the sink


class EthereumSink:
    name = "ethereum"

    def __init__(
        self,
        url: str,
        private_key_hex: str | None,
        inbox_address: str,
        chain_id: str,
        *,
        confirmations: int = 1,
        poll_s: float = 0.2,
        stuck_after_s: float = 30.0,
        fee_bump_percent: float = 12.5,
        request_timeout_s: float = 5.0,
        start_block: int = 0,
        sender: str | None = None,
    ) -> None:
        """`private_key_hex` None (with `sender`): a read-only sink, see `reader`."""
        if not _ADDRESS.match(inbox_address):
            raise ValueError(f"inbox address must be 0x and 40 hex digits, got {inbox_address!r}")
        if confirmations < 0 or start_block < 0:
            raise ValueError("confirmations and start_block must not be negative")
        if poll_s <= 0 or stuck_after_s <= 0 or request_timeout_s <= 0:
            raise ValueError("poll_s, stuck_after_s and request_timeout_s must be positive")
        if fee_bump_percent < FEE_BUMP_PERCENT_MIN:
            raise ValueError(f"fee_bump_percent must be at least {FEE_BUMP_PERCENT_MIN}")
        self._account: LocalAccount | None = None
        if private_key_hex:
            if not _PRIVATE_KEY.match(private_key_hex):
                raise ValueError("the private key must be 32 bytes of hex")
            self._account = Account.from_key(private_key_hex.removeprefix("0x"))
            address = self._account.address
            if sender is not None and sender.lower() != address.lower():
                raise ValueError(f"sender {sender} is not the address of the key ({address})")
        elif sender is not None and _ADDRESS.match(sender):
            address = sender
        else:
            raise ValueError("a private key, or the sender address of a reader, is required")
        self.url = url
        self.address = address.lower()
        self.inbox = inbox_address.lower()
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.poll_s = poll_s
        self.stuck_after_s = stuck_after_s
        self.fee_bump_percent = fee_bump_percent
        self.request_timeout_s = request_timeout_s
        self.start_block = start_block
        self.duplicates: list[PostedBatch] = []  # later transactions of a batch number
        self.skipped_undecodable = 0
        self.skipped_other_chain = 0
        self.skipped_reverted = 0
        self._rpc = EthereumRpc(url, request_timeout_s=request_timeout_s)
        self._next_block = start_block
        self._final: dict[int, _Found] = {}
        self._final_duplicates: list[_Found] = []
        self._final_skips: Counter[str] = Counter()
        self._sent: dict[int, _Sent] = {}  # by nonce
        self._by_hash: dict[str, _Sent] = {}  # every version, and references that moved
        self._scan_lock = anyio.Lock()
        self._post_lock = anyio.Lock()

    @classmethod
    def reader(
        cls, url: str, sender: str, inbox_address: str, chain_id: str, **options: Any
    ) -> EthereumSink:
        """A key-less sink that reads what `sender` posted (`sequencer l1 verify`)."""
        return cls(url, None, inbox_address, chain_id, sender=sender, **options)

    # ------------------------------------------------------------ Sink

    async def post(self, batch: BatchCommitment, encoding: bytes) -> str:
        """Send the batch unless the L1 or the mempool has it; returns the tx hash."""
        if batch.chain_id != self.chain_id:
            raise ValueError(f"batch of chain {batch.chain_id!r} posted to {self.chain_id!r}")
        if encoding != encode_batch(batch):
            raise ValueError("`encoding` is not the encoding of `batch`")
        if self._account is None:
            raise L1Error("ethereum: this sink is a reader (no private key): it cannot post")
        async with self._post_lock:
            for _ in range(POST_ATTEMPTS_MAX):
                reference = await self._already_there(batch.batch_number, encoding)
                if reference is not None:
                    return reference
                nonce = await self._rpc.transaction_count(self.address, "pending")
                try:
                    return (await self._send_new(nonce, batch.batch_number, encoding)).hashes[0]
                except RpcError as error:
                    if not error.says(NONCE_TOO_LOW + UNDERPRICED):
                        raise
                    log.info("nonce %d was taken meanwhile (%s); looking again", nonce, error)
        raise L1UnavailableError(
            f"ethereum: batch {batch.batch_number} not sent: its nonce was taken "
            f"{POST_ATTEMPTS_MAX} times in a row by other transactions of {self.address}"
        )

    async def wait_confirmed(self, reference: str) -> None:
        """Return once the batch of `reference` is mined, succeeded and deep enough."""
        reference = reference.lower()
        if reference not in self._by_hash:
            sent = await self._adopt_by_hash(reference)
            self._track(sent)
            self._by_hash[reference] = sent
        while not await self._settled(self._by_hash[reference]):
            await anyio.sleep(self.poll_s)

    async def posted(self) -> list[PostedBatch]:
        """Every batch of ours in the inbox, by batch number (see the module doc)."""
        view = await self._scan()
        found = sorted([*view.final.values(), *view.tail.values()], key=_batch_number)
        return [self._posted(item, view.head) for item in found]

    async def aclose(self) -> None:
        await self._rpc.aclose()

    # ------------------------------------------------------------ inspection

    def transactions_for(self, reference: str) -> tuple[str, ...]:
        """Every version signed for the batch of `reference`, oldest first."""
        sent = self._by_hash.get(reference.lower())
        return () if sent is None else tuple(sent.hashes)

    def mined_hash(self, reference: str) -> str | None:
        """The version of `reference`'s batch that `wait_confirmed` saw mined."""
        sent = self._by_hash.get(reference.lower())
        return None if sent is None else sent.mined

    def statistics(self) -> EthereumSinkStatistics:
        return EthereumSinkStatistics(
            next_block=self._next_block,
            batches=len(self._final),
            duplicates=len(self.duplicates),
            skipped_undecodable=self.skipped_undecodable,
            skipped_other_chain=self.skipped_other_chain,
            skipped_reverted=self.skipped_reverted,
            tracked_transactions=len(self._sent),
            replacements=sum(sent.bumps for sent in self._sent.values()),
        )

    # ------------------------------------------------------------ posting

    async def _already_there(self, number: int, encoding: bytes) -> str | None:
        """The reference of batch `number` on the L1 or pending, checked against `encoding`."""
        # Nonces before the scan, so that a transaction mined in between is seen.
        latest, pending = await self._rpc.transaction_counts(self.address)
        found = (await self._scan()).get(number)
        if found is not None:
            return _same_or_conflict(number, found.encoding, encoding, found.tx_hash, "L1")
        sent = next((s for s in self._sent.values() if s.batch_number == number), None)
        if sent is not None and sent.nonce < latest:
            # Not on the L1 (dropped, or reverted) and its nonce went to another
            # transaction: send it again, or forget it when we now post other bytes.
            if sent.encoding != encoding:
                self._forget(sent)
                return None
            await self._recover_lost(sent)
            return self._by_hash[sent.hashes[0]].hashes[0]
        if sent is None and pending > latest:
            sent = await self._adopt_pending(number, latest, pending)
        if sent is None:
            return None
        return _same_or_conflict(number, sent.encoding, encoding, sent.hashes[-1], "mempool")

    async def _send_new(self, nonce: int, number: int, encoding: bytes) -> _Sent:
        calldata = CALLDATA_PREFIX + encoding
        estimate = await self._rpc.estimate_gas(self.address, self.inbox, calldata)
        fees = await self._rpc.fees_now()
        sent = _Sent(
            nonce, number, encoding, estimate + estimate // GAS_MARGIN_DIVISOR, fees, [], 0.0
        )
        tx_hash = await self._send(sent, fees)
        sent.hashes.append(tx_hash)
        sent.sent_at = anyio.current_time()
        self._track(sent)
        log.info("batch %d sent in %s (nonce %d, %s)", number, tx_hash, nonce, fees.describe())
        return sent

    async def _send(self, sent: _Sent, fees: Fees) -> str:
        """Sign `sent` with `fees` and send it; its hash (also when the node had it)."""
        tx: dict[str, Any] = {
            "chainId": await self._rpc.chain_id(),
            "nonce": sent.nonce,
            "to": bytes.fromhex(self.inbox[2:]),
            "value": 0,
            "data": CALLDATA_PREFIX + sent.encoding,
            "gas": sent.gas,
        }
        if fees.tip is None:
            tx["gasPrice"] = fees.max_fee
        else:
            tx |= {"type": 2, "maxFeePerGas": fees.max_fee, "maxPriorityFeePerGas": fees.tip}
        assert self._account is not None
        signed = self._account.sign_transaction(tx)
        tx_hash = "0x" + bytes(signed.hash).hex()
        await self._rpc.send_raw_transaction(bytes(signed.raw_transaction), tx_hash)
        return tx_hash

    # ------------------------------------------------------------ waiting

    async def _settled(self, sent: _Sent) -> bool:
        """One look at the batch of `sent`: True once final; bumps or re-sends it when due."""
        # The nonce before the receipts, so that a transaction mined in between is seen.
        latest = await self._rpc.transaction_count(self.address, "latest")
        receipts = await self._rpc.receipts(sent.hashes)
        for tx_hash, receipt in zip(sent.hashes, receipts, strict=True):
            if receipt is None:
                continue
            block = quantity(field(receipt, "blockNumber", "eth_getTransactionReceipt"))
            if field(receipt, "status", "receipt", required=False) in ("0x0", 0):
                raise L1Error(
                    f"ethereum: batch {sent.batch_number}: transaction {tx_hash} "
                    f"reverted in block {block}"
                )
            if sent.mined != tx_hash:
                sent.mined = tx_hash
                log.info("batch %d mined in block %d (%s)", sent.batch_number, block, tx_hash)
            return await self._rpc.head() - block + 1 >= self.confirmations
        if latest > sent.nonce:
            async with self._post_lock:  # it may send: no nonce race with `post`
                await self._recover_lost(sent)
        elif anyio.current_time() - sent.sent_at >= self.stuck_after_s:
            await self._replace(sent)
        return False

    async def _replace(self, sent: _Sent) -> None:
        """Re-sign the same nonce with higher fees (the stuck-transaction remedy)."""
        now = anyio.current_time()
        if self._account is None or sent.bumps >= BUMPS_MAX:
            sent.sent_at = now  # nothing more to do but wait; say so once per interval
            log.warning("batch %d: %s still pending", sent.batch_number, sent.hashes[-1])
            return
        fees = _bumped(sent.fees, self.fee_bump_percent, await self._rpc.fees_now())
        sent.fees = fees
        sent.bumps += 1
        try:
            tx_hash = await self._send(sent, fees)
        except RpcError as error:
            if error.says(NONCE_TOO_LOW):
                return  # mined meanwhile: the next look finds which version
            if error.says(UNDERPRICED):
                return  # not enough for this node: the next look bumps again
            raise
        pending_s = now - sent.sent_at
        sent.hashes.append(tx_hash)
        sent.sent_at = now
        self._by_hash[tx_hash] = sent
        log.warning(
            "batch %d: %s pending for %.1f s; replaced by %s (%s)",
            sent.batch_number,
            sent.hashes[-2],
            pending_s,
            tx_hash,
            fees.describe(),
        )

    async def _recover_lost(self, sent: _Sent) -> None:
        """The nonce of `sent` went to a transaction that is none of its versions."""
        found = (await self._scan()).get(sent.batch_number)
        if found is not None:
            _same_or_conflict(sent.batch_number, found.encoding, sent.encoding, found.tx_hash, "L1")
            moved = _Sent(
                found.nonce,
                sent.batch_number,
                sent.encoding,
                0,
                sent.fees,
                [found.tx_hash],
                anyio.current_time(),
                bumps=BUMPS_MAX,  # mined already: nothing to re-sign
            )
        elif self._account is None:
            raise L1Error(f"ethereum: batch {sent.batch_number} was dropped (nonce reused)")
        else:
            log.warning(
                "batch %d: nonce %d went to another transaction; sending the batch again",
                sent.batch_number,
                sent.nonce,
            )
            nonce = await self._rpc.transaction_count(self.address, "pending")
            moved = await self._send_new(nonce, sent.batch_number, sent.encoding)
        references = [h for h, s in self._by_hash.items() if s is sent]
        self._forget(sent)
        self._track(moved)
        for tx_hash in references:  # old references follow the batch
            self._by_hash[tx_hash] = moved

    # ------------------------------------------------------------ adopting

    async def _adopt_pending(self, number: int, latest: int, pending: int) -> _Sent | None:
        """Adopt our pending batch transactions (a previous run's); the one of `number`."""
        txs = await self._rpc.pending_transactions(self.address)
        mine = [tx for tx in txs if lowercase(tx.get("from")) == self.address]
        if len(mine) < pending - latest:
            log.info("%d of %d pending nonces listed", len(mine), pending - latest)
        wanted = None
        for tx in mine:
            sent = self._sent_from(tx)
            if sent is None or sent.nonce in self._sent:
                continue
            self._track(sent)
            log.info("adopted pending %s of batch %d", sent.hashes[0], sent.batch_number)
            if sent.batch_number == number:
                wanted = sent
        return wanted

    async def _adopt_by_hash(self, reference: str) -> _Sent:
        tx = await self._rpc.call("eth_getTransactionByHash", reference)
        if not isinstance(tx, dict):
            raise L1Error(
                f"ethereum: transaction {reference} is unknown to the L1 (dropped, or "
                "replaced before this process started): post the batch again"
            )
        sent = self._sent_from(tx) if lowercase(tx.get("from")) == self.address else None
        if sent is None:
            raise L1Error(f"ethereum: {reference} is not a batch transaction of {self.address}")
        return self._sent.get(sent.nonce, sent)

    def _sent_from(self, tx: dict[str, Any]) -> _Sent | None:
        """The batch transaction `tx` as if we had sent it now; None if it is not one."""
        decoded = self._decode(tx)
        if not isinstance(decoded, tuple):
            return None
        batch, encoding = decoded
        return _Sent(
            quantity(tx.get("nonce")),
            batch.batch_number,
            encoding,
            quantity(tx.get("gas")),
            Fees.of_transaction(tx),
            [lowercase(tx.get("hash"))],
            anyio.current_time(),
        )

    def _track(self, sent: _Sent) -> None:
        self._sent[sent.nonce] = sent
        for tx_hash in sent.hashes:
            self._by_hash.setdefault(tx_hash, sent)
        while len(self._sent) > TRACKED_NONCES_MAX:
            self._forget(self._sent[min(self._sent)])

    def _forget(self, sent: _Sent) -> None:
        if self._sent.get(sent.nonce) is sent:
            del self._sent[sent.nonce]
        for tx_hash in [h for h, s in self._by_hash.items() if s is sent]:
            del self._by_hash[tx_hash]

    # ------------------------------------------------------------ reading

    async def _scan(self) -> _View:
        """Scan the new blocks; the batches of ours per number (see the module doc)."""
        async with self._scan_lock:
            head = await self._rpc.head()
            final_upto = head - max(self.confirmations, 1) + 1
            tail: list[_Found] = []
            tail_skips: Counter[str] = Counter()
            first = self._next_block
            while first <= head:
                numbers = range(first, min(head, first + SCAN_BLOCKS_PER_REQUEST - 1) + 1)
                blocks = await self._rpc.blocks(numbers)
                for number, block in zip(numbers, blocks, strict=True):
                    found, skips = await self._batches_in(number, block)
                    if number <= final_upto and number == self._next_block:
                        for item in found:
                            _add(self._final, self._final_duplicates, item)
                        self._final_skips.update(skips)
                        self._next_block = number + 1
                    else:
                        tail.extend(found)
                        tail_skips.update(skips)
                first = numbers[-1] + 1
            view = _View(self._final, {}, list(self._final_duplicates), head)
            for item in tail:
                _add(view.tail, view.duplicates, item, also=view.final)
            skips = self._final_skips + tail_skips
            self.skipped_undecodable = skips["undecodable"]
            self.skipped_other_chain = skips["other_chain"]
            self.skipped_reverted = skips["reverted"]
            self.duplicates = [self._posted(item, head) for item in view.duplicates]
            return view

    async def _batches_in(self, number: int, block: object) -> tuple[list[_Found], Counter[str]]:
        if not isinstance(block, dict):
            raise L1UnavailableError(f"ethereum: block {number} is not available yet")
        candidates = [
            tx
            for tx in field(block, "transactions", "eth_getBlockByNumber")
            if isinstance(tx, dict)
            and lowercase(tx.get("from")) == self.address
            and lowercase(tx.get("to")) == self.inbox
            and lowercase(tx.get("input") or tx.get("data")).startswith("0x01")
        ]
        hashes = [lowercase(tx.get("hash")) for tx in candidates]
        receipts = await self._rpc.receipts(hashes)
        found: list[_Found] = []
        skips: Counter[str] = Counter()
        for tx, tx_hash, receipt in zip(candidates, hashes, receipts, strict=True):
            if not isinstance(receipt, dict):
                raise L1UnavailableError(f"ethereum: no receipt yet for {tx_hash} (block {number})")
            if receipt.get("status") in ("0x0", 0):
                skips["reverted"] += 1
                continue
            decoded = self._decode(tx)
            if isinstance(decoded, str):
                skips[decoded] += 1
                continue
            batch, encoding = decoded
            found.append(_Found(batch, encoding, tx_hash, quantity(tx.get("nonce")), number))
        return found, skips

    def _decode(self, tx: dict[str, Any]) -> tuple[BatchCommitment, bytes] | str:
        """A canonical batch of our chain sent to the inbox, or why not."""
        data = lowercase(tx.get("input") or tx.get("data"))
        if lowercase(tx.get("to")) != self.inbox or not data.startswith("0x01"):
            return "undecodable"
        try:
            encoding = bytes.fromhex(data[4:])
            batch = decode_batch(encoding)
        except (ValueError, DecodeError):
            return "undecodable"
        if encode_batch(batch) != encoding:
            return "undecodable"
        if batch.chain_id != self.chain_id:
            return "other_chain"
        return batch, encoding

    def _posted(self, item: _Found, head: int) -> PostedBatch:
        depth = head - item.block_number + 1
        return PostedBatch(item.batch, item.encoding, item.tx_hash, depth >= self.confirmations)


# ------------------------------------------------------------------ helpers


def _batch_number(item: _Found) -> int:
    return item.batch.batch_number


def _add(
    index: dict[int, _Found],
    duplicates: list[_Found],
    item: _Found,
    also: dict[int, _Found] | None = None,
) -> None:
    """Record `item` as its batch number's winner unless one was mined before it."""
    number = item.batch.batch_number
    if number in index or (also is not None and number in also):
        duplicates.append(item)
        log.warning("batch %d is on the L1 twice; ignoring %s", number, item.tx_hash)
    else:
        index[number] = item


def _same_or_conflict(number: int, there: bytes, ours: bytes, tx_hash: str, where: str) -> str:
    if there != ours:
        raise L1ConflictError(
            f"ethereum: the {where} holds another batch {number} (transaction {tx_hash})"
        )
    return tx_hash


def _bumped(old: Fees, percent: float, fresh: Fees) -> Fees:
    """`old` raised by `percent` (and by 1 wei at least), or `fresh` when that is more."""
    factor = 1 + Fraction(percent) / 100

    def up(value: int) -> int:
        return max(value + 1, math.ceil(value * factor))

    if old.tip is None:
        return Fees(max(up(old.max_fee), fresh.max_fee), None)
    tip = max(up(old.tip), fresh.tip or 0)
    return Fees(max(up(old.max_fee), fresh.max_fee, tip), tip)
