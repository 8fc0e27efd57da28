"""What the gossip core and its driver report: frozen records, read by field.

`Gossip.statistics()` answers a `GossipStatistics`, `GossipNode.statistics()`
a `GossipNodeStatistics` holding it and the fault injector's. Counters count
since the start; the rest (peers, queues, caches) is the state now. Counts
that vary by what they count are mappings: drops by reason (the names
`net.gossip` and `net.mesh` give), messages and bytes by topic.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping

from msgspec import Struct

from net.faults import FaultStatistics
from net.peer import PeerState
from net.wire import Topic

__all__ = ["GossipNodeStatistics", "GossipStatistics", "TopicTraffic"]


class TopicTraffic:
    """Messages and payload bytes by topic, in one direction (the core's tally)."""

    __slots__ = ("bytes", "messages")

    def __init__(self) -> None:
        self.messages: collections.Counter[Topic] = collections.Counter()
        self.bytes: collections.Counter[Topic] = collections.Counter()

    def count(self, topic: Topic, size: int) -> None:
        self.messages[topic] += 1
        self.bytes[topic] += size


class GossipStatistics(Struct, frozen=True):
    """The gossip core's counters and state (all zero before the node runs)."""

    # Messages: published and sent to one peer by us, fragmented, delivered
    # to subscribers, duplicates of ones seen, relayed (peer copies queued).
    messages_published: int = 0
    messages_sent_direct: int = 0
    messages_fragmented: int = 0
    messages_delivered: int = 0
    messages_duplicate: int = 0
    messages_relayed: int = 0
    fragments_duplicate: int = 0
    send_queue_full: int = 0  # a peer's queue refused a message
    datagrams_sent: int = 0
    bytes_sent: int = 0
    datagrams_received: int = 0
    bytes_received: int = 0
    frames_retransmitted: int = 0
    packets_given_up: int = 0
    path_probes: int = 0
    peer_sessions: int = 0  # sessions of peers begun (first contact, their restarts)
    session_conflicts: int = 0  # a peer's older session heard after its newer one
    session_restarts: int = 0  # ours, after no peer heard from us
    peers_went_down: int = 0
    isolations: int = 0  # times every peer went down
    dropped: Mapping[str, int] = {}  # datagrams and messages, by reason
    topic_messages_in: Mapping[Topic, int] = {}
    topic_bytes_in: Mapping[Topic, int] = {}
    topic_messages_out: Mapping[Topic, int] = {}
    topic_bytes_out: Mapping[Topic, int] = {}
    # State now.
    peers: Mapping[PeerState, int] = {}  # configured peers, by state
    seen_cache_ids: int = 0
    backlog_bytes: int = 0
    reassembly_bytes: int = 0
    reassembly_partials: int = 0
    reassembly_evicted: int = 0
    rtt_ms_max: float = math.nan  # NaN until a peer answered a ping


class GossipNodeStatistics(Struct, frozen=True):
    """The driver's view: the core's, the fault injector's, and its own queues."""

    gossip: GossipStatistics
    faults: FaultStatistics
    receive_errors: int = 0
    send_errors: int = 0
    outbox_dropped: int = 0  # the send queue was full: lost like on the wire
    subscriber_dropped: int = 0  # a subscriber's queue was full
    inbox_full: int = 0  # datagrams dropped: their peer's receive queue was full
    outbox_datagrams: int = 0
    inbox_datagrams: int = 0

    @property
    def dropped(self) -> Mapping[str, int]:
        """Every drop by reason: the core's, and the driver's `inbox_full`."""
        return {**self.gossip.dropped, "inbox_full": self.inbox_full}
