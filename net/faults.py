"""Fault injection in the transport: loss, duplication, delay, reordering and
partitions, on real sockets, switchable at run time.

`FaultInjector` is pure: it takes `now` and a seeded `random.Random`, and
tells the driver when to put each outgoing datagram on the wire (never, once,
or twice) and whether to accept an incoming one. Outgoing faults act on our
sends; `blocked_from` drops what given peers send us, so one node can be cut
off completely, or in one direction only, by configuring that node alone.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping

from msgspec import Struct

from net.errors import InvalidPeerIdError, NetConfigError
from net.identity import public_key_from_peer_id
from net.wire import HEADER, SENDER_TAG_BYTES

__all__ = ["FaultConfig", "FaultInjector", "FaultStatistics"]


@dataclasses.dataclass(frozen=True, slots=True)
class FaultConfig:
    drop: float = 0.0  # probability an outgoing datagram is lost
    duplicate: float = 0.0  # probability it is sent twice
    delay: float = 0.0  # probability it is held for up to `delay_ms_max`
    delay_ms_max: float = 0.0
    reorder: float = 0.0  # probability it is held up to `reorder_ms_max`, letting later ones pass
    reorder_ms_max: float = 5.0
    # Public keys of peers we cannot send to, and whose datagrams we drop.
    blocked_to: frozenset[bytes] = frozenset()
    blocked_from: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "delay", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise NetConfigError(f"faults.{name} is a probability in [0, 1], got {value!r}")
        for name in ("delay_ms_max", "reorder_ms_max"):
            value = getattr(self, name)
            if not 0.0 <= value <= 60_000.0:
                raise NetConfigError(f"faults.{name} must be in [0, 60000] ms, got {value!r}")

    @property
    def active(self) -> bool:
        return self != FaultConfig()

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> FaultConfig:
        """From a config table; peers are given as 32-byte public keys."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise NetConfigError(f"unknown faults setting: {unknown[0]}")
        settings = dict(values)
        for name in ("blocked_to", "blocked_from"):
            if name in settings:
                settings[name] = _public_keys(name, settings[name])
        try:
            return cls(**settings)  # type: ignore[arg-type]
        except TypeError as error:
            raise NetConfigError(f"bad faults settings: {error}") from None

    @staticmethod
    def isolating(me: bytes, reachable: set[bytes], everyone: set[bytes]) -> FaultConfig:
        """Faults that cut `me` off from every peer outside `reachable`, both ways."""
        others = frozenset(everyone - reachable - {me})
        return FaultConfig(blocked_to=others, blocked_from=others)


class FaultStatistics(Struct, frozen=True):
    """Datagrams the injector dropped, sent twice, held back, or blocked (either way)."""

    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    blocked: int = 0


def _public_keys(name: str, values: object) -> frozenset[bytes]:
    """Peers as 32-byte keys, or as peer ids (`12D3KooW...`) or hex strings."""
    if not isinstance(values, list | tuple | set | frozenset):
        raise NetConfigError(f"faults.{name} must be a list of peers, got {values!r}")
    keys = set()
    for value in values:
        if isinstance(value, bytes) and len(value) == 32:
            keys.add(value)
        elif isinstance(value, str) and value.startswith("12D3KooW"):
            try:
                keys.add(public_key_from_peer_id(value))
            except InvalidPeerIdError as error:
                raise NetConfigError(f"faults.{name}: {error}") from None
        elif isinstance(value, str) and len(value) == 64:
            try:
                keys.add(bytes.fromhex(value))
            except ValueError:
                raise NetConfigError(f"faults.{name}: not hex: {value!r}") from None
        else:
            raise NetConfigError(f"faults.{name}: not a peer id or public key: {value!r}")
    return frozenset(keys)


class FaultInjector:
    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._blocked_from_tags = frozenset(key[:SENDER_TAG_BYTES] for key in config.blocked_from)
        self.dropped = 0
        self.duplicated = 0
        self.delayed = 0
        self.blocked = 0

    def reconfigure(self, config: FaultConfig) -> None:
        self.config = config
        self._blocked_from_tags = frozenset(key[:SENDER_TAG_BYTES] for key in config.blocked_from)

    def outbound(self, peer: bytes, now_ms: float) -> list[float]:
        """Times at which to send a datagram to `peer` (empty: it is lost)."""
        config = self.config
        if peer in config.blocked_to:
            self.blocked += 1
            return []
        rng = self._rng
        if config.drop and rng.random() < config.drop:
            self.dropped += 1
            return []
        copies = 2 if config.duplicate and rng.random() < config.duplicate else 1
        self.duplicated += copies - 1
        return [self._release_time(now_ms) for _ in range(copies)]

    def _release_time(self, now_ms: float) -> float:
        config = self.config
        rng = self._rng
        at = now_ms
        if config.delay and rng.random() < config.delay:
            at += rng.uniform(0.0, config.delay_ms_max)
            self.delayed += 1
        if config.reorder and rng.random() < config.reorder:
            at += rng.uniform(0.0, config.reorder_ms_max)
            self.delayed += 1
        return at

    def inbound(self, datagram: bytes) -> bool:
        """Whether to accept a datagram (only the sender tag is looked at)."""
        if not self._blocked_from_tags or len(datagram) < HEADER.size:
            return True
        if datagram[1 : 1 + SENDER_TAG_BYTES] in self._blocked_from_tags:
            self.blocked += 1
            return False
        return True

    def statistics(self) -> FaultStatistics:
        return FaultStatistics(self.dropped, self.duplicated, self.delayed, self.blocked)
