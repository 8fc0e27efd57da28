"""Child processes of the project, and node processes on loopback (for
benchmarks, scripts and tests; not for production).

`ChildProcess` is the one handle for every child the project runs (nodes,
Prometheus, a benchmark's bare server, test helpers): its argv, environment,
working directory and where its output goes; start, `running` and
`returncode`, `wait`, signals, and `stop` (SIGTERM, then SIGKILL after a
grace period, and the child reaped: no zombie, nothing left running).
`stop_all` stops several at once. `NodeProcess` runs `python -m node.cli
node --home DIR` on one, with its output in `DIR/node.log`, and offers what a
benchmark needs: wait for `/health`, read `/status`. Only the standard
library: a script can use it before (or without) the HTTP client.
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "DEVNULL",
    "INHERIT",
    "PIPE",
    "ChildProcess",
    "NodeProcess",
    "free_base_port",
    "get_json",
    "node_argv",
    "stop_all",
    "wait_until",
]

POLL_S = 0.01
# The source tree this module runs from: children import the same code, not
# whatever an installed copy of the project (or the working directory) holds.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 20.0

# Where a child's output goes, besides a log file (a `Path`, appended to,
# stderr with stdout): this process's own streams, nowhere, or a pipe the
# caller reads (`ChildProcess.stdout`, stderr with it).
INHERIT = "inherit"
DEVNULL = "devnull"
PIPE = "pipe"
_STREAMS = (INHERIT, DEVNULL, PIPE)


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


class ChildProcess:
    """One child process, from start to reaped.

    `argv` runs with `env` added to this process's environment (None: the
    environment as is), in `cwd`, its output to `output`: a log file (a
    `Path`, appended to; stderr too), `INHERIT`, `DEVNULL` or `PIPE` (then
    read `stdout`; `text` decodes it). `stdin` is `INHERIT` or `DEVNULL`.
    `new_session` puts the child in a session (and process group) of its
    own: a Ctrl-C in the terminal does not reach it, its parent stops it.
    Signals go to the child's pid only, and only while it runs: an exited
    child (whose pid may be anyone's by now) is never signalled.

    A handle runs one child: to run the command again, make another handle.
    As a context manager it starts the child (unless started) and stops it on
    the way out, whatever happened.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        output: Path | str = INHERIT,
        stdin: str = INHERIT,
        new_session: bool = False,
        text: bool = False,
        grace_s: float = STOP_GRACE_S,
    ) -> None:
        """`grace_s` is the default of `stop` (and of the context manager's exit)."""
        if not isinstance(output, Path) and output not in _STREAMS:
            raise ValueError(f"output is a Path or one of {_STREAMS}, not {output!r}")
        if stdin not in (INHERIT, DEVNULL):
            raise ValueError(f"stdin is {INHERIT!r} or {DEVNULL!r}, not {stdin!r}")
        self.argv = [str(arg) for arg in argv]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.output = output
        self.stdin = stdin
        self.new_session = new_session
        self.text = text
        self.grace_s = grace_s
        self._popen: subprocess.Popen[Any] | None = None
        self._terminated = False  # SIGTERM sent: `stop` does not send another

    def __repr__(self) -> str:
        state = "not started" if self._popen is None else f"pid {self._popen.pid}"
        return f"<ChildProcess {self.argv[0]!r} {state} returncode={self.returncode}>"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> ChildProcess:
        assert self._popen is None, f"{self.argv[0]} already started: a handle runs one child"
        env = None if self.env is None else os.environ | self.env
        with contextlib.ExitStack() as stack:
            stdout: IO[bytes] | int | None
            stderr: int | None
            if isinstance(self.output, Path):
                # The child keeps its own copy of the file: ours closes at once.
                stdout = stack.enter_context(self.output.open("ab"))
                stderr = subprocess.STDOUT
            elif self.output == DEVNULL:
                stdout = stderr = subprocess.DEVNULL
            elif self.output == PIPE:
                stdout, stderr = subprocess.PIPE, subprocess.STDOUT
            else:
                stdout = stderr = None
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL if self.stdin == DEVNULL else None,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=self.cwd,
                start_new_session=self.new_session,
                text=self.text,
            )
        return self

    def __enter__(self) -> ChildProcess:
        return self if self._popen is not None else self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child (if it runs) and close the pipe of its output."""
        self.stop()
        if self._popen is not None and self._popen.stdout is not None:
            self._popen.stdout.close()

    # ------------------------------------------------------------ state

    @property
    def started(self) -> bool:
        return self._popen is not None

    @property
    def pid(self) -> int:
        assert self._popen is not None, f"{self.argv[0]} not started"
        return self._popen.pid

    @property
    def stdout(self) -> IO[Any] | None:
        """The pipe of the child's output (with `output=PIPE`), else None."""
        return None if self._popen is None else self._popen.stdout

    def poll(self) -> int | None:
        """The exit status once it has exited (reaping it), else None."""
        return None if self._popen is None else self._popen.poll()

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status (-N: killed by signal N); None until it has exited."""
        return self.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status, once exited; `subprocess.TimeoutExpired` after `timeout`."""
        assert self._popen is not None, f"{self.argv[0]} not started"
        return self._popen.wait(timeout=timeout)

    # ------------------------------------------------------------ signals

    def send_signal(self, signum: int) -> None:
        """Send `signum` (SIGUSR1, SIGSTOP, SIGCONT, ...) if the child runs."""
        if self.running:
            assert self._popen is not None
            self._popen.send_signal(signum)

    def terminate(self) -> None:
        """SIGTERM, once: `stop` then waits for it without sending another."""
        if self.running and not self._terminated:
            self.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM (unless sent already), then SIGKILL if it has not exited
        within `grace_s` (default: the handle's); reaped either way. Its exit
        status; None if it was never started."""
        popen = self._popen
        if popen is None:
            return None
        self.terminate()
        try:
            popen.wait(timeout=self.grace_s if grace_s is None else grace_s)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        return popen.returncode

    def kill(self) -> int | None:
        """SIGKILL (a stopped child too: no shutdown, no flush), then reaped.
        Its exit status; None if it was never started."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            popen.kill()
        return popen.wait()


def stop_all(children: Iterable[ChildProcess | None], grace_s: float = STOP_GRACE_S) -> None:
    """Stop several children at once: SIGTERM to each, then each still running
    `grace_s` after it gets SIGKILL; all reaped."""
    running = [child for child in children if child is not None]
    for child in running:
        child.terminate()
    deadline = time.monotonic() + grace_s
    for child in running:
        child.stop(max(0.1, deadline - time.monotonic()))


def node_argv(home: Path | str, python: str = sys.executable) -> list[str]:
    """The command of a node process whose home is `home`."""
    return [python, "-m", "node.cli", "node", "--home", str(home)]


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
        self.process: ChildProcess | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def start(self) -> None:
        assert not self.running, f"{self.home} is already running"
        path = os.environ.get("PYTHONPATH")
        source = str(SOURCE_ROOT) if not path else f"{SOURCE_ROOT}{os.pathsep}{path}"
        self.process = ChildProcess(
            node_argv(self.home, self.python),
            env=self.env | {"PYTHONPATH": source},
            output=self.home / "node.log",
        ).start()

    def healthy(self) -> bool:
        """`GET /health` answers 200; raises if the process has exited."""
        if self.process is not None and (code := self.process.poll()) is not None:
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
        code = process.stop(grace_s)
        self.process = None
        return code

    def log_tail(self, lines: int = 20) -> str:
        path = self.home / "node.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
