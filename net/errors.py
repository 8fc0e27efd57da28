"""The exception tree of `net`.

    SequencerError (sequencer.errors)
    └── NetError
        ├── InvalidPeerIdError     a string that is not an Ed25519 libp2p peer id
        ├── InvalidMultiaddrError  text that is not /ip4|ip6/<addr>/udp/<port>[/p2p/<id>]
        ├── NetConfigError         a gossip setting out of range, or a bad peer list
        ├── MessageTooLargeError   a message above gossip.message_bytes_max
        └── BacklogFullError       `publish_nowait` while the outbound backlog is full

Datagrams from peers never raise: they are dropped and counted.
"""

from __future__ import annotations

from sequencer.errors import SequencerError

__all__ = [
    "BacklogFullError",
    "InvalidMultiaddrError",
    "InvalidPeerIdError",
    "MessageTooLargeError",
    "NetConfigError",
    "NetError",
]


class NetError(SequencerError):
    """Base class of the network package's errors."""


class InvalidPeerIdError(NetError, ValueError):
    """Not the peer id of an Ed25519 key."""


class InvalidMultiaddrError(NetError, ValueError):
    """Not a UDP multiaddr this network can use (`net.multiaddr`)."""


class NetConfigError(NetError, ValueError):
    """A gossip setting out of range, or a peer list that cannot work."""


class MessageTooLargeError(NetError, ValueError):
    """A message above `gossip.message_bytes_max`: it cannot be sent."""


class BacklogFullError(NetError):
    """The outbound backlog is full: wait (`publish`) or drop the message."""
