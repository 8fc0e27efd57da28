"""The perturbations of a chaos run, planned from a seed.

`plan(seed, validators, duration_s)` is pure: the same arguments give the
same episodes, so a run replays from its seed. Each `Episode` starts, lasts,
and heals by `duration_s`:

    kill       kill -9 one node; restart it at the end
    restart_after_commit
               kill -9 one node the moment its height grows, restart it
               at once; twice
    restart_idle
               stop the load and wait until no block is being made, then
               kill -9 and restart f nodes together, twice; the load
               resumes at the end
    pause      SIGSTOP one node; SIGCONT at the end
    isolate    one node cut off from every peer, both ways
    one_way    one node cannot send to its peers ("out") or hear them ("in")
    split      the validators split into two halves (no side has a quorum)
    loss       every node loses a fraction of its outgoing datagrams
    duplicate  every node sends a fraction of its datagrams twice
    clock      one node's consensus clock jumps by +-`clock_offset_ms`
    disk       one node's data filesystem fills up (optional, root only)

The two restart kinds place restarts where restarts used to wedge a
cluster: while it is idle, and right after a commit.

Bounds: at most f = (n - 1) / 3 nodes are faulty at any time, so the
network stays live; `split` faults every node, so it runs alone (safety
only: no side can finalize); `restart_idle` runs alone too (it stops the
load for everyone); at most one network-wide episode (`loss`, `duplicate`)
at a time.
"""

from __future__ import annotations

import dataclasses
import random

__all__ = ["KINDS", "Episode", "faulty_at", "max_faulty", "plan"]

NODE_KINDS = ("kill", "restart_after_commit", "pause", "isolate", "one_way", "clock", "disk")
NETWORK_KINDS = ("loss", "duplicate")
EXCLUSIVE_KINDS = ("split", "restart_idle")  # each runs with no other episode
SAFETY_ONLY_KINDS = ("split",)  # no liveness is owed while it lasts
KINDS = NODE_KINDS + NETWORK_KINDS + EXCLUSIVE_KINDS
WEIGHTS = {
    "kill": 3,
    "restart_after_commit": 2,
    "restart_idle": 2,
    "pause": 2,
    "isolate": 2,
    "one_way": 2,
    "clock": 2,
    "disk": 1,
    "loss": 2,
    "duplicate": 1,
    "split": 1,
}
WARMUP_S = 3.0
GAP_S = (0.5, 3.0)
LENGTH_S = (2.0, 8.0)
# Long enough for the chain to fall idle and for two restarts of a node.
RESTART_IDLE_LENGTH_S = (10.0, 16.0)
CLOCK_OFFSET_MS = (1_000, 5_000)
LOSS = (0.1, 0.35)
DUPLICATION = (0.2, 0.5)


@dataclasses.dataclass(frozen=True, slots=True)
class Episode:
    start_s: float
    end_s: float
    kind: str
    nodes: tuple[int, ...]  # the nodes it makes faulty (all of them for `split`)
    side: tuple[int, ...] = ()  # split: one half; the rest is the other
    direction: str = ""  # one_way: "out" or "in"
    probability: float = 0.0  # loss, duplicate
    clock_offset_ms: int = 0  # clock

    @property
    def network_wide(self) -> bool:
        return self.kind in NETWORK_KINDS

    @property
    def exclusive(self) -> bool:
        return self.kind in EXCLUSIVE_KINDS

    @property
    def safety_only(self) -> bool:
        return self.kind in SAFETY_ONLY_KINDS

    def describe(self) -> str:
        if self.kind == "split":
            rest = tuple(i for i in self.nodes if i not in self.side)
            what = f"split {list(self.side)} | {list(rest)}"
        elif self.network_wide:
            what = f"{self.kind} {self.probability:.0%} on every node"
        elif self.kind == "one_way":
            verb = "send" if self.direction == "out" else "hear"
            what = f"one_way node {self.nodes[0]} cannot {verb}"
        elif self.kind == "clock":
            what = f"clock node {self.nodes[0]} {self.clock_offset_ms:+d} ms"
        elif self.kind == "restart_idle":
            what = f"restart_idle nodes {list(self.nodes)}"
        else:
            what = f"{self.kind} node {self.nodes[0]}"
        return f"{what} for {self.end_s - self.start_s:.1f} s"


def plan(
    seed: int,
    validators: int,
    duration_s: float,
    *,
    disk_node: int | None = None,
    warmup_s: float = WARMUP_S,
) -> list[Episode]:
    """Episodes sorted by start; `disk_node` enables `disk` on that node."""
    assert validators >= 1
    rng = random.Random(seed)
    f = (validators - 1) // 3
    kinds = [k for k in KINDS if k != "disk" or disk_node is not None]
    if f == 0:
        kinds = [k for k in kinds if k in NETWORK_KINDS]
    weights = [WEIGHTS[k] for k in kinds]
    episodes: list[Episode] = []
    t = warmup_s
    while True:
        t += rng.uniform(*GAP_S)
        kind = rng.choices(kinds, weights)[0]
        length = rng.uniform(*(RESTART_IDLE_LENGTH_S if kind == "restart_idle" else LENGTH_S))
        start = _first_free(episodes, kind, t, f, disk_node)
        if start + length > duration_s:
            break
        episodes.append(_episode(rng, kind, start, start + length, validators, episodes, disk_node))
        t = start
    episodes.sort(key=lambda e: (e.start_s, e.end_s))
    return episodes


def _first_free(
    episodes: list[Episode], kind: str, t: float, f: int, disk_node: int | None
) -> float:
    """The earliest time from `t` at which an episode of `kind` fits the bounds."""
    while True:
        active = [e for e in episodes if e.start_s <= t < e.end_s]
        if not active:
            return t
        if kind in EXCLUSIVE_KINDS or any(e.exclusive for e in active):
            blocking = active
        elif kind in NETWORK_KINDS:
            blocking = [e for e in active if e.network_wide]
        else:
            faulty = {n for e in active for n in e.nodes}
            busy = kind == "disk" and disk_node in faulty
            blocking = [e for e in active if e.nodes] if len(faulty) >= f or busy else []
        if not blocking:
            return t
        t = min(e.end_s for e in blocking)


def _episode(
    rng: random.Random,
    kind: str,
    start: float,
    end: float,
    validators: int,
    episodes: list[Episode],
    disk_node: int | None,
) -> Episode:
    everyone = tuple(range(validators))
    if kind == "split":
        side = tuple(sorted(rng.sample(everyone, validators // 2)))
        return Episode(start, end, kind, everyone, side=side)
    if kind == "restart_idle":
        f = (validators - 1) // 3
        return Episode(start, end, kind, tuple(sorted(rng.sample(everyone, f))))
    if kind in NETWORK_KINDS:
        low, high = LOSS if kind == "loss" else DUPLICATION
        return Episode(start, end, kind, (), probability=round(rng.uniform(low, high), 3))
    if kind == "disk":
        assert disk_node is not None
        return Episode(start, end, kind, (disk_node,))
    faulty = {n for e in episodes if e.start_s <= start < e.end_s for n in e.nodes}
    node = rng.choice([n for n in everyone if n not in faulty])
    if kind == "one_way":
        return Episode(start, end, kind, (node,), direction=rng.choice(("out", "in")))
    if kind == "clock":
        offset = rng.randint(*CLOCK_OFFSET_MS) * rng.choice((1, -1))
        return Episode(start, end, kind, (node,), clock_offset_ms=offset)
    return Episode(start, end, kind, (node,))


def faulty_at(episodes: list[Episode], t: float) -> set[int]:
    """The nodes faulty at time `t`."""
    return {n for e in episodes if e.start_s <= t < e.end_s for n in e.nodes}


def max_faulty(episodes: list[Episode], *, liveness_only: bool = True) -> int:
    """The most nodes faulty at once (without `split`, which is safety only)."""
    considered = [e for e in episodes if not (liveness_only and e.safety_only)]
    return max((len(faulty_at(considered, e.start_s)) for e in considered), default=0)
