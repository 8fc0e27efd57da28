"""Run-time fault control of a running node, for chaos runs.

Off unless the config says `[chaos] control = true` (or the environment
`SEQUENCER_CHAOS_CONTROL=true`). Then the node reads `chaos.json` in its home
(`node.config.chaos` has its format) at start and again on every SIGUSR1, and
applies it at once. A missing file means no faults and no offset; a file that
does not parse is logged and ignored (the node keeps what it had). The offset
lives in the node's own `OffsetClock`, handed to its consensus driver, so
nothing global changes.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from net.faults import FaultConfig
from node.config.chaos import describe, read_control
from node.daemon.consensus import wall_ms
from node.errors import ConfigError

__all__ = ["OffsetClock", "run_chaos_control"]

log = logging.getLogger("sequencer.chaos")


class OffsetClock:
    """Wall milliseconds plus an offset that the chaos control may change."""

    def __init__(self, now_ms: Callable[[], int] = wall_ms) -> None:
        self._now_ms = now_ms
        self.offset_ms = 0

    def __call__(self) -> int:
        return self._now_ms() + self.offset_ms


async def run_chaos_control(
    home: Path,
    validators: Sequence[bytes],
    set_faults: Callable[[FaultConfig], None],
    clock: OffsetClock,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Apply `chaos.json` now and on every SIGUSR1, until cancelled."""

    def apply() -> None:
        try:
            settings = read_control(home, validators)
        except ConfigError as error:
            log.error("chaos control: %s (keeping the current settings)", error)
            return
        set_faults(settings.faults)
        clock.offset_ms = settings.clock_offset_ms
        log.warning("chaos control: %s", describe(settings))

    with trio.open_signal_receiver(signal.SIGUSR1) as signals:
        apply()
        task_status.started()
        async for _ in signals:
            apply()
