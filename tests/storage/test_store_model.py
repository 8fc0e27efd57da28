"""Random sequences of commits, replays, crashes and restarts against a model.

The model is the number of committed blocks and the last signing state; a
store on either backend, reopened at random points, must agree with it after
every step.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import Store, StoreConflictError
from tests.storage.backends import BACKENDS, Backend
from tests.storage.chain import SIGNING_STATE, build_chain

CHAIN = build_chain(24)

KINDS = ("commit", "commit_many", "replay", "skip_ahead", "crash_in_batch", "sign", "reopen")
# (kind, n): each kind reads n its own way (a count, an index, a height).
steps = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, len(CHAIN) - 1)), max_size=30)


class Model:
    def __init__(self) -> None:
        self.height = 0
        self.signing_height: int | None = None

    def check(self, store: Store) -> None:
        assert store.height() == self.height
        if self.height:
            top = CHAIN[self.height - 1]
            assert store.header(self.height) == top.block.header
            assert store.height_of(top.block_id) == self.height
        assert store.block(self.height + 1) is None
        state = store.signing_state()
        assert (state and state.height) == self.signing_height


def _crash_in_batch(store: Store, height: int) -> None:
    with store.batch(sync=True) as batch:
        batch.put_finalized(*CHAIN[height].args())
        raise KeyboardInterrupt  # a BaseException, like a trio Cancelled


def _apply(step: tuple[str, int], store: Store, model: Model, backend: Backend) -> Store:
    kind, n = step
    remaining = len(CHAIN) - model.height
    if kind == "commit" and remaining:
        assert store.commit_block(*CHAIN[model.height].args()) is True
        model.height += 1
    elif kind == "commit_many" and remaining:
        count = min(1 + n % 4, remaining)
        with store.batch(sync=True) as batch:
            for item in CHAIN[model.height : model.height + count]:
                assert batch.put_finalized(*item.args()) is True
        model.height += count
    elif kind == "replay" and n < model.height:
        assert store.commit_block(*CHAIN[n].args()) is False
    elif kind == "skip_ahead" and model.height + 1 + n % 4 < len(CHAIN):
        # CHAIN[model.height] is next; anything past it leaves a gap.
        with pytest.raises(StoreConflictError, match="must be at height"):
            store.commit_block(*CHAIN[model.height + 1 + n % 4].args())
    elif kind == "crash_in_batch" and remaining:
        with pytest.raises(KeyboardInterrupt):
            _crash_in_batch(store, model.height)
    elif kind == "sign":
        store.save_signing_state(msgspec.structs.replace(SIGNING_STATE, height=n + 1))
        model.signing_height = n + 1
    elif kind == "reopen":
        store = backend.reopen(store)
    return store


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=60)
@given(steps=steps)
def test_store_agrees_with_the_model(backend_name: str, steps: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        backend = Backend(backend_name, Path(directory) / "db")
        try:
            store = backend.open()
            model = Model()
            for step in steps:
                store = _apply(step, store, model, backend)
                model.check(store)
            assert list(store.blocks(1, len(CHAIN))) == [
                item.block for item in CHAIN[: model.height]
            ]
        finally:
            backend.close_all()
