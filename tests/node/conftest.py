"""Fixtures of the HTTP API tests (`tests.node.rpc_harness`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.node.rpc_backend import RpcBackend
from tests.node.rpc_harness import Api, Node, serve


@pytest.fixture
def node() -> Iterator[Node]:
    with serve(RpcBackend()) as node:
        yield node


@pytest.fixture
def api(node: Node) -> Api:
    return node.api
