"""A light client: reads a node and believes only genesis.json.

    genesis = load_genesis("genesis.json")
    with LightClient("http://127.0.0.1:26600", genesis) as light:
        block = light.block(12)                    # header, certificate, tx ids: verified
        mine = light.namespace(7, 12)              # all of namespace 7 in block 12, or none
        tx = light.tx(tx_id)                       # committed, and where: verified
        for block in light.blocks(1, 100): ...     # a linked range

`AsyncLightClient` has the same methods as coroutines (anyio: trio or
asyncio). What is checked, and the errors, are in `sequencer.light_protocol`:
a failure to verify raises a `VerificationError` (`CertificateError` or
`ProofError`, with a `reason`); a node that cannot be reached or refuses
raises `ClientError`, as the wallet client does. No node code is used, only
the wire formats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import httpx

from sequencer.client import AsyncClient, Client, TxStatus
from sequencer.errors import ProofError
from sequencer.light_protocol import (
    Linker,
    Trust,
    VerifiedBlock,
    VerifiedNamespace,
    check_inclusion,
    verify_block,
    verify_namespace,
)
from sequencer.types import Genesis

__all__ = [
    "AsyncLightClient",
    "LightClient",
    "Linker",
    "VerifiedBlock",
    "VerifiedNamespace",
    "VerifiedTx",
]

# Blocks asked for per `/blocks` range request (the node may answer fewer).
RANGE_STEP = 100


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedTx:
    """A committed transaction: its status, and the verified block holding it."""

    status: TxStatus
    block: VerifiedBlock


def _committed(tx_id: bytes, status: TxStatus | None) -> TxStatus:
    if status is None or not status.committed:
        seen = "unknown to the node" if status is None else status.status
        raise ProofError("not_committed", f"transaction {tx_id.hex()} is {seen}, not committed")
    return status


def _in_block(status: TxStatus, block: VerifiedBlock) -> VerifiedTx:
    assert status.proof is not None
    if block.block_id != status.block_id:
        raise ProofError(
            "wrong_block",
            f"transaction {status.tx_id.hex()}: the node names block {status.block_id.hex()} "
            f"but serves another at height {status.height}",
        )
    check_inclusion(block, status.tx_id, status.proof)
    # An audit path shows that the transaction is in the block, not always
    # where (item 2 of 3 takes the path of item 1 of 2): the ids the block's
    # tx_root covers say where.
    ids = block.tx_ids or ()
    index = status.index
    if (
        status.proof.size != len(ids)
        or index is None
        or index >= len(ids)
        or ids[index] != status.tx_id
    ):
        raise ProofError(
            "wrong_index",
            f"transaction {status.tx_id.hex()} is not at index {index} of block {block.height}",
        )
    return VerifiedTx(status, block)


def _range_params(first: int, last: int) -> dict[str, str]:
    return {"from": str(first), "limit": str(min(RANGE_STEP, last - first + 1))}


def _range_items(answer: dict, first: int) -> list:
    items = answer.get("blocks")
    if not isinstance(items, list):
        raise ProofError("malformed", f"blocks from {first}: the answer has no `blocks` list")
    return items


def _check_range(first: int, last: int) -> None:
    if not 1 <= first <= last:
        raise ValueError(f"a range needs 1 <= first <= last, got {first}..{last}")


class LightClient:
    """Blocking light client of one node."""

    def __init__(
        self,
        base_url: str,
        genesis: Genesis,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.trust = Trust(genesis)
        self._client = Client(base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> LightClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def block(self, height: int, *, full: bool = False) -> VerifiedBlock:
        params = {"full": "true"} if full else None
        return verify_block(self.trust, self._client.get_json(f"/blocks/{height}", params), height)

    def namespace(self, namespace: int, height: int) -> VerifiedNamespace:
        answer = self._client.get_json(f"/namespaces/{namespace}/blocks/{height}")
        return verify_namespace(self.trust, answer, namespace, height)

    def tx(self, tx_id: bytes) -> VerifiedTx:
        status = _committed(tx_id, self._client.tx_status(tx_id))
        assert status.height is not None
        return _in_block(status, self.block(status.height))

    def blocks(
        self, first: int, last: int, linker: Linker | None = None
    ) -> Iterator[VerifiedBlock]:
        """Heights `first..last`, each verified and linked to the one before
        (and to `linker`'s block, when resuming from one)."""
        _check_range(first, last)
        linker = linker or Linker()
        height = first
        while height <= last:
            answer = self._client.get_json("/blocks", _range_params(height, last))
            items = _range_items(answer, height)
            if not items:
                raise ProofError("missing", f"the node serves no block at height {height}")
            for item in items[: last - height + 1]:
                block = verify_block(self.trust, item, height)
                self.link(linker, block)
                yield block
                height += 1

    def link(self, linker: Linker, block: VerifiedBlock) -> None:
        """`linker.link(block)`, asking for the parent's certificate when needed."""
        if linker.link(block):
            return
        assert linker.height is not None
        linker.add_certificate(self.block(linker.height))
        if not linker.link(block):
            raise linker.unsettled(block)


class AsyncLightClient:
    """`LightClient` as coroutines."""

    def __init__(
        self,
        base_url: str,
        genesis: Genesis,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.trust = Trust(genesis)
        self._client = AsyncClient(base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncLightClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def block(self, height: int, *, full: bool = False) -> VerifiedBlock:
        params = {"full": "true"} if full else None
        answer = await self._client.get_json(f"/blocks/{height}", params)
        return verify_block(self.trust, answer, height)

    async def namespace(self, namespace: int, height: int) -> VerifiedNamespace:
        answer = await self._client.get_json(f"/namespaces/{namespace}/blocks/{height}")
        return verify_namespace(self.trust, answer, namespace, height)

    async def tx(self, tx_id: bytes) -> VerifiedTx:
        status = _committed(tx_id, await self._client.tx_status(tx_id))
        assert status.height is not None
        return _in_block(status, await self.block(status.height))

    async def blocks(
        self, first: int, last: int, linker: Linker | None = None
    ) -> AsyncIterator[VerifiedBlock]:
        _check_range(first, last)
        linker = linker or Linker()
        height = first
        while height <= last:
            answer = await self._client.get_json("/blocks", _range_params(height, last))
            items = _range_items(answer, height)
            if not items:
                raise ProofError("missing", f"the node serves no block at height {height}")
            for item in items[: last - height + 1]:
                block = verify_block(self.trust, item, height)
                await self.link(linker, block)
                yield block
                height += 1

    async def link(self, linker: Linker, block: VerifiedBlock) -> None:
        if linker.link(block):
            return
        assert linker.height is not None
        linker.add_certificate(await self.block(linker.height))
        if not linker.link(block):
            raise linker.unsettled(block)
