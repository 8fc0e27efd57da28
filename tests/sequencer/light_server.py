"""A node that serves a fixed chain and can be told to lie, for light-client tests.

`ChainServer` answers the read API the light client uses (`/blocks/{h}`,
`/blocks?from=&limit=`, `/namespaces/{N}/blocks/{h}`, `/tx/{id}`, `/events`)
from `tests.node.rpc_backend.CHAIN`, with the node's own JSON builders, so
its honest answers are the node's. `lie(kind, height, body)` may rewrite any
answer before it is sent. It runs in process as an httpx transport, or on a
loopback socket (`serve`) for commands run as subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from node.api.events import namespace_view
from node.api.responses import block_json
from sequencer.codec import to_builtins
from sequencer.ids import tx_id
from sequencer.merkle import MerkleTree
from sequencer.types import CommitCertificate
from tests.node.rpc_backend import CHAIN

Lie = Callable[[str, int, dict[str, Any]], dict[str, Any]]


def _honest(kind: str, height: int, body: dict[str, Any]) -> dict[str, Any]:
    return body


class ChainServer:
    def __init__(self, lie: Lie = _honest, chain: tuple = CHAIN) -> None:
        self.lie = lie
        self.chain = chain
        # A height's certificate as served; a test may swap in another valid one.
        self.certificates: dict[int, CommitCertificate] = {
            item.block.header.height: item.certificate for item in chain
        }
        self.requests: list[str] = []

    # ------------------------------------------------------------ answers

    def _item(self, height: int):
        return self.chain[height - 1] if 1 <= height <= len(self.chain) else None

    def block(self, height: int, full: bool = False) -> dict[str, Any]:
        item = self._item(height)
        body = block_json(item.block, self.certificates[height], full=full)
        return self.lie("block", height, body)

    def view(self, namespace: int, height: int) -> dict[str, Any]:
        item = self._item(height)
        body = namespace_view(item.block, self.certificates[height], namespace)
        return self.lie("namespace", height, body)

    def tx(self, wanted: bytes) -> dict[str, Any] | None:
        for item in self.chain:
            ids = [tx_id(tx) for tx in item.block.txs]
            if wanted in ids:
                index = ids.index(wanted)
                body = {
                    "tx_id": wanted.hex(),
                    "status": "committed",
                    "height": item.block.header.height,
                    "index": index,
                    "block_id": item.block_id.hex(),
                    "proof": to_builtins(MerkleTree(ids).proof(index)),
                }
                return self.lie("tx", item.block.header.height, body)
        return None

    def events(self, namespace: int, start: int) -> bytes:
        frames = []
        for height in range(start, len(self.chain) + 1):
            data = json.dumps(self.view(namespace, height))
            frames.append(f"event: block\nid: {height}\ndata: {data}\n\n")
        return "".join(frames).encode()

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        self.requests.append(path)
        parts = path.strip("/").split("/")
        found: Any = None
        if parts[0] == "events":
            body = self.events(int(query["namespace"]), int(query.get("from", "1")))
            return 200, "text/event-stream", body
        if parts == ["blocks"]:
            first, limit = int(query["from"]), int(query["limit"])
            heights = range(first, min(first + limit, len(self.chain) + 1))
            found = {"blocks": [self.block(h, query.get("full") == "true") for h in heights]}
        elif parts[0] == "blocks" and len(parts) == 2 and self._item(int(parts[1])):
            found = self.block(int(parts[1]), query.get("full") == "true")
        elif parts[0] == "namespaces" and len(parts) == 4 and self._item(int(parts[3])):
            found = self.view(int(parts[1]), int(parts[3]))
        elif parts[0] == "tx" and len(parts) == 2:
            found = self.tx(bytes.fromhex(parts[1]))
        if found is None:
            error = {"error": {"code": "not_found", "message": f"nothing at {path}"}}
            return 404, "application/json", json.dumps(error).encode()
        return 200, "application/json", json.dumps(found).encode()

    # ------------------------------------------------------------ transports

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            query = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
            status, kind, body = self.answer(request.url.path, query)
            return httpx.Response(status, content=body, headers={"content-type": kind})

        return httpx.MockTransport(handle)

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """On 127.0.0.1 (a free port) in a thread; yields the base URL."""
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, kind, body = server_self.answer(url.path, query)
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
