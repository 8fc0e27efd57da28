#!/usr/bin/env python3
"""Encodes and hashes per transaction per node, counted on a devnet run in
one process; see `node/lab/facts.py`.

    python3 scripts/bench_facts.py                       # 4 nodes, 2,000 txs
    python3 scripts/bench_facts.py --nodes 1 --txs 500   # table, and bench-facts.json

The first run creates .venv (scripts/bootstrap.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import run_in_venv  # stdlib only, shared with the test runner

if __name__ == "__main__":
    sys.exit(run_in_venv(__file__, "node.lab.facts", chdir=True))
