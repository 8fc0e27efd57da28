"""The consensus driver: feeds the pure core, executes its actions in order,
runs its one timer, and drives catch-up (DESIGN 4 and 8).

Actions run in the order the core emits them and synchronously, so the
signing state is fsynced before the broadcast that follows it leaves the
node. Answers the core asks for (a block to propose, a block's state check)
are computed at once and fed back through the same input queue.
"""

from __future__ import annotations

import collections
import heapq
import logging
import random
import time
from collections.abc import Callable

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
from consensus.sync import SYNC_BLOCKS_MAX, CatchUp, SyncRequest, SyncResponse
from net.driver import GossipNode
from net.errors import BacklogFullError
from net.wire import Topic
from node.chain import Chain
from node.messages import encode_consensus, encode_sync
from sequencer.crypto import verify_transaction
from sequencer.ids import block_id, tx_id
from sequencer.types import Block, Transaction, Vote

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
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        """`clock` gives the consensus time in Unix milliseconds (a chaos run
        offsets it to jump one node's clock)."""
        self.core = core
        self._clock = clock
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
        self._inputs.append(event)
        if self._busy:
            return  # the loop below is already running further up the stack
        self._busy = True
        try:
            while self._inputs:
                self._execute_all(self.core.step(self._inputs.popleft(), self._clock()))
        finally:
            self._busy = False
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
            self._observe(message.validator, message.height)
        else:
            self._observe(message.proposal.validator, message.proposal.height)
        self.feed(message)

    def on_sync(self, message: SyncRequest | SyncResponse, peer: bytes) -> None:
        if isinstance(message, SyncRequest):
            response = self._serve(message)
            if response is not None:
                self.gossip.send_nowait(peer, Topic.SYNC, encode_sync(response))
            return
        if message.blocks:
            # The peer has every block it sent: it works on the height after.
            validator = self._validator_of.get(peer)
            if validator is not None:
                self._observe(validator, message.blocks[-1][0].header.height + 1)
        parent = message.parent_certificate
        for block, certificate in message.blocks:
            self.feed(DecidedBlock(block, certificate, parent))
            parent = None

    def txs_available(self) -> None:
        self.feed(TxsAvailable())

    @property
    def behind(self) -> bool:
        """Peers work on heights beyond the next one: we are catching up."""
        return max(self.peer_heights.values(), default=0) > self.core.height + 1

    def _observe(self, validator: int, height: int) -> None:
        self.catchup.observe(validator, height)
        if height > self.peer_heights.get(validator, 0):
            self.peer_heights[validator] = height

    # ----------------------------------------------------------------- actions

    def _execute_all(self, actions: list[object]) -> None:
        for action in actions:
            self._execute(action)

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
            self.chain.commit(action.block, action.certificate, action.parent_certificate)
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
        return verify_transaction(tx)

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
        """Fetch blocks from peers seen ahead; and, since idle peers send
        nothing (no transactions, no heights), ask one at random now and then
        whether it has blocks we lack (a restarted or late node learns so)."""
        probe_at = 0
        while True:
            await trio.sleep(SYNC_POLL_S)
            now = self._clock()
            height = self.core.height
            wanted = self.catchup.poll(height, now, max_blocks=SYNC_BLOCKS_MAX)
            if wanted is None and now >= probe_at:
                probe_at = now + SYNC_PROBE_MS
                peers = [i for i, key in enumerate(self._peer_keys) if key]
                if peers:
                    wanted = self._rng.choice(peers), SyncRequest(height, SYNC_BLOCKS_MAX)
            if wanted is not None:
                self._request(*wanted)

    def _request(self, validator: int, request: SyncRequest) -> None:
        if 0 <= validator < len(self._peer_keys) and self._peer_keys[validator]:
            self.counts["sync_requests"] += 1
            message = encode_sync(request)
            self.gossip.send_nowait(self._peer_keys[validator], Topic.SYNC, message)

    def _serve(self, request: SyncRequest) -> SyncResponse | None:
        """Up to `max_blocks` finalized blocks, within one gossip message."""
        store = self.chain.store
        if request.from_height > store.height():
            return None
        last = min(store.height(), request.from_height + request.max_blocks - 1)
        blocks = []
        size = 0
        for height in range(request.from_height, last + 1):
            size += len(store.block_bytes(height) or b"")
            if blocks and size > SYNC_RESPONSE_BYTES_MAX:
                break
            block, certificate = store.block(height), store.certificate(height)
            assert block is not None
            assert certificate is not None
            blocks.append((block, certificate))
        parent = store.certificate(request.from_height - 1) if request.from_height > 1 else None
        return SyncResponse(parent, blocks)


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
