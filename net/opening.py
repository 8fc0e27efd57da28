"""Opening a datagram, the first step of the gossip core's receive path:
whose it is, whether it is of a session we accept, new, and genuine.

Nothing it carries is read here; `Gossip.receive_datagram` decodes and
handles the frames of what opened. A datagram that does not open is dropped
under one reason, which `DatagramOpener.open` returns for the core to count.
"""

from __future__ import annotations

import collections
from typing import NamedTuple

from net.link import open_datagram
from net.peer import Peer
from net.wire import HEADER, VERSION

__all__ = ["SESSION_OVERLAP_MS", "DatagramOpener", "Opened"]

# Datagrams of a peer's previous session may still arrive this long after its
# new one began (reordering, a restart's last sends) without meaning anything.
SESSION_OVERLAP_MS = 2_000.0


class Opened(NamedTuple):
    """A datagram that authenticated: whose, its packet number, what it carries."""

    peer: Peer
    counter: int
    horizon: int
    payload: bytes
    fresh: bool  # it echoes a session of ours: the peer has heard this run


class DatagramOpener:
    """Opens datagrams from the configured `peers` (by sender tag), whose
    sessions it starts; counts into the core's `counts` and `session_conflicts`."""

    def __init__(
        self,
        peers: dict[bytes, Peer],
        datagram_bytes_max: int,
        counts: collections.Counter[str],
        session_conflicts: collections.Counter[bytes],
    ) -> None:
        self._peers = peers
        self._datagram_bytes_max = datagram_bytes_max
        self._counts = counts
        self._session_conflicts = session_conflicts

    def open(
        self,
        data: bytes,
        address: tuple[str, int],
        first_session: int,
        session: int,
        now_ms: float,
    ) -> Opened | str:
        """The datagram opened, or the reason it is dropped. Our sessions of
        this run are [`first_session`, `session`]: any other echo was of an
        earlier run."""
        if len(data) > self._datagram_bytes_max:
            return "oversized"
        if len(data) < HEADER.size + 16:
            return "malformed"
        version, tag, peer_session, echo, counter, horizon = HEADER.unpack_from(data)
        if version != VERSION or counter == 0:
            return "malformed"
        peer = self._peers.get(tag)
        if peer is None:
            return "unknown_peer"
        if echo and not first_session <= echo <= session:
            # Sent to an earlier run of this node: a replay after our restart
            # (our receive windows start empty), or a peer that has not heard
            # this run yet. Its resends will carry our new session once it
            # hears us; if it moved meanwhile, a path probe finds it.
            if (
                peer.wants_path_probe(address, now_ms)
                and peer_session >= peer.session
                and open_datagram(peer.keys.receiving_cipher(peer_session), data, counter)
                is not None
            ):
                peer.probe_address = address
            return "stale"
        if peer_session < peer.session:
            self._check_conflict(peer, peer_session, data, counter, now_ms)
            return "replayed"  # from a session the peer has left
        new_session = peer_session > peer.session
        if not new_session and not peer.received.is_new(counter):
            return "replayed"
        cipher = peer.keys.receiving_cipher(peer_session) if new_session else peer.receive_cipher
        assert cipher is not None
        payload = open_datagram(cipher, data, counter)
        if payload is None:
            return "unauthenticated"
        if new_session:
            peer.start_session(peer_session, cipher, now_ms)
            self._counts["peer_sessions"] += 1
        return Opened(peer, counter, horizon, payload, echo != 0)

    def _check_conflict(
        self, peer: Peer, session: int, data: bytes, counter: int, now_ms: float
    ) -> None:
        """A genuine datagram of the peer's previous session, well after its
        new one began: its key is running in two processes at once (the
        newer one took over; the older one is cut off until it restarts its
        session). Counted per peer, for the node to log and export."""
        if (
            session != peer.previous_session
            or peer.previous_cipher is None
            or now_ms - peer.session_started_ms < SESSION_OVERLAP_MS
            or open_datagram(peer.previous_cipher, data, counter) is None
        ):
            return
        self._counts["session_conflicts"] += 1
        self._session_conflicts[peer.public_key] += 1
