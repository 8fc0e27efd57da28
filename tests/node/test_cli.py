"""The `sequencer` command, run as a real process (the installed console script)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import sequencer
from net.identity import peer_id
from sequencer.crypto import PrivateKey, load_key, save_key

SEQUENCER = Path(sys.executable).parent / "sequencer"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SEQUENCER), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "keys" in result.stdout
    assert "devnet" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sequencer {sequencer.__version__}"


def test_keys_new_then_show(tmp_path: Path) -> None:
    path = tmp_path / "wallet" / "key.json"
    created = run("keys", "new", "--out", path, "--json")
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    key = load_key(path)
    assert info["public_key"] == key.public_key.hex()
    assert info["peer_id"] == peer_id(key.public_key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    shown = run("keys", "show", path)
    assert shown.returncode == 0
    assert key.public_key.hex() in shown.stdout
    assert peer_id(key.public_key) in shown.stdout


def test_keys_show_known_key(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    save_key(PrivateKey(bytes(range(32))), path)
    shown = run("keys", "show", path, "--json")
    assert json.loads(shown.stdout)["public_key"] == (
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    )


def test_keys_new_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    assert run("keys", "new", "--out", path).returncode == 0
    before = path.read_text()
    again = run("keys", "new", "--out", path)
    assert again.returncode == 1
    assert again.stderr.startswith("error: ")
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert path.read_text() == before
    assert run("keys", "new", "--out", path, "--force").returncode == 0
    assert path.read_text() != before


def test_keys_show_errors_are_one_line(tmp_path: Path) -> None:
    missing = run("keys", "show", tmp_path / "absent.json")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    assert "does not exist" in missing.stderr
    (tmp_path / "bad.json").write_text("{}")
    bad = run("keys", "show", tmp_path / "bad.json")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr


def test_usage_errors_exit_2() -> None:
    assert run().returncode == 2
    assert run("keys").returncode == 2
    assert run("keys", "new").returncode == 2  # --out is required
    assert run("frobnicate").returncode == 2
