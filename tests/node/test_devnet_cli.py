"""`sequencer devnet up` refuses, in one line and before any node starts,
what would otherwise mislead: a port another program holds (named, with the
program), a `--base-port` that an existing devnet home does not use, and a
number of validators that cannot be; a Ctrl-C during start-up says so, and a
node that cannot be reached is named by its URL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from blake3 import blake3

from sequencer.crypto import PrivateKey, load_key
from sequencer.genesis import load_genesis
from tests.node.cluster import free_base_port, wait_until
from tests.node.test_devnet_up import processes_mentioning

SEQUENCER = Path(sys.executable).parent / "sequencer"
ME = f"pid {os.getpid()} ({Path('/proc/self/comm').read_text().strip()})"


def up(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SEQUENCER), "devnet", "up", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "is up" not in done.stdout
    (line,) = done.stderr.splitlines()
    return line


@pytest.mark.parametrize(
    ("kind", "offset", "what"), [("tcp", 10, "node1 rpc, TCP"), ("udp", 1, "node0 p2p, UDP")]
)
def test_a_port_another_program_holds_is_named_with_the_program(
    tmp_path: Path, kind: str, offset: int, what: str
) -> None:
    base = free_base_port(4)
    holder = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    )
    with holder:
        holder.bind(("127.0.0.1", base + offset))
        if kind == "tcp":
            holder.listen()
        line = error_line(up("--home", tmp_path / "devnet", "--base-port", base))
    assert line.startswith(f"error: port {base + offset} ({what}) is taken by {ME}: stop it")
    assert "--base-port PORT" in line


def test_base_port_of_an_existing_home_is_applied_or_refused(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    base = free_base_port(4)
    made = subprocess.run(
        [str(SEQUENCER), "devnet", "init", "--out", str(home), "--base-port", str(base)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    other = base + 1000
    line = error_line(up("--home", home, "--base-port", other))
    assert line == (
        f"error: the devnet under {home} uses base port {base}, not {other};"
        f" add --fresh to recreate it on {other}, or leave --base-port out"
    )


@pytest.mark.parametrize("count", ["0", "-1"])
def test_an_impossible_number_of_validators_is_refused(tmp_path: Path, count: str) -> None:
    line = error_line(up("--home", tmp_path / "devnet", "--validators", count))
    assert line.startswith("error: validators must be 1..")
    assert line.endswith(f"got {count}")
    assert not (tmp_path / "devnet").exists()


def test_ctrl_c_during_start_up_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    supervisor = subprocess.Popen(
        [
            str(SEQUENCER),
            "devnet",
            "up",
            "--home",
            str(home),
            "--base-port",
            str(free_base_port(4)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Once it has started the nodes (and so handles Ctrl-C), before they answer.
    wait_until(lambda: len(processes_mentioning(str(home))) >= 3, 30, "nodes spawned")
    supervisor.send_signal(signal.SIGINT)
    out, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 0, err
    assert "not up after" not in out + err
    # (On a machine fast enough to be up already, it is an ordinary stop.)
    assert "interrupted while starting" in out or "is up" in out
    wait_until(lambda: not processes_mentioning(str(home)), 10, "every node gone")


def test_a_node_that_cannot_be_reached_is_named_by_its_url() -> None:
    port = free_base_port(1)
    done = subprocess.run(
        [str(SEQUENCER), "status", "--rpc", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: GET http://127.0.0.1:{port}/status: ConnectError")


def test_block_time_makes_empty_blocks_on_a_timer(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    base = free_base_port(4)
    options = ["--validators", "1", "--block-time", "100"]
    supervisor = subprocess.Popen(
        [str(SEQUENCER), "devnet", "up", "--home", str(home), "--base-port", str(base), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def height() -> int:
            try:
                return int(httpx.get(f"http://127.0.0.1:{base}/status", timeout=1).json()["height"])
            except httpx.HTTPError:
                return 0

        wait_until(lambda: height() >= 5, 60, "empty blocks without transactions")
        genesis = load_genesis(home / "node0" / "genesis.json")
        assert genesis.consensus.empty_block_interval_ms == 100
    finally:
        supervisor.send_signal(signal.SIGINT)
        out, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 0, (out, err)
    line = error_line(up("--home", home, "--block-time", "300"))
    assert line == (
        f"error: the devnet under {home} has block time 100 ms, not 300;"
        " add --fresh to recreate it, or leave --block-time out"
    )


def test_dev_accounts_are_the_same_keys_from_the_same_seed(tmp_path: Path) -> None:
    """`--accounts N` keys derived from a seed: two devnets made apart hold the
    same keys (scripts may hard-code them); another seed gives others."""
    made = []
    for name, seed in (("a", "devnet"), ("b", "devnet"), ("c", "other")):
        out = tmp_path / name
        done = subprocess.run(
            [
                str(SEQUENCER),
                "devnet",
                "init",
                "--out",
                str(out),
                "--accounts",
                "3",
                "--seed",
                seed,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        made.append([load_key(out / "accounts" / f"account{i}.json").public_key for i in range(3)])
        assert not (out / "accounts" / "account3.json").exists()
        assert load_key(out / "wallet.json").public_key == made[-1][0]  # account 0
    assert made[0] == made[1]
    assert set(made[0]).isdisjoint(made[2])
    # The derivation, as documented, for anyone to hard-code.
    expected = blake3(b"seq/devnet/account/v1/devnet" + (1).to_bytes(4, "big")).digest()
    assert made[0][1] == PrivateKey(expected).public_key
    line = error_line(up("--home", tmp_path / "a", "--seed", "other"))
    assert line == (
        f"error: the devnet under {tmp_path / 'a'} has --seed 'devnet', not 'other';"
        " add --fresh to recreate it, or leave --seed out"
    )


def test_a_payload_that_is_not_hex_is_one_line(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    subprocess.run([str(SEQUENCER), "keys", "new", "--out", str(key)], check=True, timeout=60)
    done = subprocess.run(
        [str(SEQUENCER), "tx", "send", "--key", str(key), "--payload-hex", "zz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["error: --payload-hex: not hex bytes: 'zz'"]
