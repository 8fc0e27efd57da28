"""A genesis made by four operators, each with a key of its own, and the
nodes started from the homes the ceremony makes (`node.ops.ceremony`):
`keys new`, `genesis validator`, `genesis build` (the same file, and hash,
whoever builds it in whatever order), `genesis home`, `sequencer node`; and
`testnet init --hosts`, one home per host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.ops.procs import ChildProcess, free_base_port, node_argv, stop_all
from sequencer.client import Client, Wallet
from sequencer.crypto import PrivateKey
from sequencer.genesis import load_genesis
from tests.node.cluster import wait_until

SEQUENCER = Path(sys.executable).parent / "sequencer"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(SEQUENCER), *map(str, args)], capture_output=True, text=True, timeout=60
    )
    return done


def ok(*args: str | Path) -> str:
    done = run(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_four_operators_make_one_genesis_and_their_nodes_finalize(tmp_path: Path) -> None:
    base = free_base_port(4)
    entries = []
    for i in range(4):
        operator = tmp_path / f"operator{i}"
        ok("keys", "new", "--out", operator / "key.json")
        p2p, rpc = f"/ip4/127.0.0.1/udp/{base + 10 * i + 1}", f"http://127.0.0.1:{base + 10 * i}"
        entry = json.loads(
            ok(
                "genesis",
                "validator",
                "--key",
                operator / "key.json",
                "--name",
                f"v{i}",
                "--p2p",
                p2p,
                "--rpc",
                rpc,
                "--out",
                operator / "entry.json",
            )
        )
        assert set(entry) == {"name", "public_key", "power", "p2p", "rpc"}
        assert entry["p2p"].startswith(p2p + "/p2p/12D3KooW")
        entries.append(operator / "entry.json")
    built = []
    for order, builder in ((entries, "operator0"), (entries[::-1], "operator3")):
        out = tmp_path / builder / "genesis.json"
        said = ok(
            "genesis",
            "build",
            *order,
            "--chain-id",
            "ceremony-1",
            "--genesis-time-ms",
            "1700000000000",
            "--out",
            out,
        )
        built.append((out.read_bytes(), said.split("hash ")[1].strip()))
    assert built[0] == built[1]  # the same file and hash, whoever builds it, in any order
    assert ok("genesis", "hash", tmp_path / "operator3" / "genesis.json").split()[0] == built[0][1]
    homes = []
    for i in range(4):
        operator = tmp_path / f"operator{i}"
        ok(
            "genesis",
            "home",
            "--key",
            operator / "key.json",
            "--genesis",
            tmp_path / "operator0" / "genesis.json",
            "--out",
            operator / "home",
        )
        homes.append(operator / "home")
    nodes = [ChildProcess(node_argv(home), output=home / "node.log").start() for home in homes]
    try:
        genesis = load_genesis(homes[0] / "genesis.json")
        with Client(genesis.validators[2].rpc) as client:
            wait_until(lambda: _ready(client), 60, "the ceremony's nodes ready")
            wallet = Wallet(PrivateKey(b"\x42" * 32), "ceremony-1")
            status = client.wait_final(client.send(wallet, b"hello", nonce=0), timeout=60)
        assert status.committed
    finally:
        stop_all(nodes, 20)


def _ready(client: Client) -> bool:
    try:
        return bool(client.get_json("/ready"))
    except Exception:
        return False


def test_genesis_build_refuses_bad_entries_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    done = run(
        "genesis",
        "build",
        bad,
        "--chain-id",
        "c",
        "--genesis-time-ms",
        "0",
        "--out",
        tmp_path / "g.json",
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: {bad} is not a validator entry")
    assert not (tmp_path / "g.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--p2p", "10.0.0.1:26601", "--rpc", "http://10.0.0.1:26600"], "--p2p must look like"),
        (
            ["--p2p", "/ip4/10.0.0.1/udp/26601", "--rpc", "10.0.0.1:26600"],
            "--rpc must be a base URL",
        ),
    ],
)
def test_genesis_validator_refuses_bad_addresses(
    tmp_path: Path, args: list[str], message: str
) -> None:
    ok("keys", "new", "--out", tmp_path / "key.json")
    done = run("genesis", "validator", "--key", tmp_path / "key.json", "--name", "v", *args)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {message}")


def test_testnet_init_writes_one_home_per_host(tmp_path: Path) -> None:
    hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    said = ok("testnet", "init", "--hosts", ",".join(hosts), "--out", tmp_path / "net")
    assert "genesis hash" in said
    genesis = load_genesis(tmp_path / "net" / "node0" / "genesis.json")
    assert [v.rpc.split("//")[1].split(":")[0] for v in genesis.validators] == hosts
    for i, host in enumerate(hosts):
        config = (tmp_path / "net" / f"node{i}" / "config.toml").read_text()
        assert f'listen = "{host}:' in config
        assert sum(h in config for h in hosts) == len(hosts)  # itself and its peers
