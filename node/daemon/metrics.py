"""The node's Prometheus metrics: one registry per node.

Two kinds. Events are counted and timed where they happen (submissions,
commits, storage writes: counters and histograms). State that already lives
in a subsystem (gossip counters, mempool sizes, peers, consensus height and
round, L1 progress) is read at scrape time by a collector, so the hot paths
pay nothing for it. Names follow Prometheus conventions: `sequencer_`
prefix, base units (`_seconds`, `_bytes`), `_total` for counters; labels
have bounded values (results are error codes, topics are three, reasons a
fixed set).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from net.driver import GossipNode
from net.peer import PeerState
from net.wire import Topic
from node.api.server import ConnectionCaps
from node.daemon.batcher import BatcherService
from node.daemon.chain import Committed
from node.daemon.consensus import ConsensusDriver
from node.daemon.health import StorageHealth
from node.daemon.ingest import Ingest
from sequencer.mempool import Mempool
from storage.store import Store

__all__ = ["NodeMetrics", "Observed"]

# From a fast loopback commit (milliseconds) to a stalled round (seconds).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From a young generation's sub-millisecond pass to a full heap walk.
GC_BUCKETS_S = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
STORAGE_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ROUND_BUCKETS = (0, 1, 2, 3, 5, 8, 13)
TOPICS = (Topic.TX, Topic.CONSENSUS, Topic.SYNC)  # labelled by lower-case name
PEER_STATES = (PeerState.NEW, PeerState.ALIVE, PeerState.DOWN)  # labelled by value


class Observed(Protocol):
    """The subsystems whose state a scrape reads (the runtime's `Node`)."""

    store: Store
    consensus: ConsensusDriver
    ingest: Ingest
    health: StorageHealth
    mempool: Mempool
    gossip: GossipNode
    connections: ConnectionCaps | None  # None until the RPC serves
    batcher: BatcherService | None  # None without an L1


class NodeMetrics:
    def __init__(self, node: Observed) -> None:
        self._pooled = node.mempool.get
        self.registry = CollectorRegistry()
        registry = self.registry
        self.received = Counter(
            "sequencer_txs_received",
            "Transactions submitted over RPC, by result",
            ["result"],
            registry=registry,
        )
        self.blocks = Counter("sequencer_blocks_committed", "Blocks finalized", registry=registry)
        self.txs = Counter("sequencer_txs_committed", "Transactions finalized", registry=registry)
        self.height = Gauge(
            "sequencer_height", "Height of the last finalized block", registry=registry
        )
        self.finality = Histogram(
            "sequencer_finality_latency_seconds",
            "From a transaction's arrival at this node to its block's finality",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.block_interval = Histogram(
            "sequencer_block_interval_seconds",
            "Time between consecutive finalized blocks",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.rounds = Histogram(
            "sequencer_block_round",
            "Round in which each block was decided",
            buckets=ROUND_BUCKETS,
            registry=registry,
        )
        self.storage = Histogram(
            "sequencer_storage_write_seconds",
            "Synced storage writes, by operation",
            ["operation"],
            buckets=STORAGE_BUCKETS_S,
            registry=registry,
        )
        self.steps = Histogram(
            "sequencer_consensus_step_duration_seconds",
            "How long consensus stayed in each step (waiting, propose, prevote, precommit)",
            ["step"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.gc_pauses = Histogram(
            "sequencer_gc_pause_seconds",
            "Collections of the cyclic garbage collector, by generation (the node stops meanwhile)",
            ["generation"],
            buckets=GC_BUCKETS_S,
            registry=registry,
        )
        self.height.set(node.store.height())
        self._last_commit_s: float | None = None
        registry.register(_StateCollector(node))

    def gc_pause(self, generation: int, seconds: float) -> None:
        self.gc_pauses.labels(str(generation)).observe(seconds)

    def on_submit(self, results: list[Any]) -> None:
        for result in results:
            self.received.labels(result.error.value if result.error else "accepted").inc()

    def on_commit(self, committed: Committed) -> None:
        """Before the pool is pruned: the arrival times of the block's
        transactions are in their pool entries."""
        block, certificate = committed.block, committed.certificate
        now_s = time.time()
        self.blocks.inc()
        self.txs.inc(len(block.txs))
        self.height.set(block.header.height)
        self.rounds.observe(certificate.round)
        if self._last_commit_s is not None:
            self.block_interval.observe(now_s - self._last_commit_s)
        self._last_commit_s = now_s
        # Transactions this node held: their arrival time is in the pool entry.
        for tx_id in committed.facts.tx_ids:
            entry = self._pooled(tx_id)
            if entry is not None:
                self.finality.observe(max(0.0, now_s - entry.time_ms / 1000))

    def step_ended(self, step: str, seconds: float) -> None:
        self.steps.labels(step).observe(seconds)

    def storage_write(self, operation: str, seconds: float) -> None:
        self.storage.labels(operation).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Reads subsystem state at scrape time."""

    def __init__(self, node: Observed) -> None:
        self._node = node

    def collect(self) -> Iterator[Any]:
        yield from self._consensus()
        yield from self._mempool()
        yield from self._gossip()
        yield from self._rpc()
        yield from self._l1()

    def _consensus(self) -> Iterator[Any]:
        consensus = self._node.consensus
        core = consensus.core
        yield _gauge("sequencer_consensus_height", "Height consensus works on", core.height)
        yield _gauge("sequencer_consensus_round", "Round consensus is in", core.round)
        yield _counter(
            "sequencer_equivocations",
            "Equivocations detected (evidence kept)",
            consensus.counts["equivocations"],
        )
        yield _counter(
            "sequencer_sync_requests", "Catch-up requests sent", consensus.counts["sync_requests"]
        )
        # Each transaction should be verified once per node: on entry, from a
        # wallet or a peer; a block's transactions only if they were not.
        checks = CounterMetricFamily(
            "sequencer_tx_signature_checks",
            "Transaction signature verifications, by where they happened",
            labels=["stage"],
        )
        checks.add_metric(["ingest"], self._node.ingest.counts["signatures_verified"])
        checks.add_metric(["block"], consensus.counts["block_txs_verified"])
        yield checks
        yield _gauge(
            "sequencer_storage_failed",
            "1 once a storage write failed: the node stopped voting until restarted",
            int(self._node.health.failed),
        )

    def _mempool(self) -> Iterator[Any]:
        stats = self._node.mempool.statistics()
        family = GaugeMetricFamily(
            "sequencer_mempool_txs", "Transactions in the mempool", labels=["state"]
        )
        family.add_metric(["pending"], stats.pending)
        family.add_metric(["queued"], stats.queued)
        yield family

    def _gossip(self) -> Iterator[Any]:
        stats = self._node.gossip.statistics()
        core = stats.gossip
        messages = CounterMetricFamily(
            "sequencer_gossip_messages",
            "Gossip messages by topic and direction",
            labels=["topic", "direction"],
        )
        sizes = CounterMetricFamily(
            "sequencer_gossip_message_bytes",
            "Gossip message payload bytes by topic and direction",
            labels=["topic", "direction"],
        )
        traffic = {
            "in": (core.topic_messages_in, core.topic_bytes_in),
            "out": (core.topic_messages_out, core.topic_bytes_out),
        }
        for topic in TOPICS:
            label = topic.name.lower()
            for direction, (counted, size) in traffic.items():
                messages.add_metric([label, direction], counted.get(topic, 0))
                sizes.add_metric([label, direction], size.get(topic, 0))
        yield messages
        yield sizes
        dropped = CounterMetricFamily(
            "sequencer_gossip_datagrams_dropped",
            "Datagrams and messages dropped, by reason",
            labels=["reason"],
        )
        for reason, value in sorted(stats.dropped.items()):
            dropped.add_metric([reason], value)
        yield dropped
        directions = (
            ("sent", core.datagrams_sent, core.bytes_sent),
            ("received", core.datagrams_received, core.bytes_received),
        )
        for direction, datagrams, size in directions:
            yield _counter(
                f"sequencer_gossip_datagrams_{direction}", f"Datagrams {direction}", datagrams
            )
            yield _counter(
                f"sequencer_gossip_{direction}_bytes", f"Datagram bytes {direction}", size
            )
        yield _counter(
            "sequencer_gossip_session_conflicts",
            "Datagrams of a peer's older session after its newer one began (its key runs twice)",
            core.session_conflicts,
        )
        yield _counter(
            "sequencer_gossip_session_restarts",
            "New sessions this node started after no peer heard from it",
            core.session_restarts,
        )
        yield _counter(
            "sequencer_gossip_isolations",
            "Times every peer went down (the pool is announced again when one returns)",
            core.isolations,
        )
        yield _counter(
            "sequencer_gossip_frames_retransmitted",
            "Frames resent after a loss",
            core.frames_retransmitted,
        )
        peers = GaugeMetricFamily("sequencer_peers", "Configured peers, by state", labels=["state"])
        for state in PEER_STATES:
            peers.add_metric([state.value], core.peers.get(state, 0))
        yield peers

    def _rpc(self) -> Iterator[Any]:
        caps = self._node.connections
        if caps is None:
            return
        yield _gauge("sequencer_rpc_connections", "Open HTTP connections", caps.open)
        yield _counter(
            "sequencer_rpc_connections_refused",
            "HTTP connections refused with 503 overloaded (over a connection cap)",
            caps.refused,
        )
        yield _counter(
            "sequencer_rpc_send_timeouts",
            "HTTP connections closed because the client read nothing within send_timeout_s",
            caps.timed_out,
        )
        yield _counter(
            "sequencer_rpc_idle_closes",
            "HTTP connections closed because nothing moved either way within read_timeout_s",
            caps.idle_closed,
        )

    def _l1(self) -> Iterator[Any]:
        batcher = self._node.batcher
        if batcher is None:
            return
        yield _counter("sequencer_l1_batches_posted", "Batches posted to the L1", batcher.posted)
        yield _counter("sequencer_l1_errors", "L1 errors (each retried)", batcher.errors)
        yield _gauge(
            "sequencer_l1_lag_blocks",
            "Finalized blocks not yet posted to the L1",
            batcher.lag_blocks,
        )
        yield _gauge(
            "sequencer_l1_last_posted_height",
            "Last height posted to the L1",
            batcher.last_posted_height,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)
