"""The peer guard and the remembering verifier (`consensus.guard`)."""

from __future__ import annotations

from consensus.guard import PeerGuard, RememberingVerifier


def test_a_peer_is_muted_past_its_allowance_and_unmuted_after() -> None:
    guard = PeerGuard(allowance=3, per_s=1.0, mute_ms=10_000.0)
    assert [guard.bad_signature("p", 0.0) for _ in range(4)] == [False, False, False, True]
    assert guard.muted("p", 9_999.0)
    assert not guard.muted("q", 5_000.0)  # another peer is not touched
    assert not guard.muted("p", 10_000.0)


def test_the_allowance_refills_with_time() -> None:
    guard = PeerGuard(allowance=2, per_s=1.0, mute_ms=10_000.0)
    for second in range(100):  # one bad signature a second: within the refill
        assert not guard.bad_signature("p", second * 1_000.0)
    assert not guard.muted("p", 100_000.0)


def test_the_verifier_remembers_only_what_verified() -> None:
    calls: list[bytes] = []

    def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(signature)
        return signature == b"good"

    verifier = RememberingVerifier(verify, size=2)
    assert verifier(b"k", b"m", b"good")
    assert verifier(b"k", b"m", b"good")
    assert not verifier(b"k", b"m", b"bad")
    assert not verifier(b"k", b"m", b"bad")
    assert calls == [b"good", b"bad", b"bad"]  # a failure is checked every time
    verifier(b"k", b"m2", b"good")
    verifier(b"k", b"m3", b"good")  # the first falls out of a cache of two
    verifier(b"k", b"m", b"good")
    assert calls.count(b"good") == 4
