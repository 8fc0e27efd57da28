"""The state the gossip core keeps per peer: outbound queue, packets in flight,
what we received from it, its liveness and its rate budget. Pure."""

from __future__ import annotations

import collections
import enum
import math

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from net.config import GossipConfig
from net.fragments import Reassembler
from net.link import LinkKeys, ReceiveWindow, SendWindow, seal_datagram
from net.wire import PAYLOAD_HEADER_BYTES, Ack, Ping, encode_frame, join_frames

__all__ = ["Peer", "PeerState"]


class PeerState(enum.Enum):
    NEW = "new"  # configured, not heard from yet
    ALIVE = "alive"
    DOWN = "down"  # silent for `peer_timeout_ms`: nothing is queued for it


class Peer:
    """One configured peer. The core drives it; it never reads a clock."""

    def __init__(
        self,
        keys: LinkKeys,
        address: tuple[str, int],
        local_session: int,
        config: GossipConfig,
        now_ms: float,
    ) -> None:
        self.public_key = keys.remote
        self.tag = keys.remote[:8]
        self.address = address
        self.keys = keys
        self._config = config
        self._send_cipher = keys.sending_cipher(local_session)
        self._counter = 0
        # Outbound: control frames (never resent, never held back) and data
        # frames (resent until acknowledged, subject to the in-flight bound).
        self._control: collections.deque[tuple[bytes, bool]] = collections.deque()
        self._pending: collections.deque[bytes] = collections.deque()
        self.pending_bytes = 0
        self._flush_at = math.inf
        self.window = SendWindow()
        self._probe_at = math.inf
        self._probes = 0
        # Inbound.
        self.session = -1
        self.receive_cipher: ChaCha20Poly1305 | None = None
        # The session before, to recognise its datagrams when they still come:
        # two processes running one key (see `Gossip.session_conflicts`).
        self.previous_session = -1
        self.previous_cipher: ChaCha20Poly1305 | None = None
        self.session_started_ms = -math.inf
        self.received = ReceiveWindow()
        self._ack_needed = False
        self._ack_due = math.inf
        self._eliciting_since_ack = 0
        self.reassembler = Reassembler(
            config.reassembly_bytes_max_per_peer, config.reassembly_partials_max_per_peer
        )
        # Liveness, and who this peer says it hears from.
        self.state = PeerState.NEW
        self.last_heard_ms = now_ms
        self.ping_at_ms = now_ms
        self.rtt_ms: float | None = None
        self.reported_alive: frozenset[bytes] = frozenset()
        # Where a datagram that could not move the address came from.
        self.probe_address: tuple[str, int] | None = None
        self._path_probe_ms = -math.inf
        self.reported_at_ms = -math.inf
        self._bytes = _Bucket(config.peer_bytes_per_s, config.peer_burst_bytes, now_ms)
        self._frames = _Bucket(config.peer_frames_per_s, config.peer_burst_frames, now_ms)

    # ----------------------------------------------------------------- outbound

    def queue_data(self, frames: list[bytes], size: int, urgent: bool, now_ms: float) -> bool:
        """Queue data frames; False (nothing queued) when the queue is full."""
        if self.pending_bytes + size > self._config.pending_bytes_max:
            return False
        self._pending.extend(frames)
        self.pending_bytes += size
        deadline = now_ms if urgent else now_ms + self._config.flush_interval_ms
        self._flush_at = min(self._flush_at, deadline)
        return True

    def queue_control(self, frame: bytes, eliciting: bool) -> None:
        self._control.append((frame, eliciting))

    def requeue_lost(self, frames: list[bytes], now_ms: float) -> None:
        """Frames of lost packets go first, past the queue bound: they were accepted once."""
        self._pending.extendleft(reversed(frames))
        self.pending_bytes += sum(len(frame) for frame in frames)
        self._flush_at = now_ms

    def build_datagrams(self, local_tag: bytes, local_session: int, now_ms: float) -> list[bytes]:
        """Seal what is due: control frames and acks at once, data when its
        flush time came or a datagram is full, while the in-flight bound allows."""
        capacity = self._config.payload_bytes_max
        flush_due = self._flush_at <= now_ms
        ack_due = self._ack_needed and self._ack_due <= now_ms
        datagrams: list[bytes] = []
        while True:
            frames, size, eliciting = self._take_control(capacity, force_ack=ack_due)
            ack_due = False
            data = self._take_data(capacity - size, flush_due)
            if not frames and not data:
                break
            self._counter += 1
            payload = join_frames(frames + data)
            horizon = self.window.oldest(default=self._counter)
            datagrams.append(
                seal_datagram(
                    self._send_cipher,
                    local_tag,
                    local_session,
                    self._counter,
                    horizon,
                    payload,
                    echo=max(self.session, 0),
                )
            )
            if data:
                self.window.sent(self._counter, data, len(payload), now_ms)
            if (data or eliciting) and self._probe_at == math.inf:
                self._probe_at = now_ms + self._config.probe_timeout_ms
        if not self._pending:
            self._flush_at = math.inf
        return datagrams

    def wants_path_probe(self, address: tuple[str, int], now_ms: float) -> bool:
        """Whether a datagram from `address` that cannot move the address
        should draw a path probe there (one at a time, one a ping interval)."""
        return (
            address != self.address
            and self.probe_address is None
            and now_ms - self._path_probe_ms >= self._config.ping_interval_ms
        )

    def path_probe(
        self, local_tag: bytes, local_session: int, alive: list[bytes], now_ms: float
    ) -> tuple[bytes, tuple[str, int]] | None:
        """A ping to `probe_address`, at most once a ping interval, or None."""
        target = self.probe_address
        if target is None or now_ms - self._path_probe_ms < self._config.ping_interval_ms:
            return None
        self.probe_address = None
        self._path_probe_ms = now_ms
        self._counter += 1
        payload = join_frames([encode_frame(Ping(int(now_ms * 1000), alive))])
        horizon = self.window.oldest(default=self._counter)
        datagram = seal_datagram(
            self._send_cipher,
            local_tag,
            local_session,
            self._counter,
            horizon,
            payload,
            echo=max(self.session, 0),
        )
        return datagram, target

    def _take_control(self, capacity: int, force_ack: bool) -> tuple[list[bytes], int, bool]:
        frames: list[bytes] = []
        size = PAYLOAD_HEADER_BYTES
        eliciting = False
        # An ack rides on any packet that goes out, and goes alone when due.
        if self._ack_needed and (force_ack or self._control or self._pending):
            frame = encode_frame(self.received.ack(self._config.ack_missing_max))
            frames.append(frame)
            size += len(frame)
            self._ack_needed = False
            self._ack_due = math.inf
            self._eliciting_since_ack = 0
        while self._control and size + len(self._control[0][0]) <= capacity:
            frame, frame_eliciting = self._control.popleft()
            frames.append(frame)
            size += len(frame)
            eliciting = eliciting or frame_eliciting
        return frames, size, eliciting

    def _take_data(self, room: int, flush_due: bool) -> list[bytes]:
        config = self._config
        if not self._pending or self.window.bytes_in_flight >= config.in_flight_bytes_max:
            return []
        if not flush_due and self.pending_bytes < config.payload_bytes_max - PAYLOAD_HEADER_BYTES:
            return []  # wait for company or for the flush time
        data: list[bytes] = []
        while self._pending and len(self._pending[0]) <= room:
            frame = self._pending.popleft()
            data.append(frame)
            room -= len(frame)
            self.pending_bytes -= len(frame)
        return data

    def next_deadline_ms(self) -> float:
        """When `build_datagrams` next has something to send (inf: nothing)."""
        if self._control:
            return -math.inf
        deadline = self._ack_due if self._ack_needed else math.inf
        if self._pending and self.window.bytes_in_flight < self._config.in_flight_bytes_max:
            deadline = min(deadline, self._flush_at)
        return deadline

    # ------------------------------------------------------------------ inbound

    def admit(self, size: int, now_ms: float) -> bool:
        """Spend `size` bytes of this peer's rate budget; False when over it."""
        return self._bytes.take(size, now_ms)

    def admit_frames(self, count: int, now_ms: float) -> bool:
        """Spend `count` frames of this peer's frame budget; False when over it."""
        return self._frames.take(count, now_ms)

    def start_session(self, session: int, cipher: ChaCha20Poly1305, now_ms: float) -> None:
        """The peer (re)started: what we knew of its previous session is void."""
        self.previous_session, self.previous_cipher = self.session, self.receive_cipher
        self.session_started_ms = now_ms
        self.session = session
        self.receive_cipher = cipher
        self.received = ReceiveWindow()
        self.reassembler.clear()
        self._ack_needed = False
        self._ack_due = math.inf

    def received_packet(self, counter: int, horizon: int, eliciting: bool, now_ms: float) -> None:
        gap = self.received.mark(counter, horizon)
        if not eliciting and not gap:
            return
        if not self._ack_needed:
            self._ack_needed = True
            self._ack_due = now_ms + self._config.ack_delay_ms
        self._eliciting_since_ack += eliciting
        if gap or self._eliciting_since_ack >= self._config.ack_every_packets:
            self._ack_due = now_ms  # report losses at once

    def on_ack(self, ack: Ack, now_ms: float) -> list[bytes]:
        """Frames to send again."""
        config = self._config
        acked, lost = self.window.on_ack(ack, now_ms, config.loss_packets, config.loss_delay_ms)
        if acked or lost:
            self._probes = 0
            self._probe_at = now_ms + config.probe_timeout_ms if len(self.window) else math.inf
        if lost:
            self.requeue_lost(lost, now_ms)
        return lost

    def heard(self, address: tuple[str, int], counter: int, fresh: bool, now_ms: float) -> bool:
        """An authenticated datagram arrived; True when the peer came (back) alive.

        `fresh`: it echoes our session of this run, so the peer sent it
        after hearing us since we started."""
        self.last_heard_ms = now_ms
        if fresh and counter > self.received.largest:
            # Follow a peer whose address changed, as WireGuard does, but only
            # on its newest datagram, and only on one sent since we started: a
            # replay from before (which our new receive window cannot tell)
            # or a datagram of a peer that has not heard us must not move it.
            self.address = address
            self.probe_address = None
        elif not fresh and self.wants_path_probe(address, now_ms):
            # Perhaps the peer moved while it could not hear us: a ping there
            # lets it answer with our session, which moves the address. (A
            # replay from elsewhere draws one small ping, to a peer that
            # cannot read it.)
            self.probe_address = address
        if self.state is PeerState.ALIVE:
            return False
        self.state = PeerState.ALIVE
        return True

    def reported(self, alive: list[bytes], now_ms: float) -> bool:
        """Record whom the peer hears from; True when that changed."""
        fresh = frozenset(alive)
        changed = fresh != self.reported_alive
        self.reported_alive = fresh
        self.reported_at_ms = now_ms
        return changed

    def reports_hearing(self, tag: bytes, now_ms: float) -> bool:
        return (
            now_ms - self.reported_at_ms <= self._config.peer_timeout_ms
            and tag in self.reported_alive
        )

    # ------------------------------------------------------------- housekeeping

    def tick(self, now_ms: float, alive: list[bytes]) -> tuple[bool, int]:
        """Pings, probes, give-ups and timeouts: (went down, packets given up)."""
        config = self._config
        if now_ms >= self.ping_at_ms:
            self.ping_at_ms = now_ms + config.ping_interval_ms
            self.queue_control(encode_frame(Ping(int(now_ms * 1000), alive)), eliciting=True)
        if len(self.window) and now_ms >= self._probe_at:
            self.queue_control(encode_frame(Ping(int(now_ms * 1000), alive)), eliciting=True)
            self._probes += 1
            backoff = config.probe_timeout_ms * 2**self._probes
            self._probe_at = now_ms + min(backoff, config.probe_timeout_ms_max)
        given_up = self.window.give_up_older_than(now_ms - config.retransmit_give_up_ms)
        self.reassembler.expire(now_ms - config.reassembly_timeout_ms)
        if (
            self.state is not PeerState.DOWN
            and now_ms - self.last_heard_ms > config.peer_timeout_ms
        ):
            self.state = PeerState.DOWN
            given_up += self._drop_outbound()
            return True, given_up
        return False, given_up

    def restart_local_session(self, session: int) -> None:
        """We start a new session: a new sending key, counters from 1."""
        self._send_cipher = self.keys.sending_cipher(session)
        self._counter = 0
        self._drop_outbound()
        self._control.clear()

    def _drop_outbound(self) -> int:
        dropped = len(self.window)
        self.window.clear()
        self._pending.clear()
        self.pending_bytes = 0
        self._flush_at = math.inf
        self._probe_at = math.inf
        self._probes = 0
        return dropped

    @property
    def backlog_bytes(self) -> int:
        return self.pending_bytes + self.window.bytes_in_flight


class _Bucket:
    """A token bucket: `rate` per second, at most `burst` saved up."""

    __slots__ = ("_at_ms", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float, now_ms: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at_ms = now_ms

    def take(self, amount: float, now_ms: float) -> bool:
        elapsed_s = max(0.0, now_ms - self._at_ms) / 1000.0
        self._tokens = min(self._burst, self._tokens + elapsed_s * self._rate)
        self._at_ms = now_ms
        if self._tokens < amount:
            return False
        self._tokens -= amount
        return True
