"""`ChildProcess`, the one handle of the project's child processes, on real
short children (`python -c ...`): how each ends, where its output goes, and
that nothing is left behind (no zombie: the child is reaped, its exit status
known; nothing running)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from node.ops.procs import DEVNULL, PIPE, ChildProcess, stop_all

GRACE_S = 0.5
# Each child says "ready" once its signal handlers are in place.
SLEEPS = "import time; print('ready', flush=True); time.sleep(60)"
IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ready', flush=True); time.sleep(60)"
)
EXITS_ON_TERM = (
    "import signal, sys, time;"
    " signal.signal(signal.SIGTERM, lambda *_: sys.exit(7));"
    " print('ready', flush=True); time.sleep(60)"
)
EXITS_AT_ONCE = "import sys; sys.exit(3)"


def child(script: str, **options: object) -> ChildProcess:
    return ChildProcess([sys.executable, "-c", script], output=PIPE, text=True, **options)  # type: ignore[arg-type]


def started(script: str, **options: object) -> ChildProcess:
    """Started, and ready (or, for EXITS_AT_ONCE, exited: a zombie not reaped yet)."""
    process = child(script, **options).start()
    if script == EXITS_AT_ONCE:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    else:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    return process


def reaped(pid: int) -> bool:
    """No child of ours with this pid is left, running or zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def stop(process: ChildProcess) -> int | None:
    return process.stop(GRACE_S)


def kill(process: ChildProcess) -> int | None:
    return process.kill()


def wait(process: ChildProcess) -> int | None:
    return process.wait(timeout=10)


def leave(process: ChildProcess) -> int | None:
    with process:
        pass
    return process.returncode


# (child, how it is ended, its exit status, at least this long, at most this long)
CASES: list[tuple[str, Callable[[ChildProcess], int | None], int, float, float]] = [
    (EXITS_AT_ONCE, wait, 3, 0.0, 10.0),
    (EXITS_AT_ONCE, stop, 3, 0.0, GRACE_S + 5),
    (EXITS_AT_ONCE, kill, 3, 0.0, 5.0),
    (SLEEPS, stop, -signal.SIGTERM, 0.0, GRACE_S),
    (EXITS_ON_TERM, stop, 7, 0.0, GRACE_S),
    (IGNORES_TERM, stop, -signal.SIGKILL, GRACE_S, GRACE_S + 5),
    (SLEEPS, kill, -signal.SIGKILL, 0.0, 5.0),
    (IGNORES_TERM, kill, -signal.SIGKILL, 0.0, 5.0),
    (SLEEPS, leave, -signal.SIGTERM, 0.0, GRACE_S),
    (IGNORES_TERM, leave, -signal.SIGKILL, GRACE_S, GRACE_S + 5),
]


@pytest.mark.parametrize(
    ("script", "end", "status", "at_least_s", "at_most_s"),
    CASES,
    ids=[f"{end.__name__}-{i}" for i, (_, end, *_) in enumerate(CASES)],
)
def test_how_a_child_ends(
    script: str,
    end: Callable[[ChildProcess], int | None],
    status: int,
    at_least_s: float,
    at_most_s: float,
) -> None:
    process = started(script, grace_s=GRACE_S)
    pid = process.pid
    began = time.monotonic()
    assert end(process) == status
    took = time.monotonic() - began
    assert at_least_s <= took <= at_most_s, took
    assert process.returncode == status
    assert not process.running
    assert reaped(pid)
    assert process.stop() == status  # again: nothing more to do
    assert process.kill() == status
    process.close()


def test_a_handle_never_started_has_nothing_to_stop() -> None:
    process = child(SLEEPS)
    assert not process.started
    assert not process.running
    assert process.returncode is None
    assert process.poll() is None
    assert process.stop() is None
    assert process.kill() is None


def test_a_handle_runs_one_child() -> None:
    with child(EXITS_AT_ONCE) as process, pytest.raises(AssertionError, match="one child"):
        process.start()


def test_wait_times_out_like_popen_and_the_child_keeps_running() -> None:
    with started(SLEEPS, grace_s=GRACE_S) as process:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
        assert process.running


def test_the_context_manager_stops_the_child_when_the_body_raises() -> None:
    process = started(IGNORES_TERM, grace_s=GRACE_S)

    def body() -> None:
        with process:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body()
    assert process.returncode == -signal.SIGKILL
    assert reaped(process.pid)
    assert process.stdout is not None
    assert process.stdout.closed


def test_stop_and_continue_then_stop() -> None:
    with started(EXITS_ON_TERM, grace_s=5.0) as process:
        process.send_signal(signal.SIGSTOP)
        time.sleep(0.1)
        assert Path(f"/proc/{process.pid}/stat").read_text().split()[2] == "T"
        process.send_signal(signal.SIGCONT)
        assert process.stop() == 7


def test_a_child_that_has_exited_is_never_signalled() -> None:
    with started(EXITS_AT_ONCE) as process:
        assert process.wait(timeout=10) == 3
        process.send_signal(signal.SIGKILL)  # its pid may be anyone's by now: nothing is sent
        process.terminate()
        assert process.returncode == 3


def test_stop_all_signals_each_once_and_kills_those_that_ignore_it(tmp_path: Path) -> None:
    counts = tmp_path / "terms"
    counting = (
        "import signal, time;"
        f" signal.signal(signal.SIGTERM, lambda *_: open({str(counts)!r}, 'a').write('x'));"
        " print('ready', flush=True); time.sleep(60)"
    )
    children = [started(counting), started(SLEEPS), started(EXITS_ON_TERM)]
    began = time.monotonic()
    stop_all([*children, None], grace_s=GRACE_S)
    assert time.monotonic() - began < GRACE_S + 5
    assert [c.returncode for c in children] == [-signal.SIGKILL, -signal.SIGTERM, 7]
    assert counts.read_text() == "x"  # one SIGTERM, not one per step
    assert all(reaped(c.pid) for c in children)
    for c in children:
        c.close()


def test_output_to_a_log_file_is_appended_with_stderr(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("before\n")
    script = "import sys; print('out', flush=True); print('err', file=sys.stderr)"
    for _ in range(2):
        with ChildProcess([sys.executable, "-c", script], output=log) as process:
            assert process.wait(timeout=10) == 0
    assert log.read_text() == "before\nout\nerr\nout\nerr\n"


def test_env_is_added_to_ours_and_cwd_is_where_it_runs(tmp_path: Path) -> None:
    script = "import os; print(os.environ['PROC_TEST'], os.environ['PATH'] != '', os.getcwd())"
    with child(script, env={"PROC_TEST": "given"}, cwd=tmp_path) as process:
        assert process.stdout is not None
        assert process.stdout.read().split() == ["given", "True", str(tmp_path)]
        assert process.wait(timeout=10) == 0


def test_devnull_output_and_stdin() -> None:
    script = "import sys; print('lost'); print(repr(sys.stdin.read()))"
    with ChildProcess([sys.executable, "-c", script], output=DEVNULL, stdin=DEVNULL) as process:
        assert process.stdout is None
        assert process.wait(timeout=10) == 0


def test_a_new_session_is_its_own_process_group() -> None:
    with started(SLEEPS, new_session=True, grace_s=GRACE_S) as process:
        assert os.getsid(process.pid) == process.pid
        assert os.getpgid(process.pid) == process.pid
    with started(SLEEPS, grace_s=GRACE_S) as process:
        assert os.getpgid(process.pid) == os.getpgid(0)


def test_output_and_stdin_are_checked() -> None:
    with pytest.raises(ValueError, match="output"):
        ChildProcess(["true"], output="somewhere")
    with pytest.raises(ValueError, match="stdin"):
        ChildProcess(["true"], stdin=PIPE)
