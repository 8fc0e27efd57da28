"""A validator whose disk fails stops, visibly, and votes again after a restart
(real processes; the failure is injected with `SEQUENCER_FAULT_STORAGE`)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from sequencer.codec import to_builtins
from tests.node.cluster import Cluster, wait_until
from tests.node.crash import (
    FAULT_ENV,
    Load,
    check_chain,
    fresh_wallet,
    no_equivocations,
    status,
    wait_final,
)
from tests.node.test_devnet import assert_signs_again

VICTIM = 1
OTHERS = [0, 2, 3]


def test_a_node_whose_disk_fails_stops_voting_and_catches_up_after_a_restart(
    tmp_path: Path,
) -> None:
    cluster = Cluster(tmp_path / "devnet")
    try:
        for index in range(cluster.size):
            env = {FAULT_ENV: "fail_writes_on=SIGUSR1"} if index == VICTIM else None
            cluster.start(index, wait=False, env=env)
        for index in range(cluster.size):
            cluster.wait_healthy(index)
        url = cluster.url(VICTIM)
        with Load(cluster, [*OTHERS, VICTIM]) as load:
            cluster.wait_height(VICTIM, 3, timeout_s=30)
            victim = cluster.processes[VICTIM]
            assert victim is not None
            victim.send_signal(signal.SIGUSR1)  # from now on, every write fails
            wait_until(
                lambda: httpx.get(f"{url}/health", timeout=2).status_code == 503,
                20,
                "the victim unhealthy",
            )
            health = httpx.get(f"{url}/health", timeout=2).json()["error"]
            assert health["code"] == "storage_failed"
            assert "injected write failure" in health["message"]
            ready = httpx.get(f"{url}/ready", timeout=2)
            assert (ready.status_code, ready.json()["error"]["code"]) == (503, "storage_failed")
            stopped = status(cluster, VICTIM)
            assert "injected write failure" in stopped["storage_failed"]
            assert not stopped["ready"]
            metrics = httpx.get(f"{url}/metrics", timeout=2).text
            assert "sequencer_storage_failed 1.0" in metrics.splitlines()
            tx = fresh_wallet(cluster.layout.chain_id).sign(0, b"refused", 1)
            refused = httpx.post(f"{url}/tx", json=to_builtins(tx), timeout=5)
            assert (refused.status_code, refused.json()["error"]["code"]) == (
                503,
                "storage_failed",
            )
            # The other three go on; the victim's height and round stay put.
            frozen_at = stopped["consensus"]["height"]
            for index in OTHERS:
                cluster.wait_height(index, frozen_at + 3, timeout_s=30)
            later = status(cluster, VICTIM)
            assert (later["height"], later["consensus"]) == (
                stopped["height"],
                stopped["consensus"],
            )
        # It signed nothing after it stopped: no certificate above the height it
        # stopped at carries its signature, and nobody saw it equivocate.
        for block in check_chain(cluster, OTHERS):
            if block["header"]["height"] > frozen_at:
                signers = {index for index, _ in block["certificate"]["signatures"]}
                assert VICTIM not in signers, block["header"]["height"]
        no_equivocations(cluster, list(range(cluster.size)))
        # A failed node still shuts down cleanly, and restarted without the
        # fault it catches up, votes again, and nothing acknowledged is lost.
        assert cluster.stop(VICTIM) == 0
        assert "storage failed:" in cluster.log_tail(VICTIM, 200)
        cluster.start(VICTIM)
        cluster.wait_height(VICTIM, cluster.height(0), timeout_s=60)
        assert_signs_again(cluster, VICTIM, fresh_wallet(cluster.layout.chain_id), nonce=0)
        wait_final(cluster, VICTIM, load.acknowledged)
        check_chain(cluster, list(range(cluster.size)))
        no_equivocations(cluster, list(range(cluster.size)))
    finally:
        cluster.stop_all()
