"""A deterministic cluster simulator for the consensus core (DESIGN 13.2).

N validator cores run on a seeded in-memory network in simulated time
(`simnet`). A seed fixes everything: fault strengths, the fault schedule,
every delay and drop, so a failing seed replays exactly.

A run has a chaos phase (loss, duplication, latency, partitions, crashes with
restarts from the persisted state) that ends at a seeded time; then the
network heals, crashed nodes restart, and every honest node must reach the
target height. Byzantine validators (driven by one `Adversary`) equivocate for
the whole run: as proposer they send two different blocks to two halves of
the honest nodes, and they vote for each half's block in that half.

The `Checker` watches every commit and every honest signature:
agreement, certificate validity, no conflicting signatures, liveness.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import Any

import msgspec
from blake3 import blake3

from consensus.blocks import build_block, next_nonces, state_problem
from consensus.core import Anchor, Core, CoreConfig
from consensus.errors import SimulationError
from consensus.messages import (
    Action,
    BlockValidated,
    Broadcast,
    Commit,
    DecidedBlock,
    Input,
    PersistSigningState,
    ProposalMessage,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    TimeoutElapsed,
    TxsAvailable,
    ValidateBlock,
    ValueReady,
)
from consensus.simcheck import CHAIN_ID, Checker, Verifier
from consensus.simnet import EventQueue, Faults, Network
from consensus.sync import CatchUp, SyncRequest, SyncResponse, serve
from sequencer.certificate import ValidatorSet
from sequencer.crypto import (
    PrivateKey,
    proposal_signing_bytes,
    sign_transaction,
    vote_signing_bytes,
)
from sequencer.ids import block_id, commit_id, genesis_state_root, state_root, tx_id
from sequencer.types import (
    NIL,
    ZERO_ID,
    Block,
    CommitCertificate,
    ConsensusParams,
    Proposal,
    SigningState,
    Transaction,
    ValidatorInfo,
    Vote,
)

__all__ = ["RunResult", "Simulation"]

GENESIS_TIME_MS = 1_700_000_000_000
SENDERS = 6
TXS_PER_BLOCK_MAX = 3
SYNC_TICK_MS = 250
SYNC_PATIENCE_MS = 500
CHAOS_MS = (1_500, 6_000)
DOWN_MS = (50, 1_500)
LIVENESS_MS_BASE = 60_000
LIVENESS_MS_PER_HEIGHT = 2_000
EVENTS_MAX = 20_000_000
PARAMS = ConsensusParams()
CONFIG = CoreConfig(rebroadcast_ms=600, clock_drift_ms_max=60_000)


@functools.cache
def validator_key(index: int) -> PrivateKey:
    return PrivateKey(blake3(b"sim-validator-%d" % index).digest())


@functools.cache
def sender_key(index: int) -> PrivateKey:
    return PrivateKey(blake3(b"sim-sender-%d" % index).digest())


@functools.lru_cache(maxsize=100_000)
def sim_tx(sender: int, nonce: int) -> Transaction:
    """The sender's transaction with this nonce (the same in every run, so cached)."""
    return sign_transaction(
        sender_key(sender),
        chain_id=CHAIN_ID,
        namespace=sender % 3,
        nonce=nonce,
        gas_price=1 + (nonce * 7 + sender) % 5,
        payload=b"sim %d %d" % (sender, nonce),
    )


# ------------------------------------------------------------------ per-node durable state


class Disk:
    """What a node persisted: it survives crashes (writes are synced)."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.certificates: list[CommitCertificate] = []
        self.nonces: dict[bytes, int] = {}
        self.signing_state: SigningState | None = None

    @property
    def height(self) -> int:
        return len(self.blocks)

    @property
    def state_root(self) -> bytes:
        return self.blocks[-1].header.state_root if self.blocks else genesis_state_root(CHAIN_ID)

    def next_nonce(self, sender: bytes) -> int:
        return self.nonces.get(sender, 0)

    def anchor(self) -> Anchor:
        if not self.blocks:
            return Anchor(0, ZERO_ID, GENESIS_TIME_MS, None)
        header = self.blocks[-1].header
        return Anchor(header.height, block_id(header), header.timestamp_ms, self.certificates[-1])

    def block_at(self, height: int) -> tuple[Block, CommitCertificate]:
        return self.blocks[height - 1], self.certificates[height - 1]

    def commit(
        self, block: Block, certificate: CommitCertificate, parent: CommitCertificate | None
    ) -> str | None:
        """Store a decided block; a problem string means the core decided wrongly."""
        header = block.header
        if header.height != self.height + 1:
            return f"commit of height {header.height} on a chain of height {self.height}"
        if parent is not None:
            self.certificates[-1] = parent  # the canonical certificate of the parent
        link = commit_id(self.certificates[-1]) if self.certificates else ZERO_ID
        if header.last_commit_id != link:
            return f"block {header.height} does not link to the stored parent certificate"
        changed = next_nonces(block.txs, self.next_nonce)
        if changed is None or state_root(self.state_root, changed) != header.state_root:
            return f"block {header.height} does not apply to the state"
        self.nonces.update(changed)
        self.blocks.append(block)
        self.certificates.append(certificate)
        return None


# ------------------------------------------------------------------ byzantine validators


class Adversary:
    """Coordinates the byzantine validators: per (height, round), the honest
    nodes are split in two halves; half A is sent the real proposal and votes
    for it, half B an alternative block (when a byzantine proposes) or nil."""

    def __init__(self, sim: Simulation, rng: random.Random) -> None:
        self._sim = sim
        self._rng = rng
        self._halves: dict[tuple[int, int], frozenset[int]] = {}
        self._values: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._seen: dict[tuple[int, int], bytes] = {}

    def half_b(self, height: int, round: int) -> frozenset[int]:
        key = (height, round)
        if key not in self._halves:
            honest = sorted(self._sim.honest)
            self._halves[key] = frozenset(self._rng.sample(honest, len(honest) // 2))
        return self._halves[key]

    def saw_proposal(self, proposal: Proposal) -> None:
        self._seen.setdefault((proposal.height, proposal.round), proposal.block_id)

    def broadcast(self, node: SimNode, message: ProposalMessage | Vote) -> None:
        if isinstance(message, ProposalMessage):
            self._equivocate_proposal(node, message)
        elif message.validator == node.index:
            self._equivocate_vote(node, message)
        else:  # relaying another validator's vote: nothing to gain by dropping it
            self._sim.network.broadcast(node.index, message)

    def _send_split(self, node: SimNode, height: int, round: int, a: Any, b: Any) -> None:
        half_b = self.half_b(height, round)
        for destination in range(self._sim.network.size):
            if destination != node.index:
                self._sim.network.send(node.index, destination, b if destination in half_b else a)

    def _equivocate_proposal(self, node: SimNode, message: ProposalMessage) -> None:
        p = message.proposal
        header = msgspec.structs.replace(
            p.block.header, timestamp_ms=p.block.header.timestamp_ms + 1
        )
        other = Block(header, p.block.txs)
        other_id = block_id(header)
        signature = node.key.sign(
            proposal_signing_bytes(CHAIN_ID, p.height, p.round, p.pol_round, other_id)
        )
        alternative = msgspec.structs.replace(
            p, block_id=other_id, signature=signature, block=other
        )
        self._values[(p.height, p.round)] = (p.block_id, other_id)
        self._send_split(
            node,
            p.height,
            p.round,
            message,
            ProposalMessage(alternative, message.parent_certificate),
        )

    def _equivocate_vote(self, node: SimNode, vote: Vote) -> None:
        key = (vote.height, vote.round)
        a, b = self._values.get(key, (self._seen.get(key, vote.block_id), NIL))
        votes = []
        for value in (a, b):
            signature = node.key.sign(
                vote_signing_bytes(CHAIN_ID, vote.kind, vote.height, vote.round, value)
            )
            votes.append(msgspec.structs.replace(vote, block_id=value, signature=signature))
        self._send_split(node, vote.height, vote.round, votes[0], votes[1])


# ------------------------------------------------------------------ a simulated node


class SimNode:
    """A validator: the real core, driven by a small driver over simulated I/O."""

    def __init__(self, sim: Simulation, index: int, *, byzantine: bool) -> None:
        self.sim = sim
        self.index = index
        self.key = validator_key(index)
        self.byzantine = byzantine
        self.rng = random.Random(sim.seed * 1_000 + index)
        self.disk = Disk()
        self.alive = False
        self.incarnation = 0
        self.crash_after_actions: int | None = None
        self.core: Core | None = None
        self.catchup: CatchUp | None = None
        self.verified: set[bytes] = set()
        self.restarts = 0

    # ---- lifecycle

    def boot(self) -> None:
        self.incarnation += 1
        self.alive = True
        self.crash_after_actions = None
        self.verified = set()
        self.catchup = CatchUp(self.rng, patience_ms=SYNC_PATIENCE_MS, max_blocks=16)
        self.core = Core(
            chain_id=CHAIN_ID,
            validators=self.sim.validators,
            params=PARAMS,
            anchor=self.disk.anchor(),
            key=self.key,
            signing_state=self.disk.signing_state,
            config=CONFIG,
            verifier=self.sim.verifier,
        )
        self._run(self.core.start(self.sim.queue.now_ms))
        self._later(0, TxsAvailable())
        self._schedule_sync_tick()

    def crash(self) -> None:
        self.alive = False
        self.core = None
        self.incarnation += 1  # timers and answers of the old life are ignored

    def crash_soon(self) -> None:
        """Crash after a few more actions: possibly between persisting and sending."""
        if self.alive:
            self.crash_after_actions = self.rng.randint(0, 4)

    # ---- inputs

    def _later(self, delay_ms: int, event: Input) -> None:
        incarnation = self.incarnation
        self.sim.queue.after(delay_ms, lambda: self.feed(event, incarnation))

    def feed(self, event: Input, incarnation: int | None = None) -> None:
        if not self.alive or (incarnation is not None and incarnation != self.incarnation):
            return
        assert self.core is not None
        self._run(self.core.step(event, self.sim.queue.now_ms))

    def receive(self, source: int, message: Any) -> None:
        if not self.alive:
            return
        if isinstance(message, Vote | ProposalMessage):
            height = message.height if isinstance(message, Vote) else message.proposal.height
            assert self.catchup is not None
            self.catchup.observe(source, height)
            if self.byzantine and isinstance(message, ProposalMessage):
                self.sim.adversary.saw_proposal(message.proposal)
            self.feed(message)
        elif isinstance(message, SyncRequest):
            response = serve(message, self.disk.height, self.disk.block_at)
            if response is not None:
                self.sim.network.send(self.index, source, response)
        elif isinstance(message, SyncResponse):
            assert self.catchup is not None
            assert self.core is not None
            height = self.core.height
            response = self.catchup.received(source, message, height)
            while response is not None and self.alive:
                self._apply_sync(response)
                if not self.alive:
                    return
                assert self.core is not None
                response = self.catchup.next_ready(self.core.height)
            if not self.alive:
                return
            assert self.core is not None
            first = message.blocks[0][0].header.height if message.blocks else None
            if first == height and self.core.height == height:
                self.catchup.forget(source)  # as the node does: its blocks did not verify
            self._request_blocks()  # pipelined: the next range at once

    def _apply_sync(self, response: SyncResponse) -> None:
        parent = response.parent_certificate
        for block, certificate in response.blocks:
            if not self.alive:
                return
            assert self.core is not None
            if block.header.height >= self.core.height:
                self.feed(DecidedBlock(block, certificate, parent))
            parent = certificate

    def _schedule_sync_tick(self) -> None:
        incarnation = self.incarnation
        self.sim.queue.after(SYNC_TICK_MS, lambda: self._sync_tick(incarnation))

    def _sync_tick(self, incarnation: int) -> None:
        if not self.alive or incarnation != self.incarnation:
            return
        self._request_blocks()
        self._schedule_sync_tick()

    def _request_blocks(self) -> None:
        assert self.catchup is not None
        assert self.core is not None
        for peer, request in self.catchup.poll(self.core.height, self.sim.queue.now_ms):
            self.sim.network.send(self.index, peer, request)

    # ---- actions

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            if self.crash_after_actions is not None:
                if self.crash_after_actions == 0:
                    self.crash()
                    return
                self.crash_after_actions -= 1
            self._execute(action)

    def _execute(self, action: Action) -> None:
        if isinstance(action, PersistSigningState):
            self.disk.signing_state = action.state
        elif isinstance(action, Broadcast):
            self._broadcast(action.message)
        elif isinstance(action, ScheduleTimeout):
            timeout = TimeoutElapsed(action.kind, action.height, action.round)
            self._later(action.delay_ms, timeout)
        elif isinstance(action, RequestValue):
            self._later(self.rng.randint(0, 3), self._build(action))
        elif isinstance(action, ValidateBlock):
            self._later(self.rng.randint(0, 3), self._validate(action.block))
        elif isinstance(action, Commit):
            self._commit(action)
        elif isinstance(action, ReportEvidence):
            self.sim.evidence += 1

    def _broadcast(self, message: ProposalMessage | Vote) -> None:
        if self.byzantine:
            self.sim.adversary.broadcast(self, message)
            return
        self.sim.checker.on_signed(message)
        self.sim.network.broadcast(self.index, message)

    def _build(self, request: RequestValue) -> ValueReady:
        senders = list(range(SENDERS))
        self.rng.shuffle(senders)
        count = self.rng.randint(0, TXS_PER_BLOCK_MAX)
        txs = [sim_tx(s, self.disk.next_nonce(sender_key(s).public_key)) for s in senders[:count]]
        block, _ = build_block(
            chain_id=CHAIN_ID,
            height=request.height,
            round=request.round,
            proposer=request.proposer,
            timestamp_ms=max(self.sim.queue.now_ms, request.timestamp_ms_min),
            parent_id=request.parent_id,
            last_commit_id=request.last_commit_id,
            parent_state_root=self.disk.state_root,
            txs=txs,
            next_nonce=self.disk.next_nonce,
        )
        return ValueReady(request.height, request.round, block)

    def _validate(self, block: Block) -> BlockValidated:
        problem = state_problem(
            block,
            parent_state_root=self.disk.state_root,
            next_nonce=self.disk.next_nonce,
            is_verified=self.verified.__contains__,
            verify=self.sim.verifier.transaction,
        )
        if problem is None:
            self.verified.update(tx_id(tx) for tx in block.txs)
        return BlockValidated(block_id(block.header), problem is None, problem or "")

    def _commit(self, action: Commit) -> None:
        problem = self.disk.commit(action.block, action.certificate, action.parent_certificate)
        if problem is not None and not self.byzantine:
            self.sim.checker.violation(f"node {self.index}: {problem}")
        self.sim.checker.on_commit(
            self.index, action.block, action.certificate, action.parent_certificate
        )
        self._later(0, TxsAvailable())  # the simulated mempool is never empty


# ------------------------------------------------------------------ a run


@dataclass
class RunResult:
    seed: int
    validators: int
    heights: int
    faults: str
    violations: list[str]
    reached: int  # the lowest height every honest node reached
    messages: int
    sim_ms: int
    events: int
    rounds: dict[int, int] = field(default_factory=dict)
    evidence: int = 0
    restarts: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations


class Simulation:
    """One seeded run of `validators` cores to `heights` under `faults`."""

    def __init__(self, *, validators: int, seed: int, heights: int, faults: Faults) -> None:
        if validators < 1:
            raise SimulationError("at least one validator")
        if faults.byzantine >= validators:
            raise SimulationError("at least one validator must be honest")
        self.seed = seed
        self.heights = heights
        self.faults = faults
        self.rng = random.Random(seed)
        self.queue = EventQueue(GENESIS_TIME_MS)
        self.network = Network(self.queue, self.rng, validators)
        self.verifier = Verifier()
        infos = [
            ValidatorInfo(f"v{i}", validator_key(i).public_key, 1, "", "")
            for i in range(validators)
        ]
        self.validators = ValidatorSet(infos)
        byzantine = set(self.rng.sample(range(validators), faults.byzantine))
        self.honest = set(range(validators)) - byzantine
        self.checker = Checker(self.validators, self.honest, self.verifier)
        self.adversary = Adversary(self, random.Random(seed ^ 0x5EED))
        self.nodes = [SimNode(self, i, byzantine=i in byzantine) for i in range(validators)]
        self.network.receivers = [node.receive for node in self.nodes]
        self.evidence = 0

    def run(self) -> RunResult:
        self.network.faults = self.faults
        self.network.chaos = True
        for node in self.nodes:
            node.boot()
        chaos_ms = self.rng.randint(*CHAOS_MS)
        self._schedule_chaos(chaos_ms)
        self.queue.at(GENESIS_TIME_MS + chaos_ms, self._heal)
        deadline = (
            GENESIS_TIME_MS + chaos_ms + LIVENESS_MS_BASE + LIVENESS_MS_PER_HEIGHT * self.heights
        )
        self.queue.run_until(deadline, self._done, EVENTS_MAX)
        reached = min(self.nodes[i].disk.height for i in self.honest)
        if reached < self.heights and not self.checker.unsafe:
            behind = {i: self.nodes[i].disk.height for i in sorted(self.honest)}
            self.checker.violation(
                f"liveness: honest heights {behind} short of {self.heights}", safety=False
            )
        return RunResult(
            seed=self.seed,
            validators=len(self.nodes),
            heights=self.heights,
            faults=self.faults.describe(),
            violations=list(self.checker.violations),
            reached=reached,
            messages=self.network.sent,
            sim_ms=self.queue.now_ms - GENESIS_TIME_MS,
            events=self.queue.processed,
            rounds=dict(self.checker.rounds),
            evidence=self.evidence,
            restarts=sum(node.restarts for node in self.nodes),
        )

    def _done(self) -> bool:
        if self.checker.unsafe:
            return True
        return all(
            self.nodes[i].alive and self.nodes[i].disk.height >= self.heights for i in self.honest
        )

    # ---- faults

    def _schedule_chaos(self, chaos_ms: int) -> None:
        start = GENESIS_TIME_MS
        if self.faults.partitions:
            t = self.rng.randint(0, chaos_ms // 3)
            while t < chaos_ms:
                duration = self.rng.randint(100, 1_500)
                self.queue.at(start + t, self._partition)
                self.queue.at(
                    start + min(t + duration, chaos_ms), lambda: self.network.partition(())
                )
                t += duration + self.rng.randint(50, 1_000)
        if self.faults.crashes:
            for _ in range(self.rng.randint(1, 4)):
                node = self.nodes[self.rng.choice(sorted(self.honest))]
                at = self.rng.randint(0, chaos_ms)
                self.queue.at(start + at, node.crash_soon)
                down = self.rng.randint(*DOWN_MS)
                self.queue.at(start + at + down, lambda node=node: self._restart(node))

    def _partition(self) -> None:
        size = len(self.nodes)
        if size < 2:
            return
        if self.rng.random() < 0.5:  # symmetric: two sides that cannot talk
            side = set(self.rng.sample(range(size), self.rng.randint(1, size - 1)))
            links = [(a, b) for a in range(size) for b in range(size) if (a in side) != (b in side)]
        else:  # asymmetric: one node cannot send, or cannot receive
            node = self.rng.randrange(size)
            outgoing = self.rng.random() < 0.5
            links = [(node, b) if outgoing else (b, node) for b in range(size) if b != node]
        self.network.partition(links)

    def _restart(self, node: SimNode) -> None:
        if node.alive and node.crash_after_actions is not None:
            node.crash()  # it never got to its crash point: crash now
        if not node.alive:
            node.restarts += 1
            node.boot()

    def _heal(self) -> None:
        self.network.heal()
        for node in self.nodes:
            self._restart(node)
