"""The client of the wallet benchmark: `wrk`, one process per target, each
walking a file of pre-built single `POST /tx` bodies with `wallet.lua`.

`write_bodies` writes a file per node ("<tx id hex> <JSON body>" a line);
`run_wrk` runs one `wrk -t1 -cN --latency` per target at once, for a fixed
time, as fast as the targets answer or paced to a total rate, and returns
each process's report (the JSON its `done()` prints) and the CPU time the
wrk processes took (`RUSAGE_CHILDREN`: the only children reaped meanwhile).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.lab.presign import Signed
from node.ops.procs import DEVNULL, ChildProcess

__all__ = ["WRK_MISSING", "WRK_SCRIPT", "find_wrk", "run_wrk", "write_bodies"]

WRK_SCRIPT = Path(__file__).with_name("wallet.lua")
WRK_MISSING = (
    "wrk is not installed (Debian: apt-get install wrk; `python3 scripts/test.py`"
    " installs it with apt-get when run as root)"
)
# A request unanswered this long counts as a wrk timeout (not in its histogram).
REQUEST_TIMEOUT_S = 30
# How long after its duration a wrk process may take to report, at most.
REPORT_GRACE_S = 60.0


def find_wrk() -> str | None:
    """The wrk binary, or None."""
    found = shutil.which("wrk")
    if found is None and os.access("/usr/bin/wrk", os.X_OK):
        found = "/usr/bin/wrk"
    return found


def write_bodies(directory: Path, signed: Sequence[Signed], nodes: int) -> list[Path]:
    """One body file per node, each transaction in the file of its node."""
    directory.mkdir(parents=True, exist_ok=True)
    lines: list[list[bytes]] = [[] for _ in range(nodes)]
    for s in signed:
        lines[s.node].append(s.id.hex().encode() + b" " + s.body + b"\n")
    paths = []
    for node, chunk in enumerate(lines):
        path = directory / f"node{node}.txt"
        path.write_bytes(b"".join(chunk))
        paths.append(path)
    return paths


def run_wrk(
    urls: Sequence[str],
    files: Sequence[Path],
    *,
    seconds: float,
    rate: float,
    connections: int,
    wrap: bool,
    track: bool,
    logs: Path,
) -> dict[str, Any]:
    """One wrk per (url, file), all at once, for `seconds`; `rate` is the
    total requests/s over all of them (0: as fast as they answer). `wrap`
    starts a file over when it runs out (else that wrk stops sending);
    `track` keeps (id, sent, answered) of every 202. Each process's output
    goes to a log under `logs`."""
    wrk = find_wrk()
    if wrk is None:
        raise RuntimeError(WRK_MISSING)
    logs.mkdir(parents=True, exist_ok=True)
    duration = max(1, round(seconds))
    per_target = rate / len(urls)
    children, outputs = [], []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for k, (url, path) in enumerate(zip(urls, files, strict=True)):
        output = logs / f"wrk{k}.log"
        output.write_bytes(b"")
        argv = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            f"{REQUEST_TIMEOUT_S}s",
            "-s",
            str(WRK_SCRIPT),
            url,
            "--",
            str(path),
            f"{per_target:.3f}",
            "1" if wrap else "0",
            "1" if track else "0",
        ]
        children.append(ChildProcess(argv, output=output, stdin=DEVNULL, grace_s=5.0))
        outputs.append(output)
    try:
        for child in children:
            child.start()
        for child in children:
            try:
                child.wait(timeout=duration + REPORT_GRACE_S)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"wrk did not report within {REPORT_GRACE_S} s") from None
    finally:
        for child in children:
            child.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    pairs = zip(outputs, children, strict=True)
    reports = [_report(path, child.returncode) for path, child in pairs]
    return {"reports": reports, "client_cpu_s": cpu, "duration_s": duration}


def _report(path: Path, returncode: int | None) -> dict[str, Any]:
    """The JSON line `done()` printed, last in the log."""
    text = path.read_text(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            report: dict[str, Any] = json.loads(line)
            return report
    raise RuntimeError(f"wrk exited ({returncode}) without a report: {text[-2000:]}")
