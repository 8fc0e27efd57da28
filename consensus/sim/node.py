"""One simulated node: the node's own `consensus.host.Host` over simulated ports.

The node runs the host exactly as the trio shell does (start, messages,
catch-up messages, one timer, transactions arriving), on its own clock
(skewed and drifting from simulated time), with a `Disk` as its chain port.
A crash point is a port raising `SimCrash`: right after a commit, right
after a persisted signature, or after a number of port calls (which lands
between a persisted signature and its broadcast, or inside a commit step);
the host is then dropped, with everything it held in memory, and a restart
builds a new one from the disk.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from consensus.core import Core, CoreConfig
from consensus.host import Host, HostConfig
from consensus.messages import ProposalMessage, Step
from consensus.sim.check import Checker, Verifier
from consensus.sim.disk import Disk, SimCrash
from consensus.sim.events import EventQueue
from consensus.sim.network import Network
from consensus.sim.scenario import CrashPlan, Scenario
from consensus.sync import RawSyncResponse, SyncRequest, SyncResponse
from sequencer.certificate import ValidatorSet
from sequencer.codec import decode, encode
from sequencer.crypto import PrivateKey
from sequencer.errors import DecodeError
from sequencer.ids import tx_id
from sequencer.types import ConsensusParams, Transaction, Vote

__all__ = ["SimNode", "World"]

TXS_PER_BLOCK_MAX = 3


class World(Protocol):
    """What a simulated node sees of the simulation it runs in (`run.Simulation`)."""

    scenario: Scenario
    chain_id: str
    genesis_ms: int
    params: ConsensusParams
    queue: EventQueue
    network: Network
    verifier: Verifier
    validators: ValidatorSet
    senders: list[bytes]
    honest_nodes: set[int]
    checker: Checker

    def transaction(self, sender: int, nonce: int) -> Transaction: ...

    def fold_statistics(self, node: SimNode) -> None: ...

    def count(self, what: str) -> None: ...

    def arrived(self) -> int: ...


class SimNode:
    """Node `index` (a validator below the validator count, else an observer)."""

    def __init__(
        self,
        sim: World,
        index: int,
        key: PrivateKey,
        *,
        clock: tuple[int, float],
        config: CoreConfig,
        host_config: HostConfig,
    ) -> None:
        self.sim = sim
        self.index = index
        self.key = key
        self.validator = index < len(sim.validators)
        self.rng = random.Random(f"node:{sim.scenario.seed}:{index}")
        self.disk = Disk(sim.chain_id, sim.genesis_ms)
        self._skew_ms, self._drift = clock
        self._config = config
        self._host_config = host_config
        self.alive = False
        self.incarnation = 0
        self.host: Host | None = None
        self.verified: set[bytes] = set()
        self.restarts = 0
        self._armed_ms: int | None = None  # the sim time of the pending wake-up
        self._armed_due = 0  # ... and the host's timer (its clock) it is for
        self._countdown: int | None = None  # crash after this many port calls
        self.crash_on: str | None = None  # crash right after the next write of this kind
        self.lose_unsynced = False
        self.pending_plan: CrashPlan | None = None  # the crash plan armed, for its restart
        self.on_crash: Callable[[SimNode], None] = lambda node: None
        self.network: Any = None  # the network port: honest, or a byzantine filter
        self.disk.after_write = self._after_write
        self.disk.before_write = self._before_write

    # ---------------------------------------------------------------- clock

    def now(self) -> int:
        """This node's clock, in Unix-like milliseconds."""
        t = self.sim.queue.now_ms
        if not self._drift:
            return t + self._skew_ms
        return t + self._skew_ms + int(self._drift * (t - self.sim.genesis_ms))

    def _to_sim(self, node_ms: int) -> int:
        offset = node_ms - self._skew_ms - self.sim.genesis_ms
        return self.sim.genesis_ms + math.ceil(offset / (1.0 + self._drift))

    # ---------------------------------------------------------------- life

    def boot(self) -> None:
        self.incarnation += 1
        self.alive = True
        self._armed_ms = None
        self.verified = set()
        self.sim.network.forget(self.index)
        sim = self.sim
        core = Core(
            chain_id=sim.chain_id,
            validators=sim.validators,
            params=sim.params,
            anchor=self.disk.anchor(),
            key=self.key,
            signing_state=self.disk.signing_state,
            config=self._config,
            verifier=sim.verifier,
        )
        peers = [None if v == self.index else v for v in range(len(sim.validators))]
        self.host = Host(
            core,
            chain=self.disk,
            mempool=_Mempool(self),
            network=self.network,
            transactions=self,
            peers=peers,
            rng=self.rng,
            config=self._host_config,
            verifier=sim.verifier,
        )
        self.host.on_evidence = lambda evidence: sim.count("evidence")
        self._guard(self.host.start, self.now())

    def crash(self) -> None:
        if not self.alive:
            return
        self.alive = False
        self.sim.fold_statistics(self)
        self.host = None
        self.incarnation += 1  # wake-ups of the old life are ignored
        self._countdown = None
        self.crash_on = None
        self.disk.crash(lose_unsynced=self.lose_unsynced)
        self.on_crash(self)

    def disarm(self) -> None:
        """No crash point is pending any more."""
        self._countdown = None
        self.crash_on = None
        self.pending_plan = None

    def crash_after(self, calls: int) -> None:
        """Crash after `calls` more port calls (0: now)."""
        if calls <= 0:
            self.crash()
        else:
            self._countdown = calls

    @property
    def idle(self) -> bool:
        return self.host is not None and self.host.core.round_step is Step.WAITING

    # ---------------------------------------------------------------- inputs

    def receive(self, source: int, message: object) -> None:
        if not self.alive:
            return
        host = self.host
        assert host is not None
        if isinstance(message, Vote | ProposalMessage):
            self._guard(host.on_message, message, self.now())
        elif isinstance(message, SyncRequest | SyncResponse):
            self._guard(host.on_sync, message, source, self.now())
        elif isinstance(message, RawSyncResponse | bytes):
            # What the wire carries: the node decodes it as a typed response.
            data = message if isinstance(message, bytes) else encode(message)
            try:
                typed = decode(data, SyncResponse)
            except DecodeError:
                self.sim.count("sync_malformed")
                return
            self._guard(host.on_sync, typed, source, self.now())

    def txs_available(self, _: object = None) -> None:
        if self.alive and self.host is not None:
            self._guard(self.host.txs_available, self.now())

    def _wake(self, incarnation: int) -> None:
        if incarnation != self.incarnation or not self.alive:
            return
        if self._armed_ms != self.sim.queue.now_ms:
            return  # superseded by an earlier wake-up, which re-armed
        self._armed_ms = None
        assert self.host is not None
        self._guard(self.host.on_timer, self.now())

    def _guard(self, entry: Callable[..., None], *args: object) -> None:
        """Call the host; a crash point inside it kills the node there."""
        try:
            entry(*args)
        except SimCrash:
            self.crash()
            return
        self._arm()

    def _arm(self) -> None:
        """Schedule a wake-up for the host's next timer (as the shell's one timer)."""
        if not self.alive or self.host is None:
            return
        due = self.host.next_timer_ms()
        if due is None or (self._armed_ms is not None and due == self._armed_due):
            return  # unchanged: the wake-up for it is already on its way
        now = self.sim.queue.now_ms
        at = now if due <= self.now() else max(now + 1, self._to_sim(due))
        if self._armed_ms is not None and self._armed_ms <= at:
            return
        self._armed_ms = at
        self._armed_due = due
        self.sim.queue.at(at, self._wake, self.incarnation)

    # ---------------------------------------------------------------- crash points

    def port_call(self) -> None:
        """Every port call counts down a mid-step crash."""
        if self._countdown is not None:
            self._countdown -= 1
            if self._countdown <= 0:
                self._countdown = None
                raise SimCrash

    def _before_write(self, kind: str) -> None:
        self.port_call()

    def _after_write(self, kind: str) -> None:
        if self.crash_on is not None and self.crash_on == kind:
            self.crash_on = None
            raise SimCrash

    # ---------------------------------------------------------------- TransactionsPort

    def is_verified(self, id_: bytes) -> bool:
        return id_ in self.verified

    def verify(self, tx: Transaction, id_: bytes) -> bool:
        if not self.sim.verifier.transaction(tx):
            return False
        self.verified.add(id_)
        return True


class _Mempool:
    """Transactions arrive on the simulation's schedule; a node holds those that
    arrived beyond what its chain has finalized (one height's worth each)."""

    def __init__(self, node: SimNode) -> None:
        self._node = node

    def has_pending(self) -> bool:
        node = self._node
        return node.sim.arrived() > node.disk.height()

    def select(self, max_gas: int, max_txs: int) -> list[_Pooled]:
        node = self._node
        if not self.has_pending():
            return []
        senders = node.sim.senders
        count = min(max_txs, node.rng.randint(0, TXS_PER_BLOCK_MAX))
        chosen = node.rng.sample(range(len(senders)), count)
        txs = [node.sim.transaction(s, node.disk.next_nonce(senders[s])) for s in chosen]
        return [_Pooled(tx, tx_id(tx)) for tx in txs]


class _Pooled(NamedTuple):
    tx: Transaction
    tx_id: bytes


class HonestPort:
    """An honest node's network port: what it signs is recorded by the checker."""

    def __init__(self, node: SimNode) -> None:
        self.node = node

    def broadcast(self, message: ProposalMessage | Vote) -> None:
        node = self.node
        node.port_call()
        node.sim.checker.on_signed(message)
        node.sim.network.broadcast(node.index, message)

    def broadcast_votes(self, votes: list[Vote]) -> None:
        node = self.node
        node.port_call()
        node.sim.network.broadcast_fresh(node.index, votes)

    def send(self, peer: object, message: SyncRequest | RawSyncResponse) -> None:
        node = self.node
        node.port_call()
        assert isinstance(peer, int)
        node.sim.network.send(node.index, peer, message)
