"""The light client's verifiers under hostile answers (hypothesis): an answer
mutated anywhere (a value replaced by any JSON, a key dropped or added)
either raises `VerificationError` or proves exactly what the honest answer
proves. Nothing else is ever raised, and nothing else is ever accepted."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sequencer.errors import VerificationError
from sequencer.light_protocol import Trust, VerifiedBlock, verify_block, verify_namespace
from tests.node.rpc_backend import CHAIN, GENESIS
from tests.sequencer.light_server import ChainServer

TRUST = Trust(GENESIS)
SERVER = ChainServer()
TIP = len(CHAIN)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.text(max_size=8)
    | st.binary(min_size=32, max_size=32).map(bytes.hex)
    | st.binary(max_size=70).map(bytes.hex),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutate(answer: dict[str, Any], data: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(answer)
    path = data.draw(st.sampled_from(_paths(mutated)[1:]))
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    what = data.draw(st.sampled_from(["replace", "drop", "add"]))
    last = path[-1]
    if what == "replace" or (isinstance(parent, list) and what == "add"):
        parent[last] = data.draw(json_values)
    elif what == "drop":
        del parent[last]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=6))] = data.draw(json_values)
    return mutated


def _proven(view) -> tuple:
    return (view.block.block_id, view.block.header, view.txs, view.tx_ids)


@given(st.sampled_from([7, 9, 11, 8, 0]), st.integers(1, TIP), st.data())
def test_a_mutated_namespace_view_is_refused_or_proves_the_same(
    namespace: int, height: int, data: Any
) -> None:
    honest = SERVER.view(namespace, height)
    expected = _proven(verify_namespace(TRUST, honest, namespace, height))
    mutated = _mutate(honest, data)
    try:
        got = verify_namespace(TRUST, mutated, namespace, height)
    except VerificationError:
        return
    assert _proven(got) == expected


@given(st.integers(1, TIP), st.booleans(), st.data())
def test_a_mutated_block_is_refused_or_proves_the_same(height: int, full: bool, data: Any) -> None:
    honest = SERVER.block(height, full)
    expected = verify_block(TRUST, honest, height)
    mutated = _mutate(honest, data)
    try:
        got = verify_block(TRUST, mutated, height)
    except VerificationError:
        return
    assert (got.block_id, got.header, got.tx_ids) == (
        expected.block_id,
        expected.header,
        expected.tx_ids,
    )
    assert got.txs in (None, expected.txs)


WRONG_TYPES = [None, 1, -1, "x", "00" * 32, [], {}, [None], {"a": 1}, True]


def test_every_field_of_wrong_type_is_refused_or_harmless() -> None:
    """Each key and each nested key, replaced by values of every JSON type."""
    answers = [
        (lambda a: verify_namespace(TRUST, a, 9, TIP), SERVER.view(9, TIP)),
        (lambda a: verify_namespace(TRUST, a, 8, TIP), SERVER.view(8, TIP)),
        (lambda a: verify_block(TRUST, a, TIP), SERVER.block(TIP, True)),
    ]
    for check, honest in answers:
        expected = check(honest)
        for path in _paths(honest)[1:]:
            for value in WRONG_TYPES:
                mutated = copy.deepcopy(honest)
                parent = mutated
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = value
                try:
                    got = check(mutated)
                except VerificationError:
                    continue
                if isinstance(got, VerifiedBlock) and got.txs is None:  # bodies left out
                    got = dataclasses.replace(got, txs=expected.txs)
                assert got == expected, (path, value)
