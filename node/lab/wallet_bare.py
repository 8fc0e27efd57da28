"""The bare handler of the wallet benchmark: a Starlette app whose `POST /tx`
reads the body, parses it as JSON and answers 202, served by Hypercorn on
trio through the node's own `http_config` (as `node.lab.bench_single`'s
`serve_bare`, which does not parse). It is what the node's single `POST /tx`
costs without the node: framework, server and a JSON parse.

    python -m node.lab.wallet_bare 127.0.0.1:PORT
"""

from __future__ import annotations

import sys

import msgspec
import trio

__all__ = ["serve_bare_json"]


def serve_bare_json(listen: str) -> None:
    """Serve the bare `POST /tx` (and `GET /health`) on `listen` until stopped."""
    # Imported here: only the bare server's own process serves anything.
    from hypercorn.trio import serve
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from node.api.server import http_config

    answer = b'{"tx_id":"' + b"00" * 32 + b'"}'
    decoder = msgspec.json.Decoder()

    async def submit(request: Request) -> Response:
        try:
            decoder.decode(await request.body())
        except msgspec.DecodeError:
            return JSONResponse({"error": {"code": "malformed"}}, status_code=400)
        return Response(answer, status_code=202, media_type="application/json")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/tx", submit, methods=["POST"]), Route("/health", health)])
    trio.run(serve, app, http_config(listen))


if __name__ == "__main__":
    serve_bare_json(sys.argv[1])
