"""The `file` sink: an append-only JSON-lines "L1" under the node home.

One line per batch, in batch-number order:

    {"batch_number": 0, "first_height": 1, "last_height": 3,
     "commitment": "<hex blake3 of the encoding>", "encoding": "<hex of the batch encoding>"}

A line is final once `post` returns: it is written with one `write`, then the
file is fsynced (and its directory, when `post` created the file). A crash in
the middle of a write can leave a *torn* last line, without its newline;
`posted` ignores it (its `post` never returned, so nobody relied on it) and
the next `post` truncates it away before appending. Any other line that does
not parse, or whose fields disagree with its encoding, is an `L1Error` naming
the line: the file was damaged or edited, and a human must look.

The file operations are synchronous inside the async methods: they are small
(one short line, one fsync), and with no `await` between reading the file and
appending to it, posts from tasks of one trio run cannot interleave. One
process writes the file (the configured poster); several are not supported.

`post` refuses, with `L1ConflictError`, a batch whose number is already in
the file with another encoding, and a batch that does not extend the file
(next batch number, first height right after the last line's): the file
would no longer be a chain of batches, and retrying cannot help.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from sequencer.ids import batch_commitment, decode_batch, encode_batch, hash32
from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, PostedBatch
from sequencer.types import BatchCommitment

__all__ = ["FileSink"]

T = TypeVar("T")


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    """One line of the file, in this key order."""

    batch_number: int
    first_height: int
    last_height: int
    commitment: str
    encoding: str


_line_decoder = msgspec.json.Decoder(_Line)
_line_encoder = msgspec.json.Encoder()


class FileSink:
    name = "file"

    def __init__(self, path: Path, chain_id: str) -> None:
        self.path = Path(path)
        self.chain_id = chain_id
        # (inode, size, mtime) of the file when parsed, its lines, where they end
        self._cache: tuple[tuple[int, int, int], list[PostedBatch], int] | None = None

    # ------------------------------------------------------------ Sink

    async def post(self, batch: BatchCommitment, encoding: bytes) -> str:
        """Append the batch unless it is there already; returns `file:<line>`."""
        if batch.chain_id != self.chain_id:
            raise ValueError(f"batch of chain {batch.chain_id!r} posted to {self.chain_id!r}")
        if encoding != encode_batch(batch):
            raise ValueError("`encoding` is not the encoding of `batch`")
        posted, end = self._read()
        for index, item in enumerate(posted):
            if item.batch.batch_number != batch.batch_number:
                continue
            if item.encoding != encoding:
                raise L1ConflictError(
                    f"{self._where(index)} holds another batch {batch.batch_number}"
                )
            _guard(self._sync)  # acknowledge only what is on disk
            return item.reference
        self._check_extends(posted, batch)
        line = _line_encoder.encode(
            _Line(
                batch_number=batch.batch_number,
                first_height=batch.first_height,
                last_height=batch.last_height,
                commitment=hash32(encoding).hex(),
                encoding=encoding.hex(),
            )
        )
        key = _guard(lambda: self._append(line + b"\n", end))
        posted.append(PostedBatch(batch, encoding, _reference(len(posted)), confirmed=True))
        self._cache = (key, posted, end + len(line) + 1)
        return posted[-1].reference

    async def wait_confirmed(self, reference: str) -> None:
        """A line is final once fsynced, which `post` did before returning."""

    async def posted(self) -> list[PostedBatch]:
        """Every complete line, validated, in file (= batch-number) order."""
        return self._read()[0]

    async def aclose(self) -> None:
        """Nothing held open: each post opens, appends, fsyncs and closes."""

    # ------------------------------------------------------------ reading

    def _read(self) -> tuple[list[PostedBatch], int]:
        """The complete lines, and the offset where they end (a torn tail follows).

        Parsed once: while the file is as this sink last saw or wrote it
        (same inode, size and mtime), the parsed lines are reused, so a post
        costs the same on a file of a million lines as on an empty one.
        """
        try:
            stat = os.stat(self.path)
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if self._cache is not None and self._cache[0] == key:
                return list(self._cache[1]), self._cache[2]
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], 0  # nothing posted yet
        except OSError as exc:
            raise L1UnavailableError(f"file sink: {exc}") from exc
        end = data.rfind(b"\n") + 1
        lines = data[:end].split(b"\n")[:-1]
        posted = [self._parse(index, line) for index, line in enumerate(lines)]
        self._cache = (key, posted, end)
        return list(posted), end

    def _parse(self, index: int, line: bytes) -> PostedBatch:
        try:
            fields = _line_decoder.decode(line)
            encoding = bytes.fromhex(fields.encoding)
            batch = decode_batch(encoding)
        except (msgspec.MsgspecError, ValueError) as exc:  # DecodeError is a ValueError
            raise L1Error(f"{self._where(index)} is not a batch: {exc}") from None
        if batch.chain_id != self.chain_id:
            raise L1Error(f"{self._where(index)} is a batch of chain {batch.chain_id!r}")
        expected = (batch.batch_number, batch.first_height, batch.last_height)
        if (fields.batch_number, fields.first_height, fields.last_height) != expected:
            raise L1Error(f"{self._where(index)}: its fields disagree with its encoding")
        if fields.commitment != batch_commitment(batch).hex():
            raise L1Error(f"{self._where(index)}: its commitment is not that of its encoding")
        if encoding != encode_batch(batch):
            raise L1Error(f"{self._where(index)}: its encoding is not canonical")
        return PostedBatch(batch, encoding, _reference(index), confirmed=True)

    def _check_extends(self, posted: list[PostedBatch], batch: BatchCommitment) -> None:
        if posted:
            last = posted[-1].batch
            number, height = last.batch_number + 1, last.last_height + 1
        else:
            number, height = 0, 1
        if (batch.batch_number, batch.first_height) != (number, height):
            raise L1ConflictError(
                f"batch {batch.batch_number} from height {batch.first_height} does not extend"
                f" {self.path}: batch {number} from height {height} is next"
            )

    # ------------------------------------------------------------ writing

    def _append(self, line: bytes, end: int) -> tuple[int, int, int]:
        """Append `line` at `end`, fsynced; returns the file's new cache key."""
        created = not self.path.exists()
        with open(self.path, "ab") as handle:
            size = handle.tell()
            if size < end:
                raise L1Error(f"{self.path} shrank while a batch was being posted")
            if size > end:  # a torn last line: drop it before appending
                handle.truncate(end)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
            stat = os.fstat(handle.fileno())
        if created:
            self._sync_directory()
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _sync(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sync_directory(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _where(self, index: int) -> str:
        return f"{self.path} line {index + 1}"


def _guard(operation: Callable[[], T]) -> T:
    """Run a file operation; an OS failure is `L1UnavailableError` (a full or
    failing disk may recover)."""
    try:
        return operation()
    except OSError as exc:
        raise L1UnavailableError(f"file sink: {exc}") from exc


def _reference(index: int) -> str:
    return f"file:{index + 1}"
