"""A node refuses to start on inputs that would make it run wrong, with one
line on stderr and exit status 1 (never a traceback, never a node that
starts and fails later): a genesis.json replaced under the same chain id,
a store written before block headers carried namespace_root, a key file
other users may read, a key path to an endless file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import plyvel

from sequencer.genesis import dump_genesis, load_genesis
from storage.schema import META_SCHEMA_KEY, encode_schema_version
from tests.node.cluster import Cluster

START_TIMEOUT_S = 60


def start_once(cluster: Cluster, index: int = 0) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "node.cli", "node", "--home", str(cluster.home(index))]
    return subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_a_replaced_genesis_with_the_same_chain_id_is_refused(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "devnet", validators=1)
    try:
        cluster.start(0)  # records its genesis in the store
        assert cluster.stop(0) == 0
    finally:
        cluster.stop_all()
    path = cluster.home(0) / "genesis.json"
    genesis = load_genesis(path)
    swapped = msgspec.structs.replace(genesis, genesis_time_ms=genesis.genesis_time_ms + 1)
    path.write_bytes(dump_genesis(swapped))
    line = one_line_error(start_once(cluster))
    assert "another genesis" in line
    assert "genesis.json replaced" in line


def test_a_store_from_before_the_namespace_table_is_refused_with_what_to_do(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "devnet", validators=1)
    try:
        cluster.start(0)
        assert cluster.stop(0) == 0
    finally:
        cluster.stop_all()
    data = cluster.home(0) / "data"
    database = plyvel.DB(str(next(p for p in [data, *data.iterdir()] if (p / "CURRENT").exists())))
    database.put(META_SCHEMA_KEY, encode_schema_version(1), sync=True)  # as revision 1 wrote it
    database.close()
    line = one_line_error(start_once(cluster))
    assert "older sequencer (schema 1" in line
    assert "namespace_root" in line
    assert "empty data directory" in line


def test_key_files_others_may_read_or_endless_are_refused(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "devnet", validators=1)
    key = cluster.home(0) / "key.json"
    key.chmod(0o644)
    line = one_line_error(start_once(cluster))
    assert "may be read by other users" in line
    assert "chmod 600" in line
    key.chmod(0o600)
    config = cluster.home(0) / "config.toml"
    config.write_text(config.read_text().replace('key_file = "key.json"', 'key_file = "/dev/zero"'))
    assert "larger than 4096 bytes" in one_line_error(start_once(cluster))
