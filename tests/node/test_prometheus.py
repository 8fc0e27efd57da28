"""Prometheus against a real devnet: a real `prometheus` scrapes
every node, `promtool` lints every node's `/metrics` and our configs, and
`sequencer devnet up --prometheus` runs and stops one with the nodes.

Prometheus and promtool come from the Debian package `prometheus`
(`scripts/test.py` installs it with apt-get when it can). When they are
missing, these tests FAIL under `CI=true` (a CI run must not pass by skipping
them) and skip with the reason elsewhere.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from node.ops.devnet import init_devnet
from node.ops.procs import PIPE, ChildProcess
from node.ops.prometheus import (
    INSTALL_HINT,
    PrometheusError,
    PrometheusServer,
    PrometheusUnavailableError,
    find_prometheus,
    find_promtool,
    free_port,
    prometheus_config,
    query,
    require_prometheus,
)
from tests.node.cluster import Cluster, free_base_port, running, wait_until
from tests.node.test_devnet_up import processes_mentioning
from tests.node.test_l1 import load

ROOT = Path(__file__).resolve().parents[2]
SEQUENCER = Path(sys.executable).parent / "sequencer"
SCRAPE_WAIT_S = 40.0


def require(tool: str) -> Path:
    """The binary of `tool` (prometheus or promtool): fail under CI=true, else skip."""
    found = find_prometheus() if tool == "prometheus" else find_promtool()
    if found is not None:
        return found
    message = (
        f"{tool} is required for this test and is not installed: {INSTALL_HINT}"
        " (`python3 scripts/test.py` installs it with apt-get when run as root)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def promtool(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = subprocess.run(
        [str(require("promtool")), *args], input=stdin, capture_output=True, timeout=60
    )
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace")


def failed(code: int, output: str) -> bool:
    return code != 0 or any("error" in line.lower() for line in output.splitlines())


def settings(config: str) -> list[str]:
    """A config's lines without comments and blank lines (pyyaml is not a dependency)."""
    return [line for line in config.splitlines() if line.strip() and not line.startswith("#")]


def targets(config: str) -> list[tuple[str, str]]:
    """(address, node label) of each static target, in order."""
    return re.findall(r'- targets: \["([^"]+)"\]\n\s+labels:\n\s+node: "([^"]+)"', config)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("prometheus") / "devnet") as cluster:
        yield cluster


# ------------------------------------------------------------------ a real Prometheus


def test_prometheus_scrapes_every_node_of_a_devnet_under_load(
    devnet: Cluster, tmp_path: Path
) -> None:
    binary = require("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(devnet.layout, scrape_interval_s=1))
    names = {node.name for node in devnet.layout.nodes}
    with PrometheusServer(config, tmp_path / "data", binary=binary) as server:
        seen: dict[str, list[dict[str, Any]]] = {}

        def every_node_up() -> bool:
            samples = server.query('up{job="sequencer"}')
            seen["up"] = samples
            return {s["metric"].get("node") for s in samples if s["value"][1] == "1"} == names

        # A first sample of every counter before the load, so the load is an increase.
        wait_until(every_node_up, SCRAPE_WAIT_S, f"up == 1 for {sorted(names)}")
        load(devnet, 400, seed=11)

        def committing() -> bool:
            up_everywhere = every_node_up()
            rates = server.query("rate(sequencer_txs_committed_total[15s])")
            totals = server.query("sequencer_txs_committed_total")
            seen.update(rate=rates, total=totals)
            return (
                up_everywhere
                and any(float(s["value"][1]) > 0 for s in rates)
                # every node commits the load (each sample is the node's own count)
                and {s["metric"]["node"] for s in totals if float(s["value"][1]) >= 400} == names
            )

        deadline = time.monotonic() + SCRAPE_WAIT_S
        while not committing():
            assert time.monotonic() < deadline, (
                f"after {SCRAPE_WAIT_S:.0f} s, Prometheus at {server.url} does not see every"
                f" node up with transactions committed: {seen}\nits log:\n{server.log_tail()}"
            )
            time.sleep(0.5)
        assert all(s["metric"]["job"] == "sequencer" for s in seen["total"]), seen


def test_promtool_check_metrics_passes_on_every_node(devnet: Cluster) -> None:
    require("promtool")
    load(devnet, 200, seed=12)  # every series the load creates is in the output
    problems = []
    for node in devnet.layout.nodes:
        response = httpx.get(node.metrics, timeout=10)
        assert response.status_code == 200, response.text
        assert b"sequencer_txs_committed_total" in response.content, response.text
        code, output = promtool("check", "metrics", stdin=response.content)
        if failed(code, output):
            problems.append(f"{node.name} ({node.metrics}): promtool exit {code}:\n{output}")
    assert not problems, "promtool check metrics:\n" + "\n".join(problems)


# ------------------------------------------------------------------ the configs


def test_configs_prometheus_yml_passes_promtool_and_scrapes_the_default_devnet(
    tmp_path: Path,
) -> None:
    path = ROOT / "configs" / "prometheus.yml"
    code, output = promtool("check", "config", str(path))
    assert not failed(code, output), output
    # The same scrape config `devnet up --prometheus` writes for a default devnet.
    layout = init_devnet(tmp_path / "devnet", 4, 26600)
    generated = prometheus_config(layout, scrape_interval_s=1)
    assert settings(path.read_text()) == settings(generated)
    assert targets(generated) == [(f"127.0.0.1:{26600 + 10 * i}", f"node{i}") for i in range(4)]
    assert '    metrics_path: "/metrics"' in generated


@pytest.mark.parametrize(
    ("validators", "base_port", "interval_s", "written"),
    [(1, 30000, 2, "2s"), (7, 41230, 1.5, "1500ms"), (3, 26600, 0.25, "250ms")],
)
def test_generated_configs_pass_promtool(
    tmp_path: Path, validators: int, base_port: int, interval_s: float, written: str
) -> None:
    layout = init_devnet(tmp_path / "devnet", validators, base_port)
    text = prometheus_config(layout, scrape_interval_s=interval_s)
    assert f"  scrape_interval: {written}\n" in text
    assert f"  scrape_timeout: {written}\n" in text
    assert targets(text) == [(urlsplit(n.metrics).netloc, n.name) for n in layout.nodes]
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    code, output = promtool("check", "config", str(path))
    assert not failed(code, output), output


@pytest.mark.parametrize("interval", [0, -1, float("nan"), True, "1s", 0.0001])
def test_config_rejects_a_bad_interval(tmp_path: Path, interval: object) -> None:
    layout = init_devnet(tmp_path / "devnet", 1, 30000)
    with pytest.raises(PrometheusError, match="scrape interval"):
        prometheus_config(layout, scrape_interval_s=interval)  # type: ignore[arg-type]


# ------------------------------------------------------------------ finding and starting it


def test_a_missing_binary_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_BIN", "/nonexistent/prometheus")
    assert find_prometheus() is None
    with pytest.raises(PrometheusUnavailableError, match="apt-get install prometheus"):
        require_prometheus()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(init_devnet(tmp_path / "devnet", 1, 30000)))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = PrometheusServer(config, tmp_path / "data", port, binary=Path("/nonexistent"))
        with pytest.raises(PrometheusError, match=f"port {port} .* is in use"):
            server.start()
    assert server.process is None


# ------------------------------------------------------------------ devnet up --prometheus


def read_banner(supervisor: ChildProcess) -> str:
    assert supervisor.stdout is not None
    banner = ""
    deadline = time.monotonic() + 60
    while "stop: Ctrl-C" not in banner and time.monotonic() < deadline:
        line = supervisor.stdout.readline()
        if not line:
            break
        banner += line
    return banner


def devnet_up(home: Path, *args: str, env: dict[str, str] | None = None) -> ChildProcess:
    command = [str(SEQUENCER), "devnet", "up", "--home", str(home)]
    return ChildProcess(
        [*command, "--base-port", str(free_base_port(4)), *args], env=env, output=PIPE, text=True
    ).start()


def ctrl_c(supervisor: ChildProcess) -> None:
    try:
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(timeout=30) == 0
    finally:
        supervisor.kill()  # nothing to do once it has exited
        supervisor.close()


def test_devnet_up_runs_prometheus_and_stops_it_on_ctrl_c(tmp_path: Path) -> None:
    require("prometheus")
    home = tmp_path / "devnet"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    supervisor = devnet_up(home, "--prometheus", "--prometheus-port", str(port))
    try:
        banner = read_banner(supervisor)
        assert "is up: 4 validators" in banner, banner
        assert f"prometheus   {url}" in banner, banner
        assert (home / "prometheus" / "prometheus.yml").is_file()
        assert httpx.get(f"{url}/-/ready", timeout=5).status_code == 200
        wait_until(
            lambda: len([s for s in query(url, "up") if s["value"][1] == "1"]) == 4,
            SCRAPE_WAIT_S,
            "Prometheus sees 4 nodes up",
        )
        assert len(processes_mentioning(str(home))) == 6  # supervisor, 4 nodes, Prometheus
    finally:
        ctrl_c(supervisor)
    wait_until(lambda: not processes_mentioning(str(home)), 10, "every process gone")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/-/ready", timeout=1)


def test_devnet_up_without_prometheus_installed_says_how_and_runs(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    env = os.environ | {"PROMETHEUS_BIN": str(tmp_path / "no-such-prometheus")}
    supervisor = devnet_up(home, "--prometheus", "--prometheus-port", str(free_port()), env=env)
    try:
        banner = read_banner(supervisor)
        assert "is up: 4 validators" in banner, banner
        hints = [line for line in banner.splitlines() if "apt-get install prometheus" in line]
        assert len(hints) == 1, banner
        assert "prometheus   http" not in banner, banner
        assert len(processes_mentioning(str(home))) == 5  # the supervisor and 4 nodes
    finally:
        ctrl_c(supervisor)
    wait_until(lambda: not processes_mentioning(str(home)), 10, "every process gone")
