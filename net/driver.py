"""The trio shell around the gossip core: one UDP socket, one timer, bounded
queues (the aioquic pattern).

    node = GossipNode(key, listen=("127.0.0.1", 26601), peers=[...])
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        txs = node.subscribe(Topic.TX)
        await node.publish(Topic.TX, data)

Only this module reads the clock and touches the socket. It drains the socket
into one bounded queue per sending peer, hands the core a burst taken from
those queues in turn (`net.fair`), then sends what the core wants sent
(acknowledgements, relays) at once; a timer task covers flush intervals,
probes and pings. A peer that floods us fills and loses only its own queue:
the datagrams of the others still get their turn. Subscribers get each
message once, the same way: a bounded queue per peer, read in turn
(`net.subscription`); a subscriber that falls behind loses messages
(counted) rather than stalling the network for everyone.
"""

from __future__ import annotations

import collections
import errno
import heapq
import ipaddress
import logging
import random
import socket
import sys
import time
from collections.abc import Iterable

import trio

from net.config import (
    BURST_BYTES,
    BURST_DATAGRAMS,
    DRAIN_DATAGRAMS,
    INBOX_DATAGRAMS_PER_PEER,
    OUTBOX_DATAGRAMS_MAX,
    RECEIVE_BYTES,
    SOCKET_BUFFER_BYTES,
    SUBSCRIBER_BYTES_PER_PEER,
    SUBSCRIBER_CAPACITY,
    GossipConfig,
)
from net.errors import BacklogFullError, NetError
from net.fair import FairQueue
from net.faults import FaultConfig, FaultInjector
from net.gossip import Delivery, Gossip, PeerAddress
from net.identity import peer_id
from net.multiaddr import Multiaddr
from net.peer import PeerState
from net.stats import GossipNodeStatistics, GossipStatistics
from net.subscription import Subscription
from net.wire import Topic
from sequencer.crypto import PrivateKey

__all__ = ["GossipNode", "PeerStatus"]

log = logging.getLogger("sequencer.gossip")


class PeerStatus:
    __slots__ = ("address", "public_key", "rtt_ms", "state")

    def __init__(
        self, public_key: bytes, address: tuple[str, int], state: str, rtt_ms: float | None
    ):
        self.public_key = public_key
        self.address = address
        self.state = state
        self.rtt_ms = rtt_ms


class GossipNode:
    def __init__(
        self,
        key: PrivateKey,
        listen: tuple[str, int],
        peers: Iterable[PeerAddress],
        config: GossipConfig | None = None,
        faults: FaultConfig | None = None,
        *,
        session: int | None = None,
        seed: int | None = None,
        validated_topics: Iterable[Topic] = (),
    ) -> None:
        """`validated_topics`: relayed only when a subscriber calls `forward`."""
        self._key = key
        self._validated_topics = tuple(validated_topics)
        self._listen = listen
        self._peer_list = list(peers)
        self.config = config or GossipConfig()
        self._faults = FaultInjector(faults or FaultConfig(), random.Random(seed))
        # Sessions grow at every start (microseconds of wall time), so peers
        # take our new keys and reset their windows, and refuse old datagrams.
        self._session = session if session is not None else time.time_ns() // 1_000
        self._core: Gossip | None = None
        self._socket: socket.socket | None = None
        self._subscribers: dict[Topic, list[Subscription]] = collections.defaultdict(list)
        self._inbox: FairQueue[tuple[bytes, tuple[str, int]]] = FairQueue(INBOX_DATAGRAMS_PER_PEER)
        self._delayed: list[tuple[float, int, bytes, tuple[str, int]]] = []
        self._delayed_sequence = 0
        self._outbox: collections.deque[tuple[bytes, tuple[str, int]]] = collections.deque()
        self._outbox_ready = trio.Event()
        self._wake = trio.Event()
        self._backlog_drained = trio.Event()
        # Named as `GossipNodeStatistics`' counters.
        self.counts: collections.Counter[str] = collections.Counter()
        self._conflicts_logged: dict[bytes, int] = {}
        self.listen_address: tuple[str, int] | None = None

    @classmethod
    def from_multiaddrs(
        cls, key: PrivateKey, listen: Multiaddr, peers: Iterable[Multiaddr], **options: object
    ) -> GossipNode:
        entries = [PeerAddress(peer.public_key, peer.socket_address) for peer in peers]
        return cls(key, listen.socket_address, entries, **options)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- running

    async def run(
        self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, then serve until cancelled; `task_status` gets the bound address."""
        self._socket = _bind(self._listen)
        self.listen_address = self._socket.getsockname()[:2]
        self._core = Gossip(
            self._key.seed,
            self._key.public_key,
            self._peer_list,
            self.config,
            self._session,
            self._now_ms(),
            self._validated_topics,
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive_loop)
                nursery.start_soon(self._timer_loop)
                nursery.start_soon(self._send_loop)
                task_status.started(self.listen_address)
        finally:
            self._socket.close()
            for subscriptions in self._subscribers.values():
                for subscription in subscriptions:
                    subscription.end()

    def subscribe(
        self,
        topic: Topic,
        capacity: int = SUBSCRIBER_CAPACITY,
        bytes_per_peer: int = SUBSCRIBER_BYTES_PER_PEER,
    ) -> Subscription:
        """Messages of `topic` from now on, each once, at most `capacity`
        messages and `bytes_per_peer` bytes waiting per peer (a message
        larger than that still gets through an empty queue); closing the
        subscription unsubscribes."""
        subscription = Subscription(capacity, bytes_per_peer)
        self._subscribers[Topic(topic)].append(subscription)
        return subscription

    # ------------------------------------------------------------- publishing

    async def publish(self, topic: Topic, data: bytes) -> bytes:
        """Gossip `data` to all nodes, waiting while the outbound backlog is full."""
        while self._backlog_full():
            if self._backlog_drained.is_set():
                self._backlog_drained = trio.Event()
            await self._backlog_drained.wait()
        return self._publish(topic, data)

    def publish_nowait(self, topic: Topic, data: bytes) -> bytes:
        """Gossip `data`; raises `BacklogFullError` instead of waiting."""
        if self._backlog_full():
            backlog = self._running_core().backlog_bytes()
            raise BacklogFullError(f"{backlog} bytes waiting to be sent")
        return self._publish(topic, data)

    def _publish(self, topic: Topic, data: bytes) -> bytes:
        id_ = self._running_core().publish(Topic(topic), data, self._now_ms())
        self._wake.set()
        return id_

    def forward(self, delivery: Delivery) -> None:
        """Relay a held delivery (of a validated topic) that proved valid."""
        if delivery.held:
            self._running_core().forward(delivery, self._now_ms())
            self._wake.set()

    def send_nowait(self, public_key: bytes, topic: Topic, data: bytes) -> bool:
        """Send to one peer, not forwarded; False if it is down or its queue is full."""
        queued = self._running_core().send(public_key, Topic(topic), data, self._now_ms())
        self._wake.set()
        return queued

    def set_faults(self, faults: FaultConfig) -> None:
        """Switch fault injection at run time (tests, chaos runs, the admin API)."""
        self._faults.reconfigure(faults)

    # ------------------------------------------------------------- inspection

    def statistics(self) -> GossipNodeStatistics:
        return GossipNodeStatistics(
            GossipStatistics() if self._core is None else self._core.statistics(),
            self._faults.statistics(),
            **self.counts,
            inbox_full=self._inbox.dropped,
            outbox_datagrams=len(self._outbox),
            inbox_datagrams=len(self._inbox),
        )

    def peers(self) -> list[PeerStatus]:
        core = self._running_core()
        return [PeerStatus(p.public_key, p.address, p.state.value, p.rtt_ms) for p in core.peers()]

    def alive_peers(self) -> int:
        return sum(p.state is PeerState.ALIVE for p in self._running_core().peers())

    # -------------------------------------------------------------- internals

    def _running_core(self) -> Gossip:
        if self._core is None:
            raise NetError("the gossip node is not running: start `run` first")
        return self._core

    def _now_ms(self) -> float:
        return trio.current_time() * 1000.0

    def _backlog_full(self) -> bool:
        return self._running_core().backlog_bytes() > self.config.backlog_bytes_max

    async def _receive_loop(self) -> None:
        assert self._socket is not None
        assert self._core is not None
        sock, core, inbox = self._socket, self._core, self._inbox
        while True:
            if inbox:
                await trio.lowlevel.checkpoint()  # our turn is over; more is queued
            else:
                await trio.lowlevel.wait_readable(sock)
            self._drain(sock)
            now_ms = self._now_ms()
            burst_bytes = 0
            for _ in range(BURST_DATAGRAMS):
                if not inbox or burst_bytes >= BURST_BYTES:
                    break
                data, address = inbox.get()
                burst_bytes += len(data)
                core.receive_datagram(data, address, now_ms)
            self._deliver()
            self._transmit(now_ms)
            self._wake.set()
            if not self._backlog_full():
                self._backlog_drained.set()

    def _drain(self, sock: socket.socket) -> None:
        """Move what the kernel holds to the per-peer queues, up to `DRAIN_DATAGRAMS`."""
        core, faults, inbox = self._running_core(), self._faults, self._inbox
        for _ in range(DRAIN_DATAGRAMS):
            try:
                data, address = sock.recvfrom(RECEIVE_BYTES)
            except BlockingIOError:
                return
            except OSError as error:  # e.g. ICMP errors reported on the socket
                self.counts["receive_errors"] += 1
                if error.errno in (errno.EBADF, errno.ENOTSOCK):
                    raise
                continue
            if not faults.inbound(data):
                continue
            # By the sender tag the header claims: a forged one lands in that
            # peer's queue, and fails authentication there at little cost.
            # Oversized datagrams go to the core at once, which drops them.
            source = core.claimed_peer(data)
            if source is None or len(data) > self.config.datagram_bytes_max:
                core.receive_datagram(data, address[:2], self._now_ms())
                continue
            inbox.put(source, (data, address[:2]), len(data))

    async def _timer_loop(self) -> None:
        assert self._core is not None
        core = self._core
        while True:
            deadline_ms = core.get_timer()
            if self._delayed:
                deadline_ms = min(deadline_ms, self._delayed[0][0])
            if self._wake.is_set():
                self._wake = trio.Event()
            with trio.move_on_at(deadline_ms / 1000.0):
                await self._wake.wait()
            now_ms = self._now_ms()
            core.handle_timer(now_ms)
            self._watch_sessions(core, now_ms)
            self._release_delayed(now_ms)
            self._transmit(now_ms)
            self._deliver()

    def _watch_sessions(self, core: Gossip, now_ms: float) -> None:
        """Rejoin under a new session when cut off; say when a peer's key
        seems to run twice."""
        if core.wants_new_session(now_ms):
            session = max(time.time_ns() // 1_000, core.session + 1)
            core.restart_session(session, now_ms)
            log.warning(
                "no peer has heard from this node for %.0f s: rejoining under a new session"
                " (if another process runs with this node's key, it had taken over)",
                self.config.rejoin_after_ms / 1000,
            )
        for public_key, count in core.session_conflicts.items():
            logged = self._conflicts_logged.get(public_key, 0)
            if count > logged and count >= 2 * logged:  # the first, then at each doubling
                self._conflicts_logged[public_key] = count
                log.warning(
                    "peer %s sends from two sessions at once (%d datagrams of its older one):"
                    " is its key running in two processes?",
                    peer_id(public_key),
                    count,
                )

    async def _send_loop(self) -> None:
        """Drains datagrams the kernel could not take at once."""
        assert self._socket is not None
        sock = self._socket
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready = trio.Event()
            while self._outbox:
                await trio.lowlevel.wait_writable(sock)
                while self._outbox and self._send_raw(*self._outbox[0]):
                    self._outbox.popleft()

    def _transmit(self, now_ms: float) -> None:
        core = self._running_core()
        faults = self._faults
        active = faults.config.active
        for datagram, address, peer in core.datagrams_to_send(now_ms):
            if not active:
                self._send(datagram, address)
                continue
            for at_ms in faults.outbound(peer, now_ms):
                if at_ms <= now_ms:
                    self._send(datagram, address)
                else:
                    self._delayed_sequence += 1
                    entry = (at_ms, self._delayed_sequence, datagram, address)
                    heapq.heappush(self._delayed, entry)

    def _release_delayed(self, now_ms: float) -> None:
        while self._delayed and self._delayed[0][0] <= now_ms:
            _at, _sequence, datagram, address = heapq.heappop(self._delayed)
            self._send(datagram, address)

    def _send(self, datagram: bytes, address: tuple[str, int]) -> None:
        if self._outbox:
            self._enqueue(datagram, address)  # keep order behind what waits
        elif not self._send_raw(datagram, address):
            self._enqueue(datagram, address)

    def _enqueue(self, datagram: bytes, address: tuple[str, int]) -> None:
        if len(self._outbox) >= OUTBOX_DATAGRAMS_MAX:
            self.counts["outbox_dropped"] += 1  # lost like on the wire; the link resends
            return
        self._outbox.append((datagram, address))
        self._outbox_ready.set()

    def _send_raw(self, datagram: bytes, address: tuple[str, int]) -> bool:
        """False when the kernel's buffer is full (try again when writable)."""
        assert self._socket is not None
        try:
            self._socket.sendto(datagram, address)
        except BlockingIOError:
            return False
        except OSError:
            # Unreachable addresses and the like: the datagram is lost, as on
            # a real network, and the link's recovery takes over.
            self.counts["send_errors"] += 1
        return True

    def _deliver(self) -> None:
        for delivery in self._running_core().deliveries():
            subscriptions = self._subscribers.get(delivery.topic)
            if not subscriptions:
                continue
            for subscription in list(subscriptions):
                if subscription.closed:
                    subscriptions.remove(subscription)
                elif not subscription.offer(delivery):
                    self.counts["subscriber_dropped"] += 1


def _bind(listen: tuple[str, int]) -> socket.socket:
    host, port = listen
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        _grow_buffers(sock)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise NetError(f"cannot bind UDP {host}:{port}: {error.strerror or error}") from None
    return sock


def _grow_buffers(sock: socket.socket) -> None:
    """Large kernel buffers absorb bursts (a 4 MiB message is ~3,000 datagrams).
    The FORCE options pass `net.core.rmem_max` when we may; else take what we get."""
    # Linux's SO_RCVBUFFORCE and SO_SNDBUFFORCE, which `socket` does not name.
    linux = sys.platform.startswith("linux")
    options = (
        (33 if linux else None, socket.SO_RCVBUF),
        (32 if linux else None, socket.SO_SNDBUF),
    )
    for force, plain in options:
        for option in (force, plain):
            if option is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
                break
            except OSError:
                continue
