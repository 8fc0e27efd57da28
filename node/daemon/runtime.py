"""The node: every subsystem in one trio nursery.

    gossip (UDP)  ->  tx / consensus / sync readers  ->  ingest, consensus driver
    RPC (Hypercorn + Starlette)  ->  ingest.submit   ->  mempool + journal + gossip
    consensus driver  ->  chain.commit  ->  store, mempool, finality subscribers

With `[chaos] control` on, `chaos.json` in the home sets transport faults
and a consensus clock offset at start and on SIGUSR1 (`node.daemon.chaos_control`).

Start-up reads the store's tip and signing state (no replay of history) and
re-admits the journaled transactions. SIGINT and SIGTERM cancel the nursery;
the store is closed last.
"""

from __future__ import annotations

import logging
import os
import random
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import trio

from consensus.core import Core
from consensus.guard import RememberingVerifier
from net.driver import GossipNode
from net.identity import peer_id
from net.wire import Topic
from node.api.backend import Finalized, SubmitResult
from node.api.events import KEEPALIVE_S
from node.api.rpc import build_app
from node.api.server import (
    DESCRIPTOR_RESERVE,
    ConnectionCaps,
    connection_cap,
    http_config,
    raise_descriptor_limit,
    serve,
)
from node.config import NodeConfig, load_config
from node.daemon.batcher import BatcherService
from node.daemon.chain import Chain, PoolPruner
from node.daemon.chaos_control import OffsetClock, run_chaos_control
from node.daemon.consensus import ConsensusDriver, verified_cache, wall_ms
from node.daemon.gcpauses import GcPauses
from node.daemon.health import StorageHealth
from node.daemon.inbound import Inbound
from node.daemon.ingest import Ingest, JournalWriter
from node.daemon.limits import (
    REANNOUNCE_TXS_MAX,
    RECONNECT_POLL_S,
    RESTORED_ANNOUNCE_DELAY_S,
    VERIFIED_REMEMBERED_MAX,
)
from node.daemon.messages import (
    TX_BATCH_MAX,
    encode_txs,
)
from node.daemon.metrics import NodeMetrics
from node.errors import ConfigError
from sequencer.certificate import ValidatorSet
from sequencer.codec import encode
from sequencer.crypto import PrivateKey, load_key, verify_signature
from sequencer.genesis import load_genesis
from sequencer.ids import hash32
from sequencer.l1.base import Sink
from sequencer.mempool import Mempool
from sequencer.types import Genesis, Transaction
from storage.errors import StorageError
from storage.faults import ENV_VAR as FAULT_ENV_VAR
from storage.faults import FaultyKV, parse_faults
from storage.kv import KV
from storage.leveldb import LevelDBKV
from storage.store import Store

__all__ = ["Node", "run_node"]

log = logging.getLogger("sequencer.node")


class Node:
    """One node's subsystems, wired; implements `node.api.backend.Backend`."""

    def __init__(self, home: Path, config: NodeConfig) -> None:
        self.home = home
        self.config = config
        self.genesis: Genesis = load_genesis(config.genesis_path(home))
        self.key: PrivateKey = load_key(config.key_path(home))
        chain_id = self.genesis.chain_id
        self.store = Store(
            open_kv(config.data_path(home)),
            chain_id=chain_id,
            genesis_hash=hash32(encode(self.genesis)),
        )
        self.health = StorageHealth()
        self.connections: ConnectionCaps | None = None  # once the RPC serves
        self.mempool = Mempool(config.mempool(chain_id), self.store.next_nonce)
        self.chain = Chain(self.genesis, self.store, self.mempool)
        self.validators = ValidatorSet.from_genesis(self.genesis)
        self.gossip = GossipNode.from_multiaddrs(
            self.key,
            config.p2p_listen,
            config.peer_addresses,
            config=config.gossip(),
            faults=config.faults(),
            # Relayed only once their signatures verified (`node.daemon.inbound`).
            validated_topics=(Topic.CONSENSUS,),
        )
        # Shared by the core and the check in `node.daemon.inbound`: a vote
        # checked there is not checked again.
        verifier = RememberingVerifier(verify_signature)
        is_verified, remember = verified_cache(self.mempool.get, VERIFIED_REMEMBERED_MAX)
        core = Core(
            chain_id=chain_id,
            validators=self.validators,
            params=self.genesis.consensus,
            anchor=self.chain.anchor(),
            key=self.key,
            signing_state=self.store.signing_state(),
            config=config.core(),
            verifier=verifier,
        )
        peer_keys = [
            v.public_key if v.public_key != self.key.public_key else b""
            for v in self.genesis.validators
        ]
        # Consensus time; a chaos run may offset it (`node.daemon.chaos_control`).
        self.clock = OffsetClock()
        self.consensus = ConsensusDriver(
            core,
            self.chain,
            self.gossip,
            peer_keys,
            is_verified,
            random.Random(),
            health=self.health,
            clock=self.clock,
            verifier=verifier,
        )
        self.consensus.remember_verified = remember
        self.journal = (
            JournalWriter(self.store, lambda txs: self.ingest.publish(txs), self.health)
            if config.node.journal
            else None
        )
        self.ingest = Ingest(
            self.mempool,
            self.journal,
            self.gossip,
            wall_ms,
            self.consensus.txs_available,
            remember,
            self.health,
        )
        self.ingest.is_verified = is_verified
        self.inbound = Inbound(self.gossip, self.ingest, self.consensus)
        self.batcher = make_batcher(home, config, self.chain) if config.batcher.enabled else None
        self._metrics = NodeMetrics(self)
        # In this order: the metrics read the pool entries that pruning removes.
        self.chain.on_commit += [self._metrics.on_commit, PoolPruner(self.mempool, self.store)]
        self.chain.on_storage_write = self._metrics.storage_write
        self.consensus.on_step = self._metrics.step_ended
        if self.journal is not None:
            self.journal.on_write = self._metrics.storage_write
        self._restore_journal()

    def _restore_journal(self) -> None:
        journal = list(self.store.journal())
        results = self.mempool.restore(journal, wall_ms())
        stale = [seq for seq, result in results if not result.ok]
        self.store.remove_journal(stale)
        # Peers may never have seen these (we may have died before gossiping
        # them): announce them again once the network is up.
        kept = {seq for seq, result in results if result.ok}
        self._restored = [tx for seq, _time, tx in journal if seq in kept]
        log.info(
            "mempool restored: %d from the journal, %d stale", len(results) - len(stale), len(stale)
        )

    # ------------------------------------------------------------------ Backend

    def failure(self) -> str | None:
        return self.health.failure

    def ready(self) -> bool:
        if self.health.failed:
            return False
        connected = len(self.genesis.validators) == 1 or self.gossip.alive_peers() > 0
        return connected and not self.consensus.behind

    async def submit(self, txs: list[Transaction]) -> list[SubmitResult]:
        results = await self.ingest.submit(txs)
        self._metrics.on_submit(results)
        return results

    def status(self) -> dict[str, Any]:
        core = self.consensus.core
        tip = self.store.tip()
        gossip_stats = self.gossip.statistics().gossip
        return {
            "chain_id": self.genesis.chain_id,
            "node": self.config.node.name,
            "peer_id": peer_id(self.key.public_key),
            "validator_index": core.index,
            "height": self.store.height(),
            "block_id": tip.block_id.hex() if tip else None,
            "consensus": {
                "height": core.height,
                "round": core.round,
                "step": int(core.round_step),
                # Broadcasts waiting for the signing state to be durable.
                "signing": {
                    "pending": self.consensus.signing.pending,
                    "held": self.consensus.signing.held,
                    "dropped": self.consensus.signing.dropped,
                },
            },
            "mempool": self.mempool.statistics().as_json(),
            "peers_alive": self.gossip.alive_peers(),
            "p2p": {
                # Datagrams of a peer's older session after its newer one: its
                # key runs in two processes. Restarts: ours, after being cut off.
                "session_conflicts": gossip_stats.session_conflicts,
                "session_restarts": gossip_stats.session_restarts,
                # Times every peer went down: the pool is announced again after.
                "isolations": gossip_stats.isolations,
            },
            "ready": self.ready(),
            "equivocations": self.consensus.counts["equivocations"],
            "storage_failed": self.health.failure,
            "batcher": None if self.batcher is None else self.batcher.status(),
        }

    def batches(self, first: int, limit: int) -> list[dict[str, Any]]:
        if self.batcher is None:
            return []
        return [record.to_json() for record in self.batcher.records(first, limit)]

    def batch(self, number: int) -> dict[str, Any] | None:
        record = None if self.batcher is None else self.batcher.record(number)
        return None if record is None else record.to_json()

    def l1_batch_of(self, height: int) -> tuple[int, bytes] | None:
        record = None if self.batcher is None else self.batcher.covering(height)
        if record is None or record.state != "confirmed":
            return None
        return record.number, record.commitment

    def peers(self) -> list[dict[str, Any]]:
        return [
            {
                "peer_id": peer_id(p.public_key),
                "address": f"{p.address[0]}:{p.address[1]}",
                "state": p.state,
                "rtt_ms": p.rtt_ms,
            }
            for p in self.gossip.peers()
        ]

    def finalized(self, from_height: int) -> AsyncIterator[Finalized]:
        return self.chain.finalized(from_height)

    def metrics(self) -> bytes:
        return self._metrics.render()

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with GcPauses(self._metrics.gc_pause):
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.gossip.run)
                    if self.config.chaos.control:
                        await nursery.start(
                            run_chaos_control,
                            self.home,
                            self.validators.public_keys,
                            self.gossip.set_faults,
                            self.clock,
                        )
                    if self.journal is not None:
                        nursery.start_soon(self.journal.run)
                    for topic, reader in self.inbound.readers().items():
                        channel = self.gossip.subscribe(topic, reader.buffered)
                        nursery.start_soon(self.inbound.read, channel, reader)
                    self.consensus.start()  # it steps the core for pending transactions
                    nursery.start_soon(self.consensus.run)
                    nursery.start_soon(self._announce_restored)
                    nursery.start_soon(self._announce_on_reconnect)
                    if self.batcher is not None:
                        nursery.start_soon(self._run_batcher, self.batcher)
                    await nursery.start(self._serve_rpc)
                    log.info(
                        "node %s up: rpc %s, p2p %s, height %d",
                        self.config.node.name,
                        self.config.rpc.listen,
                        self.config.p2p_listen,
                        self.store.height(),
                    )
                    task_status.started()
        finally:
            self.store.close()

    async def _run_batcher(self, batcher: BatcherService) -> None:
        # A batch record it could not save fails the node like any other write;
        # raised in the batcher's own nursery, it arrives in an exception group.
        try:
            await batcher.run()
        except* StorageError as group:
            error: BaseException = group
            while isinstance(error, BaseExceptionGroup):
                error = error.exceptions[0]
            assert isinstance(error, StorageError)
            self.health.fail("recording an L1 batch", error)

    async def _announce_on_reconnect(self) -> None:
        """Gossip the pool again when peers come back after none was alive: what
        the node acknowledged meanwhile (cut off, or its key taken over by
        another process) reached nobody."""
        announced_after = 0  # isolations (every peer down) already answered
        while True:
            await trio.sleep(RECONNECT_POLL_S)
            # Counted by the gossip core, not sampled here: a cut shorter than
            # the poll interval is not missed.
            isolations = self.gossip.statistics().gossip.isolations
            if isolations > announced_after and self.gossip.alive_peers() > 0:
                announced_after = isolations
                txs = self.mempool.transactions(REANNOUNCE_TXS_MAX)
                log.info("peers are back: announcing the %d pooled transactions again", len(txs))
                for first in range(0, len(txs), TX_BATCH_MAX):
                    batch = encode_txs(txs[first : first + TX_BATCH_MAX])
                    await self.gossip.publish(Topic.TX, batch)

    async def _announce_restored(self) -> None:
        await trio.sleep(RESTORED_ANNOUNCE_DELAY_S)  # let peers answer our first pings
        restored, self._restored = self._restored, []
        for first in range(0, len(restored), TX_BATCH_MAX):
            await self.gossip.publish(Topic.TX, encode_txs(restored[first : first + TX_BATCH_MAX]))

    async def _serve_rpc(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        rpc = self.config.rpc
        config = http_config(rpc.listen)
        limits = self.config.rpc_limits()
        if limits.burst < limits.dearest_request_tokens:
            log.warning(
                "rpc.burst %d is below the dearest request (%d tokens: a whole body in,"
                " a capped response out); such requests are undercharged",
                limits.burst,
                limits.dearest_request_tokens,
            )
        descriptors = raise_descriptor_limit()
        total = connection_cap(rpc.connections_max, descriptors)
        if total < rpc.connections_max:
            log.warning(
                "rpc.connections_max lowered from %d to %d: the descriptor limit is %d,"
                " and %d stay free for storage",
                rpc.connections_max,
                total,
                descriptors,
                DESCRIPTOR_RESERVE,
            )
        self.connections = ConnectionCaps(total, rpc.connections_per_client_max)
        # An idle event stream writes a keepalive comment well within the idle
        # deadline, or the connection would be closed under its subscriber.
        app = build_app(self, limits, keepalive_s=min(KEEPALIVE_S, rpc.read_timeout_s / 3))
        await serve(
            app,
            config,
            self.connections,
            rpc.send_timeout_s,
            rpc.read_timeout_s,
            task_status=task_status,
        )


def open_kv(path: Path, environ: Mapping[str, str] = os.environ) -> KV:
    """The node's LevelDB, wrapped in storage fault injection when the
    environment asks for it (tests only; see `storage.faults`)."""
    text = environ.get(FAULT_ENV_VAR)
    if text is None:
        return LevelDBKV(path)
    try:
        spec = parse_faults(text)
    except ValueError as exc:
        raise ConfigError(
            f"environment variable {FAULT_ENV_VAR}: {exc}", key=FAULT_ENV_VAR
        ) from None
    kv = FaultyKV(LevelDBKV(path), spec)
    kv.install_signal_handler()
    log.warning("storage fault injection is on: %s=%s", FAULT_ENV_VAR, text)
    return kv


def make_batcher(home: Path, config: NodeConfig, chain: Chain) -> BatcherService:
    """The batch poster and its sink, from the `[batcher]` table."""

    settings = config.batcher
    chain_id = chain.genesis.chain_id
    sink: Sink
    if settings.sink == "file":
        from sequencer.l1.file import FileSink

        sink = FileSink(home / settings.file, chain_id)
    else:
        from sequencer.l1.ethereum import EthereumSink

        if not settings.ethereum_private_key:
            raise ConfigError("batcher.ethereum_private_key is required with sink = ethereum")
        sink = EthereumSink(
            settings.ethereum_url,
            settings.ethereum_private_key,
            settings.inbox_address,
            chain_id,
            confirmations=settings.confirmations,
        )
    return BatcherService(chain, sink, config.batch_config(), settings.backlog_batches_max)


# Signals that end the node cleanly: SIGHUP too (its terminal went away),
# which would otherwise kill it with no log line and no clean close.
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Signals a node has no use for unless chaos control or storage fault
# injection claims them: logged and ignored, rather than fatal by default.
SPARE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


async def run_node(home: Path) -> None:
    """Run the node under `home` until SIGINT, SIGTERM or SIGHUP."""
    config = load_config(home)
    node = Node(home, config)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        # Claimed ones have a handler by now (chaos control, fault injection).
        spare = [s for s in SPARE_SIGNALS if signal.getsignal(s) == signal.SIG_DFL]
        with trio.open_signal_receiver(*SHUTDOWN_SIGNALS, *spare) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if signum in spare:
                    log.warning("%s: ignored (nothing on this node uses it)", name)
                    continue
                log.info("%s: shutting down", name)
                nursery.cancel_scope.cancel()
                break
