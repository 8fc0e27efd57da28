"""The consensus driver: feeds the pure core, executes its actions in order,
runs its one timer, and drives catch-up (DESIGN 4 and 8).

Actions run in the order the core emits them and synchronously, so the
signing state is fsynced before the broadcast that follows it leaves the
node. Answers the core asks for (a block to propose, a block's state check)
are computed at once and fed back through the same input queue.

A `StorageError` while executing an action (persisting the signing state,
committing a block, reading the store) fails the node (`node.health`): the
remaining actions of that step, among them the broadcast of the signature
that could not be persisted, are dropped, and the core is never stepped
again; its in-memory state is ahead of the disk and must not be acted on.
"""

from __future__ import annotations

import collections
import heapq
import logging
import random
import time
from collections.abc import Callable

import msgspec
import trio

from consensus.blocks import build_block, state_problem
from consensus.core import Core
from consensus.messages import (
    BlockValidated,
    Broadcast,
    Commit,
    DecidedBlock,
    PersistSigningState,
    ProposalMessage,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    Step,
    TimeoutElapsed,
    TxsAvailable,
    ValidateBlock,
    ValueReady,
)
from consensus.sync import SYNC_BLOCKS_MAX, CatchUp, RawSyncResponse, SyncRequest, SyncResponse
from net.driver import GossipNode
from net.errors import BacklogFullError
from net.wire import Topic
from node.chain import Chain
from node.health import StorageHealth
from node.messages import encode_consensus, encode_sync
from sequencer.crypto import (
    proposal_signing_bytes,
    verify_signature,
    verify_transaction,
    vote_signing_bytes,
)
from sequencer.ids import block_id, tx_id
from sequencer.types import Block, Transaction, Vote
from storage.errors import StorageError

__all__ = ["ConsensusDriver", "wall_ms"]

log = logging.getLogger("sequencer.consensus")

SYNC_POLL_S = 0.1
SYNC_PATIENCE_MS = 300
SYNC_PROBE_MS = 1_000
# A sync response stays well inside one gossip message (4 MiB).
SYNC_RESPONSE_BYTES_MAX = 3 * 1024 * 1024
EVIDENCE_KEPT_MAX = 64


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
    ) -> None:
        """`clock` gives the consensus time in Unix milliseconds (a chaos run
        offsets it to jump one node's clock)."""
        self.core = core
        self.health = StorageHealth() if health is None else health
        self._clock = clock
        # Set by the node to its cache of verified transactions.
        self.remember_verified: Callable[[Transaction], None] = lambda tx: None
        self.chain = chain
        self.gossip = gossip
        self._peer_keys = peer_keys  # validator index -> public key (b"" for us)
        self._validator_of = {key: index for index, key in enumerate(peer_keys) if key}
        self._rng = rng
        self._is_verified = is_verified
        self._inputs: collections.deque[object] = collections.deque()
        self._busy = False
        self._timers: list[tuple[int, int, TimeoutElapsed]] = []
        self._timer_sequence = 0
        self._timer_changed = trio.Event()
        self.catchup = CatchUp(rng, patience_ms=SYNC_PATIENCE_MS)
        self._commit_unsynced = False  # while applying a sync response
        self._unsynced_commits = 0
        self.peer_heights: dict[int, int] = {}
        self.evidence: collections.deque[object] = collections.deque(maxlen=EVIDENCE_KEPT_MAX)
        self.counts: collections.Counter[str] = collections.Counter()
        self.on_step: Callable[[str, float], None] = lambda step, seconds: None
        self._position: tuple[int, int, Step] | None = None
        self._position_since = 0.0

    # ------------------------------------------------------------------ inputs

    def start(self) -> None:
        self._execute_all(self.core.start(self._clock()))

    def feed(self, event: object) -> None:
        """Step the core with `event` and everything its actions feed back."""
        if self.health.failed:
            return  # the core is ahead of the disk: never step it again
        self._inputs.append(event)
        if self._busy:
            return  # the loop below is already running further up the stack
        self._busy = True
        try:
            while self._inputs and not self.health.failed:
                self._execute_all(self.core.step(self._inputs.popleft(), self._clock()))
        finally:
            self._busy = False
        if self.health.failed:
            self._inputs.clear()
            self._timers.clear()
            return
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

    def on_message(self, message: ProposalMessage | Vote) -> None:
        if isinstance(message, Vote):
            validator, height = message.validator, message.height
        else:
            validator, height = message.proposal.validator, message.proposal.height
        if self._is_news(validator, height) and self._signed_by(validator, message):
            self._observe(validator, height)
        self.feed(message)

    def on_sync(self, message: SyncRequest | SyncResponse, peer: bytes) -> None:
        if isinstance(message, SyncRequest):
            if self.health.failed:
                return
            try:
                response = self._serve(message)
            except StorageError as error:
                self.health.fail("reading blocks for a peer", error)
                return
            if response is not None:
                self.gossip.send_nowait(peer, Topic.SYNC, encode_sync(response))
            return
        validator = self._validator_of.get(peer, -1)  # -1: not a validator
        height = self.core.height
        response = self.catchup.received(validator, message, height)
        while response is not None:
            self._apply(response)
            response = self.catchup.next_ready(self.core.height)
        # The heights a response claims prove nothing until its certificates
        # verify (the core checks them); a peer whose blocks for our height do
        # not verify loses the height it claimed, and catch-up asks someone
        # else until it claims one again.
        first = message.blocks[0][0].header.height if message.blocks else None
        if first == height and self.core.height == height and validator >= 0:
            self.counts["sync_responses_refused"] += 1
            self.catchup.forget(validator)
            self.peer_heights.pop(validator, None)
        self._request_blocks()  # pipelined: the next range leaves at once

    def _apply(self, response: SyncResponse) -> None:
        """Feed a response's blocks to the core, storing them unsynced; then one
        synced write makes them all durable. Signatures stay safe: the signing
        state is written synced, and LevelDB syncs its log in order, so any
        later signature finds these blocks durable before it leaves the node."""
        parent = response.parent_certificate
        first = self.core.height
        self._commit_unsynced = True
        try:
            for block, certificate in response.blocks:
                height = self.core.height
                if block.header.height == height:
                    self.feed(DecidedBlock(block, certificate, parent))
                    if self.core.height == height:
                        break  # refused (counted by the core): the rest cannot follow
                elif block.header.height > height:
                    break
                # Each block's last_commit_id names the peer's certificate of
                # the block before, which is the one in this response.
                parent = certificate
        finally:
            self._commit_unsynced = False
            if self._unsynced_commits:
                self._unsynced_commits = 0
                self.chain.sync()
        if self.core.height > first:
            log.info("synced heights %d..%d from a peer", first, self.core.height - 1)

    def txs_available(self) -> None:
        self.feed(TxsAvailable())

    @property
    def behind(self) -> bool:
        """Peers work on heights beyond the next one: we are catching up."""
        return self.claimed_height() > self.core.height + 1

    def claimed_height(self) -> int:
        """The highest height that validators holding more than 1/3 of the power
        work on: at least one of them is honest, so one byzantine validator
        signing a vote at height 10**12 cannot keep this node "behind"."""
        validators = self.core.validators
        power = 0
        for validator, height in sorted(self.peer_heights.items(), key=lambda e: -e[1]):
            power += validators.powers[validator]
            if validators.is_one_third(power):
                return height
        return 0

    def _is_news(self, validator: int, height: int) -> bool:
        """Would this (validator, height) raise what we know of a peer?"""
        if not (0 <= validator < len(self._peer_keys) and self._peer_keys[validator]):
            return False  # ourselves, or no validator at all: nothing to track
        return height > self.core.height and height > self.peer_heights.get(validator, 0)

    def _signed_by(self, validator: int, message: ProposalMessage | Vote) -> bool:
        """The signature check the core skips for messages of heights it does
        not work on yet: without it anyone could claim a validator is ahead."""
        chain_id = self.core.chain_id
        if isinstance(message, Vote):
            signed = vote_signing_bytes(
                chain_id, message.kind, message.height, message.round, message.block_id
            )
            signature = message.signature
        else:
            p = message.proposal
            signed = proposal_signing_bytes(chain_id, p.height, p.round, p.pol_round, p.block_id)
            signature = p.signature
        if verify_signature(self._peer_keys[validator], signed, signature):
            return True
        self.counts["height_claims_unsigned"] += 1
        return False

    def _observe(self, validator: int, height: int) -> None:
        self.catchup.observe(validator, height)
        if height > self.peer_heights.get(validator, 0):
            self.peer_heights[validator] = height

    # ----------------------------------------------------------------- actions

    def _execute_all(self, actions: list[object]) -> None:
        for action in actions:
            if self.health.failed:
                return  # above all, no Broadcast of a signature that is not on disk
            try:
                self._execute(action)
            except StorageError as error:
                self.health.fail(_failed_action(action), error)

    def _execute(self, action: object) -> None:
        if isinstance(action, PersistSigningState):
            started = time.perf_counter()
            self.chain.store.save_signing_state(action.state)
            self.chain.on_storage_write("signing_state", time.perf_counter() - started)
        elif isinstance(action, Broadcast):
            self._broadcast(action.message)
        elif isinstance(action, ScheduleTimeout):
            self._schedule(action)
        elif isinstance(action, RequestValue):
            self._inputs.append(self._build(action))
        elif isinstance(action, ValidateBlock):
            self._inputs.append(self._validate(action.block))
        elif isinstance(action, Commit):
            sync = not self._commit_unsynced
            self.chain.commit(
                action.block, action.certificate, action.parent_certificate, sync=sync
            )
            self._unsynced_commits += not sync
            self.counts["blocks_committed"] += 1
            if self.chain.mempool.statistics().get("pending", 0):
                self._inputs.append(TxsAvailable())
        elif isinstance(action, ReportEvidence):
            self.evidence.append(action.evidence)
            self.counts["equivocations"] += 1
            log.warning("equivocation by validator %d", action.evidence.first.validator)

    def _broadcast(self, message: ProposalMessage | Vote) -> None:
        try:
            self.gossip.publish_nowait(Topic.CONSENSUS, encode_consensus(message))
        except BacklogFullError:
            # Rebroadcast repairs this; a vote must not wait behind transactions.
            self.counts["broadcast_dropped"] += 1

    def _build(self, request: RequestValue) -> ValueReady:
        chain = self.chain
        selected = chain.mempool.select(request.max_gas, request.max_txs)
        block, _ = build_block(
            chain_id=chain.genesis.chain_id,
            height=request.height,
            round=request.round,
            proposer=request.proposer,
            timestamp_ms=max(self._clock(), request.timestamp_ms_min),
            parent_id=request.parent_id,
            last_commit_id=request.last_commit_id,
            parent_state_root=chain.state_root(),
            txs=[entry.tx for entry in selected],
            next_nonce=chain.store.next_nonce,
        )
        return ValueReady(request.height, request.round, block)

    def _validate(self, block: Block) -> BlockValidated:
        problem = state_problem(
            block,
            parent_state_root=self.chain.state_root(),
            next_nonce=self.chain.store.next_nonce,
            is_verified=self._is_verified,
            verify=self._verify_counted,
        )
        if problem is not None:
            log.info("block %d rejected: %s", block.header.height, problem)
        return BlockValidated(block_id(block.header), problem is None, problem or "")

    def _verify_counted(self, tx: Transaction) -> bool:
        self.counts["block_txs_verified"] += 1
        if not verify_transaction(tx):
            return False
        self.remember_verified(tx)  # its gossip may still arrive: not again
        return True

    # ------------------------------------------------------------------ timers

    def _schedule(self, action: ScheduleTimeout) -> None:
        self._timer_sequence += 1
        timeout = TimeoutElapsed(action.kind, action.height, action.round)
        heapq.heappush(
            self._timers, (self._clock() + action.delay_ms, self._timer_sequence, timeout)
        )
        self._timer_changed.set()

    async def run_timers(self) -> None:
        while True:
            if self._timer_changed.is_set():
                self._timer_changed = trio.Event()
            delay_s = (self._timers[0][0] - self._clock()) / 1000 if self._timers else 3600.0
            with trio.move_on_after(max(0.0, delay_s)):
                await self._timer_changed.wait()
            now = self._clock()
            while self._timers and self._timers[0][0] <= now:
                _at, _sequence, timeout = heapq.heappop(self._timers)
                self.feed(timeout)

    # ---------------------------------------------------------------- catch-up

    async def run_catchup(self) -> None:
        """Fetch blocks from peers seen ahead (requests also leave as soon as a
        response is applied; this loop starts catch-up, and re-asks ranges
        whose answer timed out); and, since idle peers send nothing (no
        transactions, no heights), ask one at random now and then whether it
        has blocks we lack (a restarted or late node learns so)."""
        probe_at = 0
        while True:
            await trio.sleep(SYNC_POLL_S)
            if self.health.failed:
                continue  # nothing fetched could be stored
            if self._request_blocks():
                continue
            now = self._clock()
            # The probe runs even while requests are out: the peers seen ahead
            # may be a byzantine validator claiming heights it cannot serve.
            if now >= probe_at:
                probe_at = now + SYNC_PROBE_MS
                peers = [i for i, key in enumerate(self._peer_keys) if key]
                if peers:
                    request = SyncRequest(self.core.height, SYNC_BLOCKS_MAX)
                    self._request(self._rng.choice(peers), request)

    def _request_blocks(self) -> bool:
        """Send what catch-up asks for now; whether it asked for anything."""
        wanted = self.catchup.poll(self.core.height, self._clock())
        for validator, request in wanted:
            self._request(validator, request)
        return bool(wanted)

    def _request(self, validator: int, request: SyncRequest) -> None:
        if 0 <= validator < len(self._peer_keys) and self._peer_keys[validator]:
            self.counts["sync_requests"] += 1
            # A fresh nonce: an identical earlier request would be dropped as seen.
            request = msgspec.structs.replace(request, nonce=self._rng.getrandbits(64))
            message = encode_sync(request)
            self.gossip.send_nowait(self._peer_keys[validator], Topic.SYNC, message)

    def _serve(self, request: SyncRequest) -> RawSyncResponse | None:
        """Up to `max_blocks` finalized blocks, within one gossip message, from
        their stored encodings (nothing decoded, nothing re-encoded)."""
        store = self.chain.store
        tip = store.height()
        if request.from_height > tip:
            return None
        last = min(tip, request.from_height + request.max_blocks - 1)
        blocks: list[tuple[msgspec.Raw, msgspec.Raw]] = []
        size = 0
        for block, certificate in store.finalized_bytes(request.from_height, last):
            size += len(block) + len(certificate)
            if blocks and size > SYNC_RESPONSE_BYTES_MAX:
                break
            blocks.append((msgspec.Raw(block), msgspec.Raw(certificate)))
        parent = None
        if request.from_height > 1:
            raw = store.certificate_bytes(request.from_height - 1)
            assert raw is not None, "a stored block has a stored certificate below it"
            parent = msgspec.Raw(raw)
        self.counts["sync_served_blocks"] += len(blocks)
        return RawSyncResponse(parent, blocks)


def _failed_action(action: object) -> str:
    """What the node was doing when a storage error hit `action`, for the log and /health."""
    if isinstance(action, PersistSigningState):
        state = action.state
        return f"persisting the signing state (height {state.height}, round {state.round})"
    if isinstance(action, Commit):
        return f"committing the block at height {action.block.header.height}"
    return f"reading the store for consensus ({type(action).__name__})"


def verified_cache(
    mempool_get: Callable[[bytes], object], capacity: int
) -> tuple[Callable[[bytes], bool], Callable[[Transaction], None]]:
    """`is_verified(tx_id)` for block checks, and `remember(tx)` for transactions
    verified on entry that may have left the pool (bounded, oldest out)."""
    recent: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    def is_verified(id_: bytes) -> bool:
        return id_ in recent or mempool_get(id_) is not None

    def remember(tx: Transaction) -> None:
        recent[tx_id(tx)] = None
        if len(recent) > capacity:
            recent.popitem(last=False)

    return is_verified, remember
