"""The devnet of a chaos run and the faults applied to it: processes killed,
paused and restarted, each node's chaos control file (`controls_for` says
what it holds while some episodes are active), and a full disk on a small
tmpfs mounted on one node's data directory.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.config.chaos import CONTROL_FILE
from node.lab.chaos_plan import Episode
from node.lab.devnet import Devnet
from node.ops.procs import free_base_port
from sequencer.files import write_atomic

__all__ = ["ChaosNet", "controls_for"]

DISK_BYTES = 256 * 1024 * 1024
BALLAST = "ballast"
EQUIVOCATION_LOG = "equivocation by validator"


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
        return process is not None and process.running

    def kill(self, index: int) -> None:
        process = self.net.processes[index]
        if process is not None:
            process.kill()
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
