#!/usr/bin/env python3
"""Run the project's checks on any machine with python3: set-up, lint, tests.

    python3 scripts/test.py              # ruff, then the default pytest run
    python3 scripts/test.py -k merkle    # extra arguments go to pytest
    python3 scripts/test.py --runslow    # include the long (soak) tests

The first run creates .venv from requirements.lock (see scripts/bootstrap.py)
and installs the system tools some tests need when missing (apt-get): npm, to
fetch anvil for the L1 tests, and prometheus (with promtool).
Exit status is pytest's: a run that collects no tests fails (pytest exits 5).
"""

from __future__ import annotations

import os
import subprocess
import sys

from bootstrap import ROOT, BootstrapError, ensure_test_tools, ensure_venv, say


def main(argv: list[str]) -> int:
    try:
        python = str(ensure_venv())
        ensure_test_tools()
    except BootstrapError as exc:
        say(f"error: {exc}")
        return 1
    say("ruff check")
    lint = subprocess.run([python, "-m", "ruff", "check", "--quiet", "."], cwd=ROOT)
    if lint.returncode != 0:
        return lint.returncode
    os.chdir(ROOT)
    os.execv(python, [python, "-m", "pytest", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
