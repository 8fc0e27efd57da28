"""What nodes send each other over gossip, per topic.

    tx          b"T" + an array of transactions (each as in `sequencer.types`), at most
                TX_BATCH_MAX: the transactions a node acknowledged together
                travel as one message, not one each
    consensus   b"P" + ProposalMessage  |  b"V" + Vote  |  b"B" + VoteBundle
                (re-sent votes under a fresh nonce: gossip drops a message
                it delivered before, even one the core could not use then)
    sync        b"Q" + SyncRequest      |  b"R" + SyncResponse   (direct, not relayed)

One kind byte in front of the canonical msgpack encoding keeps decoding typed
and cheap; anything else is malformed and dropped by the caller.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from consensus.messages import ProposalMessage
from consensus.sync import RawSyncResponse, SyncRequest, SyncResponse
from node.daemon.limits import TX_BATCH_MAX
from sequencer.codec import decode, encode
from sequencer.errors import DecodeError
from sequencer.limits import VOTE_BUNDLE_MAX
from sequencer.types import Transaction, Vote, Wire

__all__ = [
    "TX_BATCH_MAX",
    "VoteBundle",
    "decode_consensus",
    "decode_sync",
    "decode_txs",
    "encode_consensus",
    "encode_sync",
    "encode_txs",
]

_TxBatch = Annotated[list[Transaction], Meta(min_length=1, max_length=TX_BATCH_MAX)]


class VoteBundle(Wire):
    """Votes re-sent together; `nonce` makes each bundle a message gossip has not seen."""

    nonce: Annotated[bytes, Meta(min_length=8, max_length=32)]
    votes: Annotated[list[Vote], Meta(min_length=1, max_length=VOTE_BUNDLE_MAX)]


_CONSENSUS: dict[bytes, type] = {b"P": ProposalMessage, b"V": Vote, b"B": VoteBundle}
_SYNC: dict[bytes, type] = {b"Q": SyncRequest, b"R": SyncResponse}
_KIND_OF = {cls: kind for table in (_CONSENSUS, _SYNC) for kind, cls in table.items()}
# A response put together from stored bytes encodes exactly as a typed one.
_KIND_OF[RawSyncResponse] = b"R"


def encode_consensus(message: ProposalMessage | Vote | VoteBundle) -> bytes:
    return _KIND_OF[type(message)] + encode(message)


def encode_sync(message: SyncRequest | SyncResponse | RawSyncResponse) -> bytes:
    return _KIND_OF[type(message)] + encode(message)


def decode_consensus(data: bytes) -> ProposalMessage | Vote | VoteBundle:
    return _decode(data, _CONSENSUS)


def decode_sync(data: bytes) -> SyncRequest | SyncResponse:
    return _decode(data, _SYNC)


def encode_txs(txs: list[Transaction]) -> bytes:
    assert 1 <= len(txs) <= TX_BATCH_MAX, "split transactions into batches first"
    return b"T" + encode(txs)


def decode_txs(data: bytes) -> list[Transaction]:
    if data[:1] != b"T":
        raise DecodeError(f"unknown message kind {data[:1]!r}")
    return decode(data[1:], _TxBatch)  # type: ignore[arg-type]


def _decode(data: bytes, table: dict[bytes, type]) -> object:
    cls = table.get(data[:1])
    if cls is None:
        raise DecodeError(f"unknown message kind {data[:1]!r}")
    return decode(data[1:], cls)
