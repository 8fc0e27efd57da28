"""The exception tree of `net`.

    SequencerError (sequencer.errors)
    └── NetError
        └── InvalidPeerIdError   a string that is not an Ed25519 libp2p peer id

Datagrams from peers never raise: they are dropped and counted.
"""

from __future__ import annotations

from sequencer.errors import SequencerError

__all__ = ["InvalidPeerIdError", "NetError"]


class NetError(SequencerError):
    """Base class of the network package's errors."""


class InvalidPeerIdError(NetError, ValueError):
    """Not the peer id of an Ed25519 key."""
