"""Ethereum JSON-RPC for the `ethereum` sink: the node behind a URL.

    rpc = EthereumRpc("http://127.0.0.1:8545", request_timeout_s=5.0)
    head = await rpc.head()
    blocks = await rpc.blocks(range(head - 3, head + 1))   # one request
    await rpc.aclose()

Each method is one HTTP request, several calls going as one JSON-RPC batch,
with a hard deadline of `request_timeout_s` end to end. The transport is
httpx, whose anyio backend runs under trio. Fees follow the chain: EIP-1559
when it has a base fee (tip from `eth_maxPriorityFeePerGas`, else
`eth_gasPrice` minus the base fee; fee cap twice the next base fee plus the
tip), legacy (`eth_gasPrice`) otherwise.

Errors, all `L1Error`s of `sequencer.l1.base`; foreign ones (httpx, msgspec)
are converted here:

    L1Error                     HTTP 4xx, a malformed answer (a missing field, no hex)
    ├── RpcError                a JSON-RPC error answer (insufficient funds, a revert)
    │   └── RpcTryLaterError    one that means "later": a rate limit, a timeout, syncing
    └── L1UnavailableError      no answer in time, a transport failure, HTTP 429/5xx,
                                an unreadable answer, a call left unanswered
                                (RpcTryLaterError is one too)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import anyio
import httpx
import msgspec

from sequencer.l1.base import L1Error, L1UnavailableError

__all__ = [
    "ALREADY_KNOWN",
    "NONCE_TOO_LOW",
    "UNDERPRICED",
    "EthereumRpc",
    "Fees",
    "RpcError",
    "RpcTryLaterError",
    "field",
    "lowercase",
    "quantity",
]

_JSON_HEADERS = {"content-type": "application/json"}
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
_METHOD_NOT_FOUND_CODE = -32601  # JSON-RPC 2.0
# ... and what it says in the cases callers handle (geth, anvil, Nethermind, Erigon).
NONCE_TOO_LOW = ("nonce too low", "oldnonce", "nonce has already been used")
ALREADY_KNOWN = ("already known", "already imported", "known transaction", "alreadyknown")
UNDERPRICED = ("underpriced", "replacement fee too low", "feetoolowtoreplace")
_MISSING_METHOD = ("method not found", "does not exist", "not supported", "not available")


# ------------------------------------------------------------------ errors


class RpcError(L1Error):
    """A JSON-RPC error answer; `message` lower-cased for matching."""

    def __init__(self, method: str, code: object, message: str) -> None:
        super().__init__(f"ethereum: {method} failed: {message} (JSON-RPC error {code})")
        self.code = code
        self.message = message.lower()

    def says(self, needles: Sequence[str]) -> bool:
        return any(needle in self.message for needle in needles)

    def missing_method(self) -> bool:
        """The node does not offer the method (providers disable some): use a fallback."""
        return self.code == _METHOD_NOT_FOUND_CODE or self.says(_MISSING_METHOD)


class RpcTryLaterError(RpcError, L1UnavailableError):
    """A JSON-RPC error that means "later": a rate limit, a timeout, a syncing node."""


def _rpc_error(method: str, error: object) -> RpcError:
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message") if isinstance(error, dict) else error)
    if code in _TRY_LATER_CODES or any(word in message.lower() for word in _TRY_LATER):
        return RpcTryLaterError(method, code, message)
    return RpcError(method, code, message)


# ------------------------------------------------------------------ records


@dataclasses.dataclass(frozen=True, slots=True)
class Fees:
    max_fee: int  # maxFeePerGas, or gasPrice for a legacy transaction
    tip: int | None  # maxPriorityFeePerGas; None for a legacy transaction

    @classmethod
    def of_transaction(cls, tx: dict[str, Any]) -> Fees:
        """The fees of a transaction as a node lists it (by hash, in a block, pending)."""
        tip = tx.get("maxPriorityFeePerGas")
        max_fee = quantity(tx.get("maxFeePerGas") or tx.get("gasPrice"))
        return cls(max_fee, None if tip is None else quantity(tip))

    def describe(self) -> str:
        if self.tip is None:
            return f"gas price {self.max_fee} wei"
        return f"max fee {self.max_fee} wei, tip {self.tip} wei"


# ------------------------------------------------------------------ the client


class EthereumRpc:
    """A JSON-RPC client of one Ethereum node."""

    def __init__(self, url: str, *, request_timeout_s: float) -> None:
        assert request_timeout_s > 0
        self.url = url
        self.request_timeout_s = request_timeout_s
        self._http = httpx.AsyncClient(timeout=request_timeout_s)
        self._next_id = 1
        self._chain_id: int | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ reading

    async def head(self) -> int:
        return quantity(await self.call("eth_blockNumber"))

    async def chain_id(self) -> int:
        """The chain id that signatures commit to; asked once (a URL keeps its chain)."""
        if self._chain_id is None:
            self._chain_id = quantity(await self.call("eth_chainId"))
        return self._chain_id

    async def transaction_count(self, address: str, block: str) -> int:
        return quantity(await self.call("eth_getTransactionCount", address, block))

    async def transaction_counts(self, address: str) -> tuple[int, int]:
        """The nonces after `address`'s mined and pending transactions, from one request."""
        latest, pending = await self.calls(
            [
                ("eth_getTransactionCount", [address, "latest"]),
                ("eth_getTransactionCount", [address, "pending"]),
            ]
        )
        return quantity(latest), quantity(pending)

    async def blocks(self, numbers: Sequence[int]) -> list[Any]:
        """The blocks with their transactions, in one request; None for a missing one."""
        return await self.calls([("eth_getBlockByNumber", [hex(n), True]) for n in numbers])

    async def receipts(self, hashes: Sequence[str]) -> list[Any]:
        """The receipts, in one request; None for a transaction not mined."""
        return await self.calls([("eth_getTransactionReceipt", [h]) for h in hashes])

    async def pending_transactions(self, address: str) -> list[dict[str, Any]]:
        """The node's pending transactions; `address` has some (the error says so)."""
        try:
            pool = await self.call("txpool_content")
            groups = [*field(pool, "pending", "txpool_content").values()]
            groups += [
                *field(pool, "queued", "txpool_content", required=False, default={}).values()
            ]
            return [tx for group in groups for tx in group.values() if isinstance(tx, dict)]
        except RpcError as error:
            if not error.missing_method():
                raise
        block = await self.call("eth_getBlockByNumber", "pending", True)
        if not isinstance(block, dict):
            raise L1UnavailableError(
                f"ethereum: {address} has pending transactions and the node lists none "
                "(no txpool_content, no pending block): retry once they are mined"
            )
        return [tx for tx in block.get("transactions", []) if isinstance(tx, dict)]

    # ------------------------------------------------------------ sending

    async def estimate_gas(self, sender: str, to: str, data: bytes) -> int:
        return quantity(
            await self.call(
                "eth_estimateGas", {"from": sender, "to": to, "data": "0x" + data.hex()}
            )
        )

    async def send_raw_transaction(self, raw: bytes, tx_hash: str) -> None:
        """Send a signed transaction; one the node has already (our resend) is fine."""
        try:
            answer = await self.call("eth_sendRawTransaction", "0x" + raw.hex())
        except RpcError as error:
            if error.says(ALREADY_KNOWN):
                return
            raise
        if not isinstance(answer, str) or answer.lower() != tx_hash:
            raise L1Error(f"ethereum: the node answered {answer!r} for transaction {tx_hash}")

    async def fees_now(self) -> Fees:
        """Fees for a transaction sent now (see the module doc)."""
        base_fee = await self.base_fee()
        if base_fee is None:
            return Fees(quantity(await self.call("eth_gasPrice")), None)
        try:
            tip = quantity(await self.call("eth_maxPriorityFeePerGas"))
        except RpcError as error:
            if not error.missing_method():
                raise
            tip = max(quantity(await self.call("eth_gasPrice")) - base_fee, 1)
        # Twice the base fee: the cap still covers it after five full blocks (+12.5% each).
        return Fees(2 * base_fee + tip, tip)

    async def base_fee(self) -> int | None:
        """The next block's base fee; None on a chain without EIP-1559."""
        try:
            history = await self.call("eth_feeHistory", "0x1", "latest", [])
            fees = field(history, "baseFeePerGas", "eth_feeHistory")
            base_fee = quantity(fees[-1]) if isinstance(fees, list) and fees else 0
            if base_fee > 0:  # pre-London blocks report 0: ask the block itself
                return base_fee
        except RpcError as error:
            if not error.missing_method():
                raise
        latest = await self.call("eth_getBlockByNumber", "latest", False)
        fee = field(latest, "baseFeePerGas", "eth_getBlockByNumber", required=False)
        return None if fee is None else quantity(fee)

    # ------------------------------------------------------------ JSON-RPC

    async def call(self, method: str, *params: Any) -> Any:
        (result,) = await self.calls([(method, list(params))])
        return result

    async def calls(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
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
        # httpx's timeout bounds each phase (connect, write, every read), so a
        # node trickling its answer could hold us forever: the deadline is ours.
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
        return _decoded(response, self.url, what)


def _decoded(response: httpx.Response, url: str, what: str) -> Any:
    status = response.status_code
    snippet = response.text[:200]
    if status == 429 or status >= 500:
        raise L1UnavailableError(f"ethereum: {url} answered {what} with HTTP {status}: {snippet!r}")
    try:
        return msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        error = L1UnavailableError if status == 200 else L1Error  # 4xx: configuration
        raise error(f"ethereum: {url} answered {what} with HTTP {status}: {snippet!r}") from None


# ------------------------------------------------------------------ answers


def field(obj: object, key: str, what: str, *, required: bool = True, default: Any = None) -> Any:
    """`obj[key]` of an answer to `what`; a missing field is a malformed answer."""
    if not isinstance(obj, dict) or (required and key not in obj):
        raise L1Error(f"ethereum: malformed answer to {what}: no {key!r} in {obj!r:.200}")
    return obj.get(key, default)


def quantity(value: object) -> int:
    """A JSON-RPC quantity ("0x1f"); some nodes answer plain integers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise L1Error(f"ethereum: malformed answer: {value!r:.80} is not a hex quantity")


def lowercase(value: object) -> str:
    """A hex string (address, hash, data) for comparison, "" when absent."""
    return value.lower() if isinstance(value, str) else ""
