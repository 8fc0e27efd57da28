"""Signals a real node process gets: SIGUSR1 and SIGUSR2 (with chaos control
off) are logged and ignored; SIGHUP shuts the node down cleanly, like
SIGTERM. Before, each of them killed the node with no log line."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.node.cluster import running, wait_until


def test_spare_signals_are_ignored_and_sighup_shuts_down_cleanly(tmp_path: Path) -> None:
    with running(tmp_path / "devnet", validators=1) as cluster:
        process = cluster.processes[0]
        assert process is not None
        height = cluster.height(0)
        for signum in (signal.SIGUSR1, signal.SIGUSR2):
            process.send_signal(signum)
        time.sleep(0.5)
        assert process.poll() is None, cluster.log_tail(0)
        cluster.wait_healthy(0)
        log = (cluster.home(0) / "node.log").read_text()
        assert "SIGUSR1: ignored" in log
        assert "SIGUSR2: ignored" in log
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: process.poll() is not None, 20, "the node to exit on SIGHUP")
        assert process.returncode == 0, cluster.log_tail(0)
        assert "SIGHUP: shutting down" in (cluster.home(0) / "node.log").read_text()
        # A clean close: it starts again on the same store, where it was.
        cluster.processes[0] = None
        cluster.start(0)
        assert cluster.height(0) >= height
