"""The node process caps glibc's malloc arenas before any thread starts."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from node.daemon.memory import limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_glibc_takes_the_arena_cap() -> None:
    assert limit_malloc_arenas() is True


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_threads_share_the_capped_arenas() -> None:
    """Eight threads that each allocate map no more arenas than the cap
    (each arena is a 64 MiB reservation: count them in /proc/self/maps)."""
    program = """
import sys, threading
from node.daemon.memory import limit_malloc_arenas
if sys.argv[1] == "capped":
    assert limit_malloc_arenas(2)
together = threading.Barrier(8)
def churn():
    blocks = [bytearray(100_000) for _ in range(50)]
    together.wait()  # all alive at once: each would get an arena of its own
    del blocks
threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
maps = open("/proc/self/maps").read().splitlines()
# A thread arena's heap is a 64 MiB-aligned reservation, mostly PROT_NONE.
print(sum(1 for line in maps if line.split()[1] == "---p"))
"""

    def reservations(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", program, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip())

    assert reservations("capped") < reservations("free")
