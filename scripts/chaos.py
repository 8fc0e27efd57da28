#!/usr/bin/env python3
"""Chaos run of a local devnet under load; see `node/lab/chaos.py`.

    python3 scripts/chaos.py                                 # 4 validators, 60 s
    python3 scripts/chaos.py --validators 7 --duration 300 --seed 42
    python3 scripts/chaos.py --help

It sets up the project's virtual environment first when needed (as the
test runner does); exit status 0 when every check holds, 1 on any violation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        sys.path.insert(0, str(ROOT / "scripts"))
        from bootstrap import ensure_venv  # stdlib-only set-up, shared with the test runner

        python = str(ensure_venv())
        os.execv(python, [python, __file__, *sys.argv[1:]])
    sys.path.insert(0, str(ROOT))
    # The node processes import the same checkout.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    from node.lab.chaos import main as chaos

    return chaos(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
