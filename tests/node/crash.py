"""Helpers of the crash and disk-failure tests (real node processes).

`Load` sends a small steady stream of transactions from a background thread
and remembers those acknowledged with 202; the checks verify what must hold
after any crash: one chain on every node, certificates that verify against
the genesis alone, every acknowledged transaction finalized, and no
equivocation seen by anyone.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from types import TracebackType

import httpx

from node.config import load_config
from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.client import Wallet
from sequencer.codec import from_builtins, parse_hex, to_builtins
from sequencer.crypto import PrivateKey
from sequencer.genesis import load_genesis
from sequencer.ids import block_id
from sequencer.types import BlockHeader, CommitCertificate, SigningState
from storage import Store
from tests.node.cluster import Cluster, wait_until

FAULT_ENV = "SEQUENCER_FAULT_STORAGE"
_keys = itertools.count(1)


def fresh_wallet(chain_id: str) -> Wallet:
    """A sender no other test of this process uses."""
    return Wallet(PrivateKey((next(_keys) + 3_000).to_bytes(32, "big")), chain_id)


class Load:
    """Transactions to `targets` in turn, `rate_per_s`, until stopped.

    A sender's next nonce is used only after a 202: any other outcome (a
    refusal, a node that died mid-request) leaves it unknown whether the
    transaction exists, so that target continues with a new sender.
    """

    def __init__(self, cluster: Cluster, targets: list[int], rate_per_s: float = 20.0) -> None:
        self.cluster = cluster
        self.targets = targets
        self.interval_s = 1.0 / rate_per_s
        self.acknowledged: list[bytes] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        chain_id = self.cluster.layout.chain_id
        senders = {index: (fresh_wallet(chain_id), 0) for index in self.targets}
        with httpx.Client(timeout=5.0) as http:
            for n in itertools.count():
                if self._stop.wait(self.interval_s):
                    return
                index = self.targets[n % len(self.targets)]
                wallet, nonce = senders[index]
                tx = wallet.sign(nonce, b"load %d" % n, 1)
                try:
                    response = http.post(f"{self.cluster.url(index)}/tx", json=to_builtins(tx))
                    accepted = response.status_code == 202
                except httpx.HTTPError:
                    accepted = False
                if accepted:
                    self.acknowledged.append(parse_hex(response.json()["tx_id"], length=32))
                    senders[index] = (wallet, nonce + 1)
                else:
                    self.refused += 1
                    senders[index] = (fresh_wallet(chain_id), 0)


def status(cluster: Cluster, index: int) -> dict:
    return httpx.get(f"{cluster.url(index)}/status", timeout=5).json()


def blocks(cluster: Cluster, index: int, last: int) -> list[dict]:
    """Blocks 1..last of node `index`, with their certificates."""
    found: list[dict] = []
    while len(found) < last:
        response = httpx.get(
            f"{cluster.url(index)}/blocks",
            params={"from": len(found) + 1, "limit": min(100, last - len(found))},
            timeout=10,
        )
        response.raise_for_status()
        found += response.json()["blocks"]
    return found


def check_chain(cluster: Cluster, nodes: list[int]) -> list[dict]:
    """Identical block ids at every common height of `nodes`, and every
    certificate valid against nothing but the genesis file; the blocks."""
    height = min(cluster.height(index) for index in nodes)
    chain = blocks(cluster, nodes[0], height)
    ids = [block["block_id"] for block in chain]
    for index in nodes[1:]:
        assert [b["block_id"] for b in blocks(cluster, index, height)] == ids, f"node {index}"
    genesis = load_genesis(cluster.home(nodes[0]) / "genesis.json")
    validators = ValidatorSet.from_genesis(genesis)
    for block in chain:
        header = from_builtins(block["header"], BlockHeader)
        certificate = from_builtins(block["certificate"], CommitCertificate)
        assert block_id(header) == parse_hex(block["block_id"])
        assert certificate.block_id == block_id(header)
        verify_certificate(certificate, validators, chain_id=genesis.chain_id)
    return chain


def wait_final(cluster: Cluster, index: int, ids: list[bytes], timeout_s: float = 60) -> None:
    """Every transaction in `ids` committed, as node `index` sees it."""
    pending = list(ids)

    def done() -> bool:
        while pending:
            response = httpx.get(f"{cluster.url(index)}/tx/{pending[-1].hex()}", timeout=5)
            if response.status_code != 200 or response.json()["status"] != "committed":
                return False
            pending.pop()
        return True

    wait_until(done, timeout_s, f"{len(ids)} acknowledged transactions final on node {index}")


def no_equivocations(cluster: Cluster, nodes: list[int]) -> None:
    for index in nodes:
        assert status(cluster, index)["equivocations"] == 0, f"node {index} saw an equivocation"


def stored_signing_state(cluster: Cluster, index: int) -> SigningState | None:
    """The signing state in the store of node `index`, which must not be running."""
    home = cluster.home(index)
    path: Path = load_config(home, environ={}).data_path(home)
    with Store.open(path, create=False) as store:
        return store.signing_state()


def sign_position(state: SigningState | None) -> tuple[int, int, int]:
    """Where a signing state stands: (height, round, step), comparable."""
    return (0, 0, 0) if state is None else (state.height, state.round, int(state.step))
