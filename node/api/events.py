"""`GET /events`: finalized blocks as server-sent events, with keepalives."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from node.api.backend import ErrorCode, Finalized
from node.api.responses import ENCODER, block_json, error_body
from sequencer.codec import to_builtins
from sequencer.ids import block_id, tx_id
from sequencer.namespaces import NamespaceTable
from sequencer.types import Block, CommitCertificate

__all__ = ["KEEPALIVE_S", "EventStream", "namespace_view", "sse_block"]

log = logging.getLogger("node.api.rpc")

KEEPALIVE_S = 15.0


class EventStream(StreamingResponse):
    """SSE of finalized blocks: a producer task reads the backend's (endless)
    iterator into a channel; the body waits on the channel with a timeout, so
    an idle stream still sends a keepalive comment every `keepalive_s`."""

    def __init__(
        self,
        source: AsyncIterator[Finalized],
        render: Callable[[Finalized], bytes],
        keepalive_s: float,
    ) -> None:
        sender, receiver = anyio.create_memory_object_stream[Finalized | Exception](16)
        self._source = source
        self._sender = sender
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        body = _sse_body(receiver, render, keepalive_s)
        super().__init__(body, headers=headers, media_type="text/event-stream")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_produce, self._source, self._sender)
            try:
                await super().__call__(scope, receive, send)
            except (OSError, ClientDisconnect):
                pass  # the client went away
            finally:
                tasks.cancel_scope.cancel()


async def _produce(
    source: AsyncIterator[Finalized], sender: MemoryObjectSendStream[Finalized | Exception]
) -> None:
    async with sender:
        try:
            async for item in source:
                await sender.send(item)
        except anyio.BrokenResourceError:
            return  # the stream ended
        except Exception as exc:
            log.exception("RPC /events: reading finalized blocks failed")
            with contextlib.suppress(anyio.BrokenResourceError):
                await sender.send(exc)  # the body reports it as an error event


_IDLE = object()


async def _sse_body(
    receiver: MemoryObjectReceiveStream[Finalized | Exception],
    render: Callable[[Finalized], bytes],
    keepalive_s: float,
) -> AsyncIterator[bytes]:
    async with receiver:
        while True:
            item: object = _IDLE
            with anyio.move_on_after(keepalive_s):
                try:
                    item = await receiver.receive()
                except anyio.EndOfStream:
                    return
            if item is _IDLE:
                yield b": keepalive\n\n"
            elif isinstance(item, Exception):
                error = error_body(ErrorCode.STORAGE_FAILED, "reading finalized blocks failed")
                yield b"event: error\ndata: " + ENCODER.encode(error) + b"\n\n"
                return
            else:
                assert isinstance(item, Finalized)
                yield render(item)


def namespace_view(block: Block, certificate: CommitCertificate, namespace: int) -> dict[str, Any]:
    """A namespace's part of a finalized block, verifiable on its own: the
    header and certificate, the namespace's table entry with its audit path
    and all its transactions (or, when it has none, the two neighbouring
    entries that prove it), so that a rollup with only genesis.json can tell
    it got all of them."""
    txs = [tx for tx in block.txs if tx.namespace == namespace]
    table = NamespaceTable.of_block(block.txs, [tx_id(tx) for tx in block.txs])
    proven = table.presence(namespace)
    return {
        "namespace": namespace,
        "height": block.header.height,
        "block_id": block_id(block.header).hex(),
        "header": to_builtins(block.header),
        "certificate": to_builtins(certificate),
        "entry": None if proven is None else to_builtins(proven.entry),
        "entry_proof": None if proven is None else to_builtins(proven.proof),
        "txs": [to_builtins(tx) | {"tx_id": tx_id(tx).hex()} for tx in txs],
        "absence": None if proven is not None else to_builtins(table.absence(namespace)),
    }


def sse_block(item: Finalized, namespace: int | None, full: bool = True) -> bytes:
    """One `block` event: the whole block (without bodies unless `full`: header,
    tx ids and certificate), or with a namespace filter that namespace's view
    (`namespace_view`)."""
    if namespace is None:
        data = block_json(item.block, item.certificate, full=full)
    else:
        data = namespace_view(item.block, item.certificate, namespace)
    head = f"event: block\nid: {item.block.header.height}\ndata: ".encode()
    return head + ENCODER.encode(data) + b"\n\n"
