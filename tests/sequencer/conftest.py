"""Fixtures of the wallet client tests (`tests.sequencer.client_fake`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sequencer.client import Client
from tests.sequencer.client_fake import BASE_URL, FakeNode


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def client(node: FakeNode) -> Iterator[Client]:
    with Client(BASE_URL, transport=node.transport()) as c:
        yield c
