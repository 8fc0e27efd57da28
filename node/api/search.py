"""Transaction search: a sender's committed transactions, a namespace's over
a range of heights. Both are paged, and bounded per request (a number of
items or heights, and the response byte cap), with the cursor to go on from.

    GET /accounts/{sender}/txs?from_nonce=&limit=     by nonce (chain order)
    GET /namespaces/{namespace}/txs?from=&to=          by height, block order
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from node.api.backend import Backend
from node.api.limits import RpcLimits
from node.api.requests import bad_request, parse_hex32, parse_uint, query_uint
from node.api.responses import ENCODER, json_response
from sequencer.codec import to_builtins
from sequencer.ids import tx_id
from storage.errors import StoreCorruptError

__all__ = ["Search"]

# Transactions of one sender per request, at most (and by default).
SENDER_TXS_MAX = 1_000


class Search:
    def __init__(self, backend: Backend, limits: RpcLimits) -> None:
        self.backend = backend
        self.limits = limits

    async def sender_txs(self, request: Request) -> Response:
        sender = parse_hex32(request.path_params["sender"], "sender")
        first = query_uint(request, "from_nonce", 0)
        limit = query_uint(request, "limit", SENDER_TXS_MAX, minimum=1)
        if limit > SENDER_TXS_MAX:
            raise bad_request(f"`limit` must be at most {SENDER_TXS_MAX}, got {limit}")
        store = self.backend.store
        found = store.sender_txs(sender, first, limit)
        txs = []
        for nonce, id_ in found:
            location = store.tx_location(id_)
            if location is None:
                raise StoreCorruptError(f"the sender index names {id_.hex()}, which is not stored")
            txs.append(
                {
                    "nonce": nonce,
                    "tx_id": id_.hex(),
                    "height": location.height,
                    "index": location.index,
                }
            )
        more = len(found) == limit
        return json_response(
            {
                "sender": sender.hex(),
                "txs": txs,
                "next_from_nonce": found[-1][0] + 1 if more else None,
            }
        )

    async def namespace_txs(self, request: Request) -> Response:
        namespace = parse_uint(request.path_params["namespace"], "namespace")
        tip = self.backend.store.height()
        first = query_uint(request, "from", 1, minimum=1)
        last = min(query_uint(request, "to", tip, minimum=1), tip)
        if "to" in request.query_params and last < first and first <= tip:
            raise bad_request(f"`to` ({last}) is below `from` ({first})")
        # At most blocks_range_max heights per request, and the response cap.
        stop = min(last, first + self.limits.blocks_range_max - 1)
        txs: list[dict[str, Any]] = []
        size = 0
        next_from = None
        for height in range(first, stop + 1):
            block = self.backend.store.block(height)
            if block is None:
                raise StoreCorruptError(f"the block at height {height} is missing")
            part = [
                {"height": height, "index": index, "tx_id": tx_id(tx).hex(), "tx": to_builtins(tx)}
                for index, tx in enumerate(block.txs)
                if tx.namespace == namespace
            ]
            part_size = len(ENCODER.encode(part))
            if txs and size + part_size > self.limits.response_bytes_max:
                next_from = height
                break
            txs += part
            size += part_size
        else:
            next_from = stop + 1 if stop < last else None
        return json_response(
            {"namespace": namespace, "from": first, "to": last, "txs": txs, "next_from": next_from}
        )
