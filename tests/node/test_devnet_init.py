"""`node.ops.devnet.init_devnet`: the files of a local devnet, and when it refuses."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from net.identity import peer_id
from net.multiaddr import Multiaddr
from node.config import load_config, parse_host_port
from node.errors import ConfigError
from node.ops import devnet
from node.ops.devnet import (
    DEVNET_VALIDATORS_MAX,
    MANIFEST_FILE,
    DevnetLayout,
    init_devnet,
    load_layout,
)
from sequencer.crypto import load_key
from sequencer.genesis import load_genesis
from sequencer.types import ConsensusParams


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> DevnetLayout:
    return init_devnet(tmp_path_factory.mktemp("devnet") / "net", 4, base_port=30000)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_layout_is_the_manifest(four: DevnetLayout) -> None:
    assert load_layout(four.root) == four
    assert [node.name for node in four.nodes] == ["node0", "node1", "node2", "node3"]
    assert [node.home for node in four.nodes] == [four.root / f"node{i}" for i in range(4)]
    assert four.chain_id == "devnet-1"
    for node in four.nodes:
        assert node.metrics == node.rpc + "/metrics"
    manifest = json.loads((four.root / MANIFEST_FILE).read_text())
    assert manifest["nodes"][2]["home"] == "node2"  # relative: the directory can move
    assert manifest["wallet"]["path"] == "wallet.json"


def test_every_home_loads(four: DevnetLayout) -> None:
    genesis_bytes = {(node.home / "genesis.json").read_bytes() for node in four.nodes}
    assert len(genesis_bytes) == 1  # the same file everywhere
    for index, node in enumerate(four.nodes):
        config = load_config(node.home, environ={})
        genesis = load_genesis(config.genesis_path(node.home))
        key = load_key(config.key_path(node.home))
        assert config.node.name == node.name
        assert genesis.chain_id == "devnet-1"
        assert genesis.validators[index].public_key == key.public_key == node.public_key
        assert genesis.validators[index].name == node.name
        assert genesis.validators[index].power == 1
        assert genesis.consensus == ConsensusParams()
        assert stat.S_IMODE(config.key_path(node.home).stat().st_mode) == 0o600


def test_addresses_agree(four: DevnetLayout) -> None:
    genesis = load_genesis(four.nodes[0].home / "genesis.json")
    for index, node in enumerate(four.nodes):
        config = load_config(node.home, environ={})
        info = genesis.validators[index]
        host, port = config.rpc_address
        assert info.rpc == node.rpc == f"http://{host}:{port}"
        assert port == 30000 + 10 * index
        assert info.p2p == node.p2p == str(config.p2p_listen.with_peer_id(node.peer_id))
        assert config.p2p_listen.port == 30000 + 10 * index + 1
        assert Multiaddr.parse(node.p2p).public_key == node.public_key
        assert config.gossip().datagram_bytes_max == 65000  # loopback


def test_peers_are_exactly_the_other_nodes(four: DevnetLayout) -> None:
    for node in four.nodes:
        config = load_config(node.home, environ={})
        others = {other.p2p for other in four.nodes if other is not node}
        assert {str(address) for address in config.peer_addresses} == others
        assert node.peer_id not in {address.peer_id for address in config.peer_addresses}


def test_ports_are_distinct(four: DevnetLayout) -> None:
    ports = []
    for node in four.nodes:
        config = load_config(node.home, environ={})
        ports += [config.rpc_address[1], config.p2p_listen.port]
    assert len(set(ports)) == len(ports) == 8


def test_wallet(four: DevnetLayout) -> None:
    wallet = four.wallet_key()
    assert wallet.public_key == four.wallet_public_key
    assert four.wallet_public_key not in {node.public_key for node in four.nodes}
    assert stat.S_IMODE(four.wallet.stat().st_mode) == 0o600


def test_no_temporary_files_are_left(four: DevnetLayout) -> None:
    assert [p for p in four.root.rglob(".*")] == []


def test_one_validator_has_no_peers(tmp_path: Path) -> None:
    layout = init_devnet(tmp_path / "solo", 1, base_port=65534)
    config = load_config(layout.nodes[0].home, environ={})
    assert config.peer_addresses == []
    assert config.p2p_listen.port == 65535


def test_chain_id_and_gossip_overrides(tmp_path: Path) -> None:
    layout = init_devnet(
        tmp_path / "net",
        2,
        chain_id="my-chain",
        gossip_overrides={"mesh_degree": 3, "datagram_bytes_max": 9000},
        genesis_time_ms=1234,
    )
    genesis = load_genesis(layout.nodes[1].home / "genesis.json")
    assert (genesis.chain_id, genesis.genesis_time_ms) == ("my-chain", 1234)
    assert load_layout(layout.root).chain_id == "my-chain"
    gossip = load_config(layout.nodes[1].home, environ={}).gossip()
    assert (gossip.mesh_degree, gossip.datagram_bytes_max) == (3, 9000)


def test_each_node_on_its_own_host(tmp_path: Path) -> None:
    hosts = ["10.77.0.10", "10.77.0.11", "10.77.0.12"]
    layout = init_devnet(tmp_path / "net", 3, base_port=26600, hosts=hosts)
    for index, host in enumerate(hosts):
        config = load_config(layout.nodes[index].home, environ={})
        assert parse_host_port(config.rpc.listen) == (host, 26600 + 10 * index)
        assert str(config.p2p_listen.host) == host
        assert layout.nodes[index].rpc == f"http://{host}:{26600 + 10 * index}"
        assert sorted(str(p.host) for p in config.peer_addresses) == sorted(
            h for h in hosts if h != host
        )
        # Across real links datagrams keep the MTU-sized default.
        assert config.gossip().datagram_bytes_max == 1_400
    loopback = load_config(init_devnet(tmp_path / "lo", 2).nodes[0].home, environ={})
    assert loopback.gossip().datagram_bytes_max == 65_000


def test_the_environment_does_not_leak_into_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQUENCER_RPC_LISTEN", "127.0.0.1:1")
    layout = init_devnet(tmp_path / "net", 2)
    config = load_config(layout.nodes[1].home, environ={})
    assert parse_host_port(config.rpc.listen) == ("127.0.0.1", 26610)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"validators": 0}, "validators must be 1..64"),
        ({"validators": DEVNET_VALIDATORS_MAX + 1}, "validators must be 1..64"),
        ({"validators": True}, "validators must be"),
        ({"validators": 4, "base_port": 0}, "base port must be"),
        ({"validators": 4, "base_port": 65530}, "too high for 4 validators"),
        ({"validators": 1, "base_port": 65535}, "up to 65536"),
        ({"validators": 64, "base_port": 65535 - 630}, "up to 65536"),
        ({"validators": 2, "chain_id": ""}, "chain id"),
        ({"validators": 2, "chain_id": "c" * 65}, "chain id"),
        ({"validators": 2, "gossip_overrides": {"datagram_bytes": 1}}, "unknown key p2p.gossip"),
        ({"validators": 2, "gossip_overrides": {"mesh_degree": 1}}, "p2p.gossip.mesh_degree"),
        ({"validators": 2, "hosts": ["10.0.0.1"]}, "one address per validator"),
        ({"validators": 1, "hosts": "10.0.0.1"}, "one address per validator"),
        ({"validators": 2, "hosts": ["10.0.0.1", "::1"]}, "'::1' is not an IPv4 address"),
        ({"validators": 1, "hosts": ["localhost"]}, "not an IPv4 address"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path: Path, arguments: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        init_devnet(tmp_path / "net", **arguments)
    assert not (tmp_path / "net").exists()


def test_the_highest_base_port_that_fits(tmp_path: Path) -> None:
    layout = init_devnet(tmp_path / "net", 64, base_port=65535 - 631)
    assert load_config(layout.nodes[63].home, environ={}).p2p_listen.port == 65535


def test_an_existing_devnet_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "net"
    first = init_devnet(out, 2)
    before = snapshot(out)
    with pytest.raises(ConfigError, match=r"already holds a devnet .*--force"):
        init_devnet(out, 3)
    assert snapshot(out) == before

    (out / "node0" / "data").mkdir()
    (out / "node0" / "data" / "LOG").write_text("old chain")
    second = init_devnet(out, 3, force=True)
    assert len(second.nodes) == 3
    assert {n.public_key for n in first.nodes}.isdisjoint({n.public_key for n in second.nodes})
    assert not (out / "node0" / "data").exists()  # wiped, not merged
    assert load_layout(out) == second


def test_force_never_deletes_what_is_not_a_devnet(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for force in (False, True):
        with pytest.raises(ConfigError, match="does not look like a devnet"):
            init_devnet(out, 2, force=force)
    assert snapshot(out) == {"thesis.tex": b"precious"}


def test_force_never_deletes_a_directory_with_a_foreign_devnet_json(tmp_path: Path) -> None:
    out = tmp_path / "other"
    out.mkdir()
    (out / MANIFEST_FILE).write_text('{"something": "else"}')
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"not a devnet manifest.*refusing to delete"):
        init_devnet(out, 2, force=True)
    assert set(snapshot(out)) == {MANIFEST_FILE, "thesis.tex"}


def test_an_empty_directory_is_used(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    layout = init_devnet(out, 2)
    assert load_layout(out) == layout


def test_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        init_devnet(out, 2, force=True)
    assert out.read_text() == "x"


def test_a_failed_init_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_save_key = devnet.save_key

    def failing_save_key(key, path, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real_save_key(key, path, **kwargs)

    monkeypatch.setattr(devnet, "save_key", failing_save_key)
    out = tmp_path / "net"
    with pytest.raises(OSError, match="disk full"):
        init_devnet(out, 4)
    assert not out.exists()

    out.mkdir()
    calls.clear()
    with pytest.raises(OSError, match="disk full"):
        init_devnet(out, 4)
    assert list(out.iterdir()) == []  # the directory was the caller's: emptied, kept


def test_load_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no devnet"):
        load_layout(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{")
    with pytest.raises(ConfigError, match="not a devnet manifest"):
        load_layout(tmp_path)
    layout = init_devnet(tmp_path / "net", 1)
    manifest = json.loads((layout.root / MANIFEST_FILE).read_text())
    manifest["version"] = 2
    (layout.root / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="manifest version 2"):
        load_layout(layout.root)
    manifest["version"] = 1
    manifest["nodes"][0]["public_key"] = "zz"
    (layout.root / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"nodes\[0\]\.public_key"):
        load_layout(layout.root)


def test_peer_ids_in_the_layout(four: DevnetLayout) -> None:
    assert [n.peer_id for n in four.nodes] == [peer_id(n.public_key) for n in four.nodes]
    assert all(n.p2p.endswith(f"/p2p/{n.peer_id}") for n in four.nodes)
