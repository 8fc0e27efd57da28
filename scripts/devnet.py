#!/usr/bin/env python3
"""Run a local devnet on any machine with python3.

    python3 scripts/devnet.py                  # 4 validators under ./.devnet
    python3 scripts/devnet.py --validators 7   # arguments go to `sequencer devnet up`

The first run creates .venv from requirements.lock (see scripts/bootstrap.py),
then this is exactly `.venv/bin/sequencer devnet up ARGS`.
"""

from __future__ import annotations

import os
import sys

from bootstrap import ROOT, BootstrapError, ensure_venv, say


def main(argv: list[str]) -> int:
    try:
        python = ensure_venv()
    except BootstrapError as exc:
        say(f"error: {exc}")
        return 1
    sequencer = str(python.parent / "sequencer")
    os.chdir(ROOT)
    os.execv(sequencer, [sequencer, "devnet", "up", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
