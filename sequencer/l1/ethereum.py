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

Reading (`posted`) scans blocks `start_block..head` for our batches in the
inbox (`inbox_scan.InboxScanner`); transactions that are none are skipped
and counted (`skipped_undecodable`, `skipped_other_chain`,
`skipped_reverted`), and when one batch number was mined twice the first
mined wins and the later ones are listed in `duplicates`. The transaction
format, both ways, is in `batch_tx`; the record of what this object sent, in
`sent`.

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
import re
from typing import Any

import anyio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from sequencer.ids import encode_batch
from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, PostedBatch
from sequencer.l1.batch_tx import (
    CALLDATA_PREFIX,
    batch_transaction,
    bumped_fees,
    decode_batch_transaction,
)
from sequencer.l1.inbox_scan import Found, InboxScanner, InboxView
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
from sequencer.l1.sent import Sent, SentLedger
from sequencer.types import BatchCommitment

__all__ = ["BUMPS_MAX", "CALLDATA_PREFIX", "EthereumSink", "EthereumSinkStatistics"]

log = logging.getLogger("sequencer.l1.ethereum")

BUMPS_MAX = 16  # fee replacements per nonce: 1.125^16 is about 6.6 times the first fees
GAS_MARGIN_DIVISOR = 5  # gas limit = estimate + estimate / 5
FEE_BUMP_PERCENT_MIN = 10.0  # geth refuses a replacement that raises fees by less
POST_ATTEMPTS_MAX = 4  # nonces lost to a race before `post` gives up for now

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


# ------------------------------------------------------------------ records


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
        self._scanner = InboxScanner(
            self._rpc,
            self.address,
            self.inbox,
            chain_id,
            confirmations=confirmations,
            start_block=start_block,
        )
        self._ledger = SentLedger()
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
        if reference not in self._ledger.by_hash:
            sent = await self._adopt_by_hash(reference)
            self._ledger.track(sent)
            self._ledger.by_hash[reference] = sent
        while not await self._settled(self._ledger.by_hash[reference]):
            await anyio.sleep(self.poll_s)

    async def posted(self) -> list[PostedBatch]:
        """Every batch of ours in the inbox, by batch number (see the module doc)."""
        view = await self._scan()
        found = sorted([*view.final.values(), *view.tail.values()], key=_batch_number)
        return [self._scanner.posted(item, view.head) for item in found]

    async def aclose(self) -> None:
        await self._rpc.aclose()

    # ------------------------------------------------------------ inspection

    def transactions_for(self, reference: str) -> tuple[str, ...]:
        """Every version signed for the batch of `reference`, oldest first."""
        sent = self._ledger.by_hash.get(reference.lower())
        return () if sent is None else tuple(sent.hashes)

    def mined_hash(self, reference: str) -> str | None:
        """The version of `reference`'s batch that `wait_confirmed` saw mined."""
        sent = self._ledger.by_hash.get(reference.lower())
        return None if sent is None else sent.mined

    def statistics(self) -> EthereumSinkStatistics:
        return EthereumSinkStatistics(
            next_block=self._scanner.next_block,
            batches=self._scanner.final_batches,
            duplicates=len(self.duplicates),
            skipped_undecodable=self.skipped_undecodable,
            skipped_other_chain=self.skipped_other_chain,
            skipped_reverted=self.skipped_reverted,
            tracked_transactions=len(self._ledger.by_nonce),
            replacements=sum(sent.bumps for sent in self._ledger.by_nonce.values()),
        )

    # ------------------------------------------------------------ posting

    async def _already_there(self, number: int, encoding: bytes) -> str | None:
        """The reference of batch `number` on the L1 or pending, checked against `encoding`."""
        # Nonces before the scan, so that a transaction mined in between is seen.
        latest, pending = await self._rpc.transaction_counts(self.address)
        found = (await self._scan()).get(number)
        if found is not None:
            return _same_or_conflict(number, found.encoding, encoding, found.tx_hash, "L1")
        sent = self._ledger.of_batch(number)
        if sent is not None and sent.nonce < latest:
            # Not on the L1 (dropped, or reverted) and its nonce went to another
            # transaction: send it again, or forget it when we now post other bytes.
            if sent.encoding != encoding:
                self._ledger.forget(sent)
                return None
            await self._recover_lost(sent)
            return self._ledger.by_hash[sent.hashes[0]].hashes[0]
        if sent is None and pending > latest:
            sent = await self._adopt_pending(number, latest, pending)
        if sent is None:
            return None
        return _same_or_conflict(number, sent.encoding, encoding, sent.hashes[-1], "mempool")

    async def _send_new(self, nonce: int, number: int, encoding: bytes) -> Sent:
        calldata = CALLDATA_PREFIX + encoding
        estimate = await self._rpc.estimate_gas(self.address, self.inbox, calldata)
        fees = await self._rpc.fees_now()
        sent = Sent(
            nonce, number, encoding, estimate + estimate // GAS_MARGIN_DIVISOR, fees, [], 0.0
        )
        tx_hash = await self._send(sent, fees)
        sent.hashes.append(tx_hash)
        sent.sent_at = anyio.current_time()
        self._ledger.track(sent)
        log.info("batch %d sent in %s (nonce %d, %s)", number, tx_hash, nonce, fees.describe())
        return sent

    async def _send(self, sent: Sent, fees: Fees) -> str:
        """Sign `sent` with `fees` and send it; its hash (also when the node had it)."""
        chain_id = await self._rpc.chain_id()
        tx = batch_transaction(chain_id, sent.nonce, self.inbox, sent.encoding, sent.gas, fees)
        assert self._account is not None
        signed = self._account.sign_transaction(tx)
        tx_hash = "0x" + bytes(signed.hash).hex()
        await self._rpc.send_raw_transaction(bytes(signed.raw_transaction), tx_hash)
        return tx_hash

    # ------------------------------------------------------------ waiting

    async def _settled(self, sent: Sent) -> bool:
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

    async def _replace(self, sent: Sent) -> None:
        """Re-sign the same nonce with higher fees (the stuck-transaction remedy)."""
        now = anyio.current_time()
        if self._account is None or sent.bumps >= BUMPS_MAX:
            sent.sent_at = now  # nothing more to do but wait; say so once per interval
            log.warning("batch %d: %s still pending", sent.batch_number, sent.hashes[-1])
            return
        fees = bumped_fees(sent.fees, self.fee_bump_percent, await self._rpc.fees_now())
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
        self._ledger.by_hash[tx_hash] = sent
        log.warning(
            "batch %d: %s pending for %.1f s; replaced by %s (%s)",
            sent.batch_number,
            sent.hashes[-2],
            pending_s,
            tx_hash,
            fees.describe(),
        )

    async def _recover_lost(self, sent: Sent) -> None:
        """The nonce of `sent` went to a transaction that is none of its versions."""
        found = (await self._scan()).get(sent.batch_number)
        if found is not None:
            _same_or_conflict(sent.batch_number, found.encoding, sent.encoding, found.tx_hash, "L1")
            moved = Sent(
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
        self._ledger.move(sent, moved)  # old references follow the batch

    # ------------------------------------------------------------ adopting

    async def _adopt_pending(self, number: int, latest: int, pending: int) -> Sent | None:
        """Adopt our pending batch transactions (a previous run's); the one of `number`."""
        txs = await self._rpc.pending_transactions(self.address)
        mine = [tx for tx in txs if lowercase(tx.get("from")) == self.address]
        if len(mine) < pending - latest:
            log.info("%d of %d pending nonces listed", len(mine), pending - latest)
        wanted = None
        for tx in mine:
            sent = self._sent_from(tx)
            if sent is None or sent.nonce in self._ledger.by_nonce:
                continue
            self._ledger.track(sent)
            log.info("adopted pending %s of batch %d", sent.hashes[0], sent.batch_number)
            if sent.batch_number == number:
                wanted = sent
        return wanted

    async def _adopt_by_hash(self, reference: str) -> Sent:
        tx = await self._rpc.call("eth_getTransactionByHash", reference)
        if not isinstance(tx, dict):
            raise L1Error(
                f"ethereum: transaction {reference} is unknown to the L1 (dropped, or "
                "replaced before this process started): post the batch again"
            )
        sent = self._sent_from(tx) if lowercase(tx.get("from")) == self.address else None
        if sent is None:
            raise L1Error(f"ethereum: {reference} is not a batch transaction of {self.address}")
        return self._ledger.by_nonce.get(sent.nonce, sent)

    def _sent_from(self, tx: dict[str, Any]) -> Sent | None:
        """The batch transaction `tx` as if we had sent it now; None if it is not one."""
        decoded = decode_batch_transaction(tx, self.inbox, self.chain_id)
        if not isinstance(decoded, tuple):
            return None
        batch, encoding = decoded
        return Sent(
            quantity(tx.get("nonce")),
            batch.batch_number,
            encoding,
            quantity(tx.get("gas")),
            Fees.of_transaction(tx),
            [lowercase(tx.get("hash"))],
            anyio.current_time(),
        )

    # ------------------------------------------------------------ reading

    async def _scan(self) -> InboxView:
        """The scan's view (see `inbox_scan`), its skips and duplicates kept here."""
        view = await self._scanner.scan()
        self.skipped_undecodable = view.skips["undecodable"]
        self.skipped_other_chain = view.skips["other_chain"]
        self.skipped_reverted = view.skips["reverted"]
        self.duplicates = [self._scanner.posted(item, view.head) for item in view.duplicates]
        return view


# ------------------------------------------------------------------ helpers


def _batch_number(item: Found) -> int:
    return item.batch.batch_number


def _same_or_conflict(number: int, there: bytes, ours: bytes, tx_hash: str, where: str) -> str:
    if there != ours:
        raise L1ConflictError(
            f"ethereum: the {where} holds another batch {number} (transaction {tx_hash})"
        )
    return tx_hash
