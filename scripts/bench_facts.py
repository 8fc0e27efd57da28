#!/usr/bin/env python3
"""Encodes and hashes per transaction per node, counted on a devnet run in
one process; see `node/lab/facts.py`.

    python3 scripts/bench_facts.py                       # 4 nodes, 2,000 txs
    python3 scripts/bench_facts.py --nodes 1 --txs 500   # table, and bench-facts.json

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
    from node.lab.facts import main as facts

    return facts(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
