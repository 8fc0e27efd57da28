"""The seen-cache: duplicates refused, bounded in count (oldest out first)
and in age."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from net.seen import SeenCache


def test_add_then_duplicate() -> None:
    seen = SeenCache(capacity=4, ttl_ms=1_000.0)
    assert seen.add(b"a", 0.0) is True
    assert seen.add(b"a", 1.0) is False
    assert b"a" in seen
    assert b"b" not in seen
    assert len(seen) == 1


def test_capacity_evicts_the_oldest_first() -> None:
    seen = SeenCache(capacity=3, ttl_ms=1_000.0)
    for i, id_ in enumerate((b"a", b"b", b"c")):
        assert seen.add(id_, float(i))
    assert seen.add(b"a", 3.0) is False  # a duplicate does not make "a" younger
    assert seen.add(b"d", 4.0) is True
    assert (b"a" in seen, len(seen), seen.evicted) == (False, 3, 1)
    assert seen.add(b"a", 5.0) is True  # forgotten, so new again; "b" goes
    assert [id_ in seen for id_ in (b"b", b"c", b"d", b"a")] == [False, True, True, True]
    assert seen.evicted == 2


def test_ttl_expiry() -> None:
    seen = SeenCache(capacity=10, ttl_ms=100.0)
    seen.add(b"a", 0.0)
    seen.add(b"b", 50.0)
    seen.add(b"c", 100.0)  # "a" is exactly ttl old: still remembered
    assert b"a" in seen
    seen.add(b"d", 100.5)
    assert (b"a" in seen, b"b" in seen, len(seen)) == (False, True, 3)
    seen.add(b"e", 1_000.0)  # everything older goes at once
    assert (len(seen), b"e" in seen) == (1, True)
    assert seen.evicted == 0  # expiry is not eviction
    assert seen.add(b"a", 1_001.0) is True


@given(
    st.integers(1, 8),
    st.floats(1.0, 50.0),
    st.lists(st.tuples(st.integers(0, 12), st.floats(0.0, 20.0)), max_size=100),
)
def test_against_a_model(capacity: int, ttl_ms: float, steps: list) -> None:
    """Model: the first arrivals, in order; keep the last `capacity` and drop
    those older than the ttl whenever a new id comes in."""
    seen = SeenCache(capacity, ttl_ms)
    model: list[tuple[bytes, float]] = []
    evicted = 0
    now = 0.0
    for number, elapsed in steps:
        now += elapsed
        id_ = b"%d" % number
        new = id_ not in {i for i, _ in model}
        assert seen.add(id_, now) is new
        if new:
            model.append((id_, now))
            evicted += max(0, len(model) - capacity)
            model = model[-capacity:]
            model = [(i, t) for i, t in model if t >= now - ttl_ms]
        assert len(seen) == len(model) <= capacity
        assert all(i in seen for i, _ in model)
        assert id_ in seen
        assert seen.evicted == evicted
