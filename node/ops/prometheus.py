"""Prometheus for a devnet: a scrape config and a server process.

    text = prometheus_config(layout, scrape_interval_s=1)   # scrapes every node
    with PrometheusServer(config_path, data_dir) as server:  # a free loopback port
        server.query("up")                                    # the HTTP API's result

`sequencer devnet up --prometheus` writes the config to
`<home>/prometheus/prometheus.yml`, keeps the TSDB in `<home>/prometheus/data`
(so history survives a restart of the same devnet; `--fresh` wipes it with
the rest) and the server's log in `<home>/prometheus/prometheus.log`.

The `prometheus` binary is the one on PATH, else Debian's `/usr/bin/prometheus`
(`apt-get install prometheus`, which also ships `promtool`); the environment
variable `PROMETHEUS_BIN` names another one (and nothing else is tried then).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from node.errors import NodeError
from node.ops.devnet import DevnetLayout
from node.ops.procs import DEVNULL, ChildProcess

__all__ = [
    "DEFAULT_PORT",
    "INSTALL_HINT",
    "PrometheusError",
    "PrometheusServer",
    "PrometheusUnavailableError",
    "find_prometheus",
    "find_promtool",
    "free_port",
    "prometheus_config",
    "query",
    "require_prometheus",
]

DEFAULT_PORT = 9090
DEVNET_SCRAPE_INTERVAL_S = 1.0
JOB = "sequencer"
LOOPBACK = "127.0.0.1"
BINARY_ENV = "PROMETHEUS_BIN"
DEBIAN_DIR = Path("/usr/bin")
INSTALL_HINT = (
    "install it with `apt-get install prometheus` (Debian/Ubuntu; it also ships promtool)"
    " or from https://prometheus.io/download/, or set PROMETHEUS_BIN"
)
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 15


class PrometheusError(NodeError):
    """Prometheus could not be started or queried; the message says why."""


class PrometheusUnavailableError(PrometheusError):
    """No usable `prometheus` binary here; the message says how to install one."""


# ------------------------------------------------------------------ finding the binaries


def _find(name: str) -> Path | None:
    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)
    debian = DEBIAN_DIR / name
    return debian if debian.is_file() and os.access(debian, os.X_OK) else None


def find_prometheus() -> Path | None:
    """`$PROMETHEUS_BIN` when set (or None if it is not executable), else PATH, else Debian's."""
    override = os.environ.get(BINARY_ENV)
    if override:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    return _find("prometheus")


def find_promtool() -> Path | None:
    """promtool next to the prometheus binary in use, else on PATH, else Debian's."""
    prometheus = find_prometheus()
    if prometheus is not None:
        sibling = prometheus.with_name("promtool")
        if sibling.is_file() and os.access(sibling, os.X_OK):
            return sibling
    return _find("promtool")


def require_prometheus() -> Path:
    binary = find_prometheus()
    if binary is not None:
        return binary
    where = (
        f"{BINARY_ENV}={os.environ[BINARY_ENV]} is not an executable file"
        if os.environ.get(BINARY_ENV)
        else f"prometheus is not on PATH nor at {DEBIAN_DIR / 'prometheus'}"
    )
    raise PrometheusUnavailableError(f"{where}: {INSTALL_HINT}")


# ------------------------------------------------------------------ the scrape config


def _duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds as `2s`, anything else in milliseconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise PrometheusError(f"scrape interval must be a positive number of seconds: {seconds!r}")
    milliseconds = round(seconds * 1000)
    if milliseconds < 1:
        raise PrometheusError(f"scrape interval must be at least 1 ms: {seconds!r}")
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def _quoted(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(text)


def prometheus_config(layout: DevnetLayout, scrape_interval_s: float = 1.0) -> str:
    """A `prometheus.yml` scraping every node of `layout` at its `/metrics` URL.

    One job (`sequencer`), one target per node labelled `node="<name>"`, and the
    scrape timeout equal to the interval (Prometheus rejects a longer one).
    """
    interval = _duration(scrape_interval_s)
    lines = [
        f"# Prometheus for the devnet {layout.chain_id} ({len(layout.nodes)} validators).",
        "# Written by `sequencer devnet up --prometheus`; check with `promtool check config`.",
        "global:",
        f"  scrape_interval: {interval}",
        f"  scrape_timeout: {interval}",
        f"  evaluation_interval: {interval}",
        "  external_labels:",
        f"    chain_id: {_quoted(layout.chain_id)}",
        "",
        "scrape_configs:",
        f"  - job_name: {_quoted(JOB)}",
    ]
    paths = set()
    targets = []
    for node in layout.nodes:
        url = urlsplit(node.metrics)
        if url.scheme != "http" or not url.netloc:
            raise PrometheusError(f"{node.name}: cannot scrape {node.metrics!r} (not http://)")
        paths.add(url.path or "/metrics")
        targets.append((node.name, url.netloc))
    if len(paths) > 1:
        raise PrometheusError(f"the nodes serve metrics on different paths: {sorted(paths)}")
    lines += [
        f"    metrics_path: {_quoted(paths.pop() if paths else '/metrics')}",
        "    scheme: http",
        "    static_configs:",
    ]
    for name, address in targets:
        lines += [
            f"      - targets: [{_quoted(address)}]",
            "        labels:",
            f"          node: {_quoted(name)}",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Prometheus (Go) binds: connections in TIME_WAIT do not make it busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


class PrometheusServer:
    """One `prometheus` process on 127.0.0.1, started by `start()` (or `with`).

    `port=None` picks a free port (and retries with another one if it was
    taken in between); a given port must be free. `data_dir` holds the TSDB,
    `log_path` (default: `prometheus.log` next to `data_dir`) its output.
    `stop()` sends SIGTERM, then SIGKILL after a grace period.
    """

    def __init__(
        self,
        config_path: Path,
        data_dir: Path,
        port: int | None = None,
        *,
        binary: Path | None = None,
        log_path: Path | None = None,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self.config_path = Path(config_path).absolute()
        self.data_dir = Path(data_dir).absolute()
        self.requested_port = port
        self.port = port if port is not None else 0
        self.binary = binary
        self.log_path = (
            Path(log_path).absolute() if log_path else self.data_dir.parent / "prometheus.log"
        )
        self.ready_timeout_s = ready_timeout_s
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PrometheusServer:
        """Start Prometheus and wait until `/-/ready` answers; raises `PrometheusError`."""
        assert self.process is None, "already started"
        binary = self.binary or require_prometheus()
        if not self.config_path.is_file():
            raise PrometheusError(f"{self.config_path}: no such config file")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.requested_port is not None else 3
        for attempt in range(attempts):
            if self.requested_port is None:
                self.port = free_port()
            elif _port_in_use(self.port):
                raise PrometheusError(
                    f"cannot start Prometheus: port {self.port} on {LOOPBACK} is in use"
                    " (choose another with --prometheus-port)"
                )
            self._spawn(binary)
            try:
                self._wait_ready()
                return self
            except PrometheusError:
                address_taken = "address already in use" in self.log_tail().lower()
                self.stop()
                if not (address_taken and attempt + 1 < attempts):
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, binary: Path) -> None:
        args = [
            str(binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
        ]
        self.process = ChildProcess(
            args,
            stdin=DEVNULL,
            output=self.log_path,
            cwd=self.data_dir,
            # Its own session: a Ctrl-C in the terminal reaches the devnet
            # supervisor only, which then stops Prometheus with the nodes.
            new_session=True,
            grace_s=STOP_GRACE_S,
        ).start()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(
                    f"Prometheus exited with status {self.process.returncode} while starting;"
                    f" its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise PrometheusError(
            f"Prometheus not ready on {self.url} after {self.ready_timeout_s:.0f} s;"
            f" its log ({self.log_path}) ends with:\n{self.log_tail()}"
        )

    def running(self) -> bool:
        return self.process is not None and self.process.running

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL if it is still running after `grace_s`."""
        if self.process is not None:
            self.process.stop(grace_s)
            self.process = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def query(self, expr: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        return query(self.url, expr, timeout_s)


def query(url: str, expr: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """An instant query to the Prometheus at `url`: the `data.result` of its HTTP API
    (for a vector, samples `{"metric": {labels}, "value": [time, "text"]}`)."""
    try:
        response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=timeout_s)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise PrometheusError(f"query {expr!r} to {url}: {exc}") from None
    if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", body) if isinstance(body, dict) else body
        raise PrometheusError(f"query {expr!r} to {url}: HTTP {response.status_code}: {error}")
    return list(body["data"]["result"])
