"""A wallet's client of the node's HTTP API, sync and async.

    wallet = Wallet(load_key("wallet.json"), chain_id="devnet-1")
    with Client("http://127.0.0.1:26600") as client:
        tx_id = client.send(wallet, b"hello", gas_price=10)
        status = client.wait_final(tx_id)

`AsyncClient` has the same methods as coroutines; it uses `anyio`, so it runs
under trio as well as asyncio.

The protocol lives in pure functions, one per call, in
`sequencer.client_protocol`: each builds a `Request` and parses the
`Response` into a result. `Client` and `AsyncClient`, here, are thin shells
that move bytes over httpx. Every failure is a `ClientError` (see
`sequencer.errors`): httpx errors are converted at this boundary, an answer
that does not parse is `bad_response`. `Wallet` (`sequencer.wallet`) and the
protocol's public names are re-exported: import them from here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import anyio
import httpx

from sequencer.client_protocol import (
    BAD_PROOF,
    BAD_RESPONSE,
    TIMEOUT,
    UNREACHABLE,
    Op,
    Request,
    Response,
    TxStatus,
    WaitLevel,
    block_op,
    check_inclusion,
    check_wait,
    final_status,
    get_json_op,
    next_nonce_op,
    retry_wait_s,
    status_op,
    submit_many_op,
    submit_op,
    timed_out,
    tx_status_op,
)
from sequencer.errors import ClientError
from sequencer.types import Transaction
from sequencer.wallet import Wallet

__all__ = [
    "BAD_PROOF",
    "BAD_RESPONSE",
    "RESPONSE_BYTES_MAX",
    "TIMEOUT",
    "UNREACHABLE",
    "AsyncClient",
    "Client",
    "TxStatus",
    "WaitLevel",
    "Wallet",
]

T = TypeVar("T")

# The largest answer read from a node. The biggest legitimate one is a full
# block (`?full=true`): 4 MiB of transactions, twice that as hex, plus keys.
RESPONSE_BYTES_MAX = 64 * 1024 * 1024
_JSON_HEADERS = {"content-type": "application/json"}


# ------------------------------------------------------------------ transport


def _transport_error(request: Request, exc: httpx.HTTPError, base_url: object) -> ClientError:
    """Names the node's URL: "no answer from http://…" is what a user can act on."""
    where = f"{request.method} {str(base_url).rstrip('/')}{request.path}"
    if isinstance(exc, httpx.TransportError):  # connect, read, write, timeouts, protocol
        return ClientError(UNREACHABLE, f"{where}: {type(exc).__name__}: {exc}")
    return ClientError(BAD_RESPONSE, f"{where}: {type(exc).__name__}: {exc}")


def _append_capped(body: bytearray, chunk: bytes, request: Request) -> None:
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

    def _call(self, op: Op[T]) -> T:
        request, parse = op
        for attempt in itertools.count():
            response = self._exchange(request)
            wait_s = retry_wait_s(response, attempt)
            if wait_s is None:
                return parse(response)
            self._sleep(wait_s)
        raise AssertionError("unreachable")

    def _exchange(self, request: Request) -> Response:
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
            raise _transport_error(request, exc, self._http.base_url) from None
        retry_after = response.headers.get("retry-after")
        return Response(request, response.status_code, bytes(body), retry_after)

    def submit(self, tx: Transaction) -> bytes:
        """Post one transaction; its id once the node holds it durably."""
        return self._call(submit_op(tx))

    def submit_many(self, txs: Sequence[Transaction]) -> list[bytes | ClientError]:
        """Post a batch; per transaction, in order, its id or the node's refusal.
        A refusal of the whole batch (e.g. 413 batch_too_large) raises."""
        return self._call(submit_many_op(txs)) if txs else []

    def tx_status(self, tx_id: bytes, *, verify: bool = False) -> TxStatus | None:
        """None when the node does not know the transaction. With `verify`, a
        committed status' proof is checked against its block (`bad_proof`)."""
        status = self._call(tx_status_op(tx_id))
        if verify and status is not None and status.committed:
            assert status.height is not None
            check_inclusion(status, self.block(status.height))
        return status

    def next_nonce(self, sender: bytes) -> int:
        """The sender's next nonce, counting its pending transactions."""
        return self._call(next_nonce_op(sender))

    def status(self) -> dict[str, Any]:
        return self._call(status_op())

    def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """A GET of any path answered with a JSON object (retried like the rest)."""
        return self._call(get_json_op(path, params))

    def block(self, height: int | Literal["latest"], full: bool = False) -> dict[str, Any]:
        """The block as JSON; with `full`, its transactions as well."""
        return self._call(block_op(height, full))

    def wait_final(
        self,
        tx_id: bytes,
        timeout: float = 30.0,
        poll_s: float = 0.05,
        *,
        verify: bool = False,
        level: WaitLevel = "final",
    ) -> TxStatus:
        """Poll until the transaction is committed (`level` "l1": and held by a
        confirmed L1 batch); `timeout` error otherwise. Other errors
        propagate. A request in flight at the deadline may run on for the
        client's own request timeout."""
        check_wait(timeout, poll_s)
        deadline = self._clock() + timeout
        while True:
            status = self.tx_status(tx_id, verify=verify)
            final = final_status(status, level)
            if final is not None:
                return final
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise timed_out(tx_id, timeout, status)
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

    async def _call(self, op: Op[T]) -> T:
        request, parse = op
        for attempt in itertools.count():
            response = await self._exchange(request)
            wait_s = retry_wait_s(response, attempt)
            if wait_s is None:
                return parse(response)
            await anyio.sleep(wait_s)
        raise AssertionError("unreachable")

    async def _exchange(self, request: Request) -> Response:
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
            raise _transport_error(request, exc, self._http.base_url) from None
        retry_after = response.headers.get("retry-after")
        return Response(request, response.status_code, bytes(body), retry_after)

    async def submit(self, tx: Transaction) -> bytes:
        return await self._call(submit_op(tx))

    async def submit_many(self, txs: Sequence[Transaction]) -> list[bytes | ClientError]:
        return await self._call(submit_many_op(txs)) if txs else []

    async def tx_status(self, tx_id: bytes, *, verify: bool = False) -> TxStatus | None:
        status = await self._call(tx_status_op(tx_id))
        if verify and status is not None and status.committed:
            assert status.height is not None
            check_inclusion(status, await self.block(status.height))
        return status

    async def next_nonce(self, sender: bytes) -> int:
        return await self._call(next_nonce_op(sender))

    async def status(self) -> dict[str, Any]:
        return await self._call(status_op())

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """A GET of any path answered with a JSON object (retried like the rest)."""
        return await self._call(get_json_op(path, params))

    async def block(self, height: int | Literal["latest"], full: bool = False) -> dict[str, Any]:
        return await self._call(block_op(height, full))

    async def wait_final(
        self,
        tx_id: bytes,
        timeout: float = 30.0,
        poll_s: float = 0.05,
        *,
        verify: bool = False,
        level: WaitLevel = "final",
    ) -> TxStatus:
        check_wait(timeout, poll_s)
        deadline = anyio.current_time() + timeout  # trio's MockClock drives this in tests
        while True:
            status = await self.tx_status(tx_id, verify=verify)
            final = final_status(status, level)
            if final is not None:
                return final
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise timed_out(tx_id, timeout, status)
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
