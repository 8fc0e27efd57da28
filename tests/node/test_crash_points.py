"""A validator killed at any storage write, and a damaged store tail (real processes).

On a fresh 4-node devnet under a small steady load, validator 1 runs with
`SEQUENCER_FAULT_STORAGE=crash_{before,after}_write=k` and kills itself
(SIGKILL, no cleanup) at its k-th storage write; it is restarted without the
fault, and then: it rejoins and finalizes new heights, every node has the
same block at every height, every certificate verifies against the genesis
alone, every transaction acknowledged with 202 (by any node, the victim
included) is finalized, and the victim never signed two different things at
one (height, round, step): nobody saw an equivocation, its signing state
only moved forward, and any precommit of it in a certificate at the position
it had signed before the crash is for the block it had signed.

The victim's writes on a fresh devnet, as observed (k counts from 1 at the
start of the process; journal writes interleave as the load's transactions
arrive, so the exact positions vary a little from run to run):

    1            the store's meta keys (a fresh database)
    2, 3, 4      signing state: its proposal of height 1 (it is the proposer
                 of round 0), its prevote, its precommit
    5            block 1 committed (block, certificate, indexes, nonces, tip)
    6            journal entries of block 1 removed (not synced)
    7            a journal group commit (a transaction sent to the victim)
    8, 9, 10     prevote and precommit of height 2, block 2 ...

so about five writes per height; `crash_before_write` at a signing-state
write means the signature never left the node, `crash_after_write` that it
is on disk but was never sent. The default run takes a few points covering
each kind of write; `--runslow` sweeps k = 1..SWEEP_WRITES both ways.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from node.config import load_config
from sequencer.types import NIL, SigningState, SignStep
from storage import Store
from tests.node.cluster import Cluster, wait_until
from tests.node.crash import (
    FAULT_ENV,
    Load,
    check_chain,
    fresh_wallet,
    no_equivocations,
    sign_position,
    stored_signing_state,
    wait_final,
)
from tests.node.test_devnet import assert_signs_again

VICTIM = 1
SWEEP_WRITES = 16  # a bit over three heights
CRASH_TIMEOUT_S = 30.0
# (when, k), roughly: a proposal's signing state not written, a prevote
# written but not sent, a block not committed, a block committed but its
# journal entries not removed, a precommit of height 2 written but not sent.
# The other points (a prevote not written, a journal group commit whose 202
# was never sent, ...) run with --runslow.
DEFAULT_POINTS = {
    ("before", 2),
    ("after", 3),
    ("before", 5),
    ("after", 6),
    ("after", 9),
}


def _points() -> list[object]:
    return [
        pytest.param(
            when,
            k,
            id=f"{when}-{k}",
            marks=() if (when, k) in DEFAULT_POINTS else pytest.mark.slow,
        )
        for k in range(1, SWEEP_WRITES + 1)
        for when in ("before", "after")
    ]


@pytest.mark.parametrize(("when", "k"), _points())
def test_a_validator_killed_at_any_storage_write_rejoins_without_equivocating(
    tmp_path: Path, when: str, k: int
) -> None:
    cluster = Cluster(tmp_path / "devnet")
    everyone = list(range(cluster.size))
    try:
        for index in everyone:
            env = {FAULT_ENV: f"crash_{when}_write={k}"} if index == VICTIM else None
            cluster.start(index, wait=False, env=env)
        for index in everyone:
            if index != VICTIM:  # which may die before it is up (k = 1: its first write)
                cluster.wait_healthy(index)
        with Load(cluster, everyone) as load:
            victim = cluster.processes[VICTIM]
            assert victim is not None
            deadline = time.monotonic() + CRASH_TIMEOUT_S
            while victim.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert victim.returncode == -signal.SIGKILL, cluster.log_tail(VICTIM)
            assert f"crashing {when} storage write {k} " in cluster.log_tail(VICTIM, 5)
            # Its store opens after the crash; what it had signed by then:
            signed = stored_signing_state(cluster, VICTIM)
            cluster.start(VICTIM)  # without the fault
            target = cluster.height(0) + 2
            cluster.wait_height(VICTIM, target, timeout_s=60)
        assert_signs_again(cluster, VICTIM, fresh_wallet(cluster.layout.chain_id), nonce=0)
        wait_final(cluster, VICTIM, load.acknowledged)
        chain = check_chain(cluster, everyone)
        no_equivocations(cluster, everyone)
    finally:
        cluster.stop_all()
    check_signed_positions(signed, stored_signing_state(cluster, VICTIM), chain)


def check_signed_positions(
    before: SigningState | None, after: SigningState | None, chain: list[dict]
) -> None:
    """The victim's signing state after the run is not behind the one it
    crashed with, and it did not precommit another block where it had one."""
    assert sign_position(after) >= sign_position(before)
    if before is None:
        return
    if sign_position(after) == sign_position(before):
        assert after is not None
        assert after.block_id == before.block_id
    if before.step != SignStep.PRECOMMIT or before.block_id == NIL:
        return
    for block in chain:
        certificate = block["certificate"]
        if (certificate["height"], certificate["round"]) != (before.height, before.round):
            continue
        if VICTIM in {index for index, _ in certificate["signatures"]}:
            assert bytes.fromhex(certificate["block_id"]) == before.block_id


def _data(cluster: Cluster, index: int) -> Path:
    home = cluster.home(index)
    return load_config(home, environ={}).data_path(home)


def _signing_state_of_copy(data: Path, copy: Path) -> SigningState | None:
    """Open a copy: opening replays and rewrites the log, which must stay as it is."""
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("LOCK"))
    with Store.open(copy, create=False) as store:
        return store.signing_state()


def _newest_log(data: Path) -> Path:
    return max(data.glob("*.log"), key=lambda path: int(path.stem))


def test_a_torn_store_log_tail_is_dropped_and_a_damaged_log_refuses_to_start(
    tmp_path: Path,
) -> None:
    """See PARANOID_CHECKS in `storage.leveldb` for what LevelDB does with each."""
    cluster = Cluster(tmp_path / "devnet")
    everyone = list(range(cluster.size))
    data = _data(cluster, VICTIM)
    try:
        cluster.start_all()
        with Load(cluster, everyone) as load:
            cluster.wait_height(VICTIM, 4, timeout_s=30)
        # Idle (its last writes are a block and its journal clean-up), then kill -9
        # and tear the last record of its write-ahead log.
        wait_until(lambda: cluster.height(VICTIM) == cluster.height(0), 20, "the victim idle")
        time.sleep(0.3)
        cluster.kill(VICTIM)
        before = _signing_state_of_copy(data, tmp_path / "before")
        log = _newest_log(data)
        with log.open("r+b") as file:
            file.truncate(log.stat().st_size - 3)
        assert _signing_state_of_copy(data, tmp_path / "torn") == before  # as it was
        cluster.start(VICTIM)
        cluster.wait_height(VICTIM, cluster.height(0), timeout_s=60)
        assert_signs_again(cluster, VICTIM, fresh_wallet(cluster.layout.chain_id), nonce=0)
        wait_final(cluster, VICTIM, load.acknowledged)
        check_chain(cluster, everyone)
        no_equivocations(cluster, everyone)
        # A damaged record before the tail: the node refuses to start, and says why.
        cluster.kill(VICTIM)
        log = _newest_log(data)
        assert log.stat().st_size > 1_000  # the writes since the restart
        with log.open("r+b") as file:
            file.seek(log.stat().st_size // 2)
            byte = file.read(1)
            file.seek(-1, 1)
            file.write(bytes([byte[0] ^ 0xFF]))
        cluster.start(VICTIM, wait=False)
        victim = cluster.processes[VICTIM]
        assert victim is not None
        assert victim.wait(timeout=30) == 1
        message = cluster.log_tail(VICTIM, 3)
        assert f"error: database {data} is corrupt (Corruption: " in message
        assert "restore the node home from a backup" in message
    finally:
        cluster.stop_all()
