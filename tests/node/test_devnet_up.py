"""`sequencer devnet up` as a user runs it: banner, working nodes, Ctrl-C, nothing left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from node.ops.procs import PIPE, ChildProcess
from tests.node.cluster import free_base_port, wait_until

SEQUENCER = Path(sys.executable).parent / "sequencer"


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def test_devnet_up_then_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    base = free_base_port(4)
    supervisor = ChildProcess(
        [str(SEQUENCER), "devnet", "up", "--home", str(home), "--base-port", str(base)],
        output=PIPE,
        text=True,
    ).start()
    try:
        assert supervisor.stdout is not None
        banner = ""
        deadline = time.monotonic() + 60
        while "stop: Ctrl-C" not in banner and time.monotonic() < deadline:
            line = supervisor.stdout.readline()
            if not line:
                break
            banner += line
        assert "is up: 4 validators" in banner, banner
        assert f"http://127.0.0.1:{base}" in banner
        assert "curl -s -X POST" in banner
        assert "sequencer tx send" in banner
        assert len(processes_mentioning(str(home))) == 5  # the supervisor and 4 nodes
        # The pasted example works.
        command = next(line.strip() for line in banner.splitlines() if "sequencer tx send" in line)
        args = command.split()[1:]
        sent = subprocess.run([str(SEQUENCER), *args], capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        assert "status committed" in sent.stdout
        # ... and so does the pasted curl after it (its own key), once.
        curl = next(line.strip() for line in banner.splitlines() if "curl -s -X POST" in line)
        body = curl.split(" -d '", 1)[1].rstrip("'")
        url = curl.split()[4]
        first = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert first.status_code == 202, first.text
        again = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert again.status_code == 409
        assert "valid once" in banner
        # A second devnet on the same ports says so in one line, before any node starts.
        second_home = ["--home", str(tmp_path / "second"), "--base-port", str(base)]
        second = subprocess.run(
            [str(SEQUENCER), "devnet", "up", *second_home],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "is up" not in second.stdout
        assert second.stderr.splitlines() == [
            f"error: port {base} (node0 rpc, TCP) is taken by a running devnet node (node0 of"
            f" chain devnet-1): stop it, or start this devnet on other ports with --fresh"
            f" --base-port PORT (node i uses PORT+10i and PORT+10i+1)"
        ]
        supervisor.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert supervisor.wait(timeout=30) == 0
    finally:
        supervisor.kill()  # nothing to do once it has exited
        supervisor.close()
    wait_until(lambda: not processes_mentioning(str(home)), 10, "every node gone")
    for port in (base, base + 10):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            raise AssertionError(f"something still answers on {port}")
        except httpx.TransportError:
            pass
