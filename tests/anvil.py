"""A real anvil (Foundry's local Ethereum node) for tests of the L1 sink.

    binary = ensure_anvil()            # installs @foundry-rs/anvil once
    with Anvil() as anvil:              # a fresh chain on a free port
        anvil.rpc("evm_mine")
        anvil.pause(); ...; anvil.resume()

Installation: `npm install --prefix .venv/anvil @foundry-rs/anvil@<ANVIL_VERSION>`
the first time, under a file lock so parallel test processes install once
(`.venv/` is git-ignored and rebuilt by `scripts/bootstrap.py`, which then
costs one more download). The npm package is a node wrapper (`bin.mjs`)
around a native binary shipped in a platform package
(`@foundry-rs/anvil-linux-amd64/bin/anvil`, ...); we run the native binary
itself, so SIGSTOP/SIGKILL reach anvil and not a node process in between.
`ANVIL_BIN=/path/to/anvil` uses an existing binary instead (a Foundry
install).

Mining: automine by default (every transaction is mined at once, in its own
block; anvil answers `eth_send*` a moment before the block exists, so wait
with `wait_receipt`): fast and deterministic. `Anvil(no_mining=True)` mines only on
`evm_mine` (stuck transactions, fee bumps, pending-pool cases);
`Anvil(block_time_s=1)` mines on an interval.

Tests get anvil through `require_anvil()`: when it cannot be installed they
FAIL under `CI=true` (a CI run must not pass by skipping its real L1), and
skip with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.ops.procs import DEVNULL, ChildProcess

__all__ = [
    "ANVIL_VERSION",
    "DEV_ADDRESS",
    "DEV_PRIVATE_KEY",
    "Anvil",
    "AnvilUnavailableError",
    "ensure_anvil",
    "require_anvil",
]

ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = ROOT / ".venv" / "anvil"
ANVIL_VERSION = "1.7.1"  # pinned: an upgrade is a deliberate change
NPM_INSTALL_TIMEOUT_S = 300.0
START_TIMEOUT_S = 20.0
# anvil's first dev account (mnemonic "test test ... junk"), funded with 10,000 ETH
DEV_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_LISTENING = re.compile(rb"Listening on 127\.0\.0\.1:(\d+)")


class AnvilUnavailableError(Exception):
    """anvil could not be installed or started here; the message says why."""


def _say(message: str) -> None:
    print(f"[anvil] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ installation


def _platform_package() -> str:
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    arch = _ARCH.get(platform.machine().lower())
    if system is None or arch is None:
        raise AnvilUnavailableError(
            f"@foundry-rs/anvil has no binary for {sys.platform}/{platform.machine()}"
        )
    return f"@foundry-rs/anvil-{system}-{arch}"


def _installed_binary(prefix: Path) -> Path | None:
    """The native binary npm put under `prefix`, if it is there and runs."""
    modules = prefix / "node_modules" / "@foundry-rs"
    candidates = [
        modules / _platform_package().removeprefix("@foundry-rs/") / "bin" / "anvil",
        # where the package's postinstall script downloads it when the
        # optional platform dependency could not be installed
        modules / "anvil" / "anvil",
        modules / "dist" / "anvil",
    ]
    for candidate in candidates:
        if candidate.is_file() and _runs(candidate):
            return candidate
    return None


def _runs(binary: Path) -> bool:
    try:
        result = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and b"anvil" in result.stdout.lower()


@contextlib.contextmanager
def _exclusive(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_anvil(prefix: Path = INSTALL_DIR) -> Path:
    """The path of a working anvil binary, installing it with npm the first time.

    Raises `AnvilUnavailableError` (with npm's output) when that fails.
    """
    override = os.environ.get("ANVIL_BIN")
    if override:
        if not _runs(Path(override)):
            raise AnvilUnavailableError(f"ANVIL_BIN={override} does not run `anvil --version`")
        return Path(override)
    with _exclusive(prefix / ".install.lock"):
        binary = _installed_binary(prefix)
        if binary is not None:
            return binary
        npm = shutil.which("npm")
        if npm is None:
            raise AnvilUnavailableError("npm is not installed: cannot install @foundry-rs/anvil")
        package = f"@foundry-rs/anvil@{ANVIL_VERSION}"
        _say(f"installing {package} into {prefix} (once; about 45 MB)")
        started = time.monotonic()
        try:
            result = subprocess.run(
                [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", package],
                capture_output=True,
                text=True,
                timeout=NPM_INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise AnvilUnavailableError(
                f"`npm install {package}` did not finish in {NPM_INSTALL_TIMEOUT_S:.0f} s"
            ) from None
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip()[-2000:]
            raise AnvilUnavailableError(
                f"`npm install {package}` failed ({result.returncode}):\n{tail}"
            )
        binary = _installed_binary(prefix)
        if binary is None:
            raise AnvilUnavailableError(
                f"`npm install {package}` succeeded but left no runnable anvil under {prefix}"
            )
        _say(f"installed {binary} in {time.monotonic() - started:.1f} s")
        return binary


def require_anvil() -> Path:
    """`ensure_anvil()` for tests: fail under CI=true, skip with the reason elsewhere."""
    try:
        return ensure_anvil()
    except AnvilUnavailableError as error:
        message = f"anvil is required for this test and unavailable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


# ------------------------------------------------------------------ a running anvil


class Anvil:
    """One anvil process on 127.0.0.1 (a fresh chain); killed on exit, always."""

    def __init__(
        self,
        *,
        no_mining: bool = False,
        block_time_s: float | None = None,
        binary: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        assert not (no_mining and block_time_s is not None), "choose one mining mode"
        self.binary = binary if binary is not None else ensure_anvil()
        self.args = [
            "--host", "127.0.0.1", "--port", "0",  # anvil picks a free port and prints it
            *(["--no-mining"] if no_mining else []),
            *(["--block-time", str(block_time_s)] if block_time_s is not None else []),
            *extra_args,
        ]  # fmt: skip
        self.private_key = DEV_PRIVATE_KEY
        self.address = DEV_ADDRESS
        self.private_keys: list[str] = []  # all ten dev accounts, from --config-out
        self.addresses: list[str] = []
        self._dir = Path(tempfile.mkdtemp(prefix="anvil-"))
        self._process: ChildProcess | None = None
        self._port: int | None = None
        self._http = httpx.Client(timeout=5.0)
        self._next_id = 0

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Anvil:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        assert self._process is None, "already running"
        log_path = self._dir / "anvil.log"
        config_path = self._dir / "config.json"
        # A file, not a pipe: a full pipe would block anvil. A fresh one: the
        # port is read from it.
        log_path.unlink(missing_ok=True)
        self._process = ChildProcess(
            [str(self.binary), *self.args, "--config-out", str(config_path)],
            stdin=DEVNULL,
            output=log_path,
            new_session=True,
        ).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AnvilUnavailableError(
                    f"anvil exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            if self._port is None:
                match = _LISTENING.search(log_path.read_bytes())
                self._port = int(match.group(1)) if match else None
            if self._port is not None and self._answers():
                config = json.loads(config_path.read_text())
                self.private_keys = list(config["private_keys"])
                self.addresses = [a.lower() for a in config["available_accounts"]]
                return
            time.sleep(0.05)
        raise AnvilUnavailableError(
            f"anvil did not answer eth_chainId within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def _answers(self) -> bool:
        try:
            self.rpc("eth_chainId")
        except (httpx.HTTPError, RuntimeError):
            return False
        return True

    def pause(self) -> None:
        """SIGSTOP: anvil keeps its state and its socket but answers nothing."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (works on a paused process too); the chain is gone."""
        if self._process is None:
            return
        self._process.kill()
        self._process = None
        self._port = None

    def close(self) -> None:
        self.kill()
        self._http.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _signal(self, signum: int) -> None:
        assert self._process is not None, "anvil is not running"
        assert self._process.running, "anvil has exited"
        self._process.send_signal(signum)

    # ------------------------------------------------------------ access

    @property
    def url(self) -> str:
        assert self._port is not None, "anvil is not running"
        return f"http://127.0.0.1:{self._port}"

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; a JSON-RPC error is a RuntimeError."""
        self._next_id += 1
        body = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
        answer = self._http.post(self.url, json=body).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def wait_receipt(self, tx_hash: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """The receipt once mined (automine answers `eth_send*` just before mining)."""
        deadline = time.monotonic() + timeout_s
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tx_hash} not mined within {timeout_s} s")
            time.sleep(0.01)
        return receipt

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def nonce(self, address: str, block: str = "latest") -> int:
        return int(self.rpc("eth_getTransactionCount", address, block), 16)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self._dir / "anvil.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"
