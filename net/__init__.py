"""Peer identities and, in later issues, the UDP gossip network (DESIGN 5).

The gossip core is sans-IO (it takes `now` and a seeded `random.Random`);
only its trio driver touches sockets. Errors: see `net.errors`.
"""

from __future__ import annotations

from net.errors import InvalidPeerIdError, NetError
from net.identity import peer_id, public_key_from_peer_id

__all__ = ["InvalidPeerIdError", "NetError", "peer_id", "public_key_from_peer_id"]
