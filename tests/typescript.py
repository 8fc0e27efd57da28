"""The TypeScript client (`clients/typescript`), built and run for tests.

    node = ensure_client()                 # npm ci and tsc, once per lock file
    result = run_node_tests(node, ["dist/test/vectors.unit.test.js"], env={...})

Node.js 20.19 or newer is needed (the client's dependencies say so). The
system's `node` is used when it is new enough; otherwise (Debian 12's own
package is 18) the official binary is fetched from npm, as the package
`node-linux-<arch>`, into `.venv/nodejs`. `npm ci` installs the locked
dependencies into `clients/typescript/node_modules`; both are git-ignored.
Everything happens under a file lock, so parallel test processes set up once.

Tests get it through `require_client()`: when it cannot be set up they FAIL
under `CI=true` (the default run must run the client's tests), and skip with
the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "clients" / "typescript"
NODE_DIR = ROOT / ".venv" / "nodejs"
NODE_MIN = (20, 19)
NODE_FALLBACK_VERSION = "20.19.5"
NPM_TIMEOUT_S = 600.0
_STAMP = CLIENT / "node_modules" / ".installed-lock-digest"

__all__ = [
    "CLIENT",
    "ClientUnavailableError",
    "NodeTests",
    "ensure_client",
    "require_client",
    "run_node_tests",
]


class ClientUnavailableError(Exception):
    pass


def _say(message: str) -> None:
    print(f"[typescript] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _version(node: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return (int(match[1]), int(match[2])) if match else None


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise ClientUnavailableError(
            "npm is not installed (python3 scripts/test.py installs it with apt-get)"
        )
    return npm


def _run(argv: Sequence[str], what: str, env: Mapping[str, str] | None = None) -> None:
    try:
        result = subprocess.run(
            argv, cwd=CLIENT, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        raise ClientUnavailableError(f"{what} did not finish in {NPM_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-3000:]
        raise ClientUnavailableError(f"{what} failed ({result.returncode}):\n{tail}")


def _node() -> str:
    """A node binary of at least NODE_MIN: the system's, or one fetched from npm."""
    system = shutil.which("node")
    if system is not None and (_version(system) or (0, 0)) >= NODE_MIN:
        return system
    arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    if arch is None or sys.platform != "linux":
        raise ClientUnavailableError(
            f"Node.js {'.'.join(map(str, NODE_MIN))}+ is needed and none is installed"
            f" for {platform.machine()}"
        )
    package = f"node-linux-{arch}"
    binary = NODE_DIR / "node_modules" / package / "bin" / "node"
    if not binary.exists() or (_version(str(binary)) or (0, 0)) < NODE_MIN:
        found = _version(system) if system else None
        _say(
            f"system node is {found or 'missing'};"
            f" fetching {package}@{NODE_FALLBACK_VERSION} from npm"
        )
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        argv = [_npm(), "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"]
        _run([*argv, f"{package}@{NODE_FALLBACK_VERSION}"], f"npm install {package}")
    if (_version(str(binary)) or (0, 0)) < NODE_MIN:
        raise ClientUnavailableError(f"{binary} from npm does not run as Node.js {NODE_MIN}+")
    return str(binary)


def _lock_digest() -> str:
    return hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()


def ensure_client() -> str:
    """Install the locked dependencies (when the lock changed) and compile;
    returns the node binary to run."""
    with _exclusive(ROOT / ".venv" / "typescript.lock"):
        node = _node()
        env = {**os.environ, "PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        digest = _lock_digest()
        if not _STAMP.exists() or _STAMP.read_text().strip() != digest:
            _say("npm ci (the TypeScript client's locked dependencies)")
            _run([_npm(), "ci", "--no-audit", "--no-fund"], "npm ci", env)
            _STAMP.write_text(digest + "\n")
        shutil.rmtree(
            CLIENT / "dist", ignore_errors=True
        )  # no stale test files from a removed source
        _run(
            [node, "node_modules/typescript/bin/tsc", "-p", "."],
            "tsc (compiling the TypeScript client)",
            env,
        )
        return node


_built: list[str] = []  # once per test process: the sources do not change under it


def require_client() -> str:
    if _built:
        return _built[0]
    try:
        _built.append(ensure_client())
        return _built[0]
    except ClientUnavailableError as error:
        message = f"the TypeScript client cannot be built here: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


class NodeTests:
    """The outcome of one `node --test` run, from its TAP summary."""

    def __init__(self, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output
        self.counts = {
            key: int(value)
            for key, value in re.findall(
                r"^# (tests|pass|fail|skipped|cancelled|todo) (\d+)$", output, re.M
            )
        }

    def assert_all_passed(self, at_least: int) -> None:
        summary = {k: self.counts.get(k) for k in ("tests", "pass", "fail", "skipped", "cancelled")}
        failures = "\n".join(re.findall(r"^\s*not ok .*$", self.output, re.M)[:20])
        detail = f"{summary}\n{failures}\n{self.output[-6000:]}"
        assert self.returncode == 0, f"node --test failed: {detail}"
        assert self.counts.get("fail") == 0, detail
        assert self.counts.get("cancelled") == 0, detail
        # A skipped suite (`describe(..., { skip })`) is not counted as skipped;
        # its TAP line says so.
        skipped = re.findall(r"^\s*ok .* # SKIP.*$", self.output, re.M)
        assert self.counts.get("skipped") == 0, f"tests were skipped: {detail}"
        assert not skipped, f"suites were skipped: {skipped}"
        assert (self.counts.get("pass") or 0) >= at_least, (
            f"fewer tests than expected ran: {detail}"
        )


def run_node_tests(
    node: str, files: Sequence[str], env: Mapping[str, str], timeout_s: float = 300.0
) -> NodeTests:
    argv = [node, "--test", "--test-reporter=tap", "--test-timeout=120000", *files]
    try:
        result = subprocess.run(
            argv,
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **env},
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(
            f"node --test did not finish in {timeout_s:.0f} s:\n{out[-4000:]}", pytrace=False
        )
    return NodeTests(result.returncode, result.stdout + result.stderr)
