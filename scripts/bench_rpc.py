#!/usr/bin/env python3
"""RPC capacity in rate-limit tokens, and finality under heavy readers; see `node/lab/rpcbench.py`.

    python3 scripts/bench_rpc.py                # every phase: table, and bench-rpc.json
    python3 scripts/bench_rpc.py --seconds 10   # longer runs
    python3 scripts/bench_rpc.py --help

The first run creates .venv (scripts/bootstrap.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import run_in_venv  # stdlib only, shared with the test runner

if __name__ == "__main__":
    sys.exit(run_in_venv(__file__, "node.lab.rpcbench", chdir=True))
