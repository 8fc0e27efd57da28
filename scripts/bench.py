#!/usr/bin/env python3
"""End-to-end benchmark of a fresh 4-node devnet; see `node/lab/bench.py`.

    python3 scripts/bench.py                    # every run: table, and bench.json
    python3 scripts/bench.py --only saturation  # one run
    python3 scripts/bench.py --help

The same as `sequencer bench`. The first run creates .venv (scripts/bootstrap.py).
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
    from node.lab.bench import main as bench

    return bench(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
