"""The chaos schedule (`node.lab.chaos_plan`): deterministic per seed and bounded."""

from __future__ import annotations

import pytest

from node.lab.chaos_plan import KINDS, Episode, faulty_at, max_faulty, plan

SEEDS = range(200)


def overlap(a: Episode, b: Episode) -> bool:
    return a.start_s < b.end_s and b.start_s < a.end_s


def test_the_same_seed_gives_the_same_plan() -> None:
    assert plan(7, 4, 300.0) == plan(7, 4, 300.0)
    assert plan(7, 4, 300.0) != plan(8, 4, 300.0)


@pytest.mark.parametrize("validators", [4, 7])
def test_never_more_than_f_nodes_faulty_at_once(validators: int) -> None:
    f = (validators - 1) // 3
    for seed in SEEDS:
        episodes = plan(seed, validators, 300.0, disk_node=validators - 1)
        assert max_faulty(episodes) <= f, seed
        # Checked at every instant where the set can change, not only at starts.
        live = [e for e in episodes if not e.exclusive]
        for t in sorted({e.start_s for e in live} | {e.end_s for e in live}):
            assert len(faulty_at(live, t)) <= f, (seed, t)


@pytest.mark.parametrize("validators", [4, 7])
def test_splits_run_alone_and_network_faults_one_at_a_time(validators: int) -> None:
    for seed in SEEDS:
        episodes = plan(seed, validators, 300.0)
        for i, a in enumerate(episodes):
            for b in episodes[i + 1 :]:
                if a.exclusive or b.exclusive:
                    assert not overlap(a, b), (seed, a, b)
                if a.network_wide and b.network_wide:
                    assert not overlap(a, b), (seed, a, b)


def test_episodes_stay_inside_the_run_and_heal_by_its_end() -> None:
    for seed in SEEDS:
        episodes = plan(seed, 4, 60.0, warmup_s=3.0)
        assert episodes, seed
        for e in episodes:
            assert 3.0 <= e.start_s < e.end_s <= 60.0
            assert e.kind in KINDS
        assert [e.start_s for e in episodes] == sorted(e.start_s for e in episodes)


def test_disk_trouble_only_when_enabled_and_only_on_its_node() -> None:
    assert all(e.kind != "disk" for seed in SEEDS for e in plan(seed, 4, 300.0))
    disk = [e for seed in SEEDS for e in plan(seed, 4, 300.0, disk_node=3) if e.kind == "disk"]
    assert disk
    assert all(e.nodes == (3,) for e in disk)


def test_every_kind_appears_and_parameters_are_in_range() -> None:
    episodes = [e for seed in range(20) for e in plan(seed, 7, 300.0, disk_node=6)]
    assert {e.kind for e in episodes} == set(KINDS)
    for e in episodes:
        if e.kind == "clock":
            assert 1_000 <= abs(e.clock_offset_ms) <= 5_000
        if e.network_wide:
            assert 0.1 <= e.probability <= 0.5
        if e.kind == "split":
            assert len(e.side) == 3
            assert e.nodes == tuple(range(7))
        if e.kind == "one_way":
            assert e.direction in ("out", "in")


def test_a_single_validator_gets_only_network_faults() -> None:
    assert {e.kind for e in plan(1, 1, 300.0)} <= {"loss", "duplicate"}


@pytest.mark.parametrize("validators", [4, 7])
def test_restart_moments_are_planned_within_the_bounds(validators: int) -> None:
    f = (validators - 1) // 3
    episodes = [e for seed in SEEDS for e in plan(seed, validators, 300.0)]
    idle = [e for e in episodes if e.kind == "restart_idle"]
    after_commit = [e for e in episodes if e.kind == "restart_after_commit"]
    assert idle
    assert after_commit
    for e in idle:  # f nodes at once, alone, long enough for two restarts
        assert len(e.nodes) == f
        assert e.exclusive
        assert not e.safety_only
        assert e.end_s - e.start_s >= 10.0
    assert all(len(e.nodes) == 1 for e in after_commit)
