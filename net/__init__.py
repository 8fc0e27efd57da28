"""The UDP gossip network: libp2p-style identities, sealed
datagrams, reliable links, mesh gossip, fault injection.

    identity.py   peer ids of Ed25519 keys          multiaddr.py  /ip4/.../udp/N/p2p/ID
    wire.py       datagram header and frames        link.py       keys, replay window, acks, loss
    fragments.py  split and reassemble messages     seen.py       the seen-cache
    mesh.py       the mesh and relay choice         peer.py       per-peer state
    gossip.py     the sans-IO core                  faults.py     fault injection
    driver.py     the trio shell: one socket, one timer
    config.py     limits and timings                errors.py     the exception tree

The core takes `now` and never touches a socket or the clock; only the driver
does. Datagrams from peers never raise: they are dropped and counted.
"""

from __future__ import annotations

from net.config import GossipConfig
from net.driver import GossipNode, PeerStatus
from net.errors import (
    BacklogFullError,
    InvalidMultiaddrError,
    InvalidPeerIdError,
    MessageTooLargeError,
    NetConfigError,
    NetError,
)
from net.faults import FaultConfig
from net.gossip import Delivery, Gossip, PeerAddress
from net.identity import peer_id, public_key_from_peer_id
from net.multiaddr import Multiaddr, parse_multiaddr
from net.wire import Topic

__all__ = [
    "BacklogFullError",
    "Delivery",
    "FaultConfig",
    "Gossip",
    "GossipConfig",
    "GossipNode",
    "InvalidMultiaddrError",
    "InvalidPeerIdError",
    "MessageTooLargeError",
    "Multiaddr",
    "NetConfigError",
    "NetError",
    "PeerAddress",
    "PeerStatus",
    "Topic",
    "parse_multiaddr",
    "peer_id",
    "public_key_from_peer_id",
]
