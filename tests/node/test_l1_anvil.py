"""A devnet posting batch commitments to a real Ethereum L1 (anvil): paused L1,
killed batching node, and `sequencer l1 verify` reading the calldata back."""

from __future__ import annotations

import time
from pathlib import Path

from tests.anvil import Anvil, require_anvil
from tests.node.cluster import Cluster, wait_until
from tests.node.test_l1 import covered, load, verify

INBOX = "0x00000000000000000000000000000000000b47c4"


def use_ethereum(cluster: Cluster, anvil: Anvil) -> None:
    config = cluster.home(0) / "config.toml"
    text = config.read_text()
    text = text.replace('sink = "file"', 'sink = "ethereum"')
    text = text.replace('ethereum_url = "http://127.0.0.1:8545"', f'ethereum_url = "{anvil.url}"')
    text = text.replace(
        'ethereum_private_key = ""', f'ethereum_private_key = "{anvil.private_key}"'
    )
    assert 'sink = "ethereum"' in text
    assert anvil.url in text
    config.write_text(text)


def l1_spec(anvil: Anvil) -> list[str]:
    return [f"ethereum:{anvil.url}", "--sender", anvil.address, "--inbox", INBOX]


def test_ethereum_l1_survives_a_paused_l1_and_a_killed_batcher(tmp_path: Path) -> None:
    binary = require_anvil()
    with Anvil(binary=binary) as anvil:
        cluster = Cluster(tmp_path / "devnet")
        use_ethereum(cluster, anvil)
        try:
            cluster.start_all()
            load(cluster, 700, seed=4)
            anvil.pause()  # the L1 stops answering for 20 s
            paused_at = cluster.height(1)
            started = time.monotonic()
            load(cluster, 700, seed=5)
            # Consensus does not wait for the L1.
            assert cluster.height(1) > paused_at
            time.sleep(max(0.0, 20 - (time.monotonic() - started)))
            anvil.resume()
            cluster.kill(0)  # the batching node, while it is catching up
            cluster.start(0)
            load(cluster, 600, seed=6)
            tip = cluster.height(1)
            spec = l1_spec(anvil)
            wait_until(
                lambda: covered(verify(cluster, *spec).stdout) >= tip - 1, 60, "batches on L1"
            )
            result = verify(cluster, *spec)
            assert result.returncode == 0, result.stdout + result.stderr
            status = cluster.client(0).status()["batcher"]
            assert status["sink"] == "ethereum"
            assert status["failure"] is None
        finally:
            cluster.stop_all()
