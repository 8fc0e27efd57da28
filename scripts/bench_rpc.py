#!/usr/bin/env python3
"""RPC capacity in rate-limit tokens, and finality under heavy readers; see `node/lab/rpcbench.py`.

    python3 scripts/bench_rpc.py                # every phase: table, and bench-rpc.json
    python3 scripts/bench_rpc.py --seconds 10   # longer runs
    python3 scripts/bench_rpc.py --help

The first run creates .venv (scripts/bootstrap.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> int:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        from bootstrap import ensure_venv  # stdlib-only set-up, shared with the test runner

        python = str(ensure_venv())
        os.execv(python, [python, __file__, *sys.argv[1:]])
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from node.lab.rpcbench import main as bench_rpc

    return bench_rpc(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
