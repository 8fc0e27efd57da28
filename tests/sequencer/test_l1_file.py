"""The `file` L1 sink: JSON lines round trip, idempotent and conflicting posts,
a torn last line tolerated then repaired, damaged lines named, fsync per post;
each test in one `trio.run`."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
import trio
from blake3 import blake3

from sequencer.batcher import Batch, BatchBuilder, BatchConfig
from sequencer.ids import encode_batch
from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, PostedBatch, Sink
from sequencer.l1.file import FileSink

CHAIN = "file-1"


def batches(count: int, chain_id: str = CHAIN, salt: bytes = b"") -> list[Batch]:
    """Batches 0..count-1 of two blocks each, as the builder makes them."""
    builder = BatchBuilder(chain_id, BatchConfig(max_blocks=2))
    closed: list[Batch] = []
    for h in range(1, 2 * count + 1):
        block = blake3(salt + b"block %d" % h).digest()
        closed += builder.add(h, block, blake3(b"commit %d" % h).digest(), 10, 0)
    return closed


def run(test: Callable[[], Awaitable[None]]) -> None:
    trio.run(test)


async def post_all(sink: FileSink, items: list[Batch]) -> list[str]:
    return [await sink.post(b.commitment, b.encoding) for b in items]


def posted_now(path: Path) -> list[PostedBatch]:
    async def read() -> list[PostedBatch]:
        return await FileSink(path, CHAIN).posted()

    return trio.run(read)


# ------------------------------------------------------------------ round trip


def test_post_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "l1.jsonl"
    items = batches(3)

    async def main() -> None:
        sink: Sink = FileSink(path, CHAIN)
        assert sink.name == "file"
        assert await sink.posted() == []  # no file yet: nothing posted
        references = await post_all(sink, items)
        assert references == ["file:1", "file:2", "file:3"]
        for reference in references:
            await sink.wait_confirmed(reference)
        expected = [
            PostedBatch(b.commitment, b.encoding, r, True)
            for b, r in zip(items, references, strict=True)
        ]
        assert await sink.posted() == expected
        assert await FileSink(path, CHAIN).posted() == expected  # a fresh reader agrees
        await sink.aclose()

    run(main)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    for line, b in zip(lines[:-1], items, strict=True):
        record = json.loads(line)
        assert list(record) == [
            "batch_number",
            "first_height",
            "last_height",
            "commitment",
            "encoding",
        ]
        assert record == {
            "batch_number": b.batch_number,
            "first_height": b.first_height,
            "last_height": b.last_height,
            "commitment": blake3(b.encoding).hexdigest(),
            "encoding": b.encoding.hex(),
        }


def test_repost_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "l1.jsonl"
    items = batches(3)

    async def main() -> None:
        sink = FileSink(path, CHAIN)
        await post_all(sink, items)
        before = path.read_bytes()
        assert await sink.post(items[2].commitment, items[2].encoding) == "file:3"
        assert await sink.post(items[0].commitment, items[0].encoding) == "file:1"
        # Another sink (a restarted node) gets the same answers.
        assert await FileSink(path, CHAIN).post(items[1].commitment, items[1].encoding) == "file:2"
        assert path.read_bytes() == before

    run(main)


def test_another_batch_under_a_posted_number_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "l1.jsonl"
    ours, theirs = batches(2), batches(2, salt=b"fork")

    async def main() -> None:
        sink = FileSink(path, CHAIN)
        await post_all(sink, ours)
        before = path.read_bytes()
        for b in theirs:
            with pytest.raises(L1ConflictError, match=f"line {b.batch_number + 1}"):
                await sink.post(b.commitment, b.encoding)
        assert path.read_bytes() == before

    run(main)


def test_a_batch_that_does_not_extend_the_file_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "l1.jsonl"
    items = batches(3)
    # Batch 1 over heights 4..5: its number is next, but height 3 would be skipped.
    resumed = BatchBuilder(CHAIN, BatchConfig(max_blocks=2), next_batch_number=1, next_height=4)
    resumed.add(4, bytes(32), bytes(32), 1, 0)
    (wrong_heights,) = resumed.add(5, bytes(32), bytes(32), 1, 0)

    async def main() -> None:
        sink = FileSink(path, CHAIN)
        with pytest.raises(L1ConflictError, match="batch 0 from height 1 is next"):
            await sink.post(items[1].commitment, items[1].encoding)  # the first must be 0
        await sink.post(items[0].commitment, items[0].encoding)
        with pytest.raises(L1ConflictError, match="batch 1 from height 3 is next"):
            await sink.post(items[2].commitment, items[2].encoding)  # a gap
        with pytest.raises(L1ConflictError, match="batch 1 from height 3 is next"):
            await sink.post(wrong_heights.commitment, wrong_heights.encoding)  # heights skip
        assert [p.batch for p in await sink.posted()] == [items[0].commitment]

    run(main)


def test_caller_mistakes_raise_value_error(tmp_path: Path) -> None:
    (ours,) = batches(1)
    (other_chain,) = batches(1, chain_id="other-1")

    async def main() -> None:
        sink = FileSink(tmp_path / "l1.jsonl", CHAIN)
        with pytest.raises(ValueError, match="other-1"):
            await sink.post(other_chain.commitment, other_chain.encoding)
        with pytest.raises(ValueError, match="not the encoding"):
            await sink.post(ours.commitment, ours.encoding + b"\x00")

    run(main)
    assert not (tmp_path / "l1.jsonl").exists()


def test_os_errors_are_unavailable(tmp_path: Path) -> None:
    (ours,) = batches(1)

    async def main() -> None:
        sink = FileSink(tmp_path / "missing-dir" / "l1.jsonl", CHAIN)
        assert await sink.posted() == []
        with pytest.raises(L1UnavailableError):
            await sink.post(ours.commitment, ours.encoding)

    run(main)


def test_a_writer_elsewhere_is_seen(tmp_path: Path) -> None:
    """The parsed-lines cache is dropped when the file changes under it."""
    path = tmp_path / "l1.jsonl"
    items = batches(3)

    async def main() -> None:
        first, second = FileSink(path, CHAIN), FileSink(path, CHAIN)
        await first.post(items[0].commitment, items[0].encoding)
        await second.post(items[1].commitment, items[1].encoding)
        assert await first.post(items[2].commitment, items[2].encoding) == "file:3"
        assert len(await second.posted()) == 3

    run(main)


# ------------------------------------------------------------------ crashes and damage

TORN = [
    ("half a line", lambda line: line[: len(line) // 2]),
    ("a whole line but its newline", lambda line: line[:-1]),
    ("one byte", lambda line: line[:1]),
]


@pytest.mark.parametrize("tear", [t[1] for t in TORN], ids=[t[0] for t in TORN])
def test_torn_last_line_is_ignored_then_repaired(
    tmp_path: Path, tear: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "l1.jsonl"
    items = batches(3)

    async def main() -> None:
        await post_all(FileSink(path, CHAIN), items)
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:2]) + tear(lines[2]))  # crashed writing batch 2

        sink = FileSink(path, CHAIN)
        assert [p.batch for p in await sink.posted()] == [b.commitment for b in items[:2]]
        assert await sink.post(items[2].commitment, items[2].encoding) == "file:3"
        assert path.read_bytes() == b"".join(lines)
        assert [p.batch for p in await sink.posted()] == [b.commitment for b in items]

    run(main)


def line_of(b: Batch, **changes: object) -> bytes:
    record = {
        "batch_number": b.batch_number,
        "first_height": b.first_height,
        "last_height": b.last_height,
        "commitment": b.digest.hex(),
        "encoding": b.encoding.hex(),
    }
    return json.dumps({**record, **changes}).encode()


_ITEMS = batches(3)
_OTHER = batches(2, chain_id="other-1")

DAMAGE = [
    ("not json", b"{nope", "not a batch"),
    ("empty line", b"", "not a batch"),
    ("unknown key", line_of(_ITEMS[1], extra=1), "not a batch"),
    ("missing key", json.dumps({"batch_number": 1}).encode(), "not a batch"),
    ("encoding not hex", line_of(_ITEMS[1], encoding="zz"), "not a batch"),
    ("encoding not a batch", line_of(_ITEMS[1], encoding="c0"), "not a batch"),
    ("wrong commitment", line_of(_ITEMS[1], commitment=bytes(32).hex()), "commitment"),
    ("fields disagree", line_of(_ITEMS[1], last_height=9), "disagree"),
    ("another chain", line_of(_OTHER[1]), "chain 'other-1'"),
    (
        "non-canonical encoding",
        line_of(
            _ITEMS[1],
            # The same array with batch number 1 as a uint64: decodes, but not canonical.
            encoding=(
                b"\x97\xacseq/batch/v1\xa6file-1\xcf"
                + (1).to_bytes(8, "big")
                + _ITEMS[1].encoding[22:]
            ).hex(),
        ),
        "not canonical",
    ),
]


@pytest.mark.parametrize(("line", "message"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_a_damaged_line_raises_naming_it(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "l1.jsonl"

    async def main() -> None:
        await post_all(FileSink(path, CHAIN), _ITEMS)
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(lines[0] + line + b"\n" + lines[2])
        sink = FileSink(path, CHAIN)
        with pytest.raises(L1Error, match=f"line 2.*{message}") as raised:
            await sink.posted()
        assert not isinstance(raised.value, L1UnavailableError | L1ConflictError)
        with pytest.raises(L1Error, match="line 2"):
            await sink.post(_ITEMS[0].commitment, _ITEMS[0].encoding)

    run(main)


def test_non_canonical_vector_really_decodes() -> None:
    """The non-canonical line above fails for its encoding, not its syntax."""
    raw = bytes.fromhex(json.loads(DAMAGE[-1][1])["encoding"])
    assert msgspec.msgpack.decode(raw) == msgspec.msgpack.decode(_ITEMS[1].encoding)
    assert raw != encode_batch(_ITEMS[1].commitment)


# ------------------------------------------------------------------ durability


def test_fsync_per_post(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "l1.jsonl"
    items = batches(2)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))  # what was synced (Linux)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    async def main() -> None:
        sink = FileSink(path, CHAIN)
        await sink.post(items[0].commitment, items[0].encoding)
        assert len(synced) == 2  # the new file, then its directory
        await sink.post(items[1].commitment, items[1].encoding)
        assert len(synced) == 3  # the file only
        await sink.post(items[1].commitment, items[1].encoding)
        assert len(synced) == 4  # a repost writes nothing but acknowledges only what is on disk

    run(main)
    file, directory = str(path.resolve()), str(tmp_path.resolve())
    assert synced == [file, directory, file, file]
    assert len(posted_now(path)) == 2
