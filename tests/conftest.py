"""Test-wide settings: hypothesis profiles, the `--runslow` switch, and the
simulator's seed range.

Profiles (HYPOTHESIS_PROFILE): `dev` (default), `ci` (derandomized, chosen
when CI=true, so CI failures replay exactly), `soak` (many more examples).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("soak", max_examples=5_000, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev")
)


# The simulator tests draw their seeds from a new range each run (so that runs
# add up to many seeds); the header prints it, `SIM_SEED_BASE=K` replays it.
SIM_SEED_BASE = int(os.environ.get("SIM_SEED_BASE") or random.randrange(10**6, 10**9))
# pytest-xdist workers inherit it, so that all draw from the range the header shows.
os.environ["SIM_SEED_BASE"] = str(SIM_SEED_BASE)


def pytest_report_header(config: pytest.Config) -> str:
    return f"simulator seeds: SIM_SEED_BASE={SIM_SEED_BASE} (set it to replay this run's seeds)"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


# Tests that run real node processes share one pytest-xdist worker, one at a
# time: two clusters at once would contend for the CPU (and their timeouts).
PROCESS_TESTS = Path(__file__).parent / "node"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    runslow = config.getoption("--runslow")
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if item.path.is_relative_to(PROCESS_TESTS):
            item.add_marker(pytest.mark.xdist_group("node-processes"))
        if not runslow and "slow" in item.keywords:
            item.add_marker(skip)
