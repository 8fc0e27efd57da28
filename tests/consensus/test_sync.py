"""`CatchUp`: pipelined block-sync requests, held early responses, timeouts (sans-IO)."""

from __future__ import annotations

import random

import msgspec
import pytest

from consensus.sync import CatchUp, RawSyncResponse, SyncRequest, SyncResponse, serve
from sequencer.codec import encode
from sequencer.types import ZERO_ID, Block, BlockHeader, CommitCertificate

PATIENCE = 300
TIMEOUT = 1_000
BLOCKS = 10  # per request, small to keep the tables readable


def block(height: int) -> tuple[Block, CommitCertificate]:
    header = BlockHeader("t", height, 0, height, ZERO_ID, ZERO_ID, ZERO_ID, ZERO_ID, 0, ZERO_ID)
    return Block(header, []), CommitCertificate(height, 0, ZERO_ID, [])


def served(request: SyncRequest, tip: int) -> SyncResponse | None:
    """What a node whose chain ends at `tip` answers, as the requester decodes it."""
    raw = serve(
        request,
        tip,
        lambda first, last: [(encode(b), encode(c)) for b, c in map(block, range(first, last + 1))],
        lambda height: encode(block(height)[1]),
        1 << 30,
    )
    return None if raw is None else msgspec.msgpack.decode(encode(raw), type=SyncResponse)


def response(first: int, last: int) -> SyncResponse:
    return SyncResponse(None, [block(h) for h in range(first, last + 1)])


def catchup(window: int = 3, seed: int = 1) -> CatchUp:
    return CatchUp(
        random.Random(seed),
        patience_ms=PATIENCE,
        window=window,
        request_timeout_ms=TIMEOUT,
        max_blocks=BLOCKS,
    )


def started(sync: CatchUp, height: int = 1, now: int = 0) -> list[tuple[int, SyncRequest]]:
    """Past the patience: the first poll that may ask."""
    assert sync.poll(height, now) == []
    return sync.poll(height, now + PATIENCE)


def froms(wanted: list[tuple[int, SyncRequest]]) -> list[int]:
    return [request.from_height for _, request in wanted]


def test_not_behind_asks_nothing() -> None:
    sync = catchup()
    assert sync.poll(5, 0) == []
    sync.observe(0, 5)  # working on our height: nothing to fetch
    assert sync.poll(5, 10_000) == []


@pytest.mark.parametrize(
    ("waited_ms", "asks"),
    [(0, False), (PATIENCE - 1, False), (PATIENCE, True), (PATIENCE * 10, True)],
)
def test_patience_before_the_first_request(waited_ms: int, asks: bool) -> None:
    sync = catchup()
    sync.observe(0, 100)
    assert sync.poll(1, 1_000) == []
    assert bool(sync.poll(1, 1_000 + waited_ms)) is asks


def test_caught_up_resets_the_patience() -> None:
    sync = catchup()
    sync.observe(0, 3)
    assert sync.poll(1, 0) == []
    assert sync.poll(3, 100) == []  # caught up meanwhile
    assert sync.poll(1, PATIENCE) == []  # behind again: waits anew (the peer is at 3)


@pytest.mark.parametrize(
    ("peer_heights", "window", "expected"),
    [
        # Consecutive ranges from our height, up to the window.
        ({0: 1_000}, 3, [1, 11, 21]),
        ({0: 1_000}, 1, [1]),
        # Not past what peers have: a peer working on 15 has blocks up to 14.
        ({0: 15}, 3, [1, 11]),
        ({0: 11}, 3, [1]),
        ({0: 2}, 3, [1]),
    ],
)
def test_requests_fill_the_window_with_consecutive_ranges(
    peer_heights: dict[int, int], window: int, expected: list[int]
) -> None:
    sync = catchup(window)
    for peer, height in peer_heights.items():
        sync.observe(peer, height)
    wanted = started(sync)
    assert froms(wanted) == expected
    assert all(request.max_blocks == BLOCKS for _, request in wanted)
    assert sync.in_flight == len(expected)
    assert sync.poll(1, PATIENCE + 1) == []  # the window is full (or nothing more to ask)


def test_each_range_goes_to_a_peer_that_has_its_first_height() -> None:
    for seed in range(20):
        sync = catchup(window=3, seed=seed)
        sync.observe(0, 12)  # has 1..11
        sync.observe(1, 1_000)
        wanted = started(sync)
        assert froms(wanted) == [1, 11, 21]
        peers = dict((request.from_height, peer) for peer, request in wanted)
        assert peers[21] == 1  # peer 0 lacks height 21
        assert peers[11] in (0, 1)  # peer 0 can start it: a short answer is followed up


def test_ranges_spread_over_the_peers_ahead() -> None:
    """Not always to the one that claims the most: a byzantine validator can
    claim any height."""
    chosen = set()
    for seed in range(20):
        sync = catchup(window=1, seed=seed)
        sync.observe(0, 50)
        sync.observe(1, 10**12)
        chosen.update(peer for peer, _ in started(sync))
    assert chosen == {0, 1}


def test_in_order_responses_apply_at_once_and_the_next_range_follows() -> None:
    sync = catchup(window=2)
    sync.observe(0, 1_000)
    assert froms(started(sync)) == [1, 11]
    answer = response(1, 10)
    assert sync.received(0, answer, 1) is answer
    # Applied: the node works on 11; the freed slot asks for the range after 11..20.
    assert froms(sync.poll(11, PATIENCE + 5)) == [21]
    assert sync.received(0, response(11, 20), 11) is not None
    assert froms(sync.poll(21, PATIENCE + 6)) == [31]


def test_an_early_response_is_held_until_the_node_reaches_it() -> None:
    sync = catchup(window=3)
    sync.observe(0, 1_000)
    assert froms(started(sync)) == [1, 11, 21]
    later = response(11, 20)
    assert sync.received(0, later, 1) is None  # held
    assert (sync.in_flight, sync.held) == (2, 1)
    assert sync.next_ready(1) is None
    assert sync.poll(1, PATIENCE + 1) == []  # held + in flight fill the window
    first = response(1, 10)
    assert sync.received(0, first, 1) is first
    assert sync.next_ready(11) == (0, later)
    assert sync.held == 0
    # 21..30 is still in flight: the next request starts after it.
    assert froms(sync.poll(21, PATIENCE + 2)) == [31, 41]


def test_unsolicited_or_misdirected_early_responses_are_not_held() -> None:
    sync = catchup(window=2)
    sync.observe(0, 1_000)
    sync.observe(1, 1_000)
    wanted = started(sync)
    asked = {request.from_height: peer for peer, request in wanted}
    other = 1 - asked[11]
    assert sync.received(other, response(11, 20), 1) is None  # asked of another peer
    assert sync.received(asked[11], response(31, 40), 1) is None  # never asked
    assert sync.held == 0
    assert sync.in_flight == 2


def test_unsolicited_response_at_our_height_is_applied() -> None:
    # The driver's periodic probe asks outside `poll`; its answer is still useful.
    sync = catchup()
    answer = response(5, 9)
    assert sync.received(2, answer, 5) is answer


def test_stale_and_overlapping_responses() -> None:
    sync = catchup()
    sync.observe(0, 1_000)
    started(sync, height=20)
    assert sync.received(0, response(1, 10), 20) is None  # all below our height
    overlapping = response(15, 24)
    assert sync.received(0, overlapping, 20) is overlapping  # the driver skips 15..19
    assert sync.received(0, SyncResponse(None, []), 20) is None


def test_a_short_response_leaves_a_gap_that_is_asked_again() -> None:
    # The server stops early when a response would exceed one message.
    sync = catchup(window=2)
    sync.observe(0, 1_000)
    assert froms(started(sync)) == [1, 11]
    assert sync.received(0, response(1, 4), 1) is not None
    assert froms(sync.poll(5, PATIENCE + 1)) == [5]  # 5..10, below the one in flight


def test_a_held_response_overtaken_is_dropped() -> None:
    sync = catchup(window=3)
    sync.observe(0, 1_000)
    started(sync)
    assert sync.received(0, response(11, 20), 1) is None
    assert sync.held == 1
    # Consensus (or another response) got the node past it meanwhile.
    assert sync.next_ready(25) is None
    assert sync.held == 0


def test_timed_out_requests_are_asked_again() -> None:
    sync = catchup(window=2)
    sync.observe(0, 1_000)
    sync.observe(1, 1_000)
    now = PATIENCE
    assert froms(started(sync)) == [1, 11]
    assert sync.poll(1, now + TIMEOUT - 1) == []
    again = sync.poll(1, now + TIMEOUT)
    assert froms(again) == [1, 11]
    assert sync.timeouts == 2
    # A late answer to a request given up on is still used if it is next.
    late = response(1, 10)
    assert sync.received(0, late, 1) is late


def test_answered_ranges_below_the_height_are_forgotten() -> None:
    sync = catchup(window=2)
    sync.observe(0, 1_000)
    started(sync)
    # Consensus decided 1..20 itself; the two answers never come.
    assert froms(sync.poll(21, PATIENCE + 1)) == [21, 31]
    assert sync.timeouts == 0


def test_outstanding_work_never_exceeds_the_window() -> None:
    """Random arrivals, losses, reorders and timeouts: in flight + held <= window,
    and the node always ends up at the peers' height."""
    for seed in range(30):
        rng = random.Random(seed)
        window = rng.randint(1, 4)
        sync = catchup(window=window, seed=seed)
        target = rng.randint(1, 300)
        sync.observe(0, target)
        sync.observe(1, rng.randint(1, target))
        height, now = 1, 0
        pending: list[tuple[int, SyncRequest]] = []
        for _ in range(5_000):
            if height >= target:
                break
            now += rng.randint(0, 200)
            pending += sync.poll(height, now)
            assert sync.in_flight + sync.held <= window
            rng.shuffle(pending)
            if pending and rng.random() < 0.8:
                peer, request = pending.pop()
                if rng.random() < 0.1:
                    continue  # lost
                answer = served(request, target - 1)
                assert answer is not None
                ready = sync.received(peer, answer, height)
                while ready is not None:
                    last = ready.blocks[-1][0].header.height
                    height = max(height, last + 1)
                    held = sync.next_ready(height)
                    ready = None if held is None else held[1]
            assert sync.in_flight + sync.held <= window
        assert height >= target, seed


def test_a_raw_response_encodes_as_the_typed_one() -> None:
    blocks = [block(h) for h in range(3, 6)]
    parent = block(2)[1]
    typed = SyncResponse(parent, blocks)
    raw = RawSyncResponse(
        msgspec.Raw(encode(parent)),
        [(msgspec.Raw(encode(b)), msgspec.Raw(encode(c))) for b, c in blocks],
    )
    assert encode(raw) == encode(typed)
    assert encode(RawSyncResponse(None, [])) == encode(SyncResponse(None, []))


def test_what_a_response_claims_is_not_believed() -> None:
    # A lying server sends one real block and junk claiming a far height: the
    # node must not keep asking it for heights nobody has shown.
    sync = catchup()
    assert sync.received(3, response(5, 900), 5) is not None  # applied (and judged) by the host
    assert started(sync, height=6) == []
    sync.observe(3, 7)  # what the host notes once blocks verified
    assert froms(started(sync, height=6, now=PATIENCE)) == [6]
