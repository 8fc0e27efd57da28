"""The consensus driver: the trio shell of `consensus.host.Host`.

The host does the work (it executes the core's actions, keeps its timers,
drives catch-up); this shell gives it the node's ports (the store and chain,
the mempool, gossip, the transaction-signature cache), the wall clock, and
one timer task. The simulator runs the same host over simulated ports, so the
logic here is only what is trio- or node-specific: reading the clock, waking
the timer, logging, timing steps for the metrics.

A `StorageError` while the host executes an action fails the node
(`node.daemon.health`): the host drops the rest of that step, among them the
broadcast of a signature that could not be persisted, and never steps the
core again. The signing state is written off the event loop
(`node.daemon.signwriter`): the host's broadcasts wait in it until the state
they were signed under is durable, and a failed write fails the node the
same way.
"""

from __future__ import annotations

import collections
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable

import trio

from consensus.core import Anchor, Core
from consensus.host import Host
from consensus.messages import Equivocation, Input, ProposalMessage, Step
from consensus.sync import CatchUp, RawSyncResponse, SyncRequest, SyncResponse
from consensus.votekeeper import Verifier
from net.driver import GossipNode
from net.errors import BacklogFullError
from net.wire import Topic
from node.daemon.chain import Chain
from node.daemon.health import StorageHealth
from node.daemon.limits import TIMER_SLEEP_S_MAX
from node.daemon.messages import VoteBundle, encode_consensus, encode_sync
from node.daemon.signwriter import SigningStateWriter
from sequencer.crypto import verify_signature, verify_transaction
from sequencer.ids import BlockFacts
from sequencer.types import Block, CommitCertificate, Transaction, Vote
from storage.errors import StorageError

__all__ = ["ConsensusDriver", "verified_cache", "wall_ms"]

log = logging.getLogger("sequencer.consensus")


def wall_ms() -> int:
    """Block timestamps are Unix milliseconds, so consensus runs on wall time."""
    return time.time_ns() // 1_000_000


class ConsensusDriver:
    def __init__(
        self,
        core: Core,
        chain: Chain,
        gossip: GossipNode,
        peer_keys: list[bytes],
        is_verified: Callable[[bytes], bool],
        rng: random.Random,
        health: StorageHealth | None = None,
        clock: Callable[[], int] = wall_ms,
        verifier: Verifier = verify_signature,
    ) -> None:
        """`peer_keys[i]` is validator i's public key (b"" for this node);
        `clock` gives the consensus time in Unix milliseconds (a chaos run
        offsets it to jump one node's clock)."""
        self.health = StorageHealth() if health is None else health
        self.chain = chain
        self.gossip = gossip
        self._clock = clock
        # Set by the node to its cache of verified transactions.
        self.remember_verified: Callable[[bytes], None] = lambda tx_id: None
        self.signing = SigningStateWriter(
            chain.store.save_signing_state,
            lambda seconds: chain.on_storage_write("signing_state", seconds),
            lambda state, error: self.host.fail(
                f"persisting the signing state (height {state.height}, round {state.round})", error
            ),
        )
        self.host = Host(
            core,
            chain=_ChainPort(chain, self.signing),
            mempool=chain.mempool,
            network=_GossipPort(gossip, self, self.signing),
            transactions=_TransactionsPort(is_verified, self),
            peers=[key or None for key in peer_keys],
            rng=rng,
            storage_errors=(StorageError,),
            on_failure=self._failed,
            verifier=verifier,
        )
        self.host.on_evidence = self._evidence
        self.host.on_synced = self._synced
        self.host.on_block_rejected = self._rejected
        self.on_step: Callable[[str, float], None] = lambda step, seconds: None
        self._position: tuple[int, int, Step] | None = None
        self._position_since = 0.0
        self._wake = trio.Event()
        self._txs_waiting = False

    # ------------------------------------------------------------------ the host's view

    @property
    def core(self) -> Core:
        return self.host.core

    @property
    def counts(self) -> collections.Counter[str]:
        return self.host.counts

    @property
    def evidence(self) -> collections.deque[Equivocation]:
        return self.host.evidence

    @property
    def catchup(self) -> CatchUp:
        return self.host.catchup

    @property
    def peer_heights(self) -> dict[int, int]:
        return self.host.peer_heights

    @property
    def behind(self) -> bool:
        return self.host.behind

    def claimed_height(self) -> int:
        return self.host.claimed_height()

    # ------------------------------------------------------------------ inputs

    def start(self) -> None:
        self.host.start(self._clock())
        self._stepped()

    def feed(self, event: Input) -> None:
        self.host.feed(event, self._clock())
        self._stepped()

    def on_message(self, message: ProposalMessage | Vote) -> None:
        self.host.on_message(message, self._clock())
        self._stepped()

    def on_sync(self, message: SyncRequest | SyncResponse, peer: bytes) -> None:
        self.host.on_sync(message, peer, self._clock())
        self._stepped()

    def txs_available(self) -> None:
        """The mempool has transactions: wake the timer task, which steps the
        core (not the caller: a `POST /tx` does not build a block)."""
        self._txs_waiting = True
        self._wake.set()

    def _stepped(self) -> None:
        self._wake.set()  # the host's next timer may have moved
        self._time_step()

    def _time_step(self) -> None:
        """Report how long each (height, round, step) lasted, when it ends."""
        core = self.core
        position = (core.height, core.round, core.round_step)
        if position == self._position:
            return
        now = time.perf_counter()
        if self._position is not None:
            self.on_step(self._position[2].name.lower(), now - self._position_since)
        self._position, self._position_since = position, now

    # ------------------------------------------------------------------ the one timer

    async def run(self) -> None:
        """The signing-state writer, and the one timer."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.signing.run)
            nursery.start_soon(self._run_timer)

    async def _run_timer(self) -> None:
        """The host's timers and catch-up polls, and waiting transactions."""
        while True:
            if self._wake.is_set():
                self._wake = trio.Event()
            if self._txs_waiting:
                self._txs_waiting = False
                self.host.txs_available(self._clock())
                self._time_step()
            due = self.host.next_timer_ms()
            delay_s = TIMER_SLEEP_S_MAX if due is None else (due - self._clock()) / 1000
            with trio.move_on_after(min(TIMER_SLEEP_S_MAX, max(0.0, delay_s))):
                await self._wake.wait()
            due = self.host.next_timer_ms()
            now = self._clock()
            if due is not None and due <= now:
                self.host.on_timer(now)
                self._time_step()

    # ------------------------------------------------------------------ reports

    def _failed(self, what: str, error: Exception) -> None:
        assert isinstance(error, StorageError)
        self.health.fail(what, error)

    def _evidence(self, evidence: Equivocation) -> None:
        log.warning("equivocation by validator %d", evidence.first.validator)

    def _synced(self, first: int, last: int) -> None:
        log.info("synced heights %d..%d from a peer", first, last)

    def _rejected(self, block: Block, problem: str) -> None:
        log.info("block %d rejected: %s", block.header.height, problem)


# ---------------------------------------------------------------------- the node's ports


class _ChainPort:
    """The host's chain port over `node.daemon.chain.Chain` and its store."""

    def __init__(self, chain: Chain, signing: SigningStateWriter) -> None:
        self._chain = chain
        self.save_signing_state = signing.save  # written off the loop; sends wait for it
        self.next_nonce = chain.store.next_nonce
        self.state_root = chain.state_root
        self.anchor: Callable[[], Anchor] = chain.anchor
        self.sync = chain.sync

    def height(self) -> int:
        return self._chain.store.height()

    def commit(
        self,
        block: Block,
        certificate: CommitCertificate,
        parent_certificate: CommitCertificate | None,
        *,
        sync: bool,
        facts: BlockFacts | None = None,
    ) -> None:
        self._chain.commit(block, certificate, parent_certificate, sync=sync, facts=facts)

    def finalized_encoded(self, first: int, last: int) -> Iterable[tuple[bytes, bytes]]:
        return self._chain.store.finalized_bytes(first, last)

    def certificate_encoded(self, height: int) -> bytes | None:
        return self._chain.store.certificate_bytes(height)


class _TransactionsPort:
    def __init__(self, is_verified: Callable[[bytes], bool], driver: ConsensusDriver) -> None:
        self.is_verified = is_verified
        self._driver = driver

    def verify(self, tx: Transaction, id_: bytes) -> bool:
        if not verify_transaction(tx):
            return False
        self._driver.remember_verified(id_)  # its gossip may still arrive: not again
        return True


class _GossipPort:
    """Consensus messages leave once the signing state they were made under is
    durable (at once when no write is pending)."""

    def __init__(
        self, gossip: GossipNode, driver: ConsensusDriver, signing: SigningStateWriter
    ) -> None:
        self._gossip = gossip
        self._driver = driver
        self._signing = signing

    def broadcast(self, message: ProposalMessage | Vote) -> None:
        encoded = encode_consensus(message)
        self._signing.when_durable(lambda: self._publish(encoded))

    def broadcast_votes(self, votes: list[Vote]) -> None:
        bundle = VoteBundle(nonce=secrets.token_bytes(16), votes=votes)
        encoded = encode_consensus(bundle)
        self._signing.when_durable(lambda: self._publish(encoded))

    def _publish(self, encoded: bytes) -> None:
        try:
            self._gossip.publish_nowait(Topic.CONSENSUS, encoded)
        except BacklogFullError:
            # Rebroadcast repairs this; a vote must not wait behind transactions.
            self._driver.counts["broadcast_dropped"] += 1

    def send(self, peer: object, message: SyncRequest | RawSyncResponse) -> None:
        assert isinstance(peer, bytes)
        self._gossip.send_nowait(peer, Topic.SYNC, encode_sync(message))


def verified_cache(
    mempool_get: Callable[[bytes], object], capacity: int
) -> tuple[Callable[[bytes], bool], Callable[[bytes], None]]:
    """`is_verified(tx_id)` for block checks, and `remember(tx_id)` for transactions
    verified on entry that may have left the pool (bounded, oldest out)."""
    recent: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    def is_verified(id_: bytes) -> bool:
        return id_ in recent or mempool_get(id_) is not None

    def remember(id_: bytes) -> None:
        recent[id_] = None
        if len(recent) > capacity:
            recent.popitem(last=False)

    return is_verified, remember
