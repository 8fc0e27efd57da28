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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import run_in_venv  # stdlib only, shared with the test runner

if __name__ == "__main__":
    sys.exit(run_in_venv(__file__, "consensus.sim.campaign"))
