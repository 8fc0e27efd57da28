"""One seeded run: build the world a `Scenario` describes, play its faults,
heal, and judge.

Time runs in two phases. During the chaos phase (`scenario.chaos_ms`) the
fault plan plays: lossy links, partitions and cuts, crashes at their
moments, idle stretches; transactions arrive now and then (each lets one
more height start). At the heal the network becomes clean, partitions end,
crashed nodes restart and the remaining transactions arrive; byzantine
validators and skewed clocks stay. Then every honest node (observers too)
must reach the target height within `LIVENESS_MS_BASE` plus
`LIVENESS_MS_PER_HEIGHT` per height.

Liveness is also checked during the chaos phase: whenever the network is
whole and the faulty validators (byzantine, beyond the clock bound, or down)
hold less than 1/3 of the power, the chain must grow within a bound that
allows for the round timeouts of f + 2 rounds at the highest round reached
(a round per faulty proposer, and one to spare).
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass, field

from blake3 import blake3

from consensus.core import CoreConfig
from consensus.host import HostConfig
from consensus.messages import ProposalMessage
from consensus.sim.byzantine import Adversary, ByzantinePort
from consensus.sim.check import CHAIN_ID, Checker, Verifier
from consensus.sim.events import EventQueue
from consensus.sim.network import Links, Network
from consensus.sim.node import HonestPort, SimNode
from consensus.sim.scenario import CrashPlan, Scenario, draw
from sequencer.certificate import ValidatorSet
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.types import ConsensusParams, Transaction, ValidatorInfo

__all__ = ["RunResult", "Simulation", "run_seed"]

GENESIS_MS = 1_700_000_000_000
SENDERS = 6
LIVENESS_MS_BASE = 60_000
LIVENESS_MS_PER_HEIGHT = 2_000
STALL_MS_BASE = 20_000
MONITOR_MS = 1_000
IDLE_POLL_MS = 50
EVENTS_MAX = 30_000_000


@functools.cache
def validator_key(index: int) -> PrivateKey:
    return PrivateKey(blake3(b"sim-validator-%d" % index).digest())


@functools.cache
def observer_key(index: int) -> PrivateKey:
    return PrivateKey(blake3(b"sim-observer-%d" % index).digest())


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
    longest_stall_ms: int = 0  # while liveness was owed, during the chaos phase
    recovery_ms: int | None = None  # from the heal until every honest node reached the target

    @property
    def ok(self) -> bool:
        return not self.violations


class Simulation:
    """One seeded run of a scenario to `heights`."""

    def __init__(
        self, scenario: Scenario, *, heights: int, config: CoreConfig | None = None
    ) -> None:
        """`config`: every node's core knobs (default: the node's defaults)."""
        self.scenario = scenario
        self.heights = heights
        self.core_config = config or CoreConfig()
        self.chain_id = CHAIN_ID
        self.genesis_ms = GENESIS_MS
        self.params = ConsensusParams()
        self.rng = random.Random(f"run:{scenario.seed}")
        self.queue = EventQueue(GENESIS_MS)
        self.network = Network(self.queue, self.rng, scenario.nodes)
        self.verifier = Verifier()
        self.validators = ValidatorSet(
            [
                ValidatorInfo(f"v{i}", validator_key(i).public_key, power, "", "")
                for i, power in enumerate(scenario.powers)
            ]
        )
        self.senders = [sender_key(i).public_key for i in range(SENDERS)]
        self.honest_nodes = set(range(scenario.nodes)) - set(scenario.byzantine)
        honest_validators = set(range(scenario.validators)) - set(scenario.byzantine)
        self.checker = Checker(self.validators, self.honest_nodes, self.verifier, honest_validators)
        self.adversary = Adversary(self, random.Random(f"adversary:{scenario.seed}"))
        self.stats: dict[str, int] = {}
        # What the honest cores and hosts counted, over every life of every node.
        self.core_stats: Counter[str] = Counter()
        self.nodes = [self._node(i) for i in range(scenario.nodes)]
        self.network.receivers = [self._receiver(node) for node in self.nodes]
        self._arrivals = self._arrival_times()
        self.target = len(self._arrivals)  # each arrival lets one more height start
        self._arrived = 0
        self.healed = False
        self._heal_ms = GENESIS_MS + scenario.chaos_ms
        self._calm_since: int | None = None
        self._noisy = False
        self._progress = (0, GENESIS_MS)  # (max honest height, when it was reached)
        self.longest_stall_ms = 0

    # ---------------------------------------------------------------- the world

    def _node(self, index: int) -> SimNode:
        scenario = self.scenario
        key = validator_key(index) if index < scenario.validators else observer_key(index)
        clock = scenario.clocks[index] if scenario.clocks else (0, 0.0)
        node = SimNode(
            self, index, key, clock=clock, config=self.core_config, host_config=HostConfig()
        )
        behaviour = scenario.byzantine.get(index)
        if behaviour is None:
            node.network = HonestPort(node)
        else:
            node.network = ByzantinePort(node, behaviour, self.adversary)
        node.on_crash = self._crashed
        checker = self.checker
        node.disk.on_commit = lambda block, certificate, parent: checker.on_commit(
            index, block, certificate, parent
        )
        return node

    def _receiver(self, node: SimNode):  # type: ignore[no-untyped-def]
        if node.index not in self.scenario.byzantine:
            return node.receive
        seen = self.adversary.seen

        def receive(source: int, message: object) -> None:
            if isinstance(message, ProposalMessage):
                p = message.proposal
                seen.setdefault((p.height, p.round), p.block_id)
            node.receive(source, message)

        return receive

    def transaction(self, sender: int, nonce: int) -> Transaction:
        return sim_tx(sender, nonce)

    def fold_statistics(self, node: SimNode) -> None:
        """Keep what a node's core and host counted before it goes (crash or end)."""
        if node.host is not None and node.index in self.honest_nodes:
            self.core_stats.update(node.host.core.stats)
            self.core_stats.update(node.host.counts)

    def count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def arrived(self) -> int:
        """Transactions that arrived so far (each lets one more height start)."""
        return self._arrived

    def _arrival_times(self) -> list[int]:
        """When transactions arrive: one soon after each partition starts (so a
        height is under way while the network is cut), others at random
        during the chaos phase (not in idle stretches), and the rest right
        after the heal, at least `heights` in all."""
        scenario = self.scenario
        rng = random.Random(f"arrivals:{scenario.seed}")
        times = [
            GENESIS_MS + p.start_ms + rng.randint(0, 500)
            for p in scenario.partitions
            if p.end_ms - p.start_ms > 2_000
        ]
        # A crash lands best while a height is under way: a transaction just
        # before it, or (for a crash at the next commit or signature) just after.
        for plan in scenario.crashes:
            if plan.trigger == "idle" or rng.random() < 0.3:
                continue
            before = plan.trigger == "time"
            at = plan.at_ms - rng.randint(0, 200) if before else plan.at_ms + rng.randint(0, 50)
            times.append(GENESIS_MS + max(0, at))
        for _ in range(rng.randint(self.heights // 3, max(1, 2 * self.heights // 3))):
            t = rng.randint(0, max(0, scenario.chaos_ms - 1))
            if not any(start <= t < end for start, end in scenario.idle):
                times.append(GENESIS_MS + t)
        t = GENESIS_MS + scenario.chaos_ms
        after = max(self.heights - len(times), self.heights // 3, 1)
        for _ in range(after):
            t += rng.randint(1, 20)
            times.append(t)
        return sorted(times)

    # ---------------------------------------------------------------- a run

    def run(self) -> RunResult:
        scenario = self.scenario
        self.network.links.latency_ms = scenario.latency_ms
        for start, end in scenario.noisy:
            self.queue.at(GENESIS_MS + start, self._noise, True)
            self.queue.at(GENESIS_MS + end, self._noise, False)
        for node in self.nodes:
            node.boot()
        for t in self._arrivals:
            self.queue.at(t, self._arrive)
        for partition in scenario.partitions:
            self.queue.at(GENESIS_MS + partition.start_ms, self._cut, partition.links)
            self.queue.at(GENESIS_MS + partition.end_ms, self._cut, frozenset())
        for plan in scenario.crashes:
            self.queue.at(GENESIS_MS + plan.at_ms, self._crash_at, plan)
        self.queue.at(self._heal_ms, self._heal)
        self.queue.at(GENESIS_MS + MONITOR_MS, self._monitor)
        deadline = self._heal_ms + LIVENESS_MS_BASE + LIVENESS_MS_PER_HEIGHT * self.target
        self.queue.run_until(deadline, self._done, EVENTS_MAX)
        return self._result()

    def _done(self) -> bool:
        if self.checker.unsafe:
            return True
        return self.healed and all(
            self.nodes[i].alive and self.nodes[i].disk.height() >= self.target
            for i in self.honest_nodes
        )

    def _result(self) -> RunResult:
        for node in self.nodes:
            self.fold_statistics(node)
        for node in self.nodes:
            for problem in node.disk.problems:
                if node.index in self.honest_nodes:
                    self.checker.violation(f"node {node.index}: {problem}")
        reached = min(self.nodes[i].disk.height() for i in self.honest_nodes)
        recovery = None
        if reached >= self.target:
            recovery = self.queue.now_ms - self._heal_ms
        elif not self.checker.unsafe:
            behind = {i: self.nodes[i].disk.height() for i in sorted(self.honest_nodes)}
            self.checker.violation(
                f"liveness: honest heights {behind} short of {self.target} "
                f"{self.queue.now_ms - self._heal_ms} ms after the heal",
                safety=False,
            )
        return RunResult(
            seed=self.scenario.seed,
            validators=self.scenario.validators,
            heights=self.target,
            faults=self.scenario.describe(),
            violations=list(self.checker.violations),
            reached=reached,
            messages=self.network.sent,
            sim_ms=self.queue.now_ms - GENESIS_MS,
            events=self.queue.processed,
            rounds=dict(self.checker.rounds),
            evidence=self.stats.get("evidence", 0),
            restarts=sum(node.restarts for node in self.nodes),
            longest_stall_ms=self.longest_stall_ms,
            recovery_ms=recovery,
        )

    # ---------------------------------------------------------------- faults

    def _noise(self, on: bool) -> None:
        """Lossy links on or off (latency stays as the scenario says until the heal)."""
        if self.healed:
            return
        s = self.scenario
        links = self.network.links
        links.loss, links.duplicate = (s.loss, s.duplicate) if on else (0.0, 0.0)
        links.spike, links.spike_ms = (s.spike, s.spike_ms) if on else (0.0, 0)
        self._noisy = on

    def _cut(self, links: frozenset[tuple[int, int]]) -> None:
        if not self.healed:
            self.network.partition(links)

    def _arrive(self, _: object = None) -> None:
        self._arrived += 1
        for node in self.nodes:
            if node.alive:  # the transaction reaches each node a little later
                self.queue.after(self.rng.randint(0, 5), node.txs_available)

    def _crash_at(self, plan: CrashPlan) -> None:
        node = self.nodes[plan.node]
        if self.healed or not node.alive or not self._may_go_down(node, plan):
            return
        node.lose_unsynced = plan.lose_unsynced
        node.pending_plan = plan  # first: the crash may come at once, and restarts by it
        if plan.trigger == "time":
            node.crash_after(plan.actions)
        elif plan.trigger == "commit":
            node.crash_on = "commit"
        elif plan.trigger == "persist":
            node.crash_on = "signing_state"
        else:
            self._crash_when_idle((plan, node.incarnation))

    def _crash_when_idle(self, state: tuple[CrashPlan, int]) -> None:
        plan, incarnation = state
        node = self.nodes[plan.node]
        if self.healed or not node.alive or node.incarnation != incarnation:
            return
        if node.idle:
            node.crash()
        else:
            self.queue.after(IDLE_POLL_MS, self._crash_when_idle, state)

    def _may_go_down(self, node: SimNode, plan: CrashPlan) -> bool:
        """Never more than the plan's bound of honest nodes down at once (but a
        cluster restart takes down its whole group)."""
        if node.index in self.scenario.byzantine or plan.group:
            return True
        down = sum(1 for n in self.nodes if not n.alive and n.index in self.honest_nodes)
        return down < self.scenario.crash_down_max

    def _crashed(self, node: SimNode) -> None:
        plan, node.pending_plan = node.pending_plan, None
        if plan is None or self.healed:
            return
        self.queue.after(plan.down_ms, self._restart, (node, plan))

    def _restart(self, state: tuple[SimNode, CrashPlan]) -> None:
        node, plan = state
        if node.alive:
            return
        node.restarts += 1
        node.boot()
        if plan.again and not self.healed:
            again = CrashPlan(
                plan.node,
                0,
                plan.again,
                plan.actions,
                plan.down_ms,
                plan.lose_unsynced,
                group=plan.group,
            )
            self._crash_at(again)

    def _heal(self, _: object = None) -> None:
        self.healed = True
        self.network.links = Links()
        for node in self.nodes:
            node.disarm()
            if not node.alive:
                node.restarts += 1
                node.boot()

    # ---------------------------------------------------------------- liveness on the way

    def _monitor(self, _: object = None) -> None:
        """Track how long the chain stood still while liveness was owed."""
        now = self.queue.now_ms
        if self.healed:
            return  # from here the final check applies
        height = max(
            (n.disk.height() for n in self.nodes if n.index in self.honest_nodes), default=0
        )
        if height > self._progress[0]:
            self._progress = (height, now)
        if self._owed():
            if self._calm_since is None:
                self._calm_since = now
            stalled = now - max(self._calm_since, self._progress[1])
            self.longest_stall_ms = max(self.longest_stall_ms, stalled)
            if stalled > self._stall_bound_ms() and not self.checker.unsafe:
                self.checker.violation(
                    f"stall: height {height} for {stalled} ms while liveness was owed "
                    f"(at {now - GENESIS_MS} ms)",
                    safety=False,
                )
                self._calm_since = None
                self._progress = (height, now)
        else:
            self._calm_since = None
        self.queue.after(MONITOR_MS, self._monitor)

    def _owed(self) -> bool:
        """Whole and reliable network, faulty validators below 1/3 of the power,
        work to do. (On lossy links a round fails with some probability, so
        no bound holds; they are checked after the heal.)"""
        if self.network.links.blocked or self._noisy:
            return False
        faulty = set(self.scenario.faulty)
        faulty.update(n.index for n in self.nodes[: self.scenario.validators] if not n.alive)
        power = sum(self.validators.powers[i] for i in faulty)
        if 3 * power >= self.validators.total_power:
            return False
        height = self._progress[0]
        return self._arrived > height

    def _stall_bound_ms(self) -> int:
        rounds = [n.host.core.round for n in self.nodes if n.alive and n.host is not None]
        r = max(rounds, default=0)
        p = self.params
        per_round = (
            p.timeout_propose_ms
            + p.timeout_prevote_ms
            + p.timeout_precommit_ms
            + (
                p.timeout_propose_delta_ms
                + p.timeout_prevote_delta_ms
                + p.timeout_precommit_delta_ms
            )
            * r
        )
        f = (self.scenario.validators - 1) // 3
        return STALL_MS_BASE + (f + 2) * per_round


def run_seed(
    *,
    validators: int,
    seed: int,
    heights: int,
    faults: frozenset[str] | set[str] | list[str] | tuple[str, ...],
    byzantine: int | None = None,
    config: CoreConfig | None = None,
) -> RunResult:
    """One run: the scenario the seed draws for these faults, to `heights`."""
    scenario = draw(seed, validators, faults, byzantine=byzantine)
    return Simulation(scenario, heights=heights, config=config).run()
