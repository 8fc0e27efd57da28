"""The mempool: a table of rules, then a hypothesis state machine with a journal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sequencer.codec import encode
from sequencer.ids import tx_id
from sequencer.mempool import AddStatus, Mempool, MempoolConfig, PoolTx
from sequencer.types import Transaction
from storage import Store

CHAIN = "pool-1"
SENDERS = [bytes([i + 1]) * 32 for i in range(6)]
A, B, C = SENDERS[:3]


def tx(sender: bytes, nonce: int, price: int, payload: bytes = b"p") -> Transaction:
    # The pool trusts its caller to have verified signatures: a dummy one will do.
    return Transaction(CHAIN, 0, sender, nonce, price, payload, bytes(64))


def pool(committed: dict[bytes, int] | None = None, **limits: int) -> Mempool:
    committed = committed or {}
    return Mempool(MempoolConfig(CHAIN, **limits), lambda sender: committed.get(sender, 0))


def nonces(entries: Iterable[PoolTx]) -> list[tuple[int, int]]:
    return [(SENDERS.index(e.sender), e.nonce) for e in entries]


# ------------------------------------------------------------------ admission


def test_pending_queued_and_promotion() -> None:
    p = pool()
    assert p.add(tx(A, 0, 5), 0).queued is False
    gap = p.add(tx(A, 2, 5), 0)
    assert (gap.status, gap.queued) == (AddStatus.ACCEPTED, True)
    assert p.statistics().pending == 1
    assert p.statistics().queued == 1
    p.add(tx(A, 1, 5), 0)  # fills the gap: 2 is promoted
    assert p.statistics().pending == 3
    assert p.statistics().queued == 0
    assert p.next_nonce(A) == 3


REFUSALS = [
    ("duplicate", {}, [tx(A, 0, 5)], tx(A, 0, 5), AddStatus.DUPLICATE),
    ("nonce too low", {"committed": {A: 3}}, [], tx(A, 2, 5), AddStatus.NONCE_TOO_LOW),
    (
        "wrong chain",
        {},
        [],
        Transaction("other", 0, A, 0, 5, b"", bytes(64)),
        AddStatus.WRONG_CHAIN,
    ),
    ("too large", {"tx_bytes_max": 150}, [], tx(A, 0, 5, b"x" * 100), AddStatus.TOO_LARGE),
    (
        "below minimum gas price",
        {"min_gas_price": 3},
        [],
        tx(A, 0, 2),
        AddStatus.BELOW_MIN_GAS_PRICE,
    ),
    (
        "underpriced replacement (+9%)",
        {},
        [tx(A, 0, 100)],
        tx(A, 0, 109, b"r"),
        AddStatus.UNDERPRICED_REPLACEMENT,
    ),
    (
        "sender slots full",
        {"sender_slots_max": 2},
        [tx(A, 0, 5), tx(A, 1, 5)],
        tx(A, 2, 5),
        AddStatus.SENDER_SLOTS_FULL,
    ),
    (
        "full pool, newcomer pays the same as the cheapest",
        {"slots_max": 2},
        [tx(A, 0, 5), tx(B, 0, 7)],
        tx(C, 0, 5),
        AddStatus.POOL_FULL,
    ),
    (
        "full pool, a queued newcomer may not evict pending ones",
        {"slots_max": 2},
        [tx(A, 0, 5), tx(B, 0, 5)],
        tx(C, 1, 99),
        AddStatus.POOL_FULL,
    ),
    (
        "queued slots full, newcomer not pricier",
        {"queued_slots_max": 1},
        [tx(A, 1, 5)],
        tx(B, 1, 5),
        AddStatus.POOL_FULL,
    ),
]


@pytest.mark.parametrize(
    ("case", "setup", "before", "newcomer", "status"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refusals_change_nothing(
    case: str, setup: dict, before: list, newcomer: Transaction, status: AddStatus
) -> None:
    setup = dict(setup)  # the table's dict is shared by the tests that read it
    committed = setup.pop("committed", None)
    p = pool(committed, **setup)
    for t in before:
        assert p.add(t, 0).ok
    snapshot = (len(p), nonces(p.select(10**9, 100)))
    result = p.add(newcomer, 0)
    assert result.status is status
    assert result.tx_id == tx_id(newcomer)
    assert (len(p), nonces(p.select(10**9, 100))) == snapshot
    assert p.statistics().rejected[status] == 1


CHECKED_BEFORE_THE_SIGNATURE = {
    AddStatus.WRONG_CHAIN,
    AddStatus.TOO_LARGE,
    AddStatus.BELOW_MIN_GAS_PRICE,
    AddStatus.DUPLICATE,
    AddStatus.NONCE_TOO_LOW,
}


@pytest.mark.parametrize(
    ("case", "setup", "before", "newcomer", "status"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_check_decides_the_cheap_refusals_once(
    case: str, setup: dict, before: list, newcomer: Transaction, status: AddStatus
) -> None:
    """`check` (before a signature check) says what `add` would, for the
    refusals that need no room in the pool, and counts it once; what it lets
    through, `add(..., checked=True)` decides alone."""
    setup = dict(setup)  # the table's dict is shared by the tests that read it
    committed = setup.pop("committed", None)
    p = pool(committed, **setup)
    for t in before:
        assert p.add(t, 0).ok
    size = len(encode(newcomer))
    checked = p.check(newcomer, tx_id(newcomer), size)
    if status in CHECKED_BEFORE_THE_SIGNATURE:
        assert checked is status
    else:
        assert checked is None
        result = p.add(newcomer, 0, id=tx_id(newcomer), size=size, checked=True)
        assert result.status is status
    assert p.statistics().rejected == {status: 1}


def test_statistics_in_the_status_shape() -> None:
    p = pool()
    assert p.add(tx(A, 0, 5), 0).ok
    assert p.add(tx(A, 2, 5), 0).ok
    assert p.add(tx(A, 0, 5), 0).status is AddStatus.DUPLICATE
    assert p.statistics().as_json() == {
        "pending": 1,
        "queued": 1,
        "senders": 1,
        "accepted": 2,
        "replaced": 0,
        "evicted": 0,
        "expired": 0,
        "committed_or_stale": 0,
        "rejected_duplicate": 1,
    }


def test_replacement_needs_a_ten_percent_bump() -> None:
    p = pool()
    old = p.add(tx(A, 0, 100), 0)
    new = p.add(tx(A, 0, 110, b"r"), 0)
    assert new.status is AddStatus.REPLACED
    assert [e.tx_id for e in new.removed] == [old.tx_id]
    assert old.tx_id not in p
    assert new.tx_id in p
    assert p.statistics().pending == 1


def test_eviction_takes_the_cheapest_tail_and_never_opens_a_gap() -> None:
    p = pool(slots_max=3)
    for t in [tx(A, 0, 1), tx(A, 1, 100), tx(B, 0, 50)]:
        p.add(t, 0)
    result = p.add(tx(C, 0, 60), 0)  # A0 is cheapest but not a tail: B0 goes
    assert result.status is AddStatus.ACCEPTED
    assert nonces(result.removed) == [(1, 0)]
    assert result.removed[0].gas_price < 60
    assert p.statistics().evicted == 1
    assert nonces(p.select(10**9, 10)) == [(2, 0), (0, 0), (0, 1)]


def test_a_queued_newcomer_may_evict_a_cheaper_queued_tail() -> None:
    p = pool(slots_max=2)
    p.add(tx(A, 0, 5), 0)
    p.add(tx(B, 3, 5), 0)
    result = p.add(tx(C, 4, 6), 0)
    assert nonces(result.removed) == [(1, 3)]


def test_queued_transactions_expire_pending_ones_do_not() -> None:
    p = pool(queued_lifetime_ms=1_000)
    p.add(tx(A, 0, 5), 0)
    p.add(tx(A, 2, 5), 0)
    p.add(tx(B, 5, 5), 500)
    assert nonces(p.expire(999)) == []
    assert nonces(p.expire(1_000)) == [(0, 2)]
    assert nonces(p.expire(1_500)) == [(1, 5)]
    assert len(p) == 1
    assert p.statistics().expired == 2
    q = pool(queued_lifetime_ms=1_000)
    q.add(tx(A, 1, 5), 0)
    q.add(tx(A, 0, 5), 10)  # promotes nonce 1: it no longer expires
    assert q.expire(5_000) == []


# ------------------------------------------------------------------ selection and commits


def test_select_orders_by_price_then_arrival_keeping_nonce_order() -> None:
    p = pool()
    for t in [tx(A, 0, 5), tx(A, 1, 50), tx(B, 0, 10), tx(C, 0, 10), tx(B, 1, 10)]:
        p.add(t, 0)
    # B0 and C0 pay 10 (B came first); A1 pays 50 but must wait for A0 at 5.
    assert nonces(p.select(10**9, 10)) == [(1, 0), (2, 0), (1, 1), (0, 0), (0, 1)]
    assert nonces(p.select(10**9, 2)) == [(1, 0), (2, 0)]


def test_select_skips_a_sender_whose_next_transaction_does_not_fit() -> None:
    p = pool()
    p.add(tx(A, 0, 50, b"x" * 1_000), 0)  # gas 17,000
    p.add(tx(A, 1, 50), 0)
    p.add(tx(B, 0, 5), 0)  # gas 1,016
    assert nonces(p.select(10_000, 10)) == [(1, 0)]


def test_commit_advances_nonces_drops_stale_and_promotes() -> None:
    p = pool()
    for t in [tx(A, 0, 5), tx(A, 1, 5), tx(A, 3, 5), tx(B, 0, 5)]:
        p.add(t, 0)
    other = tx(A, 2, 7, b"from another node")  # included elsewhere, never in our pool
    removed = p.on_committed({A: 3})
    assert nonces(removed) == [(0, 0), (0, 1)]
    assert p.next_nonce(A) == 4  # nonce 3 was promoted
    assert p.statistics().pending == 2
    assert p.statistics().queued == 0
    assert other.nonce < p.next_nonce(A)
    assert p.add(other, 0).status is AddStatus.NONCE_TOO_LOW


# ------------------------------------------------------------------ the journal


def test_journal_round_trip_reproduces_the_pool() -> None:
    store = Store.memory()
    p = pool(queued_lifetime_ms=10_000)
    added = [
        p.add(t, i) for i, t in enumerate([tx(A, 1, 9), tx(B, 0, 3), tx(A, 0, 4), tx(C, 7, 8)])
    ]
    store.append_journal((r.added.seq, r.added.time_ms, r.added.tx) for r in added)
    assert store.kv.data.synced_writes >= 1  # type: ignore[attr-defined]
    assert [seq for seq, _, _ in store.journal()] == sorted(r.added.seq for r in added)
    again = pool(queued_lifetime_ms=10_000)
    results = again.restore(store.journal(), 100)
    assert all(r.ok for _, r in results)
    assert nonces(again.select(10**9, 10)) == nonces(p.select(10**9, 10))
    assert again.statistics().queued == p.statistics().queued == 1
    assert {e.seq for e in again._by_id.values()} == {e.seq for e in p._by_id.values()}
    # Restored later, the queued one has outlived its lifetime (its arrival time was kept).
    late = pool(queued_lifetime_ms=10_000)
    late.restore(store.journal(), 20_000)
    assert late.statistics().queued == 0
    assert len(late) == 3


def test_journal_removal_and_stale_entries_on_restore() -> None:
    store = Store.memory()
    p = pool()
    first, second = p.add(tx(A, 0, 5), 0), p.add(tx(A, 1, 5), 0)
    store.append_journal([(r.added.seq, 0, r.added.tx) for r in (first, second)])
    store.remove_journal([first.added.seq])
    assert [t.nonce for _, _, t in store.journal()] == [1]
    restored = pool({A: 2}).restore(store.journal(), 0)
    assert [(seq, r.status) for seq, r in restored] == [(second.added.seq, AddStatus.NONCE_TOO_LOW)]


# ------------------------------------------------------------------ hypothesis state machine


class PoolMachine(RuleBasedStateMachine):
    """Random adds, commits, time and restarts against invariants and a journal."""

    LIMITS: ClassVar[dict[str, int]] = {
        "slots_max": 12,
        "queued_slots_max": 5,
        "sender_slots_max": 6,
        "queued_lifetime_ms": 5_000,
        "price_bump_percent": 10,
    }

    def __init__(self) -> None:
        super().__init__()
        self.committed: dict[bytes, int] = {}
        self.pool = self._new_pool()
        self.store = Store.memory()
        self.now = 0
        self.payload = 0

    def _new_pool(self) -> Mempool:
        return Mempool(MempoolConfig(CHAIN, **self.LIMITS), lambda s: self.committed.get(s, 0))

    def _journal(self, added: PoolTx | None, removed: list[PoolTx]) -> None:
        if added is not None:
            self.store.append_journal([(added.seq, added.time_ms, added.tx)])
        self.store.remove_journal(e.seq for e in removed)

    @rule(sender=st.sampled_from(SENDERS[:4]), offset=st.integers(0, 7), price=st.integers(1, 30))
    def add(self, sender: bytes, offset: int, price: int) -> None:
        self.payload += 1
        new = tx(sender, self.committed.get(sender, 0) + offset, price, b"%d" % self.payload)
        before = {e.tx_id: e for e in self.pool._by_id.values()}
        queued_before = {s: len(a.txs) - a.pending for s, a in self.pool._senders.items()}
        old = next((e for e in before.values() if (e.sender, e.nonce) == (sender, new.nonce)), None)
        result = self.pool.add(new, self.now)
        expired = [
            e for e in before.values() if e.tx_id not in self.pool and e not in result.removed
        ]
        self._journal(result.added, [*result.removed, *expired])
        if result.status is AddStatus.REPLACED:
            assert old is not None
            assert new.gas_price * 100 >= old.gas_price * 110
        if old is not None and result.status is AddStatus.UNDERPRICED_REPLACEMENT:
            assert new.gas_price * 100 < old.gas_price * 110
        if result.status is AddStatus.ACCEPTED:
            for victim in result.removed:  # eviction never drops a better-priced tx
                assert victim.gas_price <= new.gas_price
                if victim.gas_price == new.gas_price:
                    # At one price, only the biggest holder of queued slots gives
                    # way, to a sender that holds fewer even with the newcomer.
                    assert result.queued
                    held = queued_before.get(victim.sender, 0)
                    assert held > queued_before.get(sender, 0) + 1
                same_sender = [
                    e.nonce for e in self.pool._by_id.values() if e.sender == victim.sender
                ]
                assert all(n < victim.nonce for n in same_sender)  # it was a tail

    @rule(count=st.integers(0, 8))
    def commit(self, count: int) -> None:
        chosen = self.pool.select(10**9, count)
        next_nonces = {}
        for entry in chosen:
            next_nonces[entry.sender] = entry.nonce + 1
        self.committed.update(next_nonces)
        removed = self.pool.on_committed(next_nonces)
        assert {e.tx_id for e in chosen} <= {e.tx_id for e in removed}
        self._journal(None, removed)
        for sender, nonce in next_nonces.items():
            assert self.pool.next_nonce(sender) >= nonce

    @rule(elapsed=st.integers(0, 3_000))
    def tick(self, elapsed: int) -> None:
        self.now += elapsed
        self._journal(None, self.pool.expire(self.now))
        deadline = self.now - self.LIMITS["queued_lifetime_ms"]
        assert not [e for e in self._queued() if e.time_ms <= deadline]

    @precondition(lambda self: len(self.pool) > 0)
    @rule()
    def restart(self) -> None:
        before = nonces(self.pool.select(10**9, 100))
        stats = self.pool.statistics()
        self.pool = self._new_pool()
        results = self.pool.restore(self.store.journal(), self.now)
        assert all(r.ok for _, r in results)
        assert nonces(self.pool.select(10**9, 100)) == before
        after = self.pool.statistics()
        assert (after.pending, after.queued, after.senders) == (
            stats.pending,
            stats.queued,
            stats.senders,
        )

    def _queued(self) -> list[PoolTx]:
        return [e for e in self.pool._by_id.values() if e.nonce >= self.pool.next_nonce(e.sender)]

    @invariant()
    def within_limits(self) -> None:
        stats = self.pool.statistics()
        assert len(self.pool) <= self.LIMITS["slots_max"]
        assert stats.queued <= self.LIMITS["queued_slots_max"]
        assert stats.pending + stats.queued == len(self.pool)
        per_sender: dict[bytes, list[int]] = {}
        for e in self.pool._by_id.values():
            per_sender.setdefault(e.sender, []).append(e.nonce)
        for sender, held in per_sender.items():
            assert len(held) <= self.LIMITS["sender_slots_max"]
            assert min(held) >= self.committed.get(sender, 0)

    @invariant()
    def select_keeps_nonce_order_and_price_order_among_heads(self) -> None:
        chosen = self.pool.select(10**9, 100)
        expected_next = {}
        for e in chosen:
            start = expected_next.get(e.sender, self.committed.get(e.sender, 0))
            assert e.nonce == start
            expected_next[e.sender] = e.nonce + 1
        # Replay: each pick is the best (price, then arrival) among the heads left.
        remaining = list(chosen)
        while remaining:
            heads = {}
            for e in remaining:
                heads.setdefault(e.sender, e)
            best = min(heads.values(), key=lambda e: (-e.gas_price, e.seq))
            assert remaining[0] is best
            remaining.pop(0)
        assert len(chosen) == self.pool.statistics().pending

    @invariant()
    def journal_holds_exactly_the_pool(self) -> None:
        journaled = {tx_id(t) for _, _, t in self.store.journal()}
        assert journaled == set(self.pool._by_id)


TestPoolMachine = PoolMachine.TestCase
# The active profile (dev, ci, soak) sets the scale; never fewer than 200 runs.
TestPoolMachine.settings = settings(
    settings.default,
    max_examples=max(200, settings.default.max_examples),
    stateful_step_count=40,
)


def test_churn_of_queued_transactions_keeps_the_expiry_queue_bounded() -> None:
    p = pool(queued_slots_max=2)
    for n in range(0, 6_000, 2):
        assert p.add(tx(A, n + 1, 5), 0).queued  # a gap: queued
        p.add(tx(A, n, 5), 0)  # fills it: promoted, stale in the expiry queue
        assert len(p.on_committed({A: n + 2})) == 2
    assert len(p) == 0
    assert len(p._queued_by_time) <= 2 * 2 + 1_024 + 1


@pytest.mark.parametrize(
    ("committed", "in_pool", "nonce", "stale"),
    [
        ({}, [], 0, False),
        ({A: 3}, [], 2, True),
        ({A: 3}, [], 3, False),
        ({A: 3}, [3, 4], 4, False),  # in the pool, not below the chain
        ({}, [0], 0, False),
    ],
)
def test_is_stale_says_what_add_would_refuse_as_nonce_too_low(
    committed: dict[bytes, int], in_pool: list[int], nonce: int, stale: bool
) -> None:
    p = pool(committed)
    for n in in_pool:
        assert p.add(tx(A, n, 5), 0).ok
    assert p.is_stale(tx(A, nonce, 9)) is stale
    if stale:
        assert p.add(tx(A, nonce, 9), 0).status is AddStatus.NONCE_TOO_LOW


# ------------------------------------------------------------------ what became of a tx


def test_evicted_replaced_and_expired_transactions_say_why() -> None:
    p = pool(slots_max=2, queued_lifetime_ms=1_000)
    cheap = p.add(tx(A, 0, 1), 0)
    gapped = p.add(tx(B, 5, 9), 0)
    assert (p.state(cheap.tx_id), p.state(gapped.tx_id)) == ("pending", "queued")
    rich = p.add(tx(C, 0, 50), 0)  # the pool is full: the cheapest tail goes
    assert p.state(cheap.tx_id) is None
    evicted = p.dropped(cheap.tx_id)
    assert evicted is not None
    assert evicted.status == "evicted"
    assert "paying 50" in evicted.reason
    assert "paid 1" in evicted.reason
    replacement = p.add(tx(C, 0, 60, b"more"), 0)
    assert replacement.status is AddStatus.REPLACED
    replaced = p.dropped(rich.tx_id)
    assert replaced is not None
    assert "replaced by" in replaced.reason
    p.expire(2_000)
    expired = p.dropped(gapped.tx_id)
    assert expired is not None
    assert expired.status == "expired"
    assert "nonce gap" in expired.reason
    assert p.dropped(replacement.tx_id) is None  # still in the pool


def test_a_dropped_transaction_sent_again_is_no_longer_dropped() -> None:
    p = pool(queued_lifetime_ms=1_000)
    first = p.add(tx(B, 5, 9), 0)
    p.expire(2_000)
    assert p.dropped(first.tx_id) is not None
    again = p.add(tx(B, 5, 9), 3_000)
    assert again.ok
    assert p.dropped(first.tx_id) is None
    assert p.state(first.tx_id) == "queued"


def test_the_dropped_log_is_bounded() -> None:
    p = pool(slots_max=1, dropped_log_max=100)
    senders = [i.to_bytes(2, "big") * 16 for i in range(1_000)]
    for price, sender in enumerate(senders, start=1):
        assert p.add(tx(sender, 0, price), 0).ok  # each evicts the one before
    assert len(p._dropped) <= 100 + 100 // 8
    assert p.dropped(tx_id(tx(senders[998], 0, 999))) is not None
    assert p.dropped(tx_id(tx(senders[0], 0, 1))) is None  # long forgotten


def test_a_hundred_keys_filling_the_queued_slots_cannot_keep_an_honest_sender_out() -> None:
    # Keys cost nothing: 99 of them with 256 gapped transactions each fill the
    # 25,000 queued slots at the top price. Before, every out-of-order
    # transaction after that was refused (pool full), even at that price, for
    # the queued lifetime (10 minutes).
    p = pool()
    top = 10**6
    attackers = [bytes([0xA0, i]) * 16 for i in range(99)]
    accepted = 0
    for key in attackers:
        for nonce in range(1, 257):  # nonce 0 never comes: all queued
            accepted += p.add(tx(key, nonce, top, b"squat"), 0).ok
    assert p.statistics().queued == p.config.queued_slots_max
    honest = bytes([0x0B]) * 32
    mine = [p.add(tx(honest, nonce, top, b"honest"), 1) for nonce in (1, 2, 3)]
    assert all(result.ok for result in mine)
    assert all(p.state(result.tx_id) == "queued" for result in mine)
    for result in mine:
        (victim,) = result.removed
        assert victim.sender in attackers
        dropped = p.dropped(victim.tx_id)
        assert dropped is not None
        assert "the queued slots were full" in dropped.reason
    # The attackers, each holding far more, cannot push the honest ones out.
    for key in attackers[:20]:
        assert p.add(tx(key, 300, top, b"again"), 2).status is AddStatus.POOL_FULL
    assert all(result.tx_id in p for result in mine)
    # And once its gap fills, the honest sender's transactions are executable.
    assert p.add(tx(honest, 0, top, b"first"), 3).ok
    assert [p.state(result.tx_id) for result in mine] == ["pending"] * 3
