#!/usr/bin/env python3
"""Run the project's checks on any machine with python3: set-up, lint, tests.

    python3 scripts/test.py              # ruff, then the default pytest run
    python3 scripts/test.py -k merkle    # extra arguments go to pytest
    python3 scripts/test.py --runslow    # include the long (soak) tests
    TEST_WORKERS=2 python3 scripts/test.py   # two pytest workers (default: one)

The first run creates .venv from requirements.lock (see scripts/bootstrap.py)
and installs the system tools some tests need when missing (apt-get): npm, to
fetch anvil for the L1 tests and the TypeScript client's dependencies,
prometheus (with promtool), and wrk for the wallet benchmark's test.
Exit status is pytest's: a run that collects no tests fails (pytest exits 5).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from bootstrap import ROOT, BootstrapError, ensure_test_tools, ensure_venv, say


def main(argv: list[str]) -> int:
    # System tools (apt-get) install while the virtual environment does (pip).
    tools_error: list[BootstrapError] = []

    def tools() -> None:
        try:
            ensure_test_tools()
        except BootstrapError as exc:
            tools_error.append(exc)

    tools_thread = threading.Thread(target=tools, name="test-tools")
    tools_thread.start()
    try:
        python = str(ensure_venv())
    except BootstrapError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        tools_thread.join()
    if tools_error:
        say(f"error: {tools_error[0]}")
        return 1
    say("ruff check")
    lint = subprocess.run([python, "-m", "ruff", "check", "--quiet", "."], cwd=ROOT)
    if lint.returncode != 0:
        return lint.returncode
    os.chdir(ROOT)
    os.execv(python, [python, "-m", "pytest", *_workers(argv), *argv])


def _workers(argv: list[str]) -> list[str]:
    """One pytest process by default. TEST_WORKERS=2 runs two (pytest-xdist):
    the pure-code tiers beside the node tests, which stay on one worker, one
    at a time (see tests/conftest.py). Faster, but on 2 cores the simulator's
    processes then starve the node clusters of CPU, and timing-bound node
    tests (readiness, peer timeouts) fail now and then: not the default."""
    if any(arg.startswith(("-n", "--numprocesses", "--dist")) for arg in argv):
        return []
    workers = os.environ.get("TEST_WORKERS") or "1"
    if workers in ("0", "1"):
        return []
    return ["-n", workers, "--dist", "loadgroup"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
