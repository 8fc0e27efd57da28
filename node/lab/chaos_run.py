"""A chaos run's execution: the plan's episodes begun and ended on time
against a `ChaosNet` under steady load, every node polled, liveness watched
while it is owed (`StallWatch`), then everything healed, the nodes'
convergence timed and the acknowledged transactions drained.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
from collections.abc import Sequence

import httpx
import trio

from node.lab.chaos_net import ChaosNet, controls_for
from node.lab.chaos_plan import Episode
from node.lab.loadgen import SteadyLoad

__all__ = ["CONVERGED_HEIGHTS", "CONVERGE_S", "Run", "StallWatch"]

CONVERGE_S = 20.0
CONVERGED_HEIGHTS = 2
DRAIN_S = 60.0
POLL_S = 0.5
PROGRESS_S = 5.0
IDLE_QUIET_S = 1.5  # no height change for this long: the chain is idle
IDLE_WAIT_S = 10.0
ANSWER_WAIT_S = 30.0
COMMIT_WAIT_S = 10.0
COMMIT_POLL_S = 0.01
REJOIN_S = 2.0  # after an idle restart: time to rejoin (and vote) before the next


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
