#!/usr/bin/env python3
"""End-to-end benchmark of a fresh 4-node devnet; see `node/lab/bench.py`.

    python3 scripts/bench.py                    # every run: table, and bench.json
    python3 scripts/bench.py --only saturation  # one run
    python3 scripts/bench.py --help

The same as `sequencer bench`. The first run creates .venv (scripts/bootstrap.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import run_in_venv  # stdlib only, shared with the test runner

if __name__ == "__main__":
    sys.exit(run_in_venv(__file__, "node.lab.bench", chdir=True))
