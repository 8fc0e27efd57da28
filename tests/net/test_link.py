"""One link, without sockets: the keys of each direction and session,
sealing and opening datagrams, the receiver's replay window and its acks,
and the sender's loss recovery."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.link import (
    WINDOW_PACKETS,
    LinkKeys,
    ReceiveWindow,
    SendWindow,
    open_datagram,
    seal_datagram,
)
from net.wire import ACK_MISSING_MAX, HEADER, OVERHEAD_BYTES, VERSION, Ack
from tests.net.harness import node_keys

W = WINDOW_PACKETS
U64_MAX = 2**64 - 1
A, B, C = node_keys(3)
A_TO_B = LinkKeys(A.seed, A.public_key, B.public_key)  # A's end of the A-B link
B_TO_A = LinkKeys(B.seed, B.public_key, A.public_key)  # B's end of the same link
C_TO_A = LinkKeys(C.seed, C.public_key, A.public_key)
C_TO_B = LinkKeys(C.seed, C.public_key, B.public_key)
TAG_A = A.public_key[:8]


def seal(keys: LinkKeys, session: int, counter: int, payload: bytes, horizon: int = 1) -> bytes:
    return seal_datagram(keys.sending_cipher(session), TAG_A, session, counter, horizon, payload)


# ------------------------------------------------------------------ keys


def test_each_end_derives_the_other_ends_ciphers() -> None:
    a_to_b = seal(A_TO_B, 7, 1, b"from a")
    b_to_a = seal(B_TO_A, 7, 1, b"from b")
    assert open_datagram(B_TO_A.receiving_cipher(7), a_to_b, 1) == b"from a"
    assert open_datagram(A_TO_B.receiving_cipher(7), b_to_a, 1) == b"from b"


OTHER_CIPHERS = [
    ("another session", B_TO_A.receiving_cipher(8)),
    ("session zero", B_TO_A.receiving_cipher(0)),
    ("reflected to the sender", A_TO_B.receiving_cipher(7)),
    ("the receiver's own sending direction", B_TO_A.sending_cipher(7)),
    ("a third node's link with the sender", C_TO_A.receiving_cipher(7)),
    ("a third node's link with the receiver", C_TO_B.receiving_cipher(7)),
]


@pytest.mark.parametrize("cipher", [c for _, c in OTHER_CIPHERS], ids=[n for n, _ in OTHER_CIPHERS])
def test_other_keys_do_not_open_a_datagram(cipher: object) -> None:
    datagram = seal(A_TO_B, 7, 1, b"payload")
    assert open_datagram(B_TO_A.receiving_cipher(7), datagram, 1) == b"payload"
    assert open_datagram(cipher, datagram, 1) is None


def test_a_third_node_cannot_pose_as_the_sender() -> None:
    # C seals with its own key toward B but writes A's tag in the header.
    forged = seal(C_TO_B, 7, 1, b"payload")
    assert forged[1:9] == TAG_A
    assert open_datagram(B_TO_A.receiving_cipher(7), forged, 1) is None


def test_sessions_and_directions_get_distinct_keys() -> None:
    # Same (key, nonce) never twice: every session and direction is a new key.
    sealed = {
        seal(keys, session, 1, bytes(32))[HEADER.size :]
        for keys in (A_TO_B, B_TO_A)
        for session in (0, 1, 2, U64_MAX)
    }
    assert len(sealed) == 8


LOW_ORDER_KEYS = [
    ("all zero", bytes(32)),
    ("identity point", b"\x01" + bytes(31)),
    ("order 2 (y = -1)", bytes.fromhex("ec" + "ff" * 30 + "7f")),
    ("order 8", bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa")),
    ("order 4", bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")),
    ("non-canonical all ones", b"\xff" * 32),
    ("31 bytes", bytes(31)),
    ("33 bytes", B.public_key + b"\x00"),
]


@pytest.mark.parametrize(
    "public_key", [k for _, k in LOW_ORDER_KEYS], ids=[n for n, _ in LOW_ORDER_KEYS]
)
def test_unusable_peer_keys_raise_value_error(public_key: bytes) -> None:
    with pytest.raises(ValueError, match="unusable peer key"):
        LinkKeys(A.seed, A.public_key, public_key)


# --------------------------------------------------------------- sealing


@given(
    st.binary(max_size=2_000),
    st.integers(0, U64_MAX),
    st.integers(1, U64_MAX),
    st.integers(0, U64_MAX),
)
def test_seal_open_round_trip(payload: bytes, session: int, counter: int, horizon: int) -> None:
    datagram = seal(A_TO_B, session, counter, payload, horizon)
    assert datagram[: HEADER.size] == HEADER.pack(VERSION, TAG_A, session, 0, counter, horizon)
    assert len(datagram) == len(payload) + OVERHEAD_BYTES
    assert open_datagram(B_TO_A.receiving_cipher(session), datagram, counter) == payload


def test_counter_is_the_nonce() -> None:
    datagram = seal(A_TO_B, 1, 5, b"payload")
    assert open_datagram(B_TO_A.receiving_cipher(1), datagram, 5) == b"payload"
    assert open_datagram(B_TO_A.receiving_cipher(1), datagram, 6) is None
    # Same payload, next counter: a different ciphertext.
    assert seal(A_TO_B, 1, 6, b"payload")[HEADER.size :] != datagram[HEADER.size :]


def test_every_flipped_bit_is_detected() -> None:
    cipher = B_TO_A.receiving_cipher(3)
    datagram = seal(A_TO_B, 3, 9, b"twelve bytes", horizon=4)
    assert open_datagram(cipher, datagram, 9) == b"twelve bytes"
    for bit in range(len(datagram) * 8):  # header (associated data), ciphertext and tag
        flipped = bytearray(datagram)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert open_datagram(cipher, bytes(flipped), 9) is None, bit


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda d: d[:-1], id="last-byte-missing"),
        pytest.param(lambda d: d + b"\x00", id="byte-appended"),
        pytest.param(lambda d: d[: HEADER.size + 15], id="shorter-than-a-tag"),
        pytest.param(lambda d: d[: HEADER.size], id="header-only"),
        pytest.param(lambda d: d[:3], id="part-of-header"),
        pytest.param(lambda d: b"", id="empty"),
    ],
)
def test_truncated_or_extended_datagrams_do_not_open(cut: object) -> None:
    datagram = seal(A_TO_B, 1, 1, b"payload")
    assert open_datagram(B_TO_A.receiving_cipher(1), cut(datagram), 1) is None


# ---------------------------------------------------------- ReceiveWindow


def outcomes(window: ReceiveWindow, steps: list) -> list[str]:
    """Feed counters (or (counter, horizon) pairs) as the gossip core does:
    `mark` only what `is_new` accepts. Each step gives "old", "new" or
    "gap" (new, and it left missing counters behind it)."""
    out = []
    for step in steps:
        counter, horizon = step if isinstance(step, tuple) else (step, 1)
        if not window.is_new(counter):
            out.append("old")
        else:
            out.append("gap" if window.mark(counter, horizon) else "new")
    return out


# (name, steps, outcomes, missing_max, expected ack)
WINDOW_CASES = [
    ("in order", [1, 2, 3], ["new"] * 3, ACK_MISSING_MAX, Ack(3, 1, [])),
    ("a gap", [1, 2, 5], ["new", "new", "gap"], ACK_MISSING_MAX, Ack(5, 1, [3, 4])),
    ("late arrival of a missing counter", [1, 4, 2], ["new", "gap", "new"], 8, Ack(4, 1, [3])),
    ("replays", [1, 2, 2, 1], ["new", "new", "old", "old"], 8, Ack(2, 1, [])),
    ("replay of a late arrival", [1, 3, 2, 2], ["new", "gap", "new", "old"], 8, Ack(3, 1, [])),
    ("first counter above 1", [3], ["gap"], 8, Ack(3, 1, [1, 2])),
    ("nothing received", [], [], 8, Ack(0, 1, [])),
    # Counter 0 is never sent: the gossip core drops it before the window,
    # and the window never accepts it either.
    ("counter 0", [0, 1, 0], ["old", "new", "old"], 8, Ack(1, 1, [])),
    (
        "jump beyond the window: older counters refused",
        [1, 2, W + 10, 5, 10, 11, W + 9],
        ["new", "new", "gap", "old", "old", "new", "new"],
        ACK_MISSING_MAX,
        Ack(ACK_MISSING_MAX + 11, 11, list(range(12, ACK_MISSING_MAX + 12))),
    ),
    (
        "a missing counter that slides below the floor",
        [1, 3, W + 2, 2],
        ["new", "gap", "gap", "old"],
        ACK_MISSING_MAX,
        Ack(ACK_MISSING_MAX + 3, 3, list(range(4, ACK_MISSING_MAX + 4))),
    ),
    ("truncated report", [1, 3, 5, 7, 9], ["new"] + ["gap"] * 4, 2, Ack(5, 1, [2, 4])),
    ("report exactly full", [1, 3, 5, 7, 9], ["new"] + ["gap"] * 4, 4, Ack(9, 1, [2, 4, 6, 8])),
    ("truncated inside a run", [1, 5], ["new", "gap"], 1, Ack(2, 1, [2])),
    ("truncated at the first counter", [4], ["gap"], 1, Ack(1, 1, [1])),
    (
        "horizon drops older losses",
        [(1, 1), (4, 1), (6, 4), (2, 1), (3, 1), (5, 1)],
        ["new", "gap", "gap", "old", "old", "new"],
        8,
        Ack(6, 4, []),
    ),
    (
        "horizon capped by its packet",
        [(1, 1), (3, 100), 2, 4],
        ["new", "gap", "old", "new"],
        8,
        Ack(4, 3, []),
    ),
    ("horizon never goes back", [(5, 5), (6, 1)], ["gap", "new"], 8, Ack(6, 5, [])),
    (
        "older horizon on a reordered packet",
        [(1, 1), (5, 3), (4, 2)],
        ["new", "gap", "new"],
        8,
        Ack(5, 3, [3]),
    ),
]


@pytest.mark.parametrize(
    ("steps", "expected_outcomes", "missing_max", "expected_ack"),
    [case[1:] for case in WINDOW_CASES],
    ids=[case[0] for case in WINDOW_CASES],
)
def test_receive_window(
    steps: list, expected_outcomes: list[str], missing_max: int, expected_ack: Ack
) -> None:
    window = ReceiveWindow()
    assert outcomes(window, steps) == expected_outcomes
    assert window.ack(missing_max) == expected_ack
    assert window.ack(missing_max) == expected_ack  # reporting changes nothing


def test_ack_missing_max_bounds() -> None:
    window = ReceiveWindow()
    with pytest.raises(AssertionError):
        window.ack(0)
    with pytest.raises(AssertionError):
        window.ack(ACK_MISSING_MAX + 1)


counters = st.one_of(st.integers(0, 40), st.integers(0, 3 * W))
horizons = st.one_of(st.just(1), st.integers(0, 3 * W))


@given(
    st.lists(st.tuples(counters, horizons), max_size=40),
    st.integers(1, ACK_MISSING_MAX),
)
def test_receive_window_against_a_model(steps: list, missing_max: int) -> None:
    """The model: the set of counters received, the largest, the horizon."""
    window = ReceiveWindow()
    received: set[int] = set()
    largest, horizon = 0, 1
    for counter, sender_horizon in steps:
        floor = max(horizon, largest - W + 1)
        new = counter > largest or (floor <= counter <= largest and counter not in received)
        assert window.is_new(counter) == new, (counter, largest, floor)
        if new:
            window.mark(counter, sender_horizon)
            received.add(counter)
            horizon = max(horizon, min(sender_horizon, counter))
            largest = max(largest, counter)
    floor = max(horizon, largest - W + 1)
    missing = [c for c in range(floor, largest + 1) if c not in received]
    if len(missing) > missing_max:
        expected = Ack(missing[missing_max] - 1, floor, missing[:missing_max])
    else:
        expected = Ack(largest, floor, missing)
    assert window.ack(missing_max) == expected


# ------------------------------------------------------------- SendWindow

LOSS_PACKETS, LOSS_DELAY_MS = 3, 10.0


def frame(counter: int) -> bytes:
    return b"frame %d" % counter


def size(counter: int) -> int:
    return 100 + counter


def window_with(sent: list[tuple[int, float]]) -> SendWindow:
    window = SendWindow()
    for counter, sent_ms in sent:
        window.sent(counter, [frame(counter)], size(counter), sent_ms)
    return window


def at(counters: range | list[int], sent_ms: float = 0.0) -> list[tuple[int, float]]:
    return [(c, sent_ms) for c in counters]


# (name, sent, ack, now, acked, lost counters, counters still in flight)
ON_ACK_CASES = [
    ("all acknowledged", at(range(1, 6)), Ack(5, 1, []), 1.0, 5, [], []),
    ("prefix acknowledged", at(range(1, 6)), Ack(3, 1, []), 1.0, 3, [], [4, 5]),
    ("nothing covered", at(range(1, 4)), Ack(0, 1, []), 1.0, 0, [], [1, 2, 3]),
    ("missing, maybe reordered: kept", at(range(1, 4)), Ack(3, 1, [1]), 1.0, 2, [], [1]),
    ("missing, enough later ones acked", at(range(1, 5)), Ack(4, 1, [1]), 1.0, 3, [1], []),
    ("missing, long enough ago", at(range(1, 4)), Ack(3, 1, [1]), 10.0, 2, [1], []),
    ("missing, not quite long enough", at(range(1, 4)), Ack(3, 1, [1]), 9.9, 2, [], [1]),
    ("two missing, one lost", at(range(1, 7)), Ack(6, 1, [2, 4]), 1.0, 4, [2], [4]),
    (
        "sent at different times",
        [(1, 0.0), (2, 5.0), (3, 9.0)],
        Ack(3, 1, [1, 2]),
        10.0,
        1,
        [1],
        [2],
    ),
    ("below the floor: lost", at(range(1, 4)), Ack(3, 2, []), 1.0, 2, [1], []),
    ("below the floor though listed", at(range(1, 4)), Ack(3, 2, [1]), 1.0, 2, [1], []),
    ("floor above largest", at(range(1, 4)), Ack(2, 5, []), 1.0, 0, [1, 2], [3]),
    ("above largest: untouched", at(range(1, 6)), Ack(2, 1, [1]), 1.0, 1, [], [1, 3, 4, 5]),
    ("counters with holes", at([2, 5, 9]), Ack(9, 1, [2, 3, 4]), 1.0, 2, [2], []),
    ("ack of unsent counters", at([5]), Ack(4, 1, []), 1.0, 0, [], [5]),
]


@pytest.mark.parametrize(
    ("sent", "ack", "now_ms", "acked", "lost", "left"),
    [case[1:] for case in ON_ACK_CASES],
    ids=[case[0] for case in ON_ACK_CASES],
)
def test_send_window_on_ack(
    sent: list, ack: Ack, now_ms: float, acked: int, lost: list[int], left: list[int]
) -> None:
    window = window_with(sent)
    assert window.on_ack(ack, now_ms, LOSS_PACKETS, LOSS_DELAY_MS) == (
        acked,
        [frame(c) for c in lost],
    )
    assert len(window) == len(left)
    assert window.bytes_in_flight == sum(size(c) for c in left)
    assert window.oldest(default=-1) == (left[0] if left else -1)


def test_lost_frames_come_in_counter_order() -> None:
    window = SendWindow()
    window.sent(1, [b"a", b"b"], 10, 0.0)
    window.sent(2, [b"c"], 10, 0.0)
    window.sent(6, [b"d"], 10, 0.0)
    assert window.on_ack(Ack(6, 1, [1, 2]), 1.0, LOSS_PACKETS, LOSS_DELAY_MS) == (
        1,
        [b"a", b"b", b"c"],
    )


def test_a_kept_packet_is_decided_by_a_later_ack() -> None:
    window = window_with(at(range(1, 5)))
    assert window.on_ack(Ack(3, 1, [1]), 1.0, LOSS_PACKETS, LOSS_DELAY_MS) == (2, [])
    # Same report later: now long enough ago.
    assert window.on_ack(Ack(3, 1, [1]), 10.0, LOSS_PACKETS, LOSS_DELAY_MS) == (0, [frame(1)])
    window = window_with(at(range(1, 5)))
    assert window.on_ack(Ack(3, 1, [1]), 1.0, LOSS_PACKETS, LOSS_DELAY_MS) == (2, [])
    # It was only reordered: the next ack has it.
    assert window.on_ack(Ack(4, 1, []), 2.0, LOSS_PACKETS, LOSS_DELAY_MS) == (2, [])
    assert len(window) == 0


def test_stale_acks_change_nothing_and_largest_acked_never_decreases() -> None:
    window = window_with(at(range(1, 6)))
    window.on_ack(Ack(4, 1, []), 1.0, LOSS_PACKETS, LOSS_DELAY_MS)
    assert window.largest_acked == 4
    assert window.on_ack(Ack(2, 1, []), 2.0, LOSS_PACKETS, LOSS_DELAY_MS) == (0, [])
    assert window.largest_acked == 4
    assert len(window) == 1


def test_give_up_older_than() -> None:
    window = window_with([(1, 0.0), (2, 5.0), (3, 10.0)])
    assert window.give_up_older_than(0.0) == 0
    assert window.give_up_older_than(5.0) == 1  # sent exactly at the cutoff: kept
    assert (len(window), window.bytes_in_flight, window.oldest(0)) == (2, size(2) + size(3), 2)
    assert window.give_up_older_than(10.5) == 2
    assert (len(window), window.bytes_in_flight, window.oldest(0)) == (0, 0, 0)


def test_oldest_and_clear() -> None:
    window = SendWindow()
    assert window.oldest(default=7) == 7
    window.sent(3, [b"x"], 10, 0.0)
    window.sent(4, [b"y"], 20, 0.0)
    assert window.oldest(default=7) == 3
    window.clear()
    assert (len(window), window.bytes_in_flight, window.oldest(default=9)) == (0, 0, 9)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 1_500), st.integers(1, 3)),
        st.tuples(
            st.just("ack"),
            st.integers(-2, 40),  # largest, relative to the next counter
            st.integers(0, 30),  # floor
            st.lists(st.integers(0, 60), max_size=8),  # missing
        ),
        st.tuples(st.just("time"), st.floats(0.0, 20.0)),
        st.tuples(st.just("give_up"), st.floats(0.0, 30.0)),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


@given(OPS)
def test_send_window_bookkeeping(ops: list[tuple]) -> None:
    """Every packet sent is acked, lost, given up, cleared or still in flight,
    exactly once; `bytes_in_flight` is the sum of what is held."""
    window = SendWindow()
    now, next_counter = 0.0, 1
    sizes: dict[int, int] = {}
    sent = acked = given_up = cleared = 0
    lost: list[bytes] = []
    for op in ops:
        if op[0] == "send":
            _, packet_size, step = op
            next_counter += step  # control-only packets use counters too
            window.sent(next_counter, [next_counter.to_bytes(8, "big")], packet_size, now)
            sizes[next_counter] = packet_size
            sent += 1
        elif op[0] == "ack":
            _, largest, floor, missing = op
            ack = Ack(max(0, next_counter + largest), floor, sorted(set(missing)))
            newly_acked, newly_lost = window.on_ack(ack, now, LOSS_PACKETS, LOSS_DELAY_MS)
            acked += newly_acked
            lost.extend(newly_lost)
        elif op[0] == "time":
            now += op[1]
        elif op[0] == "give_up":
            given_up += window.give_up_older_than(now - op[1])
        else:
            cleared += len(window)
            window.clear()
        held = list(window._in_flight)
        assert held == sorted(held)
        assert window.bytes_in_flight == sum(sizes[c] for c in held)
        assert window.oldest(default=0) == (held[0] if held else 0)
        assert sent == acked + len(lost) + given_up + cleared + len(window)
    lost_counters = [int.from_bytes(f, "big") for f in lost]
    assert len(set(lost_counters)) == len(lost_counters)
    assert not set(lost_counters) & set(window._in_flight)


def test_send_window_bookkeeping_random_walk() -> None:
    """A long seeded run of the same bookkeeping with realistic acks from a
    receive window over a lossy, reordering path."""
    rng = random.Random(2026)
    sender, receiver = SendWindow(), ReceiveWindow()
    now, counter, sizes = 0.0, 0, {}
    in_transit: list[tuple[int, int]] = []
    delivered = acked_total = 0
    lost_total: list[bytes] = []
    for _ in range(5_000):
        now += rng.uniform(0.0, 2.0)
        if rng.random() < 0.6:
            counter += 1
            sizes[counter] = rng.randint(1, 1_400)
            horizon = sender.oldest(default=counter)  # stamped at sealing, as `Peer` does
            sender.sent(counter, [counter.to_bytes(8, "big")], sizes[counter], now)
            if rng.random() > 0.1:  # 10% loss
                in_transit.append((counter, horizon))
        if in_transit and rng.random() < 0.5:
            arriving, horizon = in_transit.pop(rng.randrange(min(3, len(in_transit))))
            if receiver.is_new(arriving):
                receiver.mark(arriving, horizon)
                delivered += 1
        if rng.random() < 0.2:
            newly_acked, newly_lost = sender.on_ack(receiver.ack(16), now, 3, 10.0)
            acked_total += newly_acked
            lost_total.extend(newly_lost)
        assert sender.bytes_in_flight == sum(sizes[c] for c in sender._in_flight)
    assert counter == acked_total + len(lost_total) + len(sender)
    assert acked_total <= delivered
    assert acked_total > 0  # the run exercised both paths
    assert lost_total
