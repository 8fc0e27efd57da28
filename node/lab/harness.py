"""What the benchmark runs share: progress lines on stderr, and the directory
a run works in.

Progress goes to stderr, flushed at once: a run takes minutes, and its
stdout carries the report only.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["run_directory", "say"]


def say(tag: str, message: str) -> None:
    """`[tag] message` on stderr."""
    print(f"[{tag}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def run_directory(path: str | None, prefix: str) -> Iterator[Path]:
    """`path`, made if missing and kept; without it a temporary directory
    named after `prefix`, removed afterwards."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
