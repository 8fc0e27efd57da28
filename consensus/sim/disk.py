"""The simulated node's durable state, as the host's chain port.

Writes are in order, like LevelDB's log: a commit with `sync=False` is
written but not yet durable; the next synced write (`sync()`, a synced
commit, the signing state) makes it and everything before it durable. A
crash of the machine (`crash(lose_unsynced=True)`) loses what was not
durable; a crash of the process alone loses nothing that was written.

Commits are checked against the stored chain (height, parent certificate
link, state root): a commit that does not apply means the core decided
wrongly, and is reported to the checker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from consensus.blocks import next_nonces
from consensus.core import Anchor
from sequencer.codec import encode
from sequencer.ids import BlockFacts, block_id, commit_id, genesis_state_root, state_root
from sequencer.types import ZERO_ID, Block, CommitCertificate, SigningState

__all__ = ["Disk", "SimCrash"]


class SimCrash(Exception):
    """Raised by a simulated port at a crash point: the node dies right there."""


class Disk:
    def __init__(self, chain_id: str, genesis_time_ms: int) -> None:
        self._chain_id = chain_id
        self._genesis_ms = genesis_time_ms
        self.blocks: list[Block] = []
        self.certificates: list[CommitCertificate] = []
        self._encoded: list[tuple[bytes, bytes]] = []
        self.nonces: dict[bytes, int] = {}
        self.signing_state: SigningState | None = None
        # Not yet durable: an undo log, newest last.
        self._undo: list[tuple[str, int, CommitCertificate | None]] = []
        self._durable_nonces: dict[bytes, int] = {}
        self.commits = 0
        self.lost_writes = 0
        # Crash points: called at each write with its kind; may raise SimCrash.
        self.before_write: Callable[[str], None] = lambda kind: None
        self.after_write: Callable[[str], None] = lambda kind: None
        self.problems: list[str] = []
        # Told of every commit that applied (the checker's agreement and certificates).
        self.on_commit: Callable[[Block, CommitCertificate, CommitCertificate | None], None] = (
            lambda block, certificate, parent: None
        )

    # ---------------------------------------------------------------- ChainPort

    def height(self) -> int:
        return len(self.blocks)

    def anchor(self) -> Anchor:
        if not self.blocks:
            return Anchor(0, ZERO_ID, self._genesis_ms, None)
        header = self.blocks[-1].header
        return Anchor(header.height, block_id(header), header.timestamp_ms, self.certificates[-1])

    def state_root(self) -> bytes:
        if not self.blocks:
            return genesis_state_root(self._chain_id)
        return self.blocks[-1].header.state_root

    def next_nonce(self, sender: bytes) -> int:
        return self.nonces.get(sender, 0)

    def commit(
        self,
        block: Block,
        certificate: CommitCertificate,
        parent_certificate: CommitCertificate | None,
        *,
        sync: bool,
        facts: BlockFacts | None = None,
    ) -> None:
        # `facts` are ignored: the disk recomputes what it checks, on its own.
        self.before_write("commit")
        problem = self._apply(block, certificate, parent_certificate, durable=sync)
        if problem is not None:
            self.problems.append(problem)
        self.after_write("commit")

    def sync(self) -> None:
        self.before_write("sync")
        self._make_durable()
        self.after_write("sync")

    def save_signing_state(self, state: SigningState) -> None:
        self.before_write("signing_state")
        self.signing_state = state
        self._make_durable()  # a synced write: everything before it is durable too
        self.after_write("signing_state")

    def finalized_encoded(self, first: int, last: int) -> Iterator[tuple[bytes, bytes]]:
        for height in range(max(first, 1), min(last, len(self.blocks)) + 1):
            yield self._encoded[height - 1]

    def certificate_encoded(self, height: int) -> bytes | None:
        if 1 <= height <= len(self.blocks):
            return self._encoded[height - 1][1]
        return None

    # ---------------------------------------------------------------- crashes

    def crash(self, *, lose_unsynced: bool) -> None:
        """The node died; the machine too if `lose_unsynced`."""
        if not lose_unsynced:
            self._make_durable()  # the OS keeps what the process wrote
            return
        self.lost_writes += len(self._undo)
        for kind, height, old in reversed(self._undo):
            if kind == "append":
                del self.blocks[height - 1 :]
                del self.certificates[height - 1 :]
                del self._encoded[height - 1 :]
            else:  # a replaced parent certificate comes back
                assert old is not None
                self.certificates[height - 1] = old
                self._encoded[height - 1] = (self._encoded[height - 1][0], encode(old))
        self._undo = []
        self.nonces = dict(self._durable_nonces)

    def block_at(self, height: int) -> tuple[Block, CommitCertificate]:
        return self.blocks[height - 1], self.certificates[height - 1]

    # ---------------------------------------------------------------- inside

    def _make_durable(self) -> None:
        if self._undo:
            self._undo = []
            self._durable_nonces = dict(self.nonces)

    def _apply(
        self,
        block: Block,
        certificate: CommitCertificate,
        parent: CommitCertificate | None,
        *,
        durable: bool,
    ) -> str | None:
        header = block.header
        if header.height != len(self.blocks) + 1:
            return f"commit of height {header.height} on a chain of height {len(self.blocks)}"
        changed = next_nonces(block.txs, self.next_nonce)
        if changed is None or state_root(self.state_root(), changed) != header.state_root:
            return f"block {header.height} does not apply to the state"
        if parent is not None:
            if not self.certificates:
                return f"block {header.height} replaces the certificate of height 0"
            self._undo.append(("replace", len(self.blocks), self.certificates[-1]))
            self.certificates[-1] = parent  # the canonical certificate of the parent
            self._encoded[-1] = (self._encoded[-1][0], encode(parent))
        link = commit_id(self.certificates[-1]) if self.certificates else ZERO_ID
        if header.last_commit_id != link:
            return f"block {header.height} does not link to the stored parent certificate"
        self.nonces.update(changed)
        self.blocks.append(block)
        self.certificates.append(certificate)
        self._encoded.append((encode(block), encode(certificate)))
        self._undo.append(("append", header.height, None))
        self.commits += 1
        self.on_commit(block, certificate, parent)
        if durable:
            self._make_durable()
        return None
