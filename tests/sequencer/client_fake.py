"""A fake node serving the API's shapes for the wallet client tests:
submitted transactions and nonces in dicts, a few admission rules, and a
commit into a block of its own (a real Merkle tree, so proofs are genuine)
after N polls."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx

from node.api.backend import HTTP_STATUS, ErrorCode
from sequencer.client import (
    Wallet,
)
from sequencer.codec import from_builtins, to_builtins
from sequencer.crypto import PrivateKey, verify_transaction
from sequencer.errors import DecodeError
from sequencer.ids import block_id, tx_id
from sequencer.merkle import MerkleTree
from sequencer.types import BlockHeader, Transaction

CHAIN = "devnet-1"
BASE_URL = "http://node.test"
ALICE = Wallet(PrivateKey(bytes(range(32))), CHAIN, namespace=7)
BOB = Wallet(PrivateKey(b"\x02" * 32), CHAIN)
# Other transactions sharing the committed transaction's block, so the proof
# has siblings on every level (5 leaves, ours at index 2).
FILLER_IDS = [bytes([0xF0 + i]) * 32 for i in range(4)]


def error_body(code: str, message: str = "refused") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def refusal(code: ErrorCode, message: str = "refused") -> httpx.Response:
    return httpx.Response(HTTP_STATUS[code], json=error_body(code, message))


class FakeNode:
    """Just enough of a node: the API's routes over plain dicts."""

    def __init__(
        self,
        *,
        commit_after_polls: int = 1,
        max_batch: int = 4,
        capacity: int = 100,
        payload_bytes_max: int = 1024,
    ) -> None:
        self.commit_after_polls = commit_after_polls
        self.max_batch = max_batch
        self.capacity = capacity
        self.payload_bytes_max = payload_bytes_max
        self.ready = True
        self.txs: dict[bytes, Transaction] = {}
        self.next_nonces: dict[bytes, int] = {}
        self.polls: dict[bytes, int] = {}
        self.locations: dict[bytes, tuple[int, int]] = {}
        self.blocks: list[dict[str, Any]] = []
        self.requests: list[str] = []
        # Hooks that edit a body before it is served, for hostile-node tests.
        self.edit_status: Callable[[dict[str, Any]], None] = lambda body: None
        self.edit_block: Callable[[dict[str, Any]], None] = lambda body: None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(f"{request.method} {path}")
        parts = path.strip("/").split("/")
        if request.method == "POST" and path == "/tx":
            return self.post_tx(request)
        if request.method == "POST" and path == "/txs":
            return self.post_txs(request)
        if request.method == "GET" and len(parts) == 2 and parts[0] == "tx":
            return self.get_tx(bytes.fromhex(parts[1]))
        if request.method == "GET" and len(parts) == 2 and parts[0] == "blocks":
            return self.get_block(parts[1], request.url.params.get("full") == "true")
        if request.method == "GET" and len(parts) == 2 and parts[0] == "accounts":
            sender = parts[1]
            return httpx.Response(
                200,
                json={
                    "sender": sender,
                    "next_nonce": self.next_nonces.get(bytes.fromhex(sender), 0),
                },
            )
        if request.method == "GET" and path == "/status":
            return httpx.Response(200, json={"chain_id": CHAIN, "height": len(self.blocks)})
        return httpx.Response(404, text="Not Found")  # as Starlette answers an unknown route

    # ---------------------------------------------------------------- writes

    def admit(self, obj: Any) -> bytes | ErrorCode:
        try:
            tx = from_builtins(obj, Transaction)
        except DecodeError:
            return ErrorCode.MALFORMED
        if tx.chain_id != CHAIN:
            return ErrorCode.WRONG_CHAIN
        if not verify_transaction(tx):
            return ErrorCode.BAD_SIGNATURE
        if len(tx.payload) > self.payload_bytes_max:
            return ErrorCode.TOO_LARGE
        if tx_id(tx) in self.txs:
            return ErrorCode.DUPLICATE
        if tx.nonce < self.next_nonces.get(tx.sender, 0):
            return ErrorCode.NONCE_TOO_LOW
        if len(self.txs) >= self.capacity:
            return ErrorCode.MEMPOOL_FULL
        self.txs[tx_id(tx)] = tx
        self.next_nonces[tx.sender] = max(self.next_nonces.get(tx.sender, 0), tx.nonce + 1)
        return tx_id(tx)

    def post_tx(self, request: httpx.Request) -> httpx.Response:
        if not self.ready:
            return refusal(ErrorCode.NOT_READY)
        result = self.admit(json.loads(request.content))
        if isinstance(result, ErrorCode):
            return refusal(result, f"transaction refused: {result}")
        return httpx.Response(202, json={"tx_id": result.hex()})

    def post_txs(self, request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        if len(items) > self.max_batch:
            return refusal(ErrorCode.BATCH_TOO_LARGE)
        results = []
        for item in items:
            result = self.admit(item)
            if isinstance(result, ErrorCode):
                results.append(error_body(result, f"transaction refused: {result}"))
            else:
                results.append({"tx_id": result.hex()})
        return httpx.Response(200, json={"results": results})

    # ---------------------------------------------------------------- reads

    def get_tx(self, tid: bytes) -> httpx.Response:
        if tid not in self.txs:
            return refusal(ErrorCode.NOT_FOUND, "unknown transaction")
        self.polls[tid] = self.polls.get(tid, 0) + 1
        if tid not in self.locations and self.polls[tid] >= self.commit_after_polls:
            self.commit(tid)
        body: dict[str, Any] = {"tx_id": tid.hex(), "status": "pending"}
        body |= {"height": None, "index": None, "block_id": None, "proof": None}
        if tid in self.locations:
            height, index = self.locations[tid]
            block = self.blocks[height - 1]
            tree = MerkleTree([bytes.fromhex(t) for t in block["tx_ids"]])
            proof = to_builtins(tree.proof(index))
            body |= {"status": "committed", "height": height, "index": index}
            body |= {"block_id": block["block_id"], "proof": proof}
        self.edit_status(body)
        return httpx.Response(200, json=body)

    def commit(self, tid: bytes) -> None:
        """A block of its own for `tid`, among filler ids."""
        tx_ids = [*FILLER_IDS[:2], tid, *FILLER_IDS[2:]]
        height = len(self.blocks) + 1
        header = BlockHeader(
            chain_id=CHAIN,
            height=height,
            round=0,
            timestamp_ms=1_700_000_000_000 + height,
            parent_id=bytes.fromhex(self.blocks[-1]["block_id"]) if self.blocks else bytes(32),
            tx_root=MerkleTree(tx_ids).root,
            namespace_root=b"\x22" * 32,
            state_root=b"\x11" * 32,
            proposer=0,
            last_commit_id=bytes(32),
        )
        bid = block_id(header)
        certificate = {"height": height, "round": 0, "block_id": bid.hex(), "signatures": []}
        self.blocks.append(
            {
                "block_id": bid.hex(),
                "header": to_builtins(header),
                "tx_ids": [t.hex() for t in tx_ids],
                "certificate": certificate,
            }
        )
        self.locations[tid] = (height, 2)

    def get_block(self, which: str, full: bool) -> httpx.Response:
        height = len(self.blocks) if which == "latest" else int(which)
        if not 1 <= height <= len(self.blocks):
            return refusal(ErrorCode.NOT_FOUND, f"no block at height {which}")
        body = json.loads(json.dumps(self.blocks[height - 1]))  # a copy the hook may edit
        if full:  # fillers have no transaction behind them; show ours only
            body["txs"] = [{} for _ in body["tx_ids"]]
        self.edit_block(body)
        return httpx.Response(200, json=body)


def canned(status: int, body: Any = None, *, content: bytes | None = None) -> httpx.MockTransport:
    """A transport that answers every request the same."""

    def handle(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handle)


def failing(exc_type: type[httpx.TransportError]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        raise exc_type("no route to node", request=request)

    return httpx.MockTransport(handle)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def signed(wallet: Wallet = ALICE, nonce: int = 0, payload: bytes = b"hello") -> Transaction:
    return wallet.sign(nonce, payload, gas_price=10)


OTHER_ID = "ab" * 32  # a transaction id no test submits


def flip_first_path_hash(body: dict[str, Any]) -> None:
    if body["proof"] is not None:
        body["proof"]["path"][0] = "00" * 32
