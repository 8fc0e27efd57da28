"""Four nodes on four "hosts": Linux network namespaces joined by a bridge,
set up as docs/deploy.md says (a key per host, the genesis ceremony, a home
per host, `sequencer node --home`).

Each node runs in its own namespace with its own address in a private /24
(10.77.<pid % 256>.0/24, only inside namespaces this test creates, plus one
veth end in the root namespace so the test can reach every node's HTTP
API). Datagrams cross real interfaces with the MTU-sized default
`datagram_bytes_max`, so larger messages are fragmented.

Transactions finalize on all four; then one host's link goes down: the other
three keep finalizing; the link comes back and the cut node catches up
within 20 s. Everything created is removed in a `finally`, names are unique
per run (the pid). Skipped, with the reason, where namespaces cannot be made
(not root, no CAP_NET_ADMIN, no `ip`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from node.ops.procs import ChildProcess, stop_all
from sequencer.client import Client
from sequencer.crypto import PrivateKey, sign_transaction
from tests.node.cluster import wait_until

ROOT = Path(__file__).resolve().parents[2]
SEQUENCER = Path(sys.executable).parent / "sequencer"
NODES = 4
CUT = 3
CATCH_UP_S = 20.0
WALLET = PrivateKey(b"\x44" * 32)


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=10)


@dataclass
class Hosts:
    """The namespaces, links and addresses of one run."""

    tag: str = field(default_factory=lambda: f"{os.getpid() % 100_000}")
    created: list[str] = field(default_factory=list)  # namespaces, deleted in reverse
    root_link: str | None = None

    @property
    def subnet(self) -> str:
        return f"10.77.{os.getpid() % 256}"

    def address(self, index: int) -> str:
        return f"{self.subnet}.{10 + index}"

    def namespace(self, index: int | None) -> str:
        return f"sqh{self.tag}-{'br' if index is None else index}"

    def link(self, index: int) -> str:
        return f"sq{self.tag}n{index}"  # the node's end (<= 15 characters)

    def build(self) -> None:
        bridge_ns = self.namespace(None)
        self._add_namespace(bridge_ns)
        ip("link", "add", "br0", "type", "bridge", netns=bridge_ns)
        ip("link", "set", "br0", "up", netns=bridge_ns)
        for index in range(NODES):
            node_ns = self.namespace(index)
            self._add_namespace(node_ns)
            inner, outer = self.link(index), f"sq{self.tag}b{index}"
            ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            ip("link", "set", inner, "netns", node_ns)
            self._attach(outer, bridge_ns)
            ip("addr", "add", f"{self.address(index)}/24", "dev", inner, netns=node_ns)
            ip("link", "set", inner, "up", netns=node_ns)
            ip("link", "set", "lo", "up", netns=node_ns)
        # The test's own way in, from the root namespace.
        self.root_link = f"sq{self.tag}r"
        ip("link", "add", self.root_link, "type", "veth", "peer", "name", f"sq{self.tag}rb")
        self._attach(f"sq{self.tag}rb", bridge_ns)
        ip("addr", "add", f"{self.subnet}.1/24", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.created.append(name)

    def _attach(self, outer: str, bridge_ns: str) -> None:
        ip("link", "set", outer, "netns", bridge_ns)
        ip("link", "set", outer, "master", "br0", netns=bridge_ns)
        ip("link", "set", outer, "up", netns=bridge_ns)

    def set_link(self, index: int, up: bool) -> None:
        ip("link", "set", self.link(index), "up" if up else "down", netns=self.namespace(index))

    def remove(self) -> None:
        if self.root_link is not None:
            ip("link", "del", self.root_link, check=False)
        for name in reversed(self.created):
            ip("netns", "del", name, check=False)
        self.created.clear()


def netns_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"sqprobe{os.getpid()}"
    result = ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"`ip netns add` is not permitted here: {result.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Node:
    rpc: str
    home: Path


@dataclass
class Net:
    hosts: Hosts
    chain_id: str
    nodes: list[Node]
    processes: list[ChildProcess]
    clients: list[Client]
    nonce: int = 0

    def submit(self, via: int) -> bytes:
        tx = sign_transaction(
            WALLET,
            chain_id=self.chain_id,
            namespace=0,
            nonce=self.nonce,
            gas_price=1,
            payload=b"across hosts " + bytes(2_000),  # larger than one 1,400-byte datagram
        )
        self.nonce += 1
        return self.clients[via].submit(tx)

    def height(self, index: int) -> int:
        return int(httpx.get(f"{self.nodes[index].rpc}/status", timeout=2).json()["height"])

    def height_inside(self, index: int) -> int:
        """The height, asked from inside the node's namespace (its link may be down)."""
        url = f"{self.nodes[index].rpc}/status"
        script = f"import httpx; print(httpx.get({url!r}, timeout=2).json()['height'])"
        command = ["ip", "netns", "exec", self.hosts.namespace(index), sys.executable, "-c"]
        result = subprocess.run(
            [*command, script], capture_output=True, text=True, timeout=30, check=True
        )
        return int(result.stdout)


def sequencer(*args: str | Path) -> str:
    done = subprocess.run(
        [str(SEQUENCER), *map(str, args)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def ceremony(hosts: Hosts, root: Path) -> tuple[str, list[Node]]:
    """docs/deploy.md, steps 2 and 3, by four operators: a key each, their
    entries (the same ports on every host), one genesis, a home each."""
    entries = []
    for index in range(NODES):
        operator, address = root / f"host{index}", hosts.address(index)
        sequencer("keys", "new", "--out", operator / "key.json")
        sequencer(
            "genesis", "validator", "--key", operator / "key.json", "--name", f"v{index}",
            "--p2p", f"/ip4/{address}/udp/26601", "--rpc", f"http://{address}:26600",
            "--out", operator / "entry.json",
        )  # fmt: skip
        entries.append(operator / "entry.json")
    genesis = root / "host0" / "genesis.json"
    sequencer("genesis", "build", *entries, "--chain-id", "hosts-1", "--genesis-time-ms",
              "1767225600000", "--out", genesis)  # fmt: skip
    nodes = []
    for index in range(NODES):
        operator = root / f"host{index}"
        sequencer("genesis", "home", "--key", operator / "key.json", "--genesis", genesis,
                  "--out", operator / "home")  # fmt: skip
        nodes.append(Node(f"http://{hosts.address(index)}:26600", operator / "home"))
    return "hosts-1", nodes


def start(hosts: Hosts, node: Node, index: int) -> ChildProcess:
    """docs/deploy.md, step 4, on host `index`."""
    return ChildProcess(
        [
            "ip",
            "netns",
            "exec",
            hosts.namespace(index),
            str(SEQUENCER),
            "node",
            "--home",
            str(node.home),
        ],
        env={"PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        output=node.home / "node.log",
    ).start()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    hosts = Hosts()
    processes: list[ChildProcess] = []
    clients: list[Client] = []
    try:
        hosts.build()
        chain_id, nodes = ceremony(hosts, tmp_path)
        processes.extend(start(hosts, node, i) for i, node in enumerate(nodes))
        clients.extend(Client(node.rpc) for node in nodes)
        for index, node in enumerate(nodes):
            wait_until(
                lambda node=node: httpx.get(f"{node.rpc}/health", timeout=1).status_code == 200,
                30,
                f"node {index} in {hosts.namespace(index)} healthy",
            )
        yield Net(hosts, chain_id, nodes, processes, clients)
    finally:
        for client in clients:
            client.close()
        stop_all(processes, 20)
        hosts.remove()


def test_four_hosts_finalize_survive_a_cut_link_and_catch_up(net: Net) -> None:
    for via in range(NODES):
        tx_id = net.submit(via)
        for index in range(NODES):
            net.clients[index].wait_final(tx_id, timeout=20)
    # Each node talks to the others over its own interface, not loopback.
    peers = httpx.get(f"{net.nodes[0].rpc}/peers", timeout=5).json()["peers"]
    addresses = sorted(str(p["address"]).split(":")[0] for p in peers)
    assert addresses == sorted(net.hosts.address(i) for i in range(1, NODES))

    net.hosts.set_link(CUT, up=False)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{net.nodes[CUT].rpc}/health", timeout=1)
    cut_at = net.height_inside(CUT)
    for via in (0, 1, 2, 0, 1):
        tx_id = net.submit(via)
        for index in range(NODES):
            if index != CUT:
                net.clients[index].wait_final(tx_id, timeout=20)
    tip = net.height(0)
    assert tip >= cut_at + 5
    assert net.height_inside(CUT) == cut_at  # really cut off: it saw none of them

    net.hosts.set_link(CUT, up=True)
    started = time.monotonic()
    wait_until(lambda: net.height(CUT) >= tip, CATCH_UP_S, f"node {CUT} back at height {tip}")
    caught_up_s = time.monotonic() - started
    # And it takes part again: a transaction through it finalizes everywhere.
    tx_id = net.submit(CUT)
    for index in range(NODES):
        net.clients[index].wait_final(tx_id, timeout=20)
    assert caught_up_s < CATCH_UP_S
