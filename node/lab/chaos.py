"""Chaos runs: a devnet of real node processes under steady signed load,
perturbed from a seed, then healed and audited.

    python3 scripts/chaos.py                          # 4 validators, 60 s, random seed
    python3 scripts/chaos.py --validators 7 --duration 300 --seed 42 --out chaos.json
    python3 scripts/chaos.py --disk                   # also fill one node's disk (root)

The plan (`node.lab.chaos_plan`) is printed as it runs; it includes restarts at
the moments that once wedged a cluster (a node restarted twice while the
chain is idle, a node killed the moment it commits). Partitions, loss,
duplication and clock jumps go through each node's chaos control
(`node.daemon.chaos_control`: `chaos.json` in its home, then SIGUSR1); kill -9,
pauses and restarts through the processes; a full disk through a small
tmpfs mounted on one node's data directory and a ballast file.

During the run, liveness is checked whenever it is owed (no split, the load
running, at most f nodes faulty, which the plan guarantees): the highest
height among the nodes that are not faulty must grow at least every
`--stall-bound` seconds. The longest such stall is reported.

After the last episode everything is healed and checked (`node.lab.audit`):
identical block ids at every height on every node, every certificate valid
against genesis, no validator's precommits for two blocks at one
(height, round) and no equivocation reported by any node, every
acknowledged (202) transaction finalized exactly once, all nodes within
`CONVERGED_HEIGHTS` of each other within `CONVERGE_S` of healing, no stall
beyond the bound, and node 0's file L1 contiguous and matching the chain. One summary line; exit
status 1 on any violation; the seed replays the plan.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import trio

from node.config.chaos import CONTROL_FILE
from node.lab.audit import AuditReport, audit, fetch_blocks
from node.lab.bench import Devnet
from node.lab.chaos_plan import Episode, plan
from node.lab.loadgen import SteadyLoad, presign
from node.ops.l1verify import verify_l1
from node.ops.procs import free_base_port
from sequencer.certificate import ValidatorSet
from sequencer.files import write_atomic
from sequencer.genesis import load_genesis

__all__ = ["main"]

SENDERS = 32
CONVERGE_S = 20.0
CONVERGED_HEIGHTS = 2
DRAIN_S = 60.0
POLL_S = 0.5
PROGRESS_S = 5.0
DISK_BYTES = 256 * 1024 * 1024
BALLAST = "ballast"
EQUIVOCATION_LOG = "equivocation by validator"
STALL_BOUND_S = 20.0
IDLE_QUIET_S = 1.5  # no height change for this long: the chain is idle
IDLE_WAIT_S = 10.0
ANSWER_WAIT_S = 30.0
COMMIT_WAIT_S = 10.0
COMMIT_POLL_S = 0.01
REJOIN_S = 2.0  # after an idle restart: time to rejoin (and vote) before the next


class ChaosNet:
    """The devnet's processes and the faults applied to them."""

    def __init__(self, root: Path, validators: int, *, disk: bool) -> None:
        base = free_base_port(validators)
        self.net = Devnet(root, validators, base, env={"SEQUENCER_CHAOS_CONTROL": "true"})
        self.size = validators
        self.disk_node = validators - 1 if disk else None
        self.mounted: Path | None = None
        self.paused: set[int] = set()
        self.needs_signal = [False] * validators  # restarted: signal once it answers
        self.controls: list[dict[str, Any]] = [{} for _ in range(validators)]
        self.heights = [0] * validators
        self.equivocations = [0] * validators
        self.restarts = 0
        self.expected_down: set[int] = set()  # killed by the plan, or on a full disk
        self.unexpected_exits: list[str] = []
        if self.disk_node is not None:
            self._mount(self.home(self.disk_node) / "data")

    def home(self, index: int) -> Path:
        return Path(self.net.layout.nodes[index].home)

    def _mount(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        command = ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)]
        subprocess.run(command, check=True)
        self.mounted = path

    # -------------------------------------------------------------- processes

    def alive(self, index: int) -> bool:
        process = self.net.processes[index]
        return process is not None and process.poll() is None

    def kill(self, index: int) -> None:
        process = self.net.processes[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        self.paused.discard(index)

    def restart(self, index: int) -> None:
        self.kill(index)
        self.expected_down.discard(index)
        self.net.start(index)
        self.needs_signal[index] = True
        self.restarts += 1

    def pause(self, index: int) -> None:
        if self.alive(index):
            self.net.processes[index].send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
            self.paused.add(index)

    def resume(self, index: int) -> None:
        if self.alive(index):
            self.net.processes[index].send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        self.paused.discard(index)

    def set_control(self, index: int, control: dict[str, Any]) -> None:
        """Write the node's `chaos.json` and tell it, if it changed."""
        if control == self.controls[index]:
            return
        self.controls[index] = control
        write_atomic(self.home(index) / CONTROL_FILE, json.dumps(control).encode())
        if self.alive(index) and not self.needs_signal[index]:
            self.net.processes[index].send_signal(signal.SIGUSR1)  # type: ignore[union-attr]

    def fill_disk(self) -> None:
        assert self.mounted is not None
        with contextlib.suppress(OSError), (self.mounted / BALLAST).open("wb") as ballast:
            chunk = b"\0" * (1024 * 1024)
            while True:
                ballast.write(chunk)
                ballast.flush()

    def free_disk(self) -> None:
        if self.mounted is not None:
            (self.mounted / BALLAST).unlink(missing_ok=True)

    def stop(self) -> None:
        for index in range(self.size):
            self.resume(index)
        self.free_disk()
        self.net.stop_all()
        if self.mounted is not None:
            subprocess.run(["umount", "-l", str(self.mounted)], check=False)
            self.mounted = None

    def equivocations_in_logs(self) -> int:
        return sum(
            (self.home(i) / "node.log").read_text(errors="replace").count(EQUIVOCATION_LOG)
            for i in range(self.size)
        )


def controls_for(active: Sequence[Episode], size: int) -> list[dict[str, Any]]:
    """Each node's `chaos.json` content for the active episodes."""
    blocked_to: list[set[int]] = [set() for _ in range(size)]
    blocked_from: list[set[int]] = [set() for _ in range(size)]
    drop = duplicate = 0.0
    offsets = [0] * size
    for e in active:
        if e.kind == "isolate":
            others = set(range(size)) - {e.nodes[0]}
            blocked_to[e.nodes[0]] |= others
            blocked_from[e.nodes[0]] |= others
        elif e.kind == "one_way":
            others = set(range(size)) - {e.nodes[0]}
            (blocked_to if e.direction == "out" else blocked_from)[e.nodes[0]] |= others
        elif e.kind == "split":
            rest = set(e.nodes) - set(e.side)
            for a, b in ((set(e.side), rest), (rest, set(e.side))):
                for node in a:
                    blocked_to[node] |= b
                    blocked_from[node] |= b
        elif e.kind == "loss":
            drop = max(drop, e.probability)
        elif e.kind == "duplicate":
            duplicate = max(duplicate, e.probability)
        elif e.kind == "clock":
            offsets[e.nodes[0]] = e.clock_offset_ms
    controls = []
    for node in range(size):
        faults: dict[str, Any] = {}
        if drop:
            faults["drop"] = drop
        if duplicate:
            faults["duplicate"] = duplicate
        if blocked_to[node]:
            faults["blocked_to"] = sorted(blocked_to[node])
        if blocked_from[node]:
            faults["blocked_from"] = sorted(blocked_from[node])
        control: dict[str, Any] = {"faults": faults} if faults else {}
        if offsets[node]:
            control["clock_offset_ms"] = offsets[node]
        controls.append(control)
    return controls


class StallWatch:
    """How long the height stood still while liveness was owed.

    `observe` is called at each poll with whether liveness is owed and the
    best height of the correct nodes; it returns True once per stall, when
    the stall passes `bound_s`. Time not owed does not count: the clock
    restarts when liveness is owed again.
    """

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self.longest_s = 0.0
        self._since: float | None = None  # owed, and the height last grew then
        self._height = -1
        self._reported = False

    def observe(self, now: float, *, owed: bool, height: int) -> bool:
        if not owed:
            self._since = None
            return False
        if self._since is None or height > self._height:
            self._since, self._height, self._reported = now, height, False
            return False
        stalled = now - self._since
        self.longest_s = max(self.longest_s, stalled)
        if stalled > self.bound_s and not self._reported:
            self._reported = True
            return True
        return False


class Run:
    """One chaos run: the plan executed against a `ChaosNet` under load."""

    def __init__(self, chaos: ChaosNet, episodes: list[Episode], args: argparse.Namespace) -> None:
        self.chaos = chaos
        self.episodes = episodes
        self.args = args
        self.started = 0.0
        self.active: list[Episode] = []
        self.pending: list[tuple[float, tuple[int, ...], int]] = []  # heal time, nodes, height
        self.recoveries: list[float] = []
        self.injected = 0
        self.converged_s: float | None = None
        self.load: SteadyLoad | None = None
        self.final_ids: set[str] = set()
        self.client: httpx.AsyncClient | None = None
        self.nursery: trio.Nursery | None = None
        self.scripts: dict[int, trio.Event] = {}  # episode id -> its restarts are done
        self.stall = StallWatch(args.stall_bound)
        self.stalls: list[str] = []  # each stall beyond the bound, described

    def say(self, text: str) -> None:
        print(f"[chaos {time.monotonic() - self.started:7.1f} s] {text}", flush=True)

    async def execute(self, load: SteadyLoad, client: httpx.AsyncClient) -> None:
        self.started = time.monotonic()
        self.load = load
        self.client = client
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(self._monitor, client)
            nursery.start_soon(self._progress)
            async with trio.open_nursery() as loading:
                loading.start_soon(load.run)
                await self._perform()
                await trio.sleep_until(self._at(self.args.duration))
                await self._heal_all()
                load.stop()
                self.say(f"load stopped; {len(load.acknowledged)} acknowledged")
                await self._converge()
            await self._drain(client)
            nursery.cancel_scope.cancel()

    def _at(self, seconds: float) -> float:
        return trio.current_time() + (self.started + seconds - time.monotonic())

    async def _perform(self) -> None:
        events = sorted(
            [(e.start_s, 1, i) for i, e in enumerate(self.episodes)]
            + [(e.end_s, 0, i) for i, e in enumerate(self.episodes)]
        )
        for at, starting, i in events:
            await trio.sleep_until(self._at(at))
            if starting:
                await self._begin(self.episodes[i])
            else:
                await self._end(self.episodes[i])

    async def _begin(self, e: Episode) -> None:
        self.injected += 1
        self.say(f"start {e.describe()}")
        self.active.append(e)
        touched = set(e.nodes) if not e.network_wide else set()
        self.pending = [p for p in self.pending if not touched & set(p[1])]
        if e.kind == "kill":
            self.chaos.expected_down.add(e.nodes[0])
            self.chaos.kill(e.nodes[0])
        elif e.kind in ("restart_idle", "restart_after_commit"):
            done = self.scripts[id(e)] = trio.Event()
            script = self._restart_idle if e.kind == "restart_idle" else self._restart_after_commit
            assert self.nursery is not None
            self.nursery.start_soon(script, e, done)
        elif e.kind == "pause":
            self.chaos.pause(e.nodes[0])
        elif e.kind == "disk":
            self.chaos.expected_down.add(e.nodes[0])  # it may stop on a full disk
            await trio.to_thread.run_sync(self.chaos.fill_disk)
        else:
            self._apply_controls()

    async def _end(self, e: Episode) -> None:
        self.active.remove(e)
        node = e.nodes[0] if e.nodes else -1
        if e.kind == "kill":
            self.chaos.restart(node)
        elif e.kind in ("restart_idle", "restart_after_commit"):
            await self.scripts.pop(id(e)).wait()  # each of its steps is bounded
            for n in e.nodes:
                if not self.chaos.alive(n):
                    self.chaos.restart(n)
            if e.kind == "restart_idle":
                assert self.load is not None
                self.load.resume()
        elif e.kind == "pause":
            self.chaos.resume(node)
        elif e.kind == "disk":
            await self._heal_disk(node)
        else:
            self._apply_controls()
        self.say(f"healed {e.kind}")
        nodes = e.nodes if e.nodes else tuple(range(self.chaos.size))
        self.pending.append((time.monotonic(), nodes, max(self.chaos.heights)))

    async def _restart_idle(self, e: Episode, done: trio.Event) -> None:
        """Stop the load, wait for the chain to fall idle, then kill -9 and
        restart the episode's nodes together, twice."""
        try:
            assert self.load is not None
            self.load.hold()
            await self._until_idle()
            for attempt in (1, 2):
                self._kill_for_restart(e.nodes)
                for n in e.nodes:
                    self.chaos.restart(n)
                self.say(f"restart_idle: nodes {list(e.nodes)} restarted ({attempt} of 2)")
                await self._until_answering(e.nodes)
                await trio.sleep(REJOIN_S)
        finally:
            done.set()

    async def _restart_after_commit(self, e: Episode, done: trio.Event) -> None:
        """Twice: kill -9 the node the moment its height grows; restart it."""
        node = e.nodes[0]
        try:
            for attempt in (1, 2):
                height = await self._status_height(node)
                deadline = time.monotonic() + COMMIT_WAIT_S
                grown = None
                while time.monotonic() < deadline:
                    now = await self._status_height(node)
                    if height is None:
                        height = now
                    elif now is not None and now > height:
                        grown = now
                        break
                    await trio.sleep(COMMIT_POLL_S)
                self._kill_for_restart((node,))
                self.chaos.restart(node)
                when = f"right after committing height {grown}" if grown else "(no commit seen)"
                self.say(f"restart_after_commit: node {node} restarted {when} ({attempt} of 2)")
                await self._until_answering((node,))
        finally:
            done.set()

    def _kill_for_restart(self, nodes: Sequence[int]) -> None:
        for n in nodes:
            self.chaos.expected_down.add(n)
            self.chaos.kill(n)

    async def _status_height(self, node: int) -> int | None:
        assert self.client is not None
        try:
            response = await self.client.get(f"{self.chaos.net.urls[node]}/status", timeout=1.0)
            return int(response.json()["height"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    async def _until_idle(self) -> None:
        """Until nothing is in flight and no node's height moved for a while."""
        assert self.load is not None
        deadline = time.monotonic() + IDLE_WAIT_S
        last: list[int | None] = []
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            heights = [await self._status_height(n) for n in range(self.chaos.size)]
            if heights != last or self.load.in_flight:
                last, quiet_since = heights, time.monotonic()
            elif time.monotonic() - quiet_since >= IDLE_QUIET_S:
                self.say(f"restart_idle: the chain is idle at heights {heights}")
                return
            await trio.sleep(0.1)
        self.say("restart_idle: the chain did not fall idle; restarting anyway")

    async def _until_answering(self, nodes: Sequence[int]) -> None:
        deadline = time.monotonic() + ANSWER_WAIT_S
        while time.monotonic() < deadline:
            if all([await self._status_height(n) is not None for n in nodes]):
                return
            await trio.sleep(0.1)
        self.say(f"nodes {list(nodes)} not answering {ANSWER_WAIT_S:.0f} s after a restart")

    def _apply_controls(self) -> None:
        for node, control in enumerate(controls_for(self.active, self.chaos.size)):
            self.chaos.set_control(node, control)

    async def _heal_disk(self, node: int) -> None:
        self.chaos.free_disk()
        if not self.chaos.alive(node):
            self.say(f"node {node} exited on the full disk: restarting it")
            self.chaos.restart(node)
            return
        url = self.chaos.net.urls[node]
        async with httpx.AsyncClient(timeout=1.0) as client:
            for _ in range(20):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        return
                await trio.sleep(0.25)
        self.say(f"node {node} unhealthy after the full disk: restarting it")
        self.chaos.restart(node)

    async def _heal_all(self) -> None:
        for e in list(self.active):
            await self._end(e)
        for node in range(self.chaos.size):
            self.chaos.resume(node)
            if not self.chaos.alive(node):
                self.chaos.restart(node)
            self.chaos.set_control(node, {})
        self.say("everything healed")

    async def _converge(self) -> None:
        healed = time.monotonic()
        deadline = healed + CONVERGE_S + 10.0
        while time.monotonic() < deadline:
            await trio.sleep(POLL_S)
            heights = self.chaos.heights
            if max(heights) - min(heights) <= CONVERGED_HEIGHTS and self._all_answering():
                self.converged_s = time.monotonic() - healed
                self.say(f"converged in {self.converged_s:.1f} s at heights {heights}")
                return
        self.say(f"NOT converged after {deadline - healed:.0f} s: heights {self.chaos.heights}")

    def _all_answering(self) -> bool:
        return not any(self.chaos.needs_signal) and all(
            self.chaos.alive(i) for i in range(self.chaos.size)
        )

    async def _drain(self, client: httpx.AsyncClient) -> None:
        """Wait until node 0's chain holds every acknowledged transaction."""
        assert self.load is not None
        wanted = {id_.hex() for id_ in self.load.acknowledged}
        url = self.chaos.net.urls[0]
        next_height = 1
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                page = await client.get(f"{url}/blocks", params={"from": next_height})
                for block in page.json()["blocks"]:
                    self.final_ids.update(block["tx_ids"])
                    next_height += 1
            if wanted <= self.final_ids:
                self.say(f"all {len(wanted)} acknowledged transactions are final")
                return
            await trio.sleep(POLL_S)
        self.say(f"{len(wanted - self.final_ids)} acknowledged transactions not final")

    async def _monitor(self, client: httpx.AsyncClient) -> None:
        while True:
            async with trio.open_nursery() as nursery:
                for node in range(self.chaos.size):
                    nursery.start_soon(self._poll, client, node)
            self._check_recoveries()
            self._check_liveness()
            await trio.sleep(POLL_S)

    async def _poll(self, client: httpx.AsyncClient, node: int) -> None:
        chaos = self.chaos
        if not chaos.alive(node) and node not in chaos.expected_down:
            process = chaos.net.processes[node]
            code = None if process is None else process.returncode
            chaos.unexpected_exits.append(f"node {node} exited with {code} (not planned)")
            self.say(f"node {node} EXITED with {code}, not planned: restarting it")
            chaos.restart(node)
            return
        if node in chaos.paused or not chaos.alive(node):
            return
        process = chaos.net.processes[node]
        try:
            status = (await client.get(f"{chaos.net.urls[node]}/status", timeout=1.0)).json()
        except (httpx.HTTPError, ValueError):
            return
        if chaos.net.processes[node] is not process:
            return  # the answer came from a process killed since: the new one may not be up
        chaos.heights[node] = int(status["height"])
        chaos.equivocations[node] = max(chaos.equivocations[node], int(status["equivocations"]))
        if chaos.needs_signal[node] and chaos.alive(node):
            chaos.needs_signal[node] = False  # its signal receiver is up: re-read the file
            chaos.net.processes[node].send_signal(signal.SIGUSR1)  # type: ignore[union-attr]

    def _check_recoveries(self) -> None:
        now = time.monotonic()
        waiting = []
        for healed, nodes, height in self.pending:
            if all(self.chaos.heights[n] >= height for n in nodes):
                self.recoveries.append(now - healed)
            else:
                waiting.append((healed, nodes, height))
        self.pending = waiting

    def _liveness_owed(self) -> bool:
        load = self.load
        if load is None or load.held or load.stopped:
            return False
        return not any(e.safety_only or e.kind == "restart_idle" for e in self.active)

    def _check_liveness(self) -> None:
        faulty = {n for e in self.active for n in e.nodes}
        correct = [n for n in range(self.chaos.size) if n not in faulty]
        height = max((self.chaos.heights[n] for n in correct), default=0)
        now = time.monotonic()
        if self.stall.observe(now, owed=self._liveness_owed(), height=height):
            active = ", ".join(e.describe() for e in self.active) or "nothing"
            text = (
                f"STALL: height {height} for over {self.stall.bound_s:g} s at "
                f"{now - self.started:.1f} s into the run while at most f nodes were "
                f"faulty (active: {active})"
            )
            self.stalls.append(text)
            self.say(text)

    async def _progress(self) -> None:
        while True:
            await trio.sleep(PROGRESS_S)
            load = self.load
            acked = len(load.acknowledged) if load else 0
            offered = load.offered if load else 0
            self.say(f"heights {self.chaos.heights}  offered {offered}  acknowledged {acked}")


# ------------------------------------------------------------------ checks and report


def check(run: Run, chaos: ChaosNet) -> dict[str, Any]:
    """Every check of the module doc; the report's `ok` says whether all passed."""
    layout = chaos.net.layout
    genesis = load_genesis(chaos.home(0) / "genesis.json")
    validators = ValidatorSet.from_genesis(genesis)
    with httpx.Client(timeout=30) as client:
        chains = [fetch_blocks(client, url) for url in chaos.net.urls]
    assert run.load is not None
    acked = [id_.hex() for id_ in run.load.acknowledged]
    report: AuditReport = audit(chains, layout.chain_id, validators, acked)
    l1, l1_certificates, _tip = verify_l1(
        chaos.net.urls[0], f"file:{chaos.home(0) / 'l1.jsonl'}", chaos.home(0) / "genesis.json"
    )
    equivocations = max(sum(chaos.equivocations), chaos.equivocations_in_logs())
    converged = run.converged_s is not None and run.converged_s <= CONVERGE_S
    problems = list(report.problems) + report.certificate_problems
    problems += [f"L1 batch {p.batch_number}: {p.issue}: {p.message}" for p in l1.problems]
    problems += l1_certificates + chaos.unexpected_exits
    if equivocations:
        problems.append(f"{equivocations} equivocations reported by the nodes")
    problems += run.stalls
    if not converged:
        problems.append(
            f"nodes not within {CONVERGED_HEIGHTS} heights {CONVERGE_S} s after healing"
        )
    healthy = not chaos.unexpected_exits
    return {
        "ok": report.ok
        and l1.ok
        and not l1_certificates
        and not equivocations
        and converged
        and not run.stalls
        and healthy,
        "forks": report.forks,
        "lost": report.lost,
        "duplicated": report.duplicated,
        "conflicting_signatures": report.conflicting_signatures,
        "equivocations": equivocations,
        "certificate_problems": len(report.certificate_problems),
        "faults_injected": run.injected,
        "offered": run.load.offered,
        "acknowledged": len(acked),
        "answered_known": len(run.load.known),
        "abandoned": len(run.load.abandoned),
        "finalized": report.finalized,
        "heights": report.heights,
        "l1_batches": l1.batch_count,
        "l1_verified_height": l1.verified_height,
        "l1_ok": l1.ok and not l1_certificates,
        "longest_recovery_s": round(max(run.recoveries, default=0.0), 1),
        "longest_stall_s": round(run.stall.longest_s, 1),
        "stall_bound_s": run.args.stall_bound,
        "stalls_over_bound": len(run.stalls),
        "converged_s": None if run.converged_s is None else round(run.converged_s, 1),
        "restarts": chaos.restarts,
        "unexpected_exits": len(chaos.unexpected_exits),
        "answers": dict(run.load.answers),
        "problems": problems[:50],
    }


def summary_line(result: dict[str, Any], seed: int, args: argparse.Namespace) -> str:
    return (
        f"chaos seed {seed}, {args.validators} validators, {args.duration:g} s: "
        f"forks: {result['forks']}, lost: {result['lost']}, "
        f"duplicated: {result['duplicated']}, "
        f"conflicting signatures: {result['conflicting_signatures']}, "
        f"equivocations: {result['equivocations']}, "
        f"faults injected: {result['faults_injected']}, "
        f"acknowledged: {result['acknowledged']}, finalized: {result['finalized']}, "
        f"longest recovery: {result['longest_recovery_s']} s, "
        f"longest stall: {result['longest_stall_s']} s (bound {result['stall_bound_s']:g} s), "
        f"converged in: {result['converged_s']} s, "
        f"L1: {'ok' if result['l1_ok'] else 'FAILED'} ({result['l1_batches']} batches) "
        f"-> {'OK' if result['ok'] else 'VIOLATION'}"
    )


# ------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chaos",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--validators", type=int, choices=(4, 7), default=4)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of chaos")
    parser.add_argument("--seed", type=int, help="plan seed (default: random, printed)")
    parser.add_argument("--rate", type=float, default=100.0, help="offered tx/s (default 100)")
    parser.add_argument(
        "--stall-bound",
        type=float,
        default=STALL_BOUND_S,
        help="seconds the height may stand still while liveness is owed "
        f"(default {STALL_BOUND_S:g})",
    )
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--dir", help="devnet directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the devnet directory")
    parser.add_argument(
        "--disk", action="store_true", help="also fill one node's disk (tmpfs; needs root)"
    )
    args = parser.parse_args(argv)
    if args.duration < 10 or args.duration > 24 * 3600:
        parser.error("--duration must be 10..86400 seconds")
    if not 1 <= args.stall_bound <= 3_600:
        parser.error("--stall-bound must be 1..3600 seconds")
    if not 1 <= args.rate <= 2_000:
        parser.error("--rate must be 1..2000 tx/s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    replay = f"--seed {seed} --validators {args.validators} --duration {args.duration:g}"
    replay += " --disk" if args.disk else ""
    print(f"[chaos] seed {seed} (replay: scripts/chaos.py {replay})", flush=True)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="sequencer-chaos-"))
    chaos = ChaosNet(root / "devnet", args.validators, disk=args.disk)
    episodes = plan(seed, args.validators, args.duration, disk_node=chaos.disk_node)
    print(f"[chaos] {len(episodes)} episodes planned; devnet under {root}", flush=True)
    run = Run(chaos, episodes, args)
    try:
        chaos.net.start_all()
        count = int(args.rate * (args.duration + 10))
        signed = presign(
            chaos.net.layout.chain_id,
            count=count,
            senders=SENDERS,
            nodes=args.validators,
            seed=seed,
        )

        async def go() -> None:
            limits = httpx.Limits(max_connections=SENDERS + 4 * args.validators + 8)
            async with httpx.AsyncClient(limits=limits, timeout=5.0) as client:
                load = SteadyLoad(client, chaos.net.urls, signed, SENDERS, args.rate)
                await run.execute(load, client)

        trio.run(go)
        result = check(run, chaos)
    finally:
        chaos.stop()
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    result["seed"] = seed
    result["episodes"] = [e.describe() for e in episodes]
    for problem in result["problems"]:
        print(f"[chaos] PROBLEM {problem}")
    line = summary_line(result, seed, args)
    result["summary"] = line
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(line, flush=True)
    if not result["ok"]:
        print(f"[chaos] replay with: scripts/chaos.py {replay}", flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
