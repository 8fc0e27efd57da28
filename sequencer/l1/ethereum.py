"""The `ethereum` sink (DESIGN 11): batch commitments as transactions on an Ethereum chain.

    sink = EthereumSink("http://127.0.0.1:8545", key_hex, inbox, "devnet-1", confirmations=2)
    reference = await sink.post(batch, encode_batch(batch))   # the transaction hash
    await sink.wait_confirmed(reference)
    await sink.aclose()

A batch is one transaction from the poster's account to the batch inbox
address, no value, calldata `0x01 || encoding` (DESIGN 3.6), signed with
eth-account: EIP-1559 when the chain has a base fee (tip from
`eth_maxPriorityFeePerGas`, else `eth_gasPrice` minus the base fee; fee cap
twice the next base fee plus the tip), legacy (`eth_gasPrice`) otherwise;
gas from `eth_estimateGas` plus 20%. JSON-RPC goes over httpx, whose anyio
backend runs under trio.

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

Errors: no answer within `request_timeout_s` (per request, end to end), a
transport failure, HTTP 429/5xx, an unreadable answer, and JSON-RPC errors
that mean "later" (rate limits, timeouts, a node still syncing) are
`L1UnavailableError`; other JSON-RPC errors (insufficient funds, a reverted
estimate) and malformed answers are `L1Error`; a key-less `reader` cannot
post. Arguments that are our bug (a batch of another chain, an encoding that
is not the batch's) are `ValueError`s, as in the file sink.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import anyio
import httpx
import msgspec
from eth_account import Account
from eth_account.signers.local import LocalAccount

from sequencer.errors import DecodeError
from sequencer.ids import decode_batch, encode_batch
from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, PostedBatch
from sequencer.types import BatchCommitment

__all__ = ["BUMPS_MAX", "CALLDATA_PREFIX", "EthereumSink", "EthereumSinkStatistics"]

log = logging.getLogger("sequencer.l1.ethereum")

CALLDATA_PREFIX = b"\x01"  # DESIGN 3.6: the version byte before the encoding
BUMPS_MAX = 16  # fee replacements per nonce: 1.125^16 is about 6.6 times the first fees
GAS_MARGIN_DIVISOR = 5  # gas limit = estimate + estimate / 5
FEE_BUMP_PERCENT_MIN = 10.0  # geth refuses a replacement that raises fees by less
SCAN_BLOCKS_PER_REQUEST = 32  # one JSON-RPC batch of eth_getBlockByNumber
POST_ATTEMPTS_MAX = 4  # nonces lost to a race before `post` gives up for now
TRACKED_NONCES_MAX = 1024  # transactions remembered for wait_confirmed

_JSON_HEADERS = {"content-type": "application/json"}
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
# What a JSON-RPC error says when trying again later may work ...
_TRY_LATER = (
    "timeout",
    "timed out",
    "rate limit",
    "too many requests",
    "busy",
    "header not found",
    "unavailable",
    "try again",
    "syncing",
    "limit exceeded",
    "capacity",
)
_TRY_LATER_CODES = (-32005,)  # EIP-1474 "limit exceeded"
# ... and the ones `post` and `wait_confirmed` handle (geth, anvil, Nethermind, Erigon).
_NONCE_TOO_LOW = ("nonce too low", "oldnonce", "nonce has already been used")
_ALREADY_KNOWN = ("already known", "already imported", "known transaction", "alreadyknown")
_UNDERPRICED = ("underpriced", "replacement fee too low", "feetoolowtoreplace")
_MISSING_METHOD = ("method not found", "does not exist", "not supported", "not available")


# ------------------------------------------------------------------ errors


class _RpcError(L1Error):
    """A JSON-RPC error answer; `message` lower-cased for matching."""

    def __init__(self, method: str, code: object, message: str) -> None:
        super().__init__(f"ethereum: {method} failed: {message} (JSON-RPC error {code})")
        self.code = code
        self.message = message.lower()

    def says(self, needles: Sequence[str]) -> bool:
        return any(needle in self.message for needle in needles)


class _RpcTryLaterError(_RpcError, L1UnavailableError):
    """A JSON-RPC error that means "later": a rate limit, a timeout, a syncing node."""


def _rpc_error(method: str, error: object) -> _RpcError:
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message") if isinstance(error, dict) else error)
    if code in _TRY_LATER_CODES or any(word in message.lower() for word in _TRY_LATER):
        return _RpcTryLaterError(method, code, message)
    return _RpcError(method, code, message)


def _missing_method(error: _RpcError) -> bool:
    return error.code == -32601 or error.says(_MISSING_METHOD)


# ------------------------------------------------------------------ records


@dataclasses.dataclass(frozen=True, slots=True)
class _Fees:
    max_fee: int  # maxFeePerGas, or gasPrice for a legacy transaction
    tip: int | None  # maxPriorityFeePerGas; None for a legacy transaction


@dataclasses.dataclass(slots=True)
class _Sent:
    """One nonce of ours carrying one batch, and every version signed for it."""

    nonce: int
    batch_number: int
    encoding: bytes
    gas: int
    fees: _Fees
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
        self._http = httpx.AsyncClient(timeout=request_timeout_s)
        self._next_id = 1
        self._eth_chain_id: int | None = None
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
                nonce = await self._nonce("pending")
                try:
                    return (await self._send_new(nonce, batch.batch_number, encoding)).hashes[0]
                except _RpcError as error:
                    if not error.says(_NONCE_TOO_LOW + _UNDERPRICED):
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
        await self._http.aclose()

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
        latest, pending = await self._nonces()  # before the scan: a tx mined since is seen
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
        estimate = _int(
            await self._call(
                "eth_estimateGas",
                {"from": self.address, "to": self.inbox, "data": "0x" + calldata.hex()},
            )
        )
        fees = await self._fees_now()
        sent = _Sent(
            nonce, number, encoding, estimate + estimate // GAS_MARGIN_DIVISOR, fees, [], 0.0
        )
        tx_hash = await self._send(sent, fees)
        sent.hashes.append(tx_hash)
        sent.sent_at = anyio.current_time()
        self._track(sent)
        log.info("batch %d sent in %s (nonce %d, %s)", number, tx_hash, nonce, _describe(fees))
        return sent

    async def _send(self, sent: _Sent, fees: _Fees) -> str:
        """Sign `sent` with `fees` and send it; its hash (also when the node had it)."""
        tx: dict[str, Any] = {
            "chainId": await self._chain(),
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
        try:
            answer = await self._call("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
        except _RpcError as error:
            if error.says(_ALREADY_KNOWN):
                return tx_hash
            raise
        if not isinstance(answer, str) or answer.lower() != tx_hash:
            raise L1Error(f"ethereum: the node answered {answer!r} for transaction {tx_hash}")
        return tx_hash

    async def _fees_now(self) -> _Fees:
        base_fee = await self._base_fee()
        if base_fee is None:
            return _Fees(_int(await self._call("eth_gasPrice")), None)
        try:
            tip = _int(await self._call("eth_maxPriorityFeePerGas"))
        except _RpcError as error:
            if not _missing_method(error):
                raise
            tip = max(_int(await self._call("eth_gasPrice")) - base_fee, 1)
        return _Fees(2 * base_fee + tip, tip)

    async def _base_fee(self) -> int | None:
        """The next block's base fee; None on a chain without EIP-1559."""
        try:
            history = await self._call("eth_feeHistory", "0x1", "latest", [])
            fees = _field(history, "baseFeePerGas", "eth_feeHistory")
            base_fee = _int(fees[-1]) if isinstance(fees, list) and fees else 0
            if base_fee > 0:  # pre-London blocks report 0: ask the block itself
                return base_fee
        except _RpcError as error:
            if not _missing_method(error):
                raise
        latest = await self._call("eth_getBlockByNumber", "latest", False)
        fee = _field(latest, "baseFeePerGas", "eth_getBlockByNumber", required=False)
        return None if fee is None else _int(fee)

    # ------------------------------------------------------------ waiting

    async def _settled(self, sent: _Sent) -> bool:
        """One look at the batch of `sent`: True once final; bumps or re-sends it when due."""
        latest = await self._nonce("latest")  # before the receipts: a tx mined since is seen
        receipts = await self._calls([("eth_getTransactionReceipt", [h]) for h in sent.hashes])
        for tx_hash, receipt in zip(sent.hashes, receipts, strict=True):
            if receipt is None:
                continue
            block = _int(_field(receipt, "blockNumber", "eth_getTransactionReceipt"))
            if _field(receipt, "status", "receipt", required=False) in ("0x0", 0):
                raise L1Error(
                    f"ethereum: batch {sent.batch_number}: transaction {tx_hash} "
                    f"reverted in block {block}"
                )
            if sent.mined != tx_hash:
                sent.mined = tx_hash
                log.info("batch %d mined in block %d (%s)", sent.batch_number, block, tx_hash)
            return await self._head() - block + 1 >= self.confirmations
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
        fees = _bumped(sent.fees, self.fee_bump_percent, await self._fees_now())
        sent.fees = fees
        sent.bumps += 1
        try:
            tx_hash = await self._send(sent, fees)
        except _RpcError as error:
            if error.says(_NONCE_TOO_LOW):
                return  # mined meanwhile: the next look finds which version
            if error.says(_UNDERPRICED):
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
            _describe(fees),
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
            nonce = await self._nonce("pending")
            moved = await self._send_new(nonce, sent.batch_number, sent.encoding)
        references = [h for h, s in self._by_hash.items() if s is sent]
        self._forget(sent)
        self._track(moved)
        for tx_hash in references:  # old references follow the batch
            self._by_hash[tx_hash] = moved

    # ------------------------------------------------------------ adopting

    async def _adopt_pending(self, number: int, latest: int, pending: int) -> _Sent | None:
        """Adopt our pending batch transactions (a previous run's); the one of `number`."""
        txs = await self._pending_transactions()
        mine = [tx for tx in txs if _lower(tx.get("from")) == self.address]
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

    async def _pending_transactions(self) -> list[dict[str, Any]]:
        try:
            pool = await self._call("txpool_content")
            groups = [*_field(pool, "pending", "txpool_content").values()]
            groups += [
                *_field(pool, "queued", "txpool_content", required=False, default={}).values()
            ]
            return [tx for group in groups for tx in group.values() if isinstance(tx, dict)]
        except _RpcError as error:
            if not _missing_method(error):
                raise
        block = await self._call("eth_getBlockByNumber", "pending", True)
        if not isinstance(block, dict):
            raise L1UnavailableError(
                f"ethereum: {self.address} has pending transactions and the node lists none "
                "(no txpool_content, no pending block): retry once they are mined"
            )
        return [tx for tx in block.get("transactions", []) if isinstance(tx, dict)]

    async def _adopt_by_hash(self, reference: str) -> _Sent:
        tx = await self._call("eth_getTransactionByHash", reference)
        if not isinstance(tx, dict):
            raise L1Error(
                f"ethereum: transaction {reference} is unknown to the L1 (dropped, or "
                "replaced before this process started): post the batch again"
            )
        sent = self._sent_from(tx) if _lower(tx.get("from")) == self.address else None
        if sent is None:
            raise L1Error(f"ethereum: {reference} is not a batch transaction of {self.address}")
        return self._sent.get(sent.nonce, sent)

    def _sent_from(self, tx: dict[str, Any]) -> _Sent | None:
        """The batch transaction `tx` as if we had sent it now; None if it is not one."""
        decoded = self._decode(tx)
        if not isinstance(decoded, tuple):
            return None
        batch, encoding = decoded
        tip = tx.get("maxPriorityFeePerGas")
        fees = _Fees(
            _int(tx.get("maxFeePerGas") or tx.get("gasPrice")), None if tip is None else _int(tip)
        )
        return _Sent(
            _int(tx.get("nonce")),
            batch.batch_number,
            encoding,
            _int(tx.get("gas")),
            fees,
            [_lower(tx.get("hash"))],
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
            head = await self._head()
            final_upto = head - max(self.confirmations, 1) + 1
            tail: list[_Found] = []
            tail_skips: Counter[str] = Counter()
            first = self._next_block
            while first <= head:
                numbers = range(first, min(head, first + SCAN_BLOCKS_PER_REQUEST - 1) + 1)
                blocks = await self._calls(
                    [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
                )
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
            for tx in _field(block, "transactions", "eth_getBlockByNumber")
            if isinstance(tx, dict)
            and _lower(tx.get("from")) == self.address
            and _lower(tx.get("to")) == self.inbox
            and _lower(tx.get("input") or tx.get("data")).startswith("0x01")
        ]
        hashes = [_lower(tx.get("hash")) for tx in candidates]
        receipts = await self._calls([("eth_getTransactionReceipt", [h]) for h in hashes])
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
            found.append(_Found(batch, encoding, tx_hash, _int(tx.get("nonce")), number))
        return found, skips

    def _decode(self, tx: dict[str, Any]) -> tuple[BatchCommitment, bytes] | str:
        """A canonical batch of our chain sent to the inbox, or why not."""
        data = _lower(tx.get("input") or tx.get("data"))
        if _lower(tx.get("to")) != self.inbox or not data.startswith("0x01"):
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

    # ------------------------------------------------------------ JSON-RPC

    async def _head(self) -> int:
        return _int(await self._call("eth_blockNumber"))

    async def _nonce(self, block: str) -> int:
        return _int(await self._call("eth_getTransactionCount", self.address, block))

    async def _nonces(self) -> tuple[int, int]:
        latest, pending = await self._calls(
            [
                ("eth_getTransactionCount", [self.address, "latest"]),
                ("eth_getTransactionCount", [self.address, "pending"]),
            ]
        )
        return _int(latest), _int(pending)

    async def _chain(self) -> int:
        if self._eth_chain_id is None:
            self._eth_chain_id = _int(await self._call("eth_chainId"))
        return self._eth_chain_id

    async def _call(self, method: str, *params: Any) -> Any:
        (result,) = await self._calls([(method, list(params))])
        return result

    async def _calls(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Results of the calls, in one HTTP request (a JSON-RPC batch when several)."""
        if not calls:
            return []
        first_id = self._next_id
        self._next_id += len(calls)
        body = [
            {"jsonrpc": "2.0", "id": first_id + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        what = calls[0][0] if len(calls) == 1 else f"{len(calls)} calls of {calls[0][0]}"
        answer = await self._request(body[0] if len(body) == 1 else body, what)
        answers = [answer] if isinstance(answer, dict) else answer
        if not isinstance(answers, list):
            raise L1UnavailableError(f"ethereum: {self.url} answered {what} with {answer!r:.200}")
        by_id = {item.get("id"): item for item in answers if isinstance(item, dict)}
        if len(calls) == 1 and len(answers) == 1 and isinstance(answers[0], dict):
            by_id = {first_id: answers[0]}  # an error answer may carry no id
        results = []
        for i, (method, _) in enumerate(calls):
            item = by_id.get(first_id + i)
            if item is None or ("error" not in item and "result" not in item):
                raise L1UnavailableError(f"ethereum: {self.url} left {method} unanswered")
            if item.get("error") is not None:
                raise _rpc_error(method, item["error"])
            results.append(item["result"])
        return results

    async def _request(self, body: object, what: str) -> Any:
        response = None
        with anyio.move_on_after(self.request_timeout_s):
            try:
                response = await self._http.post(
                    self.url, content=msgspec.json.encode(body), headers=_JSON_HEADERS
                )
            except httpx.TimeoutException:
                pass
            except httpx.HTTPError as error:
                raise L1UnavailableError(
                    f"ethereum: cannot reach {self.url} ({what}): {type(error).__name__} {error}"
                ) from error
        if response is None:
            raise L1UnavailableError(
                f"ethereum: {self.url} did not answer {what} within {self.request_timeout_s} s"
            )
        status = response.status_code
        snippet = response.text[:200]
        if status == 429 or status >= 500:
            raise L1UnavailableError(
                f"ethereum: {self.url} answered {what} with HTTP {status}: {snippet!r}"
            )
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            error = L1UnavailableError if status == 200 else L1Error  # 4xx: configuration
            raise error(
                f"ethereum: {self.url} answered {what} with HTTP {status}: {snippet!r}"
            ) from None


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


def _bumped(old: _Fees, percent: float, fresh: _Fees) -> _Fees:
    """`old` raised by `percent` (and by 1 wei at least), or `fresh` when that is more."""
    factor = 1 + Fraction(percent) / 100

    def up(value: int) -> int:
        return max(value + 1, math.ceil(value * factor))

    if old.tip is None:
        return _Fees(max(up(old.max_fee), fresh.max_fee), None)
    tip = max(up(old.tip), fresh.tip or 0)
    return _Fees(max(up(old.max_fee), fresh.max_fee, tip), tip)


def _describe(fees: _Fees) -> str:
    if fees.tip is None:
        return f"gas price {fees.max_fee} wei"
    return f"max fee {fees.max_fee} wei, tip {fees.tip} wei"


def _field(obj: object, key: str, what: str, *, required: bool = True, default: Any = None) -> Any:
    if not isinstance(obj, dict) or (required and key not in obj):
        raise L1Error(f"ethereum: malformed answer to {what}: no {key!r} in {obj!r:.200}")
    return obj.get(key, default)


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise L1Error(f"ethereum: malformed answer: {value!r:.80} is not a hex quantity")


def _lower(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""
