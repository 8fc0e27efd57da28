"""The consensus host: runs the core against its ports, sans-IO.

The core decides; the host does what it says. It executes the core's actions
in order (persist, broadcast; build, validate and commit in
`consensus.blockwork`), keeps the core's
timers, drives catch-up (who is ahead, what to ask whom, serving peers), and
tracks the heights validators show. It reads no clock, touches no socket and
draws its randomness from the `rng` it is given: every entry takes `now_ms`,
and the caller asks `next_timer_ms()` when to call `on_timer` next.

The node runs it in a thin trio shell (`node.daemon.consensus`); the
simulator (`consensus.sim`) runs the same host over simulated ports, so every
seed exercises the code the node runs.

Actions run synchronously and in order, so the signing state is handed to
the chain port before the broadcast that depends on it; a port that writes
it later must hold that broadcast until it is durable (the node's does). A storage error (one of the
`storage_errors` types) while executing an action fails the host for good:
the remaining actions of that step (among them the broadcast of a signature
that could not be persisted) are dropped, timers are cleared, and the core is
never stepped again; its memory is ahead of the disk and must not be acted on.
"""

from __future__ import annotations

import collections
import heapq
import random
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from consensus.blockwork import BlockWork
from consensus.config import HostConfig
from consensus.core import Core
from consensus.messages import (
    Broadcast,
    BroadcastVotes,
    Commit,
    DecidedBlock,
    Equivocation,
    Input,
    PersistSigningState,
    ProposalMessage,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    TimeoutElapsed,
    TxsAvailable,
    ValidateBlock,
)
from consensus.ports import ChainPort, MempoolPort, NetworkPort, Peer, TransactionsPort
from consensus.sync import (
    CatchUp,
    RawSyncResponse,
    SyncRequest,
    SyncResponse,
    serve,
)
from consensus.votekeeper import Verifier
from sequencer.crypto import proposal_signing_bytes, verify_signature, vote_signing_bytes
from sequencer.types import Block, Vote

__all__ = ["Host", "HostConfig"]


class Host:
    """One node's consensus: the core, its timers, catch-up and serving."""

    def __init__(
        self,
        core: Core,
        *,
        chain: ChainPort,
        mempool: MempoolPort,
        network: NetworkPort,
        transactions: TransactionsPort,
        peers: Sequence[Peer | None],
        rng: random.Random,
        config: HostConfig | None = None,
        storage_errors: tuple[type[Exception], ...] = (),
        on_failure: Callable[[str, Exception], None] | None = None,
        verifier: Verifier = verify_signature,
    ) -> None:
        """`peers[i]` is how `network` reaches validator i (None: ourselves)."""
        assert len(peers) == len(core.validators)
        self.core = core
        self.config = config or HostConfig()
        self._chain = chain
        self._mempool = mempool
        self._network = network
        self._transactions = transactions
        self._peers = list(peers)
        self._validator_of = {peer: i for i, peer in enumerate(peers) if peer is not None}
        self._rng = rng
        self._storage_errors = storage_errors
        self._on_failure = on_failure
        self._verify = verifier
        self.failed = False
        self._now = 0
        self._inputs: collections.deque[Input] = collections.deque()
        self._busy = False
        self._timers: list[tuple[int, int, TimeoutElapsed]] = []
        self._timer_sequence = 0
        self._sync_at: int | None = None  # the next catch-up poll
        self._probe_at = 0
        self.catchup = CatchUp(
            rng, patience_ms=self.config.sync_patience_ms, max_blocks=self.config.sync_blocks_max
        )
        self._commit_unsynced = False  # while applying a sync response
        self._unsynced_commits = 0
        self.peer_heights: dict[int, int] = {}
        self.evidence: collections.deque[Equivocation] = collections.deque(
            maxlen=self.config.evidence_kept_max
        )
        self.counts: collections.Counter[str] = collections.Counter()
        # Reports for logs (the node) or checks (the simulator).
        self.on_synced: Callable[[int, int], None] = lambda first, last: None
        self.on_evidence: Callable[[Equivocation], None] = lambda evidence: None
        self.on_block_rejected: Callable[[Block, str], None] = lambda block, problem: None
        self._blocks = BlockWork(
            core.chain_id,
            chain,
            mempool,
            transactions,
            self.counts,
            lambda block, problem: self.on_block_rejected(block, problem),
        )
        self._actions: dict[type, Callable[[Any], None]] = {
            PersistSigningState: self._persist,
            Broadcast: self._broadcast,
            BroadcastVotes: self._broadcast_votes,
            ScheduleTimeout: self._schedule,
            RequestValue: self._build,
            ValidateBlock: self._validate,
            Commit: self._commit,
            ReportEvidence: self._report,
        }

    # ------------------------------------------------------------------ entries

    def start(self, now_ms: int) -> None:
        self._now = now_ms
        self._sync_at = now_ms + self.config.sync_poll_ms
        self._execute_all(self.core.start(now_ms))
        self._drain()
        if self._mempool.has_pending():
            self.feed(TxsAvailable(), now_ms)

    def feed(self, event: Input, now_ms: int) -> None:
        """Step the core with `event` and everything its actions feed back."""
        if self.failed:
            return
        self._now = now_ms
        self._inputs.append(event)
        self._drain()

    def txs_available(self, now_ms: int) -> None:
        self.feed(TxsAvailable(), now_ms)

    def on_message(self, message: ProposalMessage | Vote, now_ms: int) -> None:
        """A proposal or vote from the network (relayed: anyone may have sent it)."""
        if isinstance(message, Vote):
            validator, height = message.validator, message.height
        else:
            validator, height = message.proposal.validator, message.proposal.height
        if self._is_news(validator, height) and self._signed_by(validator, message):
            self._observe(validator, height)
        self.feed(message, now_ms)

    def on_sync(self, message: SyncRequest | SyncResponse, peer: Peer, now_ms: int) -> None:
        """A catch-up message sent to us directly by `peer`."""
        if self.failed:
            return
        self._now = now_ms
        if isinstance(message, SyncRequest):
            self._answer(message, peer)
        else:
            self._on_response(message, peer)

    def next_timer_ms(self) -> int | None:
        """When `on_timer` is next due (None: never, the host has failed)."""
        if self.failed:
            return None
        due = self._sync_at
        if self._timers and (due is None or self._timers[0][0] < due):
            due = self._timers[0][0]
        return due

    def on_timer(self, now_ms: int) -> None:
        """Fire every timeout due by `now_ms`, and poll catch-up when due."""
        self._now = now_ms
        while self._timers and self._timers[0][0] <= now_ms and not self.failed:
            _due, _sequence, timeout = heapq.heappop(self._timers)
            self.feed(timeout, now_ms)
        if self._sync_at is not None and self._sync_at <= now_ms and not self.failed:
            self._sync_tick()
            self._sync_at = now_ms + self.config.sync_poll_ms
            if not self.catchup.busy(self.core.height):
                # Nothing to fetch or wait for: only the probe is due (a peer
                # seen ahead, or a response, brings the next poll forward).
                self._sync_at = max(self._sync_at, self._probe_at)

    # ------------------------------------------------------------------ what peers show

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

    def signature_verdict(self, message: ProposalMessage | Vote) -> bool | None:
        """Check a peer's message before it is fed or relayed: True (signed by
        the validator it names), False (not), None (not checked: a height
        this node has passed, which the core drops unchecked anyway). With a
        remembering verifier the core's own check of it costs nothing."""
        if isinstance(message, Vote):
            validator, height = message.validator, message.height
        else:
            validator, height = message.proposal.validator, message.proposal.height
        if height < self.core.height:
            return None
        if not 0 <= validator < len(self.core.validators):
            return False
        return self._signature_ok(validator, message)

    def _is_news(self, validator: int, height: int) -> bool:
        """Would this (validator, height) raise what we know of a peer?"""
        if not (0 <= validator < len(self._peers) and self._peers[validator] is not None):
            return False  # ourselves, or no validator at all: nothing to track
        return height > self.core.height and height > self.peer_heights.get(validator, 0)

    def _signed_by(self, validator: int, message: ProposalMessage | Vote) -> bool:
        """The signature check the core skips for messages of heights it does
        not work on yet: without it anyone could claim a validator is ahead."""
        if self._signature_ok(validator, message):
            return True
        self.counts["height_claims_unsigned"] += 1
        return False

    def _signature_ok(self, validator: int, message: ProposalMessage | Vote) -> bool:
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
        return self._verify(self.core.validators.public_keys[validator], signed, signature)

    def _observe(self, validator: int, height: int) -> None:
        self.catchup.observe(validator, height)
        if height > self.peer_heights.get(validator, 0):
            self.peer_heights[validator] = height
        self._poll_soon()

    def _poll_soon(self) -> None:
        """Catch-up may have work: poll it at the usual pace again."""
        if self._sync_at is not None:
            self._sync_at = min(self._sync_at, self._now + self.config.sync_poll_ms)

    # ------------------------------------------------------------------ actions

    def _drain(self) -> None:
        if self._busy:
            return  # the loop below is already running further up the stack
        self._busy = True
        try:
            while self._inputs and not self.failed:
                self._execute_all(self.core.step(self._inputs.popleft(), self._now))
        finally:
            self._busy = False

    def _execute_all(self, actions: list) -> None:
        for action in actions:
            if self.failed:
                return  # above all, no Broadcast of a signature that is not on disk
            try:
                self._execute(action)
            except self._storage_errors as error:
                self.fail(_failed_action(action), error)

    def fail(self, what: str, error: Exception) -> None:
        """Stop for good: a port failed to store what the core's memory holds
        (also called by a port whose write completes after the step)."""
        if self.failed:
            return
        self.failed = True
        self._inputs.clear()
        self._timers.clear()
        self._sync_at = None
        if self._on_failure is not None:
            self._on_failure(what, error)

    def _execute(self, action: object) -> None:
        self._actions[type(action)](action)

    def _persist(self, action: PersistSigningState) -> None:
        self._chain.save_signing_state(action.state)

    def _broadcast(self, action: Broadcast) -> None:
        self._network.broadcast(action.message)

    def _broadcast_votes(self, action: BroadcastVotes) -> None:
        self._network.broadcast_votes(action.votes)

    def _schedule(self, action: ScheduleTimeout) -> None:
        self._timer_sequence += 1
        timeout = TimeoutElapsed(action.kind, action.height, action.round)
        heapq.heappush(self._timers, (self._now + action.delay_ms, self._timer_sequence, timeout))

    def _commit(self, action: Commit) -> None:
        sync = not self._commit_unsynced
        self._blocks.commit(action, sync=sync)
        self._unsynced_commits += not sync
        self.counts["blocks_committed"] += 1
        if self._mempool.has_pending():
            self._inputs.append(TxsAvailable())

    def _report(self, action: ReportEvidence) -> None:
        self.evidence.append(action.evidence)
        self.counts["equivocations"] += 1
        self.on_evidence(action.evidence)

    def _build(self, request: RequestValue) -> None:
        self._inputs.append(self._blocks.build(request, self._now))

    def _validate(self, action: ValidateBlock) -> None:
        self._inputs.append(self._blocks.validate(action))

    # ------------------------------------------------------------------ catch-up

    def _sync_tick(self) -> None:
        """Ask what catch-up wants now; and, since idle peers send nothing (no
        transactions, no heights), now and then ask a random validator whether
        it has blocks we lack (a restarted or late node learns so)."""
        if self._request_blocks():
            return
        # The probe runs even while requests are out: the peers seen ahead may
        # be a byzantine validator claiming heights it cannot serve.
        if self._now >= self._probe_at:
            self._probe_at = self._now + self.config.sync_probe_ms
            validators = [i for i, peer in enumerate(self._peers) if peer is not None]
            if validators:
                request = SyncRequest(self.core.height, self.config.sync_blocks_max)
                self._request(self._rng.choice(validators), request)

    def _request_blocks(self) -> bool:
        """Send what catch-up asks for now; whether it asked for anything."""
        wanted = self.catchup.poll(self.core.height, self._now)
        for validator, request in wanted:
            self._request(validator, request)
        return bool(wanted)

    def _request(self, validator: int, request: SyncRequest) -> None:
        peer = self._peers[validator] if 0 <= validator < len(self._peers) else None
        if peer is None:
            return
        self.counts["sync_requests"] += 1
        # A fresh nonce: gossip drops a message whose bytes it has seen.
        request = msgspec.structs.replace(request, nonce=self._rng.getrandbits(64))
        self._network.send(peer, request)

    def _on_response(self, message: SyncResponse, peer: Peer) -> None:
        validator = self._validator_of.get(peer, -1)  # -1: not a validator
        response = self.catchup.received(validator, message, self.core.height)
        ready = None if response is None else (validator, response)
        while ready is not None and not self.failed:
            self._apply_from(*ready)
            ready = self.catchup.next_ready(self.core.height)
        if not self.failed:
            self._request_blocks()  # pipelined: the next range leaves at once

    def _apply_from(self, validator: int, response: SyncResponse) -> None:
        """Apply a response, then judge its sender by what verified. The heights
        a response claims prove nothing until its certificates verify (the
        core checks them): blocks that verified prove the peer had them, and a
        full response suggests it has more (a claim the next response tests);
        a peer whose blocks do not verify loses every claim, and catch-up asks
        someone else."""
        height = self.core.height
        refused = self._apply(response)
        if validator < 0:
            return
        if refused:
            self.counts["sync_responses_refused"] += 1
            self.catchup.forget(validator)
            self.peer_heights.pop(validator, None)
        elif self.core.height > height:
            full = len(response.blocks) >= self.config.sync_blocks_max
            self.catchup.observe(validator, self.core.height + full)
            self._poll_soon()

    def _apply(self, response: SyncResponse) -> bool:
        """Feed a response's blocks to the core, storing them unsynced; then one
        synced write makes them all durable. Signatures stay safe: the signing
        state is written synced, and storage keeps its writes in order, so any
        later signature finds these blocks durable before it leaves the node.
        Returns whether a block we lacked was refused."""
        first = self.core.height
        self._commit_unsynced = True
        try:
            refused = self._feed_decided(response)
        except BaseException:
            self._commit_unsynced = False  # a crash (simulated) or a bug: no sync
            raise
        self._commit_unsynced = False
        if self._unsynced_commits and not self.failed:
            self._unsynced_commits = 0
            try:
                self._chain.sync()
            except self._storage_errors as error:
                self._fail("syncing the blocks fetched from a peer", error)
        if self.core.height > first:
            self.on_synced(first, self.core.height - 1)
        return refused

    def _feed_decided(self, response: SyncResponse) -> bool:
        parent = response.parent_certificate
        for block, certificate in response.blocks:
            height = self.core.height
            if block.header.height == height:
                self.feed(DecidedBlock(block, certificate, parent), self._now)
                if self.core.height == height:
                    return not self.failed  # refused (counted by the core): the rest cannot follow
            elif block.header.height > height:
                return True  # a gap: not the blocks asked for
            # Each block's last_commit_id names the peer's certificate of
            # the block before, which is the one in this response.
            parent = certificate
        return False

    def _answer(self, request: SyncRequest, peer: Peer) -> None:
        try:
            response = self._serve(request)
        except self._storage_errors as error:
            self._fail("reading blocks for a peer", error)
            return
        if response is not None:
            self._network.send(peer, response)

    def _serve(self, request: SyncRequest) -> RawSyncResponse | None:
        """Blocks for a peer, within one gossip message."""
        chain = self._chain
        response = serve(
            request,
            chain.height(),
            chain.finalized_encoded,
            chain.certificate_encoded,
            self.config.sync_response_bytes_max,
        )
        if response is not None:
            self.counts["sync_served_blocks"] += len(response.blocks)
        return response


def _failed_action(action: object) -> str:
    """What the host was doing when a storage error hit `action`, for logs and health."""
    if isinstance(action, PersistSigningState):
        state = action.state
        return f"persisting the signing state (height {state.height}, round {state.round})"
    if isinstance(action, Commit):
        return f"committing the block at height {action.block.header.height}"
    return f"reading the store for consensus ({type(action).__name__})"
