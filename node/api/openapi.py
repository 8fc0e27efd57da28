"""The OpenAPI 3.1 description of the node's HTTP API (`GET /openapi.json`).

Built as a plain dict from the RPC limits in effect, so the documented bounds
(body size, batch length, block range) are the ones the server enforces. The
schemas describe what the server really sends (lowercase hex, u64 bounds, no
extra fields) and accepts (hex with an optional `0x`, any case), because the
document is the contract schemathesis tests the server against.
"""

from __future__ import annotations

from typing import Any

from node.api.backend import ErrorCode
from node.api.limits import RpcLimits
from sequencer.limits import CHAIN_ID_CHARS_MAX, TX_PAYLOAD_BYTES_MAX, U32_MAX, U64_MAX

__all__ = ["ERROR_CODES", "INTERNAL_ERROR", "build_openapi"]

# An unexpected failure (a bug) answers 500 with this code. It is not an
# `ErrorCode` (yet): the node never refuses a request with it on purpose.
INTERNAL_ERROR = ErrorCode.INTERNAL.value
ERROR_CODES = [code.value for code in ErrorCode]

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _hex(chars: int | None = None) -> Schema:
    repeat = "*" if chars is None else f"{{{chars}}}"
    return {"type": "string", "pattern": f"^[0-9a-f]{repeat}$"}


def _hex_in(byte_count: int) -> Schema:
    """Input hex: an optional 0x, any case."""
    return {"type": "string", "pattern": f"^(0[xX])?[0-9a-fA-F]{{{2 * byte_count}}}$"}


def _object(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


U64: Schema = {"type": "integer", "minimum": 0, "maximum": U64_MAX}
# POST /tx?wait=final waits at most this long (default 30 s).
WAIT_TIMEOUT_MS_MAX = 60_000
WAIT_TIMEOUT_MS_DEFAULT = 30_000
U32: Schema = {"type": "integer", "minimum": 0, "maximum": U32_MAX}
HEIGHT: Schema = {"type": "integer", "minimum": 1, "maximum": U64_MAX}


def _transaction(hex32: Schema, hex64: Schema, payload: Schema) -> Schema:
    return _object(
        {
            "chain_id": {"type": "string", "minLength": 1, "maxLength": CHAIN_ID_CHARS_MAX},
            "namespace": U64,
            "sender": hex32,
            "nonce": U64,
            "gas_price": U64,
            "payload": payload,
            "signature": hex64,
        }
    )


def _error_schema() -> Schema:
    code = {"type": "string", "enum": ERROR_CODES}
    return _object({"error": _object({"code": code, "message": {"type": "string"}})})


def _tx_schemas() -> dict[str, Schema]:
    payload_out = {**_hex(), "maxLength": 2 * TX_PAYLOAD_BYTES_MAX}
    payload_in = {
        "type": "string",
        "pattern": "^(0[xX])?([0-9a-fA-F]{2})*$",
        "maxLength": 2 * TX_PAYLOAD_BYTES_MAX + 2,
    }
    results = {"type": "array", "items": {"oneOf": [_ref("Accepted"), _ref("Error")]}}
    committed = {
        "tx_id": _hex(64),
        "status": {"const": "committed"},
        "height": HEIGHT,
        "index": U32,
        "block_id": _hex(64),
        "proof": _ref("InclusionProof"),
        "l1": _object({"batch_number": U64, "commitment": _hex(64)}),
    }
    pending = {"tx_id": _hex(64), "status": {"enum": ["pending", "queued"]}}
    dropped = {
        "tx_id": _hex(64),
        "status": {"enum": ["evicted", "expired"]},
        "reason": {"type": "string"},
    }
    path = {"type": "array", "items": _hex(64)}
    return {
        "TransactionInput": _transaction(_hex_in(32), _hex_in(64), payload_in),
        "Transaction": _transaction(_hex(64), _hex(128), payload_out),
        "TransactionWithId": _object(
            {**_transaction(_hex(64), _hex(128), payload_out)["properties"], "tx_id": _hex(64)}
        ),
        "Accepted": _object({"tx_id": _hex(64)}),
        "SubmitResults": _object({"results": results}),
        "InclusionProof": _object({"index": U64, "size": U64, "path": path}),
        "TxStatus": {
            "oneOf": [
                _object(committed, optional=("l1",)),
                _object(pending),
                _object(dropped),
            ]
        },
    }


def _block_schemas() -> dict[str, Schema]:
    header = {
        "chain_id": {"type": "string"},
        "height": HEIGHT,
        "round": U64,
        "timestamp_ms": U64,
        "parent_id": _hex(64),
        "tx_root": _hex(64),
        "namespace_root": _hex(64),
        "state_root": _hex(64),
        "proposer": U32,
        "last_commit_id": _hex(64),
    }
    pair = {"type": "array", "prefixItems": [U32, _hex(128)], "items": False, "minItems": 2}
    certificate = {
        "height": HEIGHT,
        "round": U64,
        "block_id": _hex(64),
        "signatures": {"type": "array", "items": pair},
    }
    block = {
        "block_id": _hex(64),
        "header": _ref("BlockHeader"),
        "tx_ids": {"type": "array", "items": _hex(64)},
        "certificate": _ref("Certificate"),
        "txs": {"type": "array", "items": _ref("Transaction")},
    }
    return {
        "BlockHeader": _object(header),
        "Certificate": _object(certificate),
        "Block": _object(block, optional=("txs",)),
        "Blocks": _object({"blocks": {"type": "array", "items": _ref("Block")}}),
    }


def _namespace_schemas() -> dict[str, Schema]:
    entry = _object({"namespace": U64, "count": {**U32, "minimum": 1}, "ns_tx_root": _hex(64)})
    proven = _object({"entry": _ref("NamespaceEntry"), "proof": _ref("InclusionProof")})
    nullable_proven = {"oneOf": [{"type": "null"}, _ref("ProvenEntry")]}
    absence = _object({"left": nullable_proven, "right": nullable_proven})
    view = {
        "namespace": U64,
        "height": HEIGHT,
        "block_id": _hex(64),
        "header": _ref("BlockHeader"),
        "certificate": _ref("Certificate"),
        "entry": {"oneOf": [{"type": "null"}, _ref("NamespaceEntry")]},
        "entry_proof": {"oneOf": [{"type": "null"}, _ref("InclusionProof")]},
        "txs": {"type": "array", "items": _ref("TransactionWithId")},
        "absence": {"oneOf": [{"type": "null"}, _ref("NamespaceAbsence")]},
    }
    return {
        "NamespaceEntry": entry,
        "ProvenEntry": proven,
        "NamespaceAbsence": absence,
        "NamespaceBlock": _object(view),
    }


def _node_schemas() -> dict[str, Schema]:
    validator = {
        "index": U32,
        "name": {"type": "string"},
        "public_key": _hex(64),
        "power": {"type": "integer", "minimum": 1},
        "p2p": {"type": "string"},
        "rpc": {"type": "string"},
    }
    validators = {
        "chain_id": {"type": "string"},
        "total_power": {"type": "integer", "minimum": 1},
        "validators": {"type": "array", "items": _object(validator)},
    }
    return {
        "Account": _object({"sender": _hex(64), "committed_nonce": U64, "next_nonce": U64}),
        "Validators": _object(validators),
        "Peers": _object({"peers": {"type": "array", "items": {"type": "object"}}}),
        "Batch": _object(
            {
                "batch_number": U64,
                "first_height": HEIGHT,
                "last_height": HEIGHT,
                "commitment": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "encoding": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
                "l1_reference": {"type": "string"},
                "state": {"enum": ["posted", "confirmed"]},
                "posted_ms": U64,
            }
        ),
        "Batches": _object({"batches": {"type": "array", "items": _ref("Batch")}}),
        "SenderTxs": _object(
            {
                "sender": _hex(64),
                "txs": {
                    "type": "array",
                    "items": _object(
                        {"nonce": U64, "tx_id": _hex(64), "height": HEIGHT, "index": U32}
                    ),
                },
                "next_from_nonce": {"oneOf": [{"type": "null"}, U64]},
            }
        ),
        "NamespaceTxs": _object(
            {
                "namespace": U64,
                "from": HEIGHT,
                "to": U64,
                "txs": {
                    "type": "array",
                    "items": _object(
                        {
                            "height": HEIGHT,
                            "index": U32,
                            "tx_id": _hex(64),
                            "tx": _ref("Transaction"),
                        }
                    ),
                },
                "next_from": {"oneOf": [{"type": "null"}, HEIGHT]},
            }
        ),
        "Health": _object({"status": {"const": "ok"}}),
        "Ready": _object({"status": {"const": "ready"}}),
    }


def _schemas() -> dict[str, Schema]:
    return {
        "Error": _error_schema(),
        **_tx_schemas(),
        **_block_schemas(),
        **_namespace_schemas(),
        **_node_schemas(),
    }


# ------------------------------------------------------------------ operations

_ERROR_TEXT = {
    400: "Malformed request or bad parameter",
    404: "Not found",
    405: "Method not allowed",
    408: "The request body did not arrive in time",
    409: "Conflicts with the node's state",
    413: "Too large",
    429: "Rate limited or mempool full: retry later",
    500: "Unexpected failure",
    503: "Not ready, storage failed, or too many connections",
}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> Schema:
    """Error responses for `statuses`, plus 500 (every route can fail unexpectedly)."""
    return {str(s): _json(_ref("Error"), _ERROR_TEXT[s]) for s in sorted({*statuses, 500})}


def _responses(ok: int, schema: Schema, description: str, *errors: int) -> Schema:
    return {str(ok): _json(schema, description), **_errors(*errors)}


def _text(media_type: str, description: str, *errors: int) -> Schema:
    content = {media_type: {"schema": {"type": "string"}}}
    return {"200": {"description": description, "content": content}, **_errors(*errors)}


def _param(name: str, where: str, schema: Schema, *, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


def _get(summary: str, responses: Schema, *parameters: Schema) -> Schema:
    operation: Schema = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = list(parameters)
    return {"get": operation}


def _post(summary: str, body: Schema, responses: Schema, *parameters: Schema) -> Schema:
    request = {"required": True, "content": {"application/json": {"schema": body}}}
    operation: Schema = {"summary": summary, "requestBody": request, "responses": responses}
    if parameters:
        operation["parameters"] = list(parameters)
    return {"post": operation}


# Every read of the store can fail (503 storage_failed); every route but the
# probes can be rate limited (429).
_READ = (429, 503)


def _tx_paths(limits: RpcLimits) -> dict[str, Schema]:
    batch = {
        "type": "array",
        "maxItems": limits.batch_txs_max,
        # Any item: one that is not a TransactionInput gets its own error result.
        "items": {"description": "a TransactionInput"},
    }
    return {
        "/tx": _post(
            "Submit one signed transaction; with ?wait=final, answer once it is committed"
            " (200, its status) or, after timeout_ms, still not (202, its status)",
            _ref("TransactionInput"),
            {
                **_responses(
                    202,
                    {"oneOf": [_ref("Accepted"), _ref("TxStatus")]},
                    "Accepted (durable); with ?wait=final, not committed yet: its status",
                    400,
                    408,
                    409,
                    413,
                    *_READ,
                ),
                "200": _json(_ref("TxStatus"), "With ?wait=final: committed (or dropped)"),
            },
            _param("wait", "query", {"enum": ["final"]}),
            _param("timeout_ms", "query", {**U64, "maximum": WAIT_TIMEOUT_MS_MAX}),
        ),
        "/txs": _post(
            f"Submit up to {limits.batch_txs_max} transactions; one result per item, in order",
            batch,
            _responses(200, _ref("SubmitResults"), "Processed item by item", 400, 408, 413, *_READ),
        ),
        "/tx/{tx_id}": _get(
            "A transaction's status, with its inclusion proof once committed",
            _responses(
                200,
                _ref("TxStatus"),
                "Pending, queued, evicted, expired or committed",
                400,
                404,
                *_READ,
            ),
            _param("tx_id", "path", _hex_in(32)),
        ),
        "/accounts/{sender}": _get(
            "A sender's next nonce, committed and with the mempool",
            # 404: a path parameter holding `/` matches no route (as for every path parameter).
            _responses(200, _ref("Account"), "The nonces", 400, 404, *_READ),
            _param("sender", "path", _hex_in(32)),
        ),
        "/accounts/{sender}/txs": _get(
            "A sender's committed transactions by nonce (chain order), paged",
            _responses(
                200, _ref("SenderTxs"), "Up to `limit`; next_from_nonce to go on", 400, 404, *_READ
            ),
            _param("sender", "path", _hex_in(32)),
            _param("from_nonce", "query", U64),
            _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        "/namespaces/{namespace}/txs": _get(
            "A namespace's transactions over a range of heights, in block order, paged",
            _responses(
                200, _ref("NamespaceTxs"), "next_from to go on (null: done)", 400, 404, *_READ
            ),
            _param("namespace", "path", U64),
            _param("from", "query", HEIGHT),
            _param("to", "query", HEIGHT),
        ),
    }


def _block_paths(limits: RpcLimits) -> dict[str, Schema]:
    full = _param("full", "query", {"type": "boolean", "default": False})
    height = _param("height", "path", {"type": "integer", "minimum": 0, "maximum": U64_MAX})
    most = limits.blocks_range_max
    limit = {"type": "integer", "minimum": 1, "maximum": most, "default": most}
    block = _responses(200, _ref("Block"), "The block", 400, 404, *_READ)
    return {
        "/blocks/latest": _get("The last finalized block", block, full),
        "/blocks/{height}": _get("A finalized block by height", block, height, full),
        "/blocks": _get(
            f"Finalized blocks from a height, at most {most}, and fewer when their JSON"
            f" would pass {limits.response_bytes_max} bytes (never none): page on"
            " from the last one. Streamed block by block: a connection holds one"
            " block's JSON at a time, however slowly its client reads",
            _responses(200, _ref("Blocks"), "The blocks (empty past the tip)", 400, *_READ),
            _param("from", "query", HEIGHT),
            _param("limit", "query", limit),
            full,
        ),
        "/namespaces/{namespace}/blocks/{height}": _get(
            "All of a namespace's transactions in a block, with the header, certificate"
            " and the namespace proof (presence, or absence) that shows nothing was left out",
            _responses(200, _ref("NamespaceBlock"), "The namespace view", 400, 404, *_READ),
            _param("namespace", "path", U64),
            height,
        ),
        "/events": _get(
            "Server-sent events: one `block` event (id = height) per finalized block; with"
            " `namespace`, each event is that namespace's view (as /namespaces/{N}/blocks/{h})",
            _text("text/event-stream", "An endless event stream", 400, 429, 503),
            _param("from", "query", HEIGHT),
            _param("namespace", "query", U64),
            _param("full", "query", {"type": "boolean", "default": True}),
            _param("Last-Event-ID", "header", U64),
        ),
    }


def _node_paths(limits: RpcLimits) -> dict[str, Schema]:
    anything = {"type": "object"}
    most = limits.blocks_range_max
    limit = {"type": "integer", "minimum": 1, "maximum": most, "default": most}
    return {
        "/status": _get("Node status", _responses(200, anything, "Node status", *_READ)),
        "/validators": _get(
            "The genesis validator set",
            _responses(200, _ref("Validators"), "Validators in index order", *_READ),
        ),
        "/peers": _get("Connected peers", _responses(200, _ref("Peers"), "Peers", *_READ)),
        "/batches": _get(
            f"L1 batches posted by this node, from a number, at most {most}",
            _responses(
                200, _ref("Batches"), "Batches (empty if this node posts none)", 400, *_READ
            ),
            _param("from", "query", U64),
            _param("limit", "query", limit),
        ),
        "/batches/{number}": _get(
            "One L1 batch posted by this node",
            _responses(200, _ref("Batch"), "The batch", 400, 404, *_READ),
            _param("number", "path", U64),
        ),
        # The probes have a rate limit of their own (`probe_requests_per_s`).
        "/health": _get("Liveness", _responses(200, _ref("Health"), "Alive", 429, 503)),
        "/ready": _get("Readiness", _responses(200, _ref("Ready"), "Ready", 429, 503)),
        "/metrics": _get("Prometheus text exposition", _text("text/plain", "Metrics", 429)),
        "/openapi.json": _get("This document", _responses(200, anything, "OpenAPI 3.1", 429)),
    }


def build_openapi(limits: RpcLimits) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app built with `limits`."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sequencer node API",
            "version": "1",
            "description": (
                'Errors are `{"error": {"code", "message"}}` with stable codes. '
                f"Request bodies are limited to {limits.body_bytes_max} bytes; "
                f"each client IP to {limits.requests_per_s:g} tokens/s "
                f"(bursts of {limits.burst}): a request costs one token, one more "
                f"per {limits.body_cost_unit_bytes} bytes of body and per "
                f"{limits.response_cost_unit_bytes} bytes of response; over it, 429 "
                "`rate_limited` with `Retry-After`."
            ),
        },
        "paths": {**_tx_paths(limits), **_block_paths(limits), **_node_paths(limits)},
        "components": {"schemas": _schemas()},
    }
