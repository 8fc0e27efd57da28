#!/usr/bin/env python3
"""Chaos run of a local devnet under load; see `node/lab/chaos.py`.

    python3 scripts/chaos.py                                 # 4 validators, 60 s
    python3 scripts/chaos.py --validators 7 --duration 300 --seed 42
    python3 scripts/chaos.py --help

It sets up the project's virtual environment first when needed (as the
test runner does); exit status 0 when every check holds, 1 on any violation.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import run_in_venv  # stdlib only, shared with the test runner

if __name__ == "__main__":
    sys.exit(run_in_venv(__file__, "node.lab.chaos"))
