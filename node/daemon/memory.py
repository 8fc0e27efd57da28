"""The node process's C heap, bounded: glibc's malloc told to keep few arenas.

glibc gives each thread that allocates its own malloc arena, up to eight per
core, and an arena's freed memory stays with it. The node allocates on the
event loop's thread and in trio's worker threads (the journal's synced
writes, LevelDB's own buffers), so free memory scattered over many arenas
showed up as RSS that kept growing over a long run. Two arenas keep the
heap compact; the worker threads' allocations are few and small, so the
contention this adds is not measurable. Elsewhere (musl, macOS) this does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MALLOC_ARENAS_MAX", "limit_malloc_arenas"]

log = logging.getLogger("sequencer.node")

MALLOC_ARENAS_MAX = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS_MAX) -> bool:
    """Cap glibc's malloc arenas (call before any thread starts); True if it took."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    taken = mallopt(_M_ARENA_MAX, arenas) == 1
    if not taken:
        log.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return taken
