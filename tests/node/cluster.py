"""A devnet of real node processes on loopback, for tests.

`Cluster` writes a devnet with `node.ops.devnet.init_devnet` on free ports, runs
each node as `python -m node.cli node --home DIR` (a real process, real
sockets, LevelDB on disk), and offers what tests need: clients, waiting for
heights, kill -9, graceful stop, restart.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import msgspec

from node.ops.devnet import DevnetLayout, init_devnet
from node.ops.procs import ChildProcess, free_base_port, node_argv, stop_all
from sequencer.client import Client
from sequencer.genesis import dump_genesis, load_genesis

START_TIMEOUT_S = 30.0
STOP_GRACE_S = 20.0


class Cluster:
    def __init__(
        self,
        root: Path,
        validators: int = 4,
        consensus: dict[str, int] | None = None,
        **init_options: object,
    ) -> None:
        """`consensus` overrides genesis consensus parameters (e.g. empty blocks)."""
        self.root = root
        base_port = free_base_port(validators)
        self.layout: DevnetLayout = init_devnet(root, validators, base_port, **init_options)  # type: ignore[arg-type]
        self.processes: list[ChildProcess | None] = [None] * validators
        self._clients: list[Client] = []
        if consensus:
            self._override_genesis(consensus)

    def _override_genesis(self, consensus: dict[str, int]) -> None:
        genesis = load_genesis(self.home(0) / "genesis.json")
        params = msgspec.structs.replace(genesis.consensus, **consensus)
        data = dump_genesis(msgspec.structs.replace(genesis, consensus=params))
        for index in range(self.size):
            (self.home(index) / "genesis.json").write_bytes(data)

    @property
    def size(self) -> int:
        return len(self.layout.nodes)

    def home(self, index: int) -> Path:
        return Path(self.layout.nodes[index].home)

    def set_config(self, index: int, settings: Mapping[str, object]) -> None:
        """Set keys of node `index`'s written config.toml (each written there
        once, with its default) before it starts."""
        config = self.home(index) / "config.toml"
        text = config.read_text()
        for key, value in settings.items():
            text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert count == 1, f"{key} is not in {config} once"
        config.write_text(text)

    def lift_rate_limit(self) -> None:
        """For tests that read a lot from one address on purpose (the rate
        limit has tests of its own)."""
        for index in range(self.size):
            self.set_config(index, {"requests_per_s": 1_000_000.0, "burst": 1_000_000})

    def url(self, index: int) -> str:
        return self.layout.nodes[index].rpc

    def client(self, index: int) -> Client:
        """A client of node `index`; closed by `stop_all` if the test does not."""
        client = Client(self.url(index))
        self._clients.append(client)
        return client

    def start(self, index: int, wait: bool = True, env: Mapping[str, str] | None = None) -> None:
        """Start node `index`; `env` adds environment variables (e.g. storage faults)."""
        previous = self.processes[index]
        assert previous is None or not previous.running
        self.processes[index] = ChildProcess(
            node_argv(self.home(index)), env=env, output=self.home(index) / "node.log"
        ).start()
        if wait:
            self.wait_healthy(index)

    def start_all(self) -> None:
        for index in range(self.size):
            self.start(index, wait=False)
        for index in range(self.size):
            self.wait_healthy(index)

    def wait_healthy(self, index: int, timeout_s: float = START_TIMEOUT_S) -> None:
        def healthy() -> bool:
            process = self.processes[index]
            assert process is not None
            if not process.running:
                raise AssertionError(f"node {index} exited: {self.log_tail(index)}")
            try:
                return httpx.get(f"{self.url(index)}/health", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout_s, f"node {index} healthy")

    def kill(self, index: int) -> None:
        """kill -9: no shutdown, no flush."""
        process = self.processes[index]
        assert process is not None
        process.kill()

    def stop(self, index: int) -> int | None:
        """SIGTERM; SIGKILL after 20 s. The exit status."""
        process = self.processes[index]
        assert process is not None
        return process.stop(STOP_GRACE_S)

    def stop_all(self) -> None:
        for client in self._clients:
            client.close()
        stop_all(self.processes, STOP_GRACE_S)

    def height(self, index: int) -> int:
        return int(httpx.get(f"{self.url(index)}/status", timeout=5.0).json()["height"])

    def wait_height(self, index: int, height: int, timeout_s: float = 60.0) -> None:
        wait_until(lambda: self.height(index) >= height, timeout_s, f"node {index} at {height}")

    def log_tail(self, index: int, lines: int = 30) -> str:
        path = self.home(index) / "node.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if condition():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@contextlib.contextmanager
def running(
    root: Path,
    validators: int = 4,
    before_start: Callable[[Cluster], None] | None = None,
    **options: object,
) -> Iterator[Cluster]:
    """A started cluster; `before_start` may edit the written configs first."""
    cluster = Cluster(root, validators, **options)
    if before_start is not None:
        before_start(cluster)
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop_all()
