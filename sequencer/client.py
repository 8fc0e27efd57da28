"""A wallet's client of the node's HTTP API, sync and async.

    wallet = Wallet(load_key("wallet.json"), chain_id="devnet-1")
    with Client("http://127.0.0.1:26600") as client:
        tx_id = client.send(wallet, b"hello", gas_price=10)
        status = client.wait_final(tx_id)

`AsyncClient` has the same methods as coroutines; it uses `anyio`, so it runs
under trio as well as asyncio.

The protocol lives in pure functions, one per call, that build a `_Request`
and parse the `_Response` into a result; `Client` and `AsyncClient` are thin
shells that move bytes over httpx. Parsing is strict about the fields the
client reads (types, hex lengths, required keys, consistency with the
request) and ignores fields it does not know, so a newer node can add some.
Every failure is a `ClientError` (see `sequencer.errors`): httpx errors are
converted at the boundary, an answer that does not parse is `bad_response`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
import httpx
import msgspec
from msgspec import Meta, Struct

from sequencer import ids
from sequencer.codec import from_builtins, parse_hex, to_builtins
from sequencer.crypto import PrivateKey, load_key, sign_transaction
from sequencer.errors import ClientError, DecodeError
from sequencer.limits import CHAIN_ID_CHARS_MAX, MERKLE_PATH_HASHES_MAX, U64_MAX
from sequencer.merkle import verify_inclusion
from sequencer.types import BlockHeader, InclusionProof, Transaction

__all__ = [
    "BAD_PROOF",
    "BAD_RESPONSE",
    "RESPONSE_BYTES_MAX",
    "TIMEOUT",
    "UNREACHABLE",
    "AsyncClient",
    "Client",
    "TxStatus",
    "Wallet",
]

T = TypeVar("T")

# The client's own error codes; the node's are in `node.api.backend.ErrorCode`.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
BAD_RESPONSE = "bad_response"
BAD_PROOF = "bad_proof"

# The largest answer read from a node. The biggest legitimate one is a full
# block (`?full=true`): 4 MiB of transactions, twice that as hex, plus keys.
RESPONSE_BYTES_MAX = 64 * 1024 * 1024
_SNIPPET_CHARS_MAX = 200
_JSON_HEADERS = {"content-type": "application/json"}


# ------------------------------------------------------------------ wallet


@dataclasses.dataclass(frozen=True, slots=True)
class Wallet:
    """A signing key bound to a chain, with a default namespace."""

    key: PrivateKey
    chain_id: str
    namespace: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.chain_id) <= CHAIN_ID_CHARS_MAX:
            raise ValueError(f"chain_id must be 1 to {CHAIN_ID_CHARS_MAX} characters")
        _check_u64("namespace", self.namespace)

    @classmethod
    def from_key_file(cls, path: str | Path, chain_id: str, namespace: int = 0) -> Wallet:
        """Raises `KeyFileError` for a missing or malformed key file."""
        return cls(load_key(path), chain_id, namespace)

    @property
    def sender(self) -> bytes:
        return self.key.public_key

    @property
    def address(self) -> str:
        return self.key.public_key.hex()

    def sign(
        self, nonce: int, payload: bytes, gas_price: int, namespace: int | None = None
    ) -> Transaction:
        namespace = self.namespace if namespace is None else namespace
        for name, value in (("nonce", nonce), ("gas_price", gas_price), ("namespace", namespace)):
            _check_u64(name, value)
        return sign_transaction(
            self.key,
            chain_id=self.chain_id,
            namespace=namespace,
            nonce=nonce,
            gas_price=gas_price,
            payload=bytes(payload),
        )


def _check_u64(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be an integer in 0..2^64-1, got {value!r}")


# ------------------------------------------------------------------ results


@dataclasses.dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a transaction stands. Only a committed one has a location and proof."""

    tx_id: bytes
    status: Literal["pending", "queued", "evicted", "expired", "committed"]
    height: int | None = None
    index: int | None = None
    block_id: bytes | None = None
    proof: InclusionProof | None = None
    reason: str | None = None  # why an evicted or expired one was dropped

    @property
    def committed(self) -> bool:
        return self.status == "committed"

    @property
    def dropped(self) -> bool:
        """Acknowledged, then dropped from the pool: it will not commit unless sent again."""
        return self.status in ("evicted", "expired")


# ------------------------------------------------------------------ response bodies
# Unknown fields are allowed (msgspec's default) for forward compatibility.
# Hex stays `str` here and is checked (length, digits) when converted.

_U64 = Annotated[int, Meta(ge=0)]  # the upper bound is checked by `_u64`


class _ErrorInfo(Struct):
    code: Annotated[str, Meta(min_length=1, max_length=64)]
    message: str = ""


class _ErrorBody(Struct):
    error: _ErrorInfo


class _AcceptedBody(Struct):
    tx_id: str


class _BatchItem(Struct):
    tx_id: str | None = None
    error: _ErrorInfo | None = None


class _BatchBody(Struct):
    results: list[_BatchItem]


class _ProofBody(Struct):
    index: _U64
    size: _U64
    path: Annotated[list[str], Meta(max_length=MERKLE_PATH_HASHES_MAX)]


class _TxStatusBody(Struct):
    tx_id: str
    status: Literal["pending", "queued", "evicted", "expired", "committed"]
    reason: str | None = None
    height: _U64 | None = None
    index: _U64 | None = None
    block_id: str | None = None
    proof: _ProofBody | None = None


class _AccountBody(Struct):
    next_nonce: _U64


class _BlockBody(Struct):
    block_id: str
    header: dict[str, Any]
    tx_ids: list[str]
    certificate: dict[str, Any]
    txs: list[dict[str, Any]] | None = None


# ------------------------------------------------------------------ protocol (pure)


@dataclasses.dataclass(frozen=True, slots=True)
class _Request:
    method: Literal["GET", "POST"]
    path: str
    params: dict[str, str] | None = None
    content: bytes | None = None

    @property
    def what(self) -> str:
        return f"{self.method} {self.path}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Response:
    request: _Request
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


_Op = tuple[_Request, Callable[[_Response], T]]


def _bad_response(response: _Response, problem: str) -> ClientError:
    return ClientError(BAD_RESPONSE, f"{response.request.what}: {problem}", status=response.status)


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET_CHARS_MAX].decode("utf-8", errors="replace")
    return text + ("..." if len(body) > _SNIPPET_CHARS_MAX else "")


def _decode(response: _Response, body_type: type[T]) -> T:
    try:
        return msgspec.json.decode(response.body, type=body_type)
    except msgspec.MsgspecError as exc:
        raise _bad_response(response, f"unexpected answer: {exc}") from None


def _error_of(response: _Response) -> ClientError:
    """The node's error, from a non-2xx answer."""
    try:
        info = msgspec.json.decode(response.body, type=_ErrorBody).error
    except msgspec.MsgspecError:
        problem = f"HTTP {response.status} without an error object: {_snippet(response.body)!r}"
        return _bad_response(response, problem)
    return ClientError(info.code, info.message, status=response.status)


def _success(response: _Response, body_type: type[T]) -> T:
    if not response.ok:
        raise _error_of(response)
    return _decode(response, body_type)


def _hex32(response: _Response, text: str, path: str) -> bytes:
    try:
        return parse_hex(text, length=32, path=path)
    except DecodeError as exc:
        raise _bad_response(response, str(exc)) from None


def _u64(response: _Response, value: int, path: str) -> int:
    # msgspec bounds ints at int64 in `Meta` only; larger JSON numbers decode.
    if value > U64_MAX:
        raise _bad_response(response, f"{path} is above 2^64-1")
    return value


def _tx_id_of(response: _Response, accepted: str, tx: Transaction) -> bytes:
    got = _hex32(response, accepted, "$.tx_id")
    if got != ids.tx_id(tx):
        raise _bad_response(response, f"tx_id {got.hex()} is not the id of the transaction sent")
    return got


def _submit_op(tx: Transaction) -> _Op[bytes]:
    request = _Request("POST", "/tx", content=msgspec.json.encode(to_builtins(tx)))

    def parse(response: _Response) -> bytes:
        return _tx_id_of(response, _success(response, _AcceptedBody).tx_id, tx)

    return request, parse


def _submit_many_op(txs: Sequence[Transaction]) -> _Op[list[bytes | ClientError]]:
    content = msgspec.json.encode([to_builtins(tx) for tx in txs])
    request = _Request("POST", "/txs", content=content)

    def parse(response: _Response) -> list[bytes | ClientError]:
        results = _success(response, _BatchBody).results
        if len(results) != len(txs):
            raise _bad_response(response, f"{len(results)} results for {len(txs)} transactions")
        pairs = enumerate(zip(results, txs, strict=True))
        return [_batch_item(response, item, tx, i) for i, (item, tx) in pairs]

    return request, parse


def _batch_item(
    response: _Response, item: _BatchItem, tx: Transaction, i: int
) -> bytes | ClientError:
    # An error wins over a tx_id (a node may name the refused transaction).
    if item.error is not None:  # no HTTP status of its own: the batch's is 200
        return ClientError(item.error.code, item.error.message)
    if item.tx_id is None:
        raise _bad_response(response, f"$.results[{i}] holds neither tx_id nor error")
    return _tx_id_of(response, item.tx_id, tx)


def _tx_status_op(tx_id: bytes) -> _Op[TxStatus | None]:
    request = _Request("GET", f"/tx/{_hex_arg('tx_id', tx_id)}")

    def parse(response: _Response) -> TxStatus | None:
        if response.status == 404:
            error = _error_of(response)
            if error.code == "not_found":
                return None
            raise error
        return _tx_status_of(response, _success(response, _TxStatusBody), tx_id)

    return request, parse


def _tx_status_of(response: _Response, body: _TxStatusBody, tx_id: bytes) -> TxStatus:
    if _hex32(response, body.tx_id, "$.tx_id") != tx_id:
        raise _bad_response(response, f"the answer is about transaction {body.tx_id}")
    if body.status in ("pending", "queued"):  # a location, if any, is not final: drop it
        return TxStatus(tx_id, body.status)
    if body.status in ("evicted", "expired"):
        return TxStatus(tx_id, body.status, reason=body.reason or "")
    height, index, block_id, proof = body.height, body.index, body.block_id, body.proof
    if height is None or index is None or block_id is None or proof is None:
        raise _bad_response(response, "a committed status needs height, index, block_id, proof")
    if height < 1:
        raise _bad_response(response, f"height {height} is not a block height")
    if proof.index != index:
        raise _bad_response(response, f"the proof is for index {proof.index}, not {index}")
    inclusion = InclusionProof(
        index=_u64(response, proof.index, "$.proof.index"),
        size=_u64(response, proof.size, "$.proof.size"),
        path=[_hex32(response, h, f"$.proof.path[{i}]") for i, h in enumerate(proof.path)],
    )
    return TxStatus(
        tx_id,
        "committed",
        height=_u64(response, height, "$.height"),
        index=index,
        block_id=_hex32(response, block_id, "$.block_id"),
        proof=inclusion,
    )


def _next_nonce_op(sender: bytes) -> _Op[int]:
    request = _Request("GET", f"/accounts/{_hex_arg('sender', sender)}")

    def parse(response: _Response) -> int:
        if response.status == 404:  # a node may not know a sender it never saw
            error = _error_of(response)
            if error.code == "not_found":
                return 0
            raise error
        body = _success(response, _AccountBody)
        return _u64(response, body.next_nonce, "$.next_nonce")

    return request, parse


def _status_op() -> _Op[dict[str, Any]]:
    request = _Request("GET", "/status")
    return request, lambda response: _success(response, dict[str, Any])


def _block_op(height: int | Literal["latest"], full: bool) -> _Op[dict[str, Any]]:
    if height != "latest" and (isinstance(height, bool) or not isinstance(height, int)):
        raise ValueError(f"height must be an integer or 'latest', got {height!r}")
    if height != "latest":
        _check_u64("height", height)
    request = _Request("GET", f"/blocks/{height}", params={"full": "true"} if full else None)

    def parse(response: _Response) -> dict[str, Any]:
        raw = _success(response, dict[str, Any])
        try:
            body = msgspec.convert(raw, _BlockBody)
        except msgspec.MsgspecError as exc:
            raise _bad_response(response, f"unexpected block: {exc}") from None
        if full and (body.txs is None or len(body.txs) != len(body.tx_ids)):
            raise _bad_response(response, "a full block needs txs, one per tx_id")
        return raw

    return request, parse


def _hex_arg(name: str, value: bytes) -> str:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")
    return value.hex()


def _check_inclusion(status: TxStatus, block: dict[str, Any]) -> None:
    """The proof chain: tx_id in tx_root, tx_root in the header, header hashes to
    the status' block_id. (Whether that block is final is the certificate's
    business: `sequencer.certificate`, with the genesis validators.)"""
    assert status.proof is not None
    assert status.block_id is not None
    where = f"transaction {status.tx_id.hex()} at height {status.height}"
    try:  # strict, unlike the other bodies: the header is hashed, every field counts
        header = from_builtins(block["header"], BlockHeader)
    except DecodeError as exc:
        raise ClientError(BAD_RESPONSE, f"{where}: block header: {exc}") from None
    if ids.block_id(header) != status.block_id or header.height != status.height:
        raise ClientError(BAD_PROOF, f"{where}: the block served is not the one named")
    if not verify_inclusion(status.tx_id, status.proof, header.tx_root):
        raise ClientError(BAD_PROOF, f"{where}: the proof does not reach the block's tx_root")


def _check_wait(timeout: float, poll_s: float) -> None:
    if not timeout >= 0:
        raise ValueError(f"timeout must be >= 0, got {timeout!r}")
    if not poll_s > 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s!r}")


def _dropped(status: TxStatus) -> ClientError:
    return ClientError(
        status.status, f"transaction {status.tx_id.hex()} was {status.status}: {status.reason}"
    )


def _timed_out(tx_id: bytes, timeout: float, last: TxStatus | None) -> ClientError:
    seen = "unknown to the node" if last is None else last.status
    return ClientError(TIMEOUT, f"transaction {tx_id.hex()} still {seen} after {timeout} s")


def _transport_error(request: _Request, exc: httpx.HTTPError) -> ClientError:
    if isinstance(exc, httpx.TransportError):  # connect, read, write, timeouts, protocol
        return ClientError(UNREACHABLE, f"{request.what}: {type(exc).__name__}: {exc}")
    return ClientError(BAD_RESPONSE, f"{request.what}: {type(exc).__name__}: {exc}")


def _append_capped(body: bytearray, chunk: bytes, request: _Request) -> None:
    body += chunk
    if len(body) > RESPONSE_BYTES_MAX:
        raise ClientError(BAD_RESPONSE, f"{request.what}: answer over {RESPONSE_BYTES_MAX} bytes")


# ------------------------------------------------------------------ sync shell


class Client:
    """Blocking client of one node. Not thread-safe; use one per thread."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`clock` and `sleep` pace `wait_final`; tests may pass fakes."""
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self._clock = clock
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, op: _Op[T]) -> T:
        request, parse = op
        return parse(self._exchange(request))

    def _exchange(self, request: _Request) -> _Response:
        headers = _JSON_HEADERS if request.content is not None else None
        body = bytearray()
        try:
            with self._http.stream(
                request.method,
                request.path,
                params=request.params,
                content=request.content,
                headers=headers,
            ) as response:
                for chunk in response.iter_bytes():
                    _append_capped(body, chunk, request)
        except httpx.HTTPError as exc:
            raise _transport_error(request, exc) from None
        return _Response(request, response.status_code, bytes(body))

    def submit(self, tx: Transaction) -> bytes:
        """Post one transaction; its id once the node holds it durably."""
        return self._call(_submit_op(tx))

    def submit_many(self, txs: Sequence[Transaction]) -> list[bytes | ClientError]:
        """Post a batch; per transaction, in order, its id or the node's refusal.
        A refusal of the whole batch (e.g. 413 batch_too_large) raises."""
        return self._call(_submit_many_op(txs)) if txs else []

    def tx_status(self, tx_id: bytes, *, verify: bool = False) -> TxStatus | None:
        """None when the node does not know the transaction. With `verify`, a
        committed status' proof is checked against its block (`bad_proof`)."""
        status = self._call(_tx_status_op(tx_id))
        if verify and status is not None and status.committed:
            assert status.height is not None
            _check_inclusion(status, self.block(status.height))
        return status

    def next_nonce(self, sender: bytes) -> int:
        """The sender's next nonce, counting its pending transactions."""
        return self._call(_next_nonce_op(sender))

    def status(self) -> dict[str, Any]:
        return self._call(_status_op())

    def block(self, height: int | Literal["latest"], full: bool = False) -> dict[str, Any]:
        """The block as JSON; with `full`, its transactions as well."""
        return self._call(_block_op(height, full))

    def wait_final(
        self, tx_id: bytes, timeout: float = 30.0, poll_s: float = 0.05, *, verify: bool = False
    ) -> TxStatus:
        """Poll until the transaction is committed; `timeout` error otherwise.
        Other errors propagate. A request in flight at the deadline may run on
        for the client's own request timeout."""
        _check_wait(timeout, poll_s)
        deadline = self._clock() + timeout
        while True:
            status = self.tx_status(tx_id, verify=verify)
            if status is not None and status.committed:
                return status
            if status is not None and status.dropped:
                raise _dropped(status)
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise _timed_out(tx_id, timeout, status)
            self._sleep(min(poll_s, remaining))

    def send(
        self,
        wallet: Wallet,
        payload: bytes,
        gas_price: int = 1,
        nonce: int | None = None,
        namespace: int | None = None,
    ) -> bytes:
        """Sign with `wallet` (asking the node for the nonce if not given) and submit."""
        if nonce is None:
            nonce = self.next_nonce(wallet.sender)
        return self.submit(wallet.sign(nonce, payload, gas_price, namespace))


# ------------------------------------------------------------------ async shell


class AsyncClient:
    """`Client` as coroutines, for trio or asyncio (through anyio)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, op: _Op[T]) -> T:
        request, parse = op
        return parse(await self._exchange(request))

    async def _exchange(self, request: _Request) -> _Response:
        headers = _JSON_HEADERS if request.content is not None else None
        body = bytearray()
        try:
            async with self._http.stream(
                request.method,
                request.path,
                params=request.params,
                content=request.content,
                headers=headers,
            ) as response:
                async for chunk in response.aiter_bytes():
                    _append_capped(body, chunk, request)
        except httpx.HTTPError as exc:
            raise _transport_error(request, exc) from None
        return _Response(request, response.status_code, bytes(body))

    async def submit(self, tx: Transaction) -> bytes:
        return await self._call(_submit_op(tx))

    async def submit_many(self, txs: Sequence[Transaction]) -> list[bytes | ClientError]:
        return await self._call(_submit_many_op(txs)) if txs else []

    async def tx_status(self, tx_id: bytes, *, verify: bool = False) -> TxStatus | None:
        status = await self._call(_tx_status_op(tx_id))
        if verify and status is not None and status.committed:
            assert status.height is not None
            _check_inclusion(status, await self.block(status.height))
        return status

    async def next_nonce(self, sender: bytes) -> int:
        return await self._call(_next_nonce_op(sender))

    async def status(self) -> dict[str, Any]:
        return await self._call(_status_op())

    async def block(self, height: int | Literal["latest"], full: bool = False) -> dict[str, Any]:
        return await self._call(_block_op(height, full))

    async def wait_final(
        self, tx_id: bytes, timeout: float = 30.0, poll_s: float = 0.05, *, verify: bool = False
    ) -> TxStatus:
        _check_wait(timeout, poll_s)
        deadline = anyio.current_time() + timeout  # trio's MockClock drives this in tests
        while True:
            status = await self.tx_status(tx_id, verify=verify)
            if status is not None and status.committed:
                return status
            if status is not None and status.dropped:
                raise _dropped(status)
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise _timed_out(tx_id, timeout, status)
            await anyio.sleep(min(poll_s, remaining))

    async def send(
        self,
        wallet: Wallet,
        payload: bytes,
        gas_price: int = 1,
        nonce: int | None = None,
        namespace: int | None = None,
    ) -> bytes:
        if nonce is None:
            nonce = await self.next_nonce(wallet.sender)
        return await self.submit(wallet.sign(nonce, payload, gas_price, namespace))
