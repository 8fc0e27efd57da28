"""The L1 batch builder: which finalized blocks go in which batch.

Pure: no I/O and no clock (`now_ms` is an argument), so the node drives it
and tests replay it exactly. The node feeds finalized blocks in height order
with `add`, calls `tick` from a timer (`deadline_ms` says when), posts every
`Batch` it gets back through a sink (`sink.post(batch.commitment,
batch.encoding)`) and records progress.

Closing rules, whichever comes first:

- `max_blocks`: the batch holds that many blocks.
- `max_bytes` (the sum of the encoded sizes of the batch's blocks) is a real
  upper bound: a block that would push the open batch *over* it closes the
  open batch first and starts the next one; a block that makes the batch
  reach it exactly stays in and closes it. A single block larger than
  `max_bytes` forms a batch alone. So one `add` may close two batches (the
  open one, then the oversized block alone), hence `add` returns a list.
- `max_age_ms`: measured from the `now_ms` at which the batch's first block
  was added; checked by `tick` and also at the end of every `add`.

Batch numbers start at 0 and heights are contiguous across batches from 1.
The counters move when a batch *closes*, not when it is posted:
the L1 is the record of what is done. After a restart the node reads the
sink (`Sink.posted`), builds with `BatchBuilder.resume(last batch number,
last height)` and re-adds blocks from `last_height + 1`. Blocks that were in
an open (or closed but never posted) batch at a crash are simply batched
again, maybe with other boundaries, which is harmless because nothing about
them reached the L1. For the same reason `flush` is not needed for
correctness at shutdown: it serves callers that want everything on the L1
now (tests, a one-shot CLI, a graceful stop that still has time to post).

Which certificate `last_commit_id` names (subtle): the certificate a node
stores for height h is the one *it* saw first; when h+1 is committed, the
proposer of h+1 attaches the certificate of h that it knew (the canonical
one, whose id is `block[h+1].header.last_commit_id`), and the store may
replace the local one with it. Two certificates for the same block are both
valid but hash differently, so a batch must name the canonical one, which
every node agrees on. Hence the caller adds height h only once h+1 is final,
and passes `commit_id = block[h+1].header.last_commit_id` explicitly. The
builder only uses the `commit_id` of a batch's last block, and does not
check any of this itself.

`check_batches` is the pure core of `sequencer l1 verify`: it compares what
a sink returned with the chain (fetched by the caller) and reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated

from msgspec import Meta, Struct

from sequencer.ids import batch_commitment, encode_batch
from sequencer.l1.base import PostedBatch
from sequencer.merkle import merkle_root
from sequencer.types import BatchCommitment

__all__ = [
    "Batch",
    "BatchBuilder",
    "BatchConfig",
    "Issue",
    "Problem",
    "VerifyReport",
    "check_batches",
]

Positive = Annotated[int, Meta(ge=1)]


class BatchConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """Closing limits; decode with `msgspec.convert` (or the node's TOML) to
    have them validated, since a Struct built directly is not checked."""

    max_blocks: Positive = 100
    max_bytes: Positive = 1_000_000  # sum of the encoded sizes of the blocks
    max_age_ms: Positive = 2_000  # since the batch's first block was added

    def __post_init__(self) -> None:
        # msgspec checks `Meta` only when decoding: check direct construction too.
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """A closed batch: its commitment and what goes on the L1."""

    commitment: BatchCommitment
    encoding: bytes  # encode_batch(commitment): the bytes posted to the L1
    digest: bytes  # batch_commitment(commitment) = blake3(encoding)
    block_bytes: int  # the sum of the encoded sizes of its blocks

    @classmethod
    def of(cls, commitment: BatchCommitment, block_bytes: int) -> Batch:
        return cls(commitment, encode_batch(commitment), batch_commitment(commitment), block_bytes)

    @property
    def batch_number(self) -> int:
        return self.commitment.batch_number

    @property
    def first_height(self) -> int:
        return self.commitment.first_height

    @property
    def last_height(self) -> int:
        return self.commitment.last_height

    @property
    def block_count(self) -> int:
        return self.commitment.last_height - self.commitment.first_height + 1


def _check_id(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"`{name}` must be 32 bytes")


class BatchBuilder:
    """Groups finalized blocks into batches; see the module docstring."""

    def __init__(
        self,
        chain_id: str,
        config: BatchConfig | None = None,
        next_batch_number: int = 0,
        next_height: int = 1,
    ) -> None:
        if not chain_id:
            raise ValueError("`chain_id` must not be empty")
        if next_batch_number < 0 or next_height < 1:
            raise ValueError("batch numbers start at 0 and heights at 1")
        if next_height - 1 < next_batch_number:
            # Every batch holds at least one block.
            raise ValueError(
                f"{next_batch_number} batches cannot end before height {next_height - 1}"
            )
        self.chain_id = chain_id
        self.config = config or BatchConfig()
        self._next_batch_number = next_batch_number
        self._next_height = next_height
        self._first_height = next_height  # of the open batch
        self._block_ids: list[bytes] = []  # of the open batch, in height order
        self._last_commit_id = b""
        self._bytes = 0
        self._first_added_ms = 0

    @classmethod
    def resume(
        cls,
        chain_id: str,
        config: BatchConfig | None,
        last_batch_number: int | None,
        last_height: int,
    ) -> BatchBuilder:
        """A builder continuing after the last batch on the L1 (None, 0: none yet).

        The caller then re-adds blocks from `last_height + 1`.
        """
        if last_batch_number is None:
            if last_height != 0:
                raise ValueError("no batch posted, so no height can be covered")
            return cls(chain_id, config)
        return cls(chain_id, config, last_batch_number + 1, last_height + 1)

    # ------------------------------------------------------------ state

    @property
    def next_batch_number(self) -> int:
        """The number the open (or next) batch will get."""
        return self._next_batch_number

    @property
    def next_height(self) -> int:
        """The height `add` expects next."""
        return self._next_height

    @property
    def open_heights(self) -> int:
        """How many blocks the open batch holds (0: none open)."""
        return len(self._block_ids)

    @property
    def open_bytes(self) -> int:
        return self._bytes

    @property
    def deadline_ms(self) -> int | None:
        """When `tick` will close the open batch by age (None: nothing open)."""
        if not self._block_ids:
            return None
        return self._first_added_ms + self.config.max_age_ms

    # ------------------------------------------------------------ feeding

    def add(
        self, height: int, block_id: bytes, commit_id: bytes, block_bytes: int, now_ms: int
    ) -> list[Batch]:
        """Add the finalized block at `height`; returns the batches this closed.

        `commit_id` is the id of the block's canonical certificate, the
        `last_commit_id` of block `height + 1` (module docstring). A height
        already added is a no-op (a replay; if it is still in the open batch,
        its block id must be the same); a gap raises `ValueError`.
        """
        _check_id("block_id", block_id)
        _check_id("commit_id", commit_id)
        if block_bytes < 0:
            raise ValueError("`block_bytes` must not be negative")
        if height < 1:
            raise ValueError("heights start at 1")
        if height < self._next_height:
            self._check_replay(height, block_id)
            return []
        if height > self._next_height:
            raise ValueError(f"height {height} added, but the next height is {self._next_height}")
        closed = []
        if self._block_ids and self._bytes + block_bytes > self.config.max_bytes:
            closed.append(self._close())
        if not self._block_ids:
            self._first_height = height
            self._first_added_ms = now_ms
        self._block_ids.append(block_id)
        self._last_commit_id = commit_id
        self._bytes += block_bytes
        self._next_height = height + 1
        if (
            len(self._block_ids) >= self.config.max_blocks
            or self._bytes >= self.config.max_bytes
            or self._aged(now_ms)
        ):
            closed.append(self._close())
        return closed

    def tick(self, now_ms: int) -> list[Batch]:
        """Close the open batch if it reached `max_age_ms`."""
        if self._block_ids and self._aged(now_ms):
            return [self._close()]
        return []

    def flush(self) -> Batch | None:
        """Close whatever is open, whatever its size or age (None: nothing open)."""
        return self._close() if self._block_ids else None

    # ------------------------------------------------------------ internals

    def _check_replay(self, height: int, block_id: bytes) -> None:
        index = height - self._first_height
        if index >= 0 and self._block_ids[index] != block_id:
            # Two blocks finalized at one height: the caller's bug, never ours to hide.
            raise ValueError(f"height {height} added again with another block id")

    def _aged(self, now_ms: int) -> bool:
        return now_ms - self._first_added_ms >= self.config.max_age_ms

    def _close(self) -> Batch:
        commitment = BatchCommitment(
            chain_id=self.chain_id,
            batch_number=self._next_batch_number,
            first_height=self._first_height,
            last_height=self._first_height + len(self._block_ids) - 1,
            blocks_root=merkle_root(self._block_ids),
            last_commit_id=self._last_commit_id,
        )
        batch = Batch.of(commitment, self._bytes)
        self._next_batch_number += 1
        self._first_height = self._next_height
        self._block_ids = []
        self._last_commit_id = b""
        self._bytes = 0
        return batch


# ------------------------------------------------------------------ verification


class Issue(StrEnum):
    """What `check_batches` can find wrong (stable codes)."""

    NUMBER_GAP = "number_gap"  # batch numbers skip (or go back to) a number
    NUMBER_REPEATED = "number_repeated"  # a batch number posted again
    HEIGHT_GAP = "height_gap"  # heights skipped between consecutive batches
    HEIGHT_OVERLAP = "height_overlap"  # heights posted twice
    CHAIN_ID = "chain_id"  # a batch of another chain
    ENCODING = "encoding"  # the posted bytes are not encode_batch(batch)
    BLOCKS_ROOT = "blocks_root"  # not the Merkle root of our block ids
    LAST_COMMIT_ID = "last_commit_id"  # not our canonical certificate's id


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    batch_number: int
    issue: Issue
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyReport:
    """What `check_batches` found.

    `covered_height`: heights 1..covered_height are in batches 0.. without a
    gap (0: none); `verified_height`: the same prefix cut at the first batch
    with a problem or left unchecked. `unchecked`: numbers of batches reaching
    the tip or beyond, which the chain cannot check yet.
    """

    chain_id: str
    batch_count: int
    covered_height: int
    verified_height: int
    problems: tuple[Problem, ...]
    unchecked: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


BlockLookup = Callable[[int], tuple[bytes, bytes]]

_CONTIGUITY = frozenset(
    {Issue.NUMBER_GAP, Issue.NUMBER_REPEATED, Issue.HEIGHT_GAP, Issue.HEIGHT_OVERLAP}
)


def check_batches(
    posted: Sequence[PostedBatch],
    blocks: BlockLookup,
    tip_height: int,
    *,
    chain_id: str,
) -> VerifyReport:
    """Check the batches on the L1 (in the sink's order) against our chain.

    `blocks(h)` returns `(block_id, commit_id)` of height h, where commit_id
    is that of the *canonical* certificate (`block[h+1].header.last_commit_id`).
    It is called only for heights below `tip_height` (the highest finalized
    height), because the tip's canonical certificate is not known yet: a
    batch ending at or above the tip is listed in `unchecked`, not checked.
    Whatever `blocks` raises propagates. Pure: the caller fetches.
    """
    problems: list[Problem] = []
    unchecked: list[int] = []
    seen: set[int] = set()
    next_number, next_height = 0, 1
    covered = verified = 0
    contiguous = sound = True  # the prefix so far is gap-free / also checked and correct

    for item in posted:
        batch = item.batch
        found = _contiguity(batch, seen, next_number, next_height)
        if batch.batch_number not in seen:
            seen.add(batch.batch_number)
            next_number = max(next_number, batch.batch_number + 1)
            next_height = max(next_height, batch.last_height + 1)
        if batch.chain_id != chain_id:
            found.append((Issue.CHAIN_ID, f"chain id {batch.chain_id!r}, expected {chain_id!r}"))
        if item.encoding != encode_batch(batch):
            found.append((Issue.ENCODING, "the posted bytes are not the encoding of the batch"))
        checked = batch.last_height < tip_height
        if checked:
            found.extend(_content(batch, blocks))
        else:
            unchecked.append(batch.batch_number)

        contiguous = contiguous and not any(issue in _CONTIGUITY for issue, _ in found)
        if contiguous:
            covered = batch.last_height
        sound = sound and contiguous and checked and not found
        if sound:
            verified = batch.last_height
        problems.extend(Problem(batch.batch_number, issue, message) for issue, message in found)

    return VerifyReport(
        chain_id=chain_id,
        batch_count=len(posted),
        covered_height=covered,
        verified_height=verified,
        problems=tuple(problems),
        unchecked=tuple(unchecked),
    )


def _contiguity(
    batch: BatchCommitment, seen: set[int], next_number: int, next_height: int
) -> list[tuple[Issue, str]]:
    number = batch.batch_number
    if number in seen:  # its heights were judged with its first posting
        return [(Issue.NUMBER_REPEATED, f"batch {number} is posted more than once")]
    found = []
    if number != next_number:
        found.append((Issue.NUMBER_GAP, f"batch {number} where {next_number} was expected"))
    if batch.first_height > next_height:
        gap = f"{next_height}..{batch.first_height - 1}"
        found.append((Issue.HEIGHT_GAP, f"heights {gap} are in no batch"))
    elif batch.first_height < next_height:
        twice = f"{batch.first_height}..{min(batch.last_height, next_height - 1)}"
        found.append((Issue.HEIGHT_OVERLAP, f"heights {twice} are in an earlier batch too"))
    return found


def _content(batch: BatchCommitment, blocks: BlockLookup) -> list[tuple[Issue, str]]:
    looked_up = [blocks(h) for h in range(batch.first_height, batch.last_height + 1)]
    found = []
    root = merkle_root([block_id for block_id, _ in looked_up])
    if batch.blocks_root != root:
        message = f"blocks_root {batch.blocks_root.hex()}, the chain gives {root.hex()}"
        found.append((Issue.BLOCKS_ROOT, message))
    last_commit_id = looked_up[-1][1]
    if batch.last_commit_id != last_commit_id:
        message = (
            f"last_commit_id {batch.last_commit_id.hex()}, the chain gives {last_commit_id.hex()}"
        )
        found.append((Issue.LAST_COMMIT_ID, message))
    return found
