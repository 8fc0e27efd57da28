"""The devnet a benchmark or chaos run drives: node processes on loopback
under one directory (whose files `node.ops.devnet` writes), started and
stopped together, their CPU time and memory read from /proc and their
counters from `/metrics`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from node.lab.machine import cpu_seconds, status_kib
from node.ops.devnet import DevnetLayout, init_devnet
from node.ops.procs import STOP_GRACE_S, ChildProcess, NodeProcess, free_base_port, stop_all

__all__ = ["BENCH_ENV", "Devnet", "devnet"]

READY_TIMEOUT_S = 60.0
# The benchmark offers far more than a wallet would: the per-client rate limit
# is lifted so that it measures the node, not the limiter.
BENCH_ENV = {"SEQUENCER_RPC_REQUESTS_PER_S": "1000000", "SEQUENCER_RPC_BURST": "1000000"}


class Devnet:
    """A devnet of node processes under `root`: start, stop, and read their
    CPU time and memory from /proc."""

    def __init__(
        self,
        root: Path,
        validators: int = 4,
        base_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`env` adds environment variables of the node processes (config overrides)."""
        # + 5: the bare server of the single POST /tx run.
        base = free_base_port(validators, extra=(5,)) if base_port is None else base_port
        self.layout: DevnetLayout = init_devnet(root, validators, base)
        self.base_port = base
        self.nodes = [
            NodeProcess(Path(node.home), node.rpc, env=BENCH_ENV | (env or {}))
            for node in self.layout.nodes
        ]

    @property
    def urls(self) -> list[str]:
        return [node.rpc for node in self.layout.nodes]

    @property
    def processes(self) -> list[ChildProcess | None]:
        return [node.process for node in self.nodes]

    def start(self, index: int) -> None:
        self.nodes[index].start()

    def start_all(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_healthy(READY_TIMEOUT_S)

    def stop_all(self) -> None:
        stop_all(self.processes, STOP_GRACE_S)  # all at once, then wait for each
        for node in self.nodes:
            node.stop()  # reaped already: only forgets the process

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p is not None]

    def cpu_seconds(self) -> list[float]:
        return [cpu_seconds(pid) for pid in self.pids()]

    def peak_rss_mib(self) -> list[float]:
        return [status_kib(pid, "VmHWM") / 1024 for pid in self.pids()]

    def rss_mib(self) -> list[float]:
        return [status_kib(pid, "VmRSS") / 1024 for pid in self.pids()]

    def signature_checks(self) -> list[float]:
        """Transaction signature verifications so far, per node (from /metrics)."""
        name = "sequencer_tx_signature_checks_total"
        return [_metric_sum(f"{url}/metrics", name) for url in self.urls]


def _metric_sum(url: str, name: str) -> float:
    """The sum of a metric's samples, over its labels."""
    text = httpx.get(url, timeout=10.0).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


@contextlib.contextmanager
def devnet(root: Path, validators: int = 4) -> Iterator[Devnet]:
    """A started devnet, stopped on the way out."""
    net = Devnet(root, validators)
    try:
        net.start_all()
        yield net
    finally:
        net.stop_all()
