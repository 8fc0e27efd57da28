"""Tier 2: the deterministic cluster simulator, a few hundred seeds per run.

More seeds, heights and validators: `python -m consensus.simulate` (see
README). A failing seed prints the command that replays it exactly.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from consensus.simnet import FAULT_NAMES, Faults
from consensus.simulate import run_seed
from consensus.simulation import Simulation

ALL = list(FAULT_NAMES)


def _check(validators: int, seeds: range, heights: int, faults: list[str]) -> None:
    failed = {}
    for seed in seeds:
        result = run_seed(
            validators=validators, seed=seed, heights=heights, faults=faults, byzantine=None
        )
        if not result.ok:
            failed[seed] = result.violations
    assert not failed, (
        f"violations (replay: python -m consensus.simulate --validators {validators} "
        f"--heights {heights} --faults {','.join(faults) or 'none'} --seed K): {failed}"
    )


@pytest.mark.parametrize("first", range(0, 240, 40))
def test_four_validators_under_every_fault(first: int) -> None:
    _check(4, range(first, first + 40), heights=12, faults=ALL)


@pytest.mark.parametrize("first", range(0, 60, 20))
def test_seven_validators_under_every_fault(first: int) -> None:
    _check(7, range(first, first + 20), heights=8, faults=ALL)


@pytest.mark.parametrize("validators", [1, 2, 4, 7])
def test_without_faults_every_seed_reaches_the_target_in_round_zero(validators: int) -> None:
    for seed in range(15):
        result = run_seed(validators=validators, seed=seed, heights=15, faults=[], byzantine=None)
        assert result.ok, (seed, result.violations)
        assert result.reached >= 15
        assert set(result.rounds.values()) == {0}


# Seeds that found liveness bugs: a lock carried across heights by a restart
# (5982), and a restarted node that could not send its earlier votes again
# (1229, 3014, 3577 under every fault; 5330, 5390, 7131 without byzantine).
REGRESSION_SEEDS = [
    (5982, ["loss", "duplicate", "delay", "partition", "crash"]),
    (1229, ALL),
    (3014, ALL),
    (3577, ALL),
    (5330, ["loss", "duplicate", "delay", "partition", "crash"]),
    (5390, ["loss", "duplicate", "delay", "partition", "crash"]),
    (7131, ["loss", "duplicate", "delay", "partition", "crash"]),
]


@pytest.mark.parametrize(("seed", "faults"), REGRESSION_SEEDS)
def test_seeds_that_once_stalled_stay_live(seed: int, faults: list[str]) -> None:
    _check(4, range(seed, seed + 1), heights=12, faults=faults)


def test_a_byzantine_third_or_more_breaks_agreement_and_the_checker_says_so() -> None:
    """The negative control: the checker can fail."""
    forks = 0
    for seed in range(20):
        result = run_seed(validators=4, seed=seed, heights=10, faults=[], byzantine=2)
        forks += any(v.startswith("agreement") for v in result.violations)
    assert forks >= 5


def test_a_seed_replays_exactly() -> None:
    faults = Faults.draw(ALL, random.Random("faults:7"), byzantine=1)
    first = Simulation(validators=4, seed=7, heights=10, faults=faults)
    second = Simulation(validators=4, seed=7, heights=10, faults=faults)
    a, b = first.run(), second.run()
    assert (a.messages, a.events, a.sim_ms, a.rounds, a.violations) == (
        b.messages,
        b.events,
        b.sim_ms,
        b.rounds,
        b.violations,
    )
    assert first.checker.finalized == second.checker.finalized
    other = Simulation(validators=4, seed=8, heights=10, faults=faults).run()
    assert (other.messages, other.events) != (a.messages, a.events)


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consensus.simulate", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_command_prints_a_summary_ending_in_violations() -> None:
    result = _simulate("--validators", "4", "--seeds", "3", "--heights", "5", "--faults", "all")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert "seeds/s" in summary
    assert "messages/height" in summary
    assert summary.endswith("violations: 0")


def test_command_reports_and_replays_a_failing_seed() -> None:
    result = _simulate(
        "--validators",
        "4",
        "--seeds",
        "6",
        "--heights",
        "5",
        "--faults",
        "none",
        "--byzantine",
        "2",
    )
    assert result.returncode == 1
    assert "exceeds f" in result.stderr
    replay = next(line for line in result.stdout.splitlines() if "replay with:" in line)
    seed = replay.rsplit("--seed ", 1)[1]
    first_violation = next(
        line for line in result.stdout.splitlines() if line.startswith(f"seed {seed}: agreement")
    )
    command = replay.split("replay with: python -m consensus.simulate ", 1)[1].split()
    again = _simulate(*command)
    assert again.returncode == 1
    assert first_violation in again.stdout.splitlines()


def test_command_rejects_bad_arguments() -> None:
    assert _simulate("--faults", "gremlins").returncode == 2
    assert _simulate("--validators", "0").returncode == 2
    assert _simulate("--validators", "3", "--byzantine", "3").returncode == 2
