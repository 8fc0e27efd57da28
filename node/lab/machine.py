"""The machine under a benchmark: the commit rate its cores allow, and the
CPU time and memory of its processes, and of the whole machine, from /proc.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from sequencer.crypto import PrivateKey, sign_transaction, verify_transaction

__all__ = ["cpu_seconds", "machine_jiffies", "machine_limit", "machine_share", "status_kib"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_limit(chain_id: str, nodes: int, samples: int = 2_000) -> dict[str, float]:
    """cores / (nodes x verification time): the commit rate at which every
    core does nothing but verify each transaction once on every node."""
    key = PrivateKey(b"\x01" * 32)
    txs = [
        sign_transaction(
            key, chain_id=chain_id, namespace=0, nonce=n, gas_price=1, payload=b"x" * 200
        )
        for n in range(samples)
    ]
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for tx in txs:
            verify_transaction(tx)
        runs.append((time.perf_counter() - started) / samples)
    verify_s = statistics.median(runs)
    cores = os.cpu_count() or 1
    return {
        "cores": cores,
        "verify_us": round(verify_s * 1e6, 2),
        "limit_tx_s": round(cores / (nodes * verify_s), 1),
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A KiB figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`); 0 if absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def machine_jiffies() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) CPU time of the machine so far, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[3] + fields[4], fields[7]


def machine_share(before: tuple[int, int, int]) -> dict[str, float]:
    """How busy the whole machine was since `before`, and how much the
    hypervisor took (steal): what no process here accounts for shows here."""
    now = machine_jiffies()
    total = max(1, now[0] - before[0])
    return {
        "machine_busy": round(1 - (now[1] - before[1]) / total, 3),
        "machine_steal": round((now[2] - before[2]) / total, 3),
    }
