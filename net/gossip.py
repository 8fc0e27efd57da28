"""The sans-IO gossip core, in the shape of aioquic's connection:

    receive_datagram(data, address, now_ms)     a datagram from the socket
    publish(topic, data, now_ms) -> id          gossip to every node
    send(public_key, topic, data, now_ms)       one peer, not forwarded
    handle_timer(now_ms) / get_timer()          the one timer the driver runs
    datagrams_to_send(now_ms)                   what to put on the wire
    deliveries()                                messages for subscribers

Nothing here reads a clock, draws unseeded randomness or touches a socket.
Datagrams from peers never raise: each is delivered, or dropped and counted
under one reason in `statistics()`. A datagram is first opened (whose, of
which session, new, genuine) by `net.opening`; its frames are handled here.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any, get_args

import msgspec

from net.config import GossipConfig
from net.errors import MessageTooLargeError, NetConfigError
from net.fragments import FRAGMENT_OVERHEAD_BYTES, fragment_message, join
from net.link import LinkKeys
from net.mesh import RelayRoutes, refused_origin
from net.opening import SESSION_OVERLAP_MS, DatagramOpener
from net.peer import Peer, PeerState
from net.seen import SeenCache
from net.stats import GossipStatistics, TopicTraffic
from net.wire import (
    DIRECT_TOPICS,
    HEADER_TAG,
    PAYLOAD_HEADER_BYTES,
    SENDER_TAG_BYTES,
    Ack,
    Fragment,
    Frame,
    Message,
    Ping,
    Pong,
    Topic,
    decode_payload,
    encode_frame,
    message_id,
)

__all__ = ["SESSION_OVERLAP_MS", "Delivery", "Gossip", "PeerAddress"]


@dataclasses.dataclass(frozen=True, slots=True)
class PeerAddress:
    public_key: bytes
    address: tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """A message for subscribers: new to this node, delivered once."""

    topic: Topic
    data: bytes
    id: bytes
    peer: bytes  # public key of the peer it came from
    origin: bytes  # sender tag of the node that published it
    # Held back for `Gossip.forward`: a topic validated before it is relayed.
    held: bool = False


class Gossip:
    def __init__(
        self,
        seed: bytes,
        public_key: bytes,
        peers: Iterable[PeerAddress],
        config: GossipConfig,
        session: int,
        now_ms: float,
        validated_topics: Iterable[Topic] = (),
    ) -> None:
        """Messages of `validated_topics` are relayed only once the subscriber
        found them valid (`forward`): a node passes on no junk it could check."""
        self._config = config
        self._validated = frozenset(validated_topics)
        self.public_key = public_key
        self.tag = public_key[:SENDER_TAG_BYTES]
        if session < 1:
            raise NetConfigError(f"a session is at least 1 (0 means none), got {session}")
        self.session = session
        # Peers echo a session of this run, or 0 before they heard us: any
        # other echo was of an earlier run (see `DatagramOpener.open`).
        self._first_session = session
        self._peers: dict[bytes, Peer] = {}
        for entry in peers:
            self._add_peer(seed, entry, now_ms)
        self._relay_routes = RelayRoutes(self.tag, self._peers, config.mesh_degree)
        self._seen = SeenCache(config.seen_cache_max, config.seen_ttl_ms)
        self._deliveries: list[Delivery] = []
        self._next_tick_ms = now_ms
        self._session_started_ms = now_ms
        # Named as `GossipStatistics`' counters; drops by reason, traffic by topic.
        self.counts: collections.Counter[str] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()
        self.traffic_in = TopicTraffic()
        self.traffic_out = TopicTraffic()
        self.session_conflicts: collections.Counter[bytes] = collections.Counter()
        self._opener = DatagramOpener(
            self._peers, config.datagram_bytes_max, self.counts, self.session_conflicts
        )
        # One handler per frame kind, each saying whether its frame asks for
        # an acknowledgement. `decode_payload` yields only `Frame`s, and every
        # one of them has its handler here.
        self._frame_handlers: dict[type, Callable[[Peer, Any, float], bool]] = {
            Message: self._on_message,
            Fragment: self._on_fragment,
            Ack: self._on_ack,
            Ping: self._on_ping,
            Pong: self._on_pong,
        }
        assert self._frame_handlers.keys() == set(get_args(Frame))

    def _add_peer(self, seed: bytes, entry: PeerAddress, now_ms: float) -> None:
        tag = entry.public_key[:SENDER_TAG_BYTES]
        if entry.public_key == self.public_key:
            return  # our own entry in a shared peer list
        if tag in self._peers or tag == self.tag:
            raise NetConfigError(f"two peers share the key prefix {tag.hex()}")
        if len(self._peers) >= self._config.peers_max:
            raise NetConfigError(f"at most {self._config.peers_max} peers fit this datagram size")
        try:
            keys = LinkKeys(seed, self.public_key, entry.public_key)
        except ValueError as error:
            raise NetConfigError(str(error)) from None
        self._peers[tag] = Peer(keys, entry.address, self.session, self._config, now_ms)

    # -------------------------------------------------------------- publishing

    def publish(self, topic: Topic, data: bytes, now_ms: float) -> bytes:
        """Gossip `data` to every node; returns its message id.

        Publishing an id seen before sends it again: that is how a node
        re-announces a message to peers that may have missed it."""
        if topic in DIRECT_TOPICS:
            raise NetConfigError(f"{topic.name} messages go to one peer (`send`), never gossip")
        id_ = self._check_size(topic, data)
        self._seen.add(id_, now_ms)
        frames, size = self._frames(id_, topic, self.tag, True, data)
        targets = self._relay_routes.neighbours()
        self._queue(targets, frames, size, topic, now_ms)
        self.counts["messages_published"] += 1
        self.traffic_out.count(topic, len(data))
        return id_

    def send(self, public_key: bytes, topic: Topic, data: bytes, now_ms: float) -> bool:
        """Send `data` to one peer, which delivers it and does not forward it.
        False when that peer is down or its queue is full."""
        id_ = self._check_size(topic, data)
        peer = self._peers.get(public_key[:SENDER_TAG_BYTES])
        if peer is None or peer.public_key != public_key:
            raise NetConfigError(f"not a configured peer: {public_key.hex()}")
        frames, size = self._frames(id_, topic, self.tag, False, data)
        self.counts["messages_sent_direct"] += 1
        self.traffic_out.count(topic, len(data))
        return self._queue([peer], frames, size, topic, now_ms) == 1

    def _check_size(self, topic: Topic, data: bytes) -> bytes:
        if len(data) > self._config.message_bytes_max:
            raise MessageTooLargeError(
                f"message of {len(data)} bytes, above gossip.message_bytes_max "
                f"({self._config.message_bytes_max})"
            )
        return message_id(topic, data)

    def _frames(
        self, id_: bytes, topic: Topic, origin: bytes, relay: bool, data: bytes
    ) -> tuple[list[bytes], int]:
        frame = encode_frame(Message(topic, origin, relay, data))
        if len(frame) <= self._config.payload_bytes_max - PAYLOAD_HEADER_BYTES:
            return [frame], len(frame)
        chunk = self._config.payload_bytes_max - PAYLOAD_HEADER_BYTES - FRAGMENT_OVERHEAD_BYTES
        frames = fragment_message(id_, topic, origin, relay, data, chunk)
        self.counts["messages_fragmented"] += 1
        return frames, sum(len(f) for f in frames)

    def _queue(
        self, peers: list[Peer], frames: list[bytes], size: int, topic: Topic, now_ms: float
    ) -> int:
        # Transactions wait for company in a datagram; consensus and sync do not.
        urgent = topic is not Topic.TX
        queued = 0
        for peer in peers:
            if peer.state is PeerState.DOWN:
                continue
            if peer.queue_data(frames, size, urgent, now_ms):
                queued += 1
            else:
                self.counts["send_queue_full"] += 1
        return queued

    # --------------------------------------------------------------- receiving

    def receive_datagram(self, data: bytes, address: tuple[str, int], now_ms: float) -> None:
        opened = self._opener.open(data, address, self._first_session, self.session, now_ms)
        if isinstance(opened, str):
            self._drop(opened)
            return
        peer, counter, horizon, payload, fresh = opened
        if peer.heard(address, counter, fresh, now_ms):
            self._peer_changed(now_ms)
        if not peer.admit(len(data), now_ms):
            self._drop("rate_limited")
            return  # not marked received: the peer will send it again
        self.counts["datagrams_received"] += 1
        self.counts["bytes_received"] += len(data)
        try:
            frames = decode_payload(payload)
        except msgspec.DecodeError:
            peer.received_packet(counter, horizon, False, now_ms)
            self._drop("malformed")
            return
        if not peer.admit_frames(len(frames), now_ms):
            self._drop("frame_rate_limited")
            return  # not marked received either
        eliciting = False
        ping: Ping | None = None
        for frame in frames:
            eliciting = self._on_frame(peer, frame, now_ms) or eliciting
            if isinstance(frame, Ping):
                ping = frame
        if ping is not None:
            # One Pong per datagram, to its last Ping: a datagram packed with
            # pings must not draw several times its size in replies (which a
            # peer spoofing its source address could aim at someone else).
            peer.queue_control(encode_frame(Pong(ping.nonce, self._alive_tags())), False)
        peer.received_packet(counter, horizon, eliciting, now_ms)

    def claimed_peer(self, data: bytes) -> bytes | None:
        """The configured peer whose sender tag `data`'s header carries, or
        None (too short, or nobody we know): a cheap look, before anything
        is checked, for the driver to queue datagrams per peer."""
        tag = data[HEADER_TAG]
        return tag if len(tag) == SENDER_TAG_BYTES and tag in self._peers else None

    def wants_new_session(self, now_ms: float) -> bool:
        """True when every peer we once heard went silent `rejoin_after_ms` ago.

        That is what a node sees when another process took over its key (its
        peers then refuse our older session), and also after a long cut. A
        new, newer session lets the peers take us back either way."""
        if not self._peers or now_ms - self._session_started_ms < self._config.rejoin_after_ms:
            return False
        last_heard = -math.inf
        for peer in self._peers.values():
            if peer.state is not PeerState.DOWN:
                return False
            last_heard = max(last_heard, peer.last_heard_ms)
        return now_ms - last_heard >= self._config.rejoin_after_ms

    def restart_session(self, session: int, now_ms: float) -> None:
        """Speak under a new session from now on (`session` > the current one)."""
        assert session > self.session
        self.session = session
        self._session_started_ms = now_ms
        for peer in self._peers.values():
            peer.restart_local_session(session)
            peer.ping_at_ms = now_ms
        self.counts["session_restarts"] += 1

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def _on_frame(self, peer: Peer, frame: Frame, now_ms: float) -> bool:
        """Handle one frame; True if it asks for an acknowledgement."""
        return self._frame_handlers[type(frame)](peer, frame, now_ms)

    def _on_message(self, peer: Peer, frame: Message, now_ms: float) -> bool:
        self._accept(peer, frame.topic, frame.origin, frame.relay, frame.data, None, now_ms)
        return True

    def _on_fragment(self, peer: Peer, frame: Fragment, now_ms: float) -> bool:
        self._reassemble(peer, frame, now_ms)
        return True

    def _on_ack(self, peer: Peer, frame: Ack, now_ms: float) -> bool:
        lost = peer.on_ack(frame, now_ms)
        self.counts["frames_retransmitted"] += len(lost)
        return False

    def _on_ping(self, peer: Peer, frame: Ping, now_ms: float) -> bool:
        self._on_report(peer, frame.alive, now_ms)
        return True  # answered once per datagram by `receive_datagram`

    def _on_pong(self, peer: Peer, frame: Pong, now_ms: float) -> bool:
        self._on_report(peer, frame.alive, now_ms)
        peer.rtt_ms = max(0.0, now_ms - frame.nonce / 1000)
        return False

    def _on_report(self, peer: Peer, alive: list[bytes], now_ms: float) -> None:
        if peer.reported(alive, now_ms):
            self._relay_routes.forget()

    def _reassemble(self, peer: Peer, frame: Fragment, now_ms: float) -> None:
        if frame.id in self._seen:
            self.counts["fragments_duplicate"] += 1
            return
        partial = peer.reassembler.add(frame, self._config.message_bytes_max, now_ms)
        if partial is None:
            return
        data = join(partial, frame.id)
        if data is None:
            self._drop("bad_reassembly")
            return
        self._accept(peer, partial.topic, partial.origin, partial.relay, data, frame.id, now_ms)

    def _accept(
        self,
        peer: Peer,
        topic: Topic,
        origin: bytes,
        relay: bool,
        data: bytes,
        id_: bytes | None,
        now_ms: float,
    ) -> None:
        if len(data) > self._config.message_bytes_max:
            self._drop("oversized_message")
            return
        reason = refused_origin(self.tag, self._peers, peer.tag, topic, origin, relay)
        if reason is not None:
            self._drop(reason)
            return
        if id_ is None:
            id_ = message_id(topic, data)
        if not self._seen.add(id_, now_ms):
            self.counts["messages_duplicate"] += 1
            return
        held = relay and topic in self._validated
        self._deliveries.append(Delivery(topic, data, id_, peer.public_key, origin, held))
        self.counts["messages_delivered"] += 1
        self.traffic_in.count(topic, len(data))
        if relay and not held:
            self._relay(topic, data, id_, origin, peer.tag, now_ms)

    def forward(self, delivery: Delivery, now_ms: float) -> None:
        """Relay a held delivery, which its subscriber found valid."""
        if delivery.held:
            peer = delivery.peer[:SENDER_TAG_BYTES]
            self._relay(delivery.topic, delivery.data, delivery.id, delivery.origin, peer, now_ms)

    def _relay(
        self, topic: Topic, data: bytes, id_: bytes, origin: bytes, sender: bytes, now_ms: float
    ) -> None:
        targets = self._relay_routes.targets(origin, sender, now_ms)
        if targets:
            frames, size = self._frames(id_, topic, origin, True, data)
            self.counts["messages_relayed"] += self._queue(targets, frames, size, topic, now_ms)

    def _peer_changed(self, now_ms: float) -> None:
        """A peer came or went: refresh routes, and tell everyone soon."""
        self._relay_routes.forget()
        for peer in self._peers.values():
            peer.ping_at_ms = min(peer.ping_at_ms, now_ms)

    def _alive_tags(self) -> list[bytes]:
        return [tag for tag, peer in self._peers.items() if peer.state is PeerState.ALIVE]

    # ------------------------------------------------------------------ output

    def deliveries(self) -> list[Delivery]:
        """Messages received since the last call, in arrival order."""
        out, self._deliveries = self._deliveries, []
        return out

    def datagrams_to_send(self, now_ms: float) -> list[tuple[bytes, tuple[str, int], bytes]]:
        """(datagram, address, peer public key) for everything due by `now_ms`."""
        out: list[tuple[bytes, tuple[str, int], bytes]] = []
        for peer in self._peers.values():
            if peer.probe_address is not None:
                probe = peer.path_probe(self.tag, self.session, self._alive_tags(), now_ms)
                if probe is not None:
                    out.append((probe[0], probe[1], peer.public_key))
                    self.counts["path_probes"] += 1
            if peer.next_deadline_ms() > now_ms:
                continue
            for datagram in peer.build_datagrams(self.tag, self.session, now_ms):
                out.append((datagram, peer.address, peer.public_key))
        self.counts["datagrams_sent"] += len(out)
        self.counts["bytes_sent"] += sum(len(entry[0]) for entry in out)
        return out

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float:
        """The time `handle_timer` or `datagrams_to_send` next has work."""
        deadline = self._next_tick_ms
        for peer in self._peers.values():
            deadline = min(deadline, peer.next_deadline_ms())
        return deadline

    def handle_timer(self, now_ms: float) -> None:
        if now_ms < self._next_tick_ms:
            return
        self._next_tick_ms = now_ms + self._config.tick_ms
        alive = self._alive_tags()
        any_went_down = False
        for peer in self._peers.values():
            went_down, given_up = peer.tick(now_ms, alive)
            self.counts["packets_given_up"] += given_up
            if went_down:
                any_went_down = True
                self.counts["peers_went_down"] += 1
                self._peer_changed(now_ms)
        if any_went_down and not any(p.state is PeerState.ALIVE for p in self._peers.values()):
            # The last peer went: what is published now reaches nobody. Counted,
            # so that the node can tell a cut happened, however short, and
            # announce its pool again when peers return.
            self.counts["isolations"] += 1

    # -------------------------------------------------------------- inspection

    def backlog_bytes(self) -> int:
        """Bytes queued or in flight to peers that are not down."""
        return sum(p.backlog_bytes for p in self._peers.values() if p.state is not PeerState.DOWN)

    def peers(self) -> list[Peer]:
        return list(self._peers.values())

    def statistics(self) -> GossipStatistics:
        peers = self._peers.values()
        states = collections.Counter(p.state for p in peers)
        rtts = [p.rtt_ms for p in peers if p.rtt_ms is not None]
        return GossipStatistics(
            **self.counts,
            dropped=dict(self.dropped),
            topic_messages_in=dict(self.traffic_in.messages),
            topic_bytes_in=dict(self.traffic_in.bytes),
            topic_messages_out=dict(self.traffic_out.messages),
            topic_bytes_out=dict(self.traffic_out.bytes),
            peers={state: states[state] for state in PeerState},
            seen_cache_ids=len(self._seen),
            backlog_bytes=self.backlog_bytes(),
            reassembly_bytes=sum(p.reassembler.bytes_held for p in peers),
            reassembly_partials=sum(len(p.reassembler) for p in peers),
            reassembly_evicted=sum(p.reassembler.evicted for p in peers),
            rtt_ms_max=max(rtts) if rtts else math.nan,
        )
