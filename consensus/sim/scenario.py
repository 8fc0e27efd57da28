"""Fault classes, and the fault plan a seed draws from them.

A fault *name* is one kind of trouble; a fault *class* is a named set of them
(the campaign's table has a row per class):

    loss, duplicate, delay   lossy, duplicating, slow and reordering links;
                             latency spikes
    partition                long splits (tens of seconds to minutes),
                             isolated nodes, one-way cuts, short flaps
    crash                    crash/restart loops, several nodes down at once,
                             crashes placed right after a commit, right after a
                             persisted signature, mid-step, and while idle
    storage                  a crash loses the writes that were not synced
    clock                    per-node clock skew and drift; one node may be off
                             by more than the allowed drift (it counts as faulty)
    byzantine                validators with one behaviour each (`BEHAVIOURS`)
    idle                     stretches with an empty mempool (no heights start)
    power                    unequal voting powers
    observer                 non-validator nodes that follow the chain

`draw` is pure: the same (seed, validators, names) give the same `Scenario`.
The faulty budget (byzantine validators and clocks beyond the drift bound)
always holds less than 1/3 of the power, so liveness is owed once the other
faults heal; crashes and partitions may take down more for a while (safety
must hold regardless), and the run checks liveness only where it is owed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from consensus.errors import SimulationError

__all__ = [
    "BEHAVIOURS",
    "FAULT_CLASSES",
    "FAULT_NAMES",
    "CrashPlan",
    "Partition",
    "Scenario",
    "draw",
    "parse_faults",
]

FAULT_NAMES = (
    "loss",
    "duplicate",
    "delay",
    "partition",
    "crash",
    "storage",
    "clock",
    "byzantine",
    "idle",
    "power",
    "observer",
)
FAULT_CLASSES: dict[str, tuple[str, ...]] = {
    "none": (),
    "network": ("loss", "duplicate", "delay"),
    # A long partition wedges nothing on its own unless the connected side
    # can run rounds without deciding: a byzantine validator makes that so.
    "partition": ("partition", "loss", "delay", "idle", "byzantine"),
    "crash": ("crash", "storage", "idle", "loss", "delay", "observer"),
    "clock": ("clock", "loss", "delay", "idle"),
    "byzantine": ("byzantine", "loss", "duplicate", "delay", "power"),
    "all": FAULT_NAMES,
}
BEHAVIOURS = (
    "equivocate",  # two proposals, two votes, each to half of the honest nodes
    "silent",  # sends nothing, serves nothing
    "nil",  # votes nil, always
    "lying_pol",  # proposals name a proof-of-lock round that has none
    "invalid",  # proposes blocks that do not apply (state root, tx signature)
    "subset",  # sends its proposals to a few nodes only
    "spam",  # far-round, far-height and next-height votes, forged votes
    "lying_sync",  # serves catch-up with tampered, truncated or invented blocks
    "crowd",  # floods many distinct proposals per round
)
CRASH_TRIGGERS = ("time", "commit", "persist", "idle")
LOSS_MAX = 0.30


@dataclass(frozen=True)
class Partition:
    start_ms: int
    end_ms: int
    kind: str  # split, isolate, one_way, flap
    links: frozenset[tuple[int, int]]  # (source, destination) pairs cut
    cut: frozenset[int]  # the nodes it cuts off from a quorum (for liveness)


@dataclass(frozen=True)
class CrashPlan:
    node: int
    at_ms: int
    trigger: str  # one of CRASH_TRIGGERS: crash then, or at the next such moment
    actions: int  # "time": crash after this many more port calls (mid-step)
    down_ms: int
    lose_unsynced: bool
    # Restarted, crash again at the next such moment (a restart right after a
    # commit, then right after the first signature of the new height; an idle
    # node restarted twice), or "" for no second crash.
    again: str = ""
    # Part of a restart of several nodes at once (an operator restarting the
    # cluster): not held to the bound on nodes down at once.
    group: bool = False


@dataclass(frozen=True)
class Scenario:
    seed: int
    validators: int
    names: frozenset[str]
    powers: tuple[int, ...]
    observers: int = 0
    byzantine: dict[int, str] = field(default_factory=dict)  # validator -> behaviour
    bad_clocks: frozenset[int] = frozenset()  # beyond the drift bound: faulty
    clocks: tuple[tuple[int, float], ...] = ()  # per node: (skew ms, drift ratio)
    loss: float = 0.0
    duplicate: float = 0.0
    latency_ms: tuple[int, int] = (1, 5)
    spike: float = 0.0
    spike_ms: int = 0
    # When the links lose and duplicate (latency applies throughout).
    noisy: tuple[tuple[int, int], ...] = ()
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[CrashPlan, ...] = ()
    crash_down_max: int = 0  # honest nodes down at once, at most
    idle: tuple[tuple[int, int], ...] = ()  # (start, end) of empty-mempool stretches
    chaos_ms: int = 0  # when everything but byzantine validators and clocks heals

    @property
    def nodes(self) -> int:
        return self.validators + self.observers

    @property
    def faulty(self) -> frozenset[int]:
        """Validators faulty for the whole run (liveness is owed despite them)."""
        return frozenset(self.byzantine) | self.bad_clocks

    def describe(self) -> str:
        parts = []
        if self.byzantine:
            parts.append("byzantine " + ",".join(f"{i}:{b}" for i, b in self.byzantine.items()))
        if self.loss or self.duplicate:
            parts.append(f"loss {self.loss:.0%} dup {self.duplicate:.0%}")
        if self.latency_ms != (1, 5):
            parts.append(f"latency {self.latency_ms}")
        if self.partitions:
            longest = max(p.end_ms - p.start_ms for p in self.partitions)
            parts.append(f"{len(self.partitions)} partitions (longest {longest / 1000:.0f} s)")
        if self.crashes:
            parts.append(f"{len(self.crashes)} crashes (<= {self.crash_down_max} down)")
        if self.bad_clocks or any(skew for skew, _ in self.clocks):
            parts.append(f"clocks (bad: {sorted(self.bad_clocks)})")
        if self.idle:
            parts.append(f"{len(self.idle)} idle")
        if len(set(self.powers)) > 1:
            parts.append(f"powers {list(self.powers)}")
        if self.observers:
            parts.append(f"{self.observers} observers")
        return ", ".join(parts) or "no faults"


def parse_faults(text: str) -> frozenset[str]:
    """`none`, a class, a fault name, or a comma list of them (their union)."""
    names: set[str] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in FAULT_CLASSES:
            names.update(FAULT_CLASSES[part])
        elif part in FAULT_NAMES:
            names.add(part)
        else:
            known = ", ".join([*FAULT_CLASSES, *FAULT_NAMES])
            raise SimulationError(f"unknown fault {part!r} (choose from {known})")
    return frozenset(names)


def draw(
    seed: int, validators: int, names: Iterable[str], *, byzantine: int | None = None
) -> Scenario:
    """The fault plan of one seed. `byzantine` forces that many byzantine
    validators (equivocating), beyond the budget if asked: a negative control."""
    names = frozenset(names)
    if validators < 1:
        raise SimulationError("at least one validator")
    if byzantine is not None and not 0 <= byzantine < validators:
        raise SimulationError("at least one validator must be honest")
    rng = random.Random(f"scenario:{seed}:{validators}")
    powers = _powers(rng, validators, "power" in names)
    budget = _budget(rng, powers)
    chosen: dict[int, str] = {}
    if byzantine is not None:
        for index in rng.sample(range(validators), byzantine):
            chosen[index] = "equivocate"
    elif "byzantine" in names and budget:
        # Usually the whole budget; sometimes less, leaving room for a bad clock.
        count = len(budget) if rng.random() < 0.6 else rng.randint(1, len(budget))
        for index in rng.sample(budget, count):
            chosen[index] = rng.choice(BEHAVIOURS)
    bad_clocks = frozenset()
    spare = [i for i in budget if i not in chosen]
    if "clock" in names and spare and rng.random() < 0.5:
        bad_clocks = frozenset([rng.choice(spare)])
    observers = rng.randint(1, 2) if "observer" in names and rng.random() < 0.5 else 0
    nodes = validators + observers
    chaos_ms = _chaos_ms(rng, names)
    return Scenario(
        seed=seed,
        validators=validators,
        names=names,
        powers=powers,
        observers=observers,
        byzantine=chosen,
        bad_clocks=bad_clocks,
        clocks=_clocks(rng, nodes, "clock" in names, bad_clocks),
        loss=rng.uniform(0.0, LOSS_MAX) if "loss" in names else 0.0,
        duplicate=rng.uniform(0.0, 0.2) if "duplicate" in names else 0.0,
        latency_ms=(1, rng.randint(10, 150)) if "delay" in names else (1, 5),
        spike=rng.uniform(0.0, 0.02) if "delay" in names else 0.0,
        spike_ms=rng.randint(200, 3_000) if "delay" in names else 0,
        noisy=_noisy(rng, chaos_ms) if names & {"loss", "duplicate", "delay"} else (),
        partitions=_partitions(rng, nodes, chaos_ms) if "partition" in names else (),
        crashes=(
            _crashes(rng, nodes, validators, chaos_ms, "storage" in names)
            if "crash" in names
            else ()
        ),
        # At most f honest nodes down at once, or sometimes f + 1 (then
        # liveness is not owed meanwhile, but safety still is).
        crash_down_max=(
            max(1, (validators - 1) // 3) + (rng.random() < 0.3) if "crash" in names else 0
        ),
        idle=_idle(rng, chaos_ms) if "idle" in names else (),
        chaos_ms=chaos_ms,
    )


def _powers(rng: random.Random, validators: int, unequal: bool) -> tuple[int, ...]:
    if not unequal or rng.random() < 0.3:
        return (1,) * validators
    return tuple(rng.choice((1, 1, 2, 3, 5, 10)) for _ in range(validators))


def _budget(rng: random.Random, powers: tuple[int, ...]) -> list[int]:
    """As many validators as possible, drawn at random, holding < 1/3 of the power."""
    total = sum(powers)
    chosen: list[int] = []
    power = 0
    for index in rng.sample(range(len(powers)), len(powers)):
        if 3 * (power + powers[index]) < total:
            chosen.append(index)
            power += powers[index]
    return sorted(chosen)


def _chaos_ms(rng: random.Random, names: frozenset[str]) -> int:
    if "partition" in names and rng.random() < 0.5:
        return rng.randint(30_000, 240_000)  # room for the long partitions
    if "crash" in names and rng.random() < 0.5:
        return rng.randint(30_000, 120_000)  # room for crash loops while liveness is owed
    if "crash" in names or "idle" in names:
        return rng.randint(3_000, 20_000)
    return rng.randint(1_500, 6_000)


def _clocks(
    rng: random.Random, nodes: int, skewed: bool, bad: frozenset[int]
) -> tuple[tuple[int, float], ...]:
    if not skewed:
        return tuple((0, 0.0) for _ in range(nodes))
    clocks = []
    for node in range(nodes):
        skew = rng.randint(-3_000, 3_000)
        if node in bad:
            skew = rng.choice((-1, 1)) * rng.randint(15_000, 40_000)
        drift = rng.uniform(-0.02, 0.02) if rng.random() < 0.5 else 0.0
        clocks.append((skew, drift))
    return tuple(clocks)


def _partitions(rng: random.Random, nodes: int, chaos_ms: int) -> tuple[Partition, ...]:
    episodes = []
    t = rng.randint(0, max(1, chaos_ms // 4))
    while t < chaos_ms and nodes > 1:
        kind = rng.choice(("split", "split", "isolate", "one_way", "flap"))
        if kind == "flap":
            length = rng.randint(100, 1_500)
        elif kind == "one_way":
            length = rng.randint(3_000, 60_000)
        else:
            length = rng.randint(10_000, 180_000) if chaos_ms > 20_000 else rng.randint(500, 3_000)
        end = min(t + length, chaos_ms)
        episodes.append(_partition(rng, nodes, kind, t, end))
        t = end + rng.randint(50, 5_000)
    return tuple(episodes)


def _partition(rng: random.Random, nodes: int, kind: str, start: int, end: int) -> Partition:
    everyone = range(nodes)
    if kind in ("split", "flap"):
        side = set(rng.sample(everyone, rng.randint(1, nodes - 1)))
        links = {(a, b) for a in everyone for b in everyone if (a in side) != (b in side)}
        smaller = side if len(side) <= nodes - len(side) else set(everyone) - side
        return Partition(start, end, kind, frozenset(links), frozenset(smaller))
    node = rng.randrange(nodes)
    if kind == "isolate":
        links = {(node, b) for b in everyone if b != node}
        links |= {(b, node) for b in everyone if b != node}
    elif rng.random() < 0.5:  # one way: it cannot send
        links = {(node, b) for b in everyone if b != node}
    else:  # ... or cannot hear
        links = {(b, node) for b in everyone if b != node}
    return Partition(start, end, kind, frozenset(links), frozenset([node]))


def _crashes(
    rng: random.Random, nodes: int, validators: int, chaos_ms: int, storage: bool
) -> tuple[CrashPlan, ...]:
    plans = []
    for _ in range(rng.randint(2, 12)):
        node = rng.randrange(nodes)
        at = rng.randint(0, chaos_ms)
        plans.append(_crash(rng, node, at, rng.choice(CRASH_TRIGGERS), storage))
    for _ in range(rng.choice((0, 1, 1, 2))):  # crash/restart loops, every few hundred ms
        node = rng.randrange(validators)
        t = rng.randint(0, max(1, chaos_ms // 2))
        while t < chaos_ms:
            down_ms = rng.randint(50, 3_000)
            trigger = rng.choice(CRASH_TRIGGERS)
            plans.append(_crash(rng, node, t, trigger, storage, down_ms=down_ms))
            t += down_ms + rng.randint(200, 1_000)
    if rng.random() < 0.5:  # the whole cluster, or most of it, restarted at once
        members = rng.sample(range(nodes), rng.randint(max(2, nodes // 2), nodes))
        at = rng.randint(0, chaos_ms)
        trigger = rng.choice(("idle", "idle", "time"))
        again = rng.choice(("persist", "idle", "commit", ""))
        down_ms = rng.randint(20, 2_000)
        for node in members:
            plan = _crash(rng, node, at, trigger, storage, down_ms=down_ms)
            plans.append(replace(plan, again=again, group=True, actions=0))
    return tuple(sorted(plans, key=lambda p: (p.at_ms, p.node)))


def _crash(
    rng: random.Random,
    node: int,
    at: int,
    trigger: str,
    storage: bool,
    *,
    down_ms: int | None = None,
) -> CrashPlan:
    if down_ms is None:
        down_ms = rng.choice(
            (rng.randint(20, 500), rng.randint(500, 3_000), rng.randint(3_000, 15_000))
        )
    return CrashPlan(
        node=node,
        at_ms=at,
        trigger=trigger,
        actions=rng.randint(0, 6),
        down_ms=down_ms,
        lose_unsynced=storage and rng.random() < 0.5,
        again=_again(rng, trigger),
    )


def _noisy(rng: random.Random, chaos_ms: int) -> tuple[tuple[int, int], ...]:
    """Lossy stretches: the whole chaos phase, or episodes with calm between."""
    if rng.random() < 0.3:
        return ((0, chaos_ms),)
    stretches = []
    t = rng.randint(0, 2_000)
    while t < chaos_ms:
        end = min(chaos_ms, t + rng.randint(1_000, 20_000))
        stretches.append((t, end))
        t = end + rng.randint(1_000, 20_000)
    return tuple(stretches)


def _again(rng: random.Random, trigger: str) -> str:
    if trigger == "time" or rng.random() < 0.4:
        return ""
    if trigger == "idle":
        return "idle"
    return rng.choice(("persist", "commit", "time"))


def _idle(rng: random.Random, chaos_ms: int) -> tuple[tuple[int, int], ...]:
    stretches = []
    t = rng.randint(0, max(1, chaos_ms // 2))
    for _ in range(rng.randint(1, 3)):
        end = min(chaos_ms, t + rng.randint(500, 5_000))
        if end > t:
            stretches.append((t, end))
        t = end + rng.randint(200, 3_000)
    return tuple(stretches)
