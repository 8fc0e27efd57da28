"""Set up the project's virtual environment from `requirements.lock`.

Standard library only: this runs on a fresh machine that has nothing but
python3. `scripts/devnet.py` and `scripts/test.py` call `ensure_venv()` first,
so each README command does its own set-up and is a no-op when nothing changed.

The environment lives in `.venv/` at the repository root. It is rebuilt when
the lock file or `pyproject.toml` changes (a stamp file records their digest).
Installs are hash-checked (`--require-hashes`) so every machine gets the same
bytes. Run directly (`python3 scripts/bootstrap.py`) to set up without running
anything else; `--relock` regenerates the lock file with pip-tools.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK_FILE = ROOT / "requirements.lock"
STAMP = VENV / ".bootstrap-stamp"
PYTHON_MIN = (3, 11)


class BootstrapError(Exception):
    """Set-up failed in a way the user has to fix; the message says how."""


def say(message: str) -> None:
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def _digest() -> str:
    h = hashlib.sha256()
    for path in (LOCK_FILE, ROOT / "pyproject.toml"):
        h.update(path.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


@contextlib.contextmanager
def _exclusive(path: Path):
    """Serialise concurrent set-ups (a devnet and a test run started together)."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(args: list[str | Path]) -> None:
    result = subprocess.run([str(a) for a in args], cwd=ROOT)
    if result.returncode != 0:
        raise BootstrapError(f"command failed ({result.returncode}): {' '.join(map(str, args))}")


# The test tools install while the virtual environment does (scripts/test.py):
# one apt-get at a time (dpkg allows no more), and one package-list update.
_APT_LOCK = threading.Lock()
_apt_updated = False


def _apt_install(package: str) -> bool:
    """Install a Debian package when we can (root with apt-get); report whether we tried."""
    global _apt_updated
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    with _APT_LOCK:
        say(f"installing the system package {package} (apt-get)")
        if not _apt_updated:
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            _apt_updated = True
        # No recommended packages: prometheus would pull in exporters that start services.
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
        return subprocess.run(install).returncode == 0


def ensure_test_tools() -> None:
    """System tools some tests need: npm, to install anvil (the Ethereum L1 of
    the L1 tests) from its npm package and the TypeScript client's locked
    dependencies (and, where the system's Node.js is older than 20.19, a
    newer one: `tests/typescript.py`); prometheus and promtool (one Debian
    package, `prometheus`) for the metrics tests; wrk, the HTTP load generator
    of the wallet benchmark (`python3 scripts/bench.py --only wallet`) and its
    test. Installed with apt-get when missing and we can; otherwise those
    tests say what is missing (and fail under CI; the wallet test skips)."""
    if shutil.which("npm") is None and not _apt_install("npm"):
        say("npm not found and cannot be installed here: the anvil (L1) tests will fail or skip")
    # Debian's package puts both in /usr/bin.
    missing = [
        tool
        for tool in ("prometheus", "promtool")
        if shutil.which(tool) is None and not os.access(f"/usr/bin/{tool}", os.X_OK)
    ]
    if missing and not _apt_install("prometheus"):
        say(
            f"{' and '.join(missing)} not found and cannot be installed here: the Prometheus"
            " tests will fail or skip (apt-get install prometheus)"
        )
    wrk_found = shutil.which("wrk") is not None or os.access("/usr/bin/wrk", os.X_OK)
    if not wrk_found and not _apt_install("wrk"):
        say(
            "wrk not found and cannot be installed here: the wallet benchmark test will skip"
            " (apt-get install wrk)"
        )


def _create_venv() -> None:
    say(f"creating virtual environment {VENV.relative_to(ROOT)}/")
    args = [sys.executable, "-m", "venv", "--clear", str(VENV)]
    if subprocess.run(args, capture_output=True).returncode == 0:
        return
    # Debian and Ubuntu ship venv without ensurepip; the fix is one package.
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if (_apt_install(f"python{version}-venv") or _apt_install("python3-venv")) and (
        subprocess.run(args).returncode == 0
    ):
        return
    raise BootstrapError(
        "could not create a virtual environment: python3's venv module is missing. "
        f"Install it (Debian/Ubuntu: apt-get install python{version}-venv) and run again."
    )


def ensure_venv() -> Path:
    """Make `.venv` match the lock file; return the path of its python."""
    if sys.version_info < PYTHON_MIN:
        raise BootstrapError(
            f"Python {'.'.join(map(str, PYTHON_MIN))} or newer is required, "
            f"this is {sys.version.split()[0]}"
        )
    with _exclusive(ROOT / ".venv.lock"):
        want = _digest()
        python = venv_python()
        if python.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
            return python
        if not python.exists():
            _create_venv()
        say("installing locked dependencies (first run or lock changed; takes a minute)")
        pip = [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
        _run([*pip, "--require-hashes", "-r", LOCK_FILE])
        _run([*pip, "--no-deps", "--no-build-isolation", "--editable", ROOT])
        STAMP.write_text(want + "\n")
        say("environment ready")
        return python


def run_in_venv(script: str, module: str, *, chdir: bool = False) -> int:
    """A script's whole body: re-run `script` under `.venv` (made first if
    needed), then call `module`'s `main` with the script's arguments. The
    checkout is importable, by this process and by the node processes it
    starts; with `chdir`, the work happens in the checkout (where outputs
    named by relative paths land)."""
    if Path(sys.prefix).resolve() != VENV.resolve():
        python = str(ensure_venv())
        os.execv(python, [python, script, *sys.argv[1:]])
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    if chdir:
        os.chdir(ROOT)
    import importlib

    return int(importlib.import_module(module).main(sys.argv[1:]))


def relock() -> None:
    """Regenerate requirements.lock from pyproject.toml (pins and hashes)."""
    python = ensure_venv()
    _run([python, "-m", "pip", "install", "--quiet", "pip-tools"])
    _run(
        [
            python,
            "-m",
            "piptools",
            "compile",
            "--quiet",
            "--generate-hashes",
            "--allow-unsafe",
            "--extra",
            "dev",
            "--strip-extras",
            "--no-emit-index-url",
            "--no-emit-find-links",
            "--build-deps-for",
            "editable",
            "-o",
            LOCK_FILE,
            ROOT / "pyproject.toml",
        ]
    )
    say(f"wrote {LOCK_FILE.relative_to(ROOT)}")


def main() -> int:
    try:
        if "--relock" in sys.argv[1:]:
            relock()
        else:
            print(ensure_venv())
    except BootstrapError as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
