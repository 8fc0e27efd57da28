#!/usr/bin/env python3
"""A simulator campaign: seed ranges over validator counts and fault classes,
on every core, resumable, with a summary table.

    python3 scripts/simulate_campaign.py                        # the default plan
    python3 scripts/simulate_campaign.py --seeds 25000 --validators 4 7 10 16 --classes all crash
    python3 scripts/simulate_campaign.py --state campaign.jsonl  # resume an interrupted one
    python3 scripts/simulate_campaign.py --first-seed 7000000 --out table.md

Each (validators, class) row runs `--seeds` seeds (scaled down for larger
clusters by `--scale`) from
`--first-seed`, in chunks. Every finished chunk is appended to `--state` (JSON
lines), so a run that is stopped resumes where it was with the same command.
The table shows per row: seeds, seeds/s (per core and in all), violations
and failed seeds; every failing seed is listed with the command that replays
it. Exit status 1 if any seed failed.
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
    from consensus.sim.campaign import main as campaign

    return campaign(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
