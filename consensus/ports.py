"""What the consensus host needs from the world: small ports, no I/O of their own.

The node implements them over its LevelDB store, mempool and UDP gossip
(`node.daemon.consensus`); the simulator over an in-memory disk that can lose
unsynced writes, a seeded transaction source and a faulty network
(`consensus.sim`). Every call is synchronous: the host runs the core's
actions in order, and a port that cannot do its job raises (the host fails on
the storage errors it was told about; anything else is a bug or, in the
simulator, a crash).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Protocol

from consensus.anchor import Anchor
from consensus.messages import ProposalMessage
from consensus.sync import RawSyncResponse, SyncRequest
from sequencer.ids import BlockFacts
from sequencer.types import Block, CommitCertificate, SigningState, Transaction, Vote

__all__ = ["ChainPort", "MempoolPort", "NetworkPort", "Peer", "Pooled", "TransactionsPort"]

# How a network port names a peer it can send to (a public key in the node,
# an index in the simulator).
Peer = Hashable


class ChainPort(Protocol):
    """The finalized chain and the signing state, durable."""

    def height(self) -> int:
        """The height of the last finalized block (0 before the first)."""
        ...

    def anchor(self) -> Anchor: ...

    def state_root(self) -> bytes: ...

    def next_nonce(self, sender: bytes) -> int: ...

    def commit(
        self,
        block: Block,
        certificate: CommitCertificate,
        parent_certificate: CommitCertificate | None,
        *,
        sync: bool,
        facts: BlockFacts | None = None,
    ) -> None:
        """Store a decided block; durable before returning when `sync`, else
        at the next `sync()` or the next synced write (storage keeps order).
        `facts` are the block's, computed when the core met it (its nonce
        changes too, when the host checked or built it against this state)."""
        ...

    def sync(self) -> None: ...

    def save_signing_state(self, state: SigningState) -> None:
        """Write the signing state durably (synced): a signature depends on it."""
        ...

    def finalized_encoded(self, first: int, last: int) -> Iterable[tuple[bytes, bytes]]:
        """Canonical encodings of (block, certificate) for heights first..last."""
        ...

    def certificate_encoded(self, height: int) -> bytes | None: ...


class Pooled(Protocol):
    """A pooled transaction, with the id computed when it entered the pool."""

    @property
    def tx(self) -> Transaction: ...

    @property
    def tx_id(self) -> bytes: ...


class MempoolPort(Protocol):
    def select(self, max_gas: int, max_txs: int) -> Sequence[Pooled]:
        """Transactions for a block, in block order (each sender's nonces in order)."""
        ...

    def has_pending(self) -> bool:
        """Are there transactions a next block could hold?"""
        ...


class TransactionsPort(Protocol):
    """Transaction signatures: each verified once per node."""

    def is_verified(self, tx_id: bytes) -> bool: ...

    def verify(self, tx: Transaction, tx_id: bytes) -> bool:
        """Verify a transaction met first in a block (and remember it by its id)."""
        ...


class NetworkPort(Protocol):
    def broadcast(self, message: ProposalMessage | Vote) -> None:
        """Gossip to every node; may drop (the core re-sends what matters)."""
        ...

    def broadcast_votes(self, votes: list[Vote]) -> None:
        """Re-send votes to every node in one message that gossip has not seen."""
        ...

    def send(self, peer: Peer, message: SyncRequest | RawSyncResponse) -> None:
        """One message to one peer (catch-up); may drop."""
        ...
