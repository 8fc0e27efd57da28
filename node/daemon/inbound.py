"""What peers gossip, read: one loop per topic, its decoding and hand-off from a table.

Transactions go to ingest, consensus messages (after their signatures are
checked: nothing is fed or relayed unverified) and catch-up messages to the
consensus driver. A message that does not decode is counted and dropped; a
peer that keeps sending consensus messages with bad signatures is muted, its
messages then dropped before they are even decoded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from consensus.guard import PeerGuard
from consensus.messages import ProposalMessage
from consensus.sync import SyncRequest, SyncResponse
from net.config import SUBSCRIBER_CAPACITY
from net.driver import GossipNode
from net.gossip import Delivery
from net.identity import peer_id
from net.subscription import Subscription
from net.wire import Topic
from node.daemon.consensus import ConsensusDriver
from node.daemon.ingest import Ingest
from node.daemon.limits import PEER_MUTE_S, TX_DELIVERIES_BUFFERED
from node.daemon.messages import VoteBundle, decode_consensus, decode_sync, decode_txs
from sequencer.errors import DecodeError
from sequencer.types import Transaction, Vote

__all__ = ["Inbound", "Reader"]

log = logging.getLogger("sequencer.node")


class Reader(NamedTuple):
    """A gossip topic's reader: decode, hand on, count what does not decode."""

    decode: Callable[[bytes], Any]
    handle: Callable[[Any, Delivery], None]
    malformed: Callable[[], None]
    buffered: int = SUBSCRIBER_CAPACITY  # deliveries its subscription holds
    screen: Callable[[Delivery], bool] = lambda delivery: True  # False: dropped unread


class Inbound:
    def __init__(self, gossip: GossipNode, ingest: Ingest, consensus: ConsensusDriver) -> None:
        self._gossip = gossip
        self._ingest = ingest
        self._consensus = consensus
        self.peer_guard = PeerGuard(mute_ms=PEER_MUTE_S * 1000.0)

    def readers(self) -> dict[Topic, Reader]:
        """How each gossip topic's messages are decoded and handed on."""
        return {
            Topic.TX: Reader(decode_txs, self._on_txs, self._malformed_txs, TX_DELIVERIES_BUFFERED),
            Topic.CONSENSUS: Reader(
                decode_consensus,
                self._on_consensus,
                self._malformed_consensus,
                screen=self._unmuted,
            ),
            Topic.SYNC: Reader(decode_sync, self._on_sync, self._malformed_consensus),
        }

    async def read(self, channel: Subscription, reader: Reader) -> None:
        """One topic's deliveries: screened (before any decoding), decoded,
        handed on; a message that does not decode is counted and dropped."""
        async for delivery in channel:
            if not reader.screen(delivery):
                continue
            try:
                message = reader.decode(delivery.data)
            except DecodeError:
                reader.malformed()
                continue
            reader.handle(message, delivery)

    def _malformed_txs(self) -> None:
        self._ingest.counts["peer_malformed"] += 1

    def _malformed_consensus(self) -> None:
        self._consensus.counts["malformed"] += 1

    def _on_txs(self, txs: list[Transaction], _delivery: Delivery) -> None:
        self._ingest.from_peer(txs)

    def _on_sync(self, message: SyncRequest | SyncResponse, delivery: Delivery) -> None:
        self._consensus.on_sync(message, delivery.peer)

    def _unmuted(self, delivery: Delivery) -> bool:
        if not self.peer_guard.muted(delivery.peer, time.monotonic() * 1000.0):
            return True
        self._consensus.counts["peer_muted_dropped"] += 1
        return False

    def _on_consensus(
        self, message: ProposalMessage | Vote | VoteBundle, delivery: Delivery
    ) -> None:
        consensus = self._consensus
        counts = consensus.counts
        messages = message.votes if isinstance(message, VoteBundle) else [message]
        # Checked before anything is fed or relayed: one bad signature and the
        # whole message is dropped, and its peer (which honest nodes never are:
        # they relay only what verified) loses credit.
        verdicts = [consensus.host.signature_verdict(m) for m in messages]
        if False in verdicts:
            counts["bad_signature_messages"] += 1
            if self.peer_guard.bad_signature(delivery.peer, time.monotonic() * 1000.0):
                counts["peers_muted"] += 1
                log.warning(
                    "peer %s keeps delivering consensus messages whose signatures do not"
                    " verify: its consensus messages are dropped unchecked for %.0f s",
                    peer_id(delivery.peer),
                    PEER_MUTE_S,
                )
            return
        for item in messages:
            consensus.on_message(item)
        if True in verdicts:
            self._gossip.forward(delivery)
