"""Consensus input from peers that lie: remembered signatures, muted peers.

Every vote or proposal a peer delivers may cost its receiver an Ed25519 check
(about 40 µs). A byzantine validator can send tens of thousands of well-formed
votes with signatures that do not verify each second, at a small fraction of
its gossip budget, and so keep an honest node's consensus busy checking junk
while honest votes wait. Honest nodes never deliver such votes: they send
their own, and relay only what they checked themselves (the gossip layer
holds consensus messages back until the node found them valid). So a peer
that delivers bad signatures is byzantine or broken, and after a small
allowance its consensus messages are dropped unchecked for a while.

Pure: time comes in as an argument.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["PeerGuard", "RememberingVerifier"]


class RememberingVerifier:
    """A signature verifier that remembers what verified: a message the node
    checked before handing it on is not checked again by the core."""

    def __init__(self, verify: Callable[[bytes, bytes, bytes], bool], size: int = 8_192) -> None:
        self._verify = verify
        self._size = size
        self._good: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()

    def __call__(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, message, signature)
        if key in self._good:
            self._good.move_to_end(key)
            return True
        if not self._verify(public_key, message, signature):
            return False
        self._good[key] = None
        if len(self._good) > self._size:
            self._good.popitem(last=False)
        return True


class PeerGuard:
    """Counts bad signatures per peer (a token bucket: `allowance` at once,
    refilled at `per_s`); a peer past it is muted for `mute_ms`."""

    def __init__(self, allowance: int = 20, per_s: float = 1.0, mute_ms: float = 60_000.0) -> None:
        self._allowance = float(allowance)
        self._per_ms = per_s / 1000.0
        self._mute_ms = mute_ms
        self._credit: dict[Hashable, tuple[float, float]] = {}  # (tokens, at)
        self._muted_until: dict[Hashable, float] = {}

    def muted(self, peer: Hashable, now_ms: float) -> bool:
        until = self._muted_until.get(peer)
        if until is None:
            return False
        if now_ms < until:
            return True
        del self._muted_until[peer]
        return False

    def bad_signature(self, peer: Hashable, now_ms: float) -> bool:
        """Count one; True when it mutes the peer."""
        tokens, at = self._credit.get(peer, (self._allowance, now_ms))
        tokens = min(self._allowance, tokens + max(0.0, now_ms - at) * self._per_ms) - 1.0
        self._credit[peer] = (max(tokens, 0.0), now_ms)
        if tokens >= 0.0:
            return False
        self._muted_until[peer] = now_ms + self._mute_ms
        return True
