"""Helpers of the HTTP API tests: a TestClient on trio over `RpcBackend`
(real store and mempool), whose every answer is checked against the app's
own OpenAPI document (`Api`), and signed test transactions."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import Match

from node.api.limits import RpcLimits
from node.api.openapi import build_openapi
from node.api.rpc import build_app
from sequencer.codec import to_builtins
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.types import Transaction
from tests.node.rpc_backend import RpcBackend
from tests.storage.chain import CHAIN_ID, USER_KEYS

with warnings.catch_warnings():
    # Starlette asks for httpx2; the project pins httpx, which works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

LIMITS = RpcLimits(
    body_bytes_max=4096, batch_txs_max=4, requests_per_s=1000, burst=1000, blocks_range_max=3
)
KEYS = tuple(PrivateKey(bytes([200 + i]) * 32) for i in range(3))  # senders new to the chain
A, B, C = KEYS
COMMITTED_USER = USER_KEYS[0]  # has transactions in the chain


def signed(
    key: PrivateKey = A,
    nonce: int = 0,
    gas_price: int = 10,
    payload: bytes = b"hi",
    chain_id: str = CHAIN_ID,
) -> Transaction:
    return sign_transaction(
        key, chain_id=chain_id, namespace=7, nonce=nonce, gas_price=gas_price, payload=payload
    )


TX = signed()


def body(tx: Transaction = TX, **changes: Any) -> dict[str, Any]:
    return {**to_builtins(tx), **changes}


# ------------------------------------------------------------------ OpenAPI conformance


def conform(value: Any, schema: Mapping[str, Any], doc: Mapping[str, Any], at: str = "$") -> None:
    """Assert `value` matches `schema`: the JSON Schema subset node.api.openapi uses."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        conform(value, doc["components"]["schemas"][name], doc, at)
        return
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if _conforms(value, s, doc)]
        assert len(matching) == 1, f"{at}: matches {len(matching)} of oneOf"
    assert "const" not in schema or value == schema["const"], f"{at}: {value!r} is not const"
    assert "enum" not in schema or value in schema["enum"], f"{at}: {value!r} not in enum"
    kind = schema.get("type")
    assert kind is None or _TYPES[kind](value), f"{at}: {value!r} is not {kind}"
    if isinstance(value, str):
        _conform_string(value, schema, at)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert schema.get("minimum", value) <= value <= schema.get("maximum", value), at
    elif isinstance(value, dict):
        _conform_object(value, schema, doc, at)
    elif isinstance(value, list):
        _conform_array(value, schema, doc, at)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _conforms(value: Any, schema: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    try:
        conform(value, schema, doc)
    except AssertionError:
        return False
    return True


def _conform_string(value: str, schema: Mapping[str, Any], at: str) -> None:
    assert "pattern" not in schema or re.search(schema["pattern"], value), f"{at}: {value!r}"
    assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)), at


def _conform_object(
    value: dict[str, Any], schema: Mapping[str, Any], doc: Mapping[str, Any], at: str
) -> None:
    properties = schema.get("properties", {})
    missing = set(schema.get("required", ())) - set(value)
    assert not missing, f"{at}: missing {sorted(missing)}"
    if schema.get("additionalProperties") is False:
        assert set(value) <= set(properties), f"{at}: extra {sorted(set(value) - set(properties))}"
    for name, item in value.items():
        if name in properties:
            conform(item, properties[name], doc, f"{at}.{name}")


def _conform_array(
    value: list[Any], schema: Mapping[str, Any], doc: Mapping[str, Any], at: str
) -> None:
    assert schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)), at
    prefix = schema.get("prefixItems", [])
    for i, (item, item_schema) in enumerate(zip(value, prefix, strict=False)):
        conform(item, item_schema, doc, f"{at}[{i}]")
    rest = schema.get("items", {})
    assert rest is not False or len(value) <= len(prefix), f"{at}: too many items"
    for i, item in enumerate(value[len(prefix) :], len(prefix)):
        conform(item, rest or {}, doc, f"{at}[{i}]")


class Api:
    """A TestClient whose every answer is checked against the app's OpenAPI document."""

    def __init__(self, client: TestClient, limits: RpcLimits) -> None:
        self.client = client
        self.doc = build_openapi(limits)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        self._check(method, response)
        return response

    def _route(self, method: str, path: str) -> tuple[str | None, bool]:
        scope = {"type": "http", "path": path, "method": method}
        for route in self.client.app.routes:  # type: ignore[attr-defined]
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return route.path, match is Match.FULL
        return None, False

    def _check(self, method: str, response: httpx.Response) -> None:
        template, allowed = self._route(method, response.request.url.path)
        if template is None or not allowed:  # unknown route or method: an error object
            assert response.status_code in (404, 405)
            conform(response.json(), {"$ref": "#/components/schemas/Error"}, self.doc)
            return
        operation = self.doc["paths"][template][method.lower()]
        documented = operation["responses"].get(str(response.status_code))
        assert documented, f"{method} {template}: undocumented status {response.status_code}"
        ((media_type, content),) = documented["content"].items()
        assert response.headers["content-type"].split(";")[0] == media_type
        if media_type == "application/json":
            conform(response.json(), content["schema"], self.doc)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Node:
    backend: RpcBackend
    api: Api
    clock: Clock


@contextlib.contextmanager
def serve(
    backend: RpcBackend, limits: RpcLimits = LIMITS, *, keepalive_s: float = 15.0
) -> Iterator[Node]:
    clock = Clock()
    app = build_app(backend, limits, clock=clock, keepalive_s=keepalive_s)
    with TestClient(app, backend="trio") as client:
        yield Node(backend, Api(client, limits), clock)


def error_of(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert isinstance(error["message"], str)
    assert error["message"]
    return error["code"]
