"""Node processes on loopback, for benchmarks and scripts (not for production).

`NodeProcess` runs `python -m node.cli node --home DIR` with its output in
`DIR/node.log`, and offers what a benchmark needs: wait for `/health`, read
`/status`, stop with SIGTERM (SIGKILL after a grace period). Only the
standard library: a script can use it before (or without) the HTTP client.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["NodeProcess", "free_base_port", "get_json", "wait_until"]

POLL_S = 0.01
# The source tree this module runs from: children import the same code, not
# whatever an installed copy of the project (or the working directory) holds.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 20.0


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _ephemeral_low(default: int = 32_768) -> int:
    """The lowest port the kernel hands out as a connection's source port."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def free_base_port(nodes: int, stride: int = 10, extra: tuple[int, ...] = ()) -> int:
    """A devnet base port whose rpc (base + stride i) and p2p (+1) ports, and
    base + stride i + each of `extra`, are all free (other devnets may run on
    this machine: never assume the default ports).

    The ports lie below the kernel's ephemeral range: while a node is down
    (killed by a test, restarting), any outgoing connection on the machine
    could otherwise take its port as a source port, and the node could not
    bind it again."""
    rng = random.Random()
    span = stride * nodes + max((0, 1, *extra)) + 1
    high = max(_ephemeral_low(), 20_000 + span + stride)
    for _ in range(200):
        base = rng.randrange(20_000, high - span, stride)
        ports = [base + stride * i + k for i in range(nodes) for k in (0, 1, *extra)]
        if all(_port_free(port) for port in ports):
            return base
    raise RuntimeError("no free port range on 127.0.0.1")


def get_json(url: str, timeout_s: float = 2.0) -> tuple[int, Any]:
    """(status, decoded JSON body) of a GET; (0, None) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1):
    """Poll `condition` until true; TimeoutError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


class NodeProcess:
    """One node of a devnet, as a child process."""

    def __init__(
        self,
        home: Path,
        rpc: str,
        *,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        """`env` adds environment variables (config overrides, fault injection)."""
        self.home = Path(home)
        self.rpc = rpc.rstrip("/")
        self.python = python
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.home} is already running"
        path = os.environ.get("PYTHONPATH")
        env = os.environ | self.env
        env["PYTHONPATH"] = str(SOURCE_ROOT) if not path else f"{SOURCE_ROOT}{os.pathsep}{path}"
        with (self.home / "node.log").open("ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                [self.python, "-m", "node.cli", "node", "--home", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def healthy(self) -> bool:
        """`GET /health` answers 200; raises if the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            raise RuntimeError(f"node {self.home} exited ({code}):\n{self.log_tail()}")
        return get_json(f"{self.rpc}/health", timeout_s=1.0)[0] == 200

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        wait_until(self.healthy, timeout_s, f"{self.home} healthy", poll_s=POLL_S)

    def status(self) -> dict[str, Any] | None:
        code, body = get_json(f"{self.rpc}/status", timeout_s=5.0)
        return body if code == 200 else None

    def height(self) -> int:
        status = self.status()
        return -1 if status is None else int(status["height"])

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `grace_s`."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        return process.returncode

    def log_tail(self, lines: int = 20) -> str:
        path = self.home / "node.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
