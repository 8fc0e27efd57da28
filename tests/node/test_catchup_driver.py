"""Block sync between two consensus drivers, over a fake gossip, in one process:
raw serving, pipelined requests, one synced write per applied response."""

from __future__ import annotations

import random
from collections import deque

from consensus.core import Core
from consensus.host import HostConfig
from consensus.sync import SYNC_BLOCKS_MAX, SyncRequest
from node.daemon.chain import Chain
from node.daemon.consensus import ConsensusDriver, wall_ms
from node.daemon.messages import decode_sync
from sequencer.certificate import ValidatorSet
from sequencer.mempool import Mempool, MempoolConfig
from sequencer.types import ConsensusParams, Genesis, ValidatorInfo
from storage.kv import MemoryKV
from storage.store import Store
from tests.storage.chain import CHAIN_ID, VALIDATOR_KEYS, build_chain

BLOCKS = 3 * SYNC_BLOCKS_MAX + 5
CHAIN = build_chain(BLOCKS)
GENESIS = Genesis(
    chain_id=CHAIN_ID,
    genesis_time_ms=1_600_000_000_000,
    validators=[
        ValidatorInfo(f"v{i}", key.public_key, 1, "/ip4/127.0.0.1/udp/1", "http://127.0.0.1:1")
        for i, key in enumerate(VALIDATOR_KEYS)
    ],
    consensus=ConsensusParams(),
)


class FakeGossip:
    """Direct messages land in a shared queue, tagged with the sender's key."""

    def __init__(self, own_key: bytes, wire: deque[tuple[bytes, bytes, bytes]]) -> None:
        self.own_key = own_key
        self.wire = wire

    def send_nowait(self, public_key: bytes, topic: object, data: bytes) -> bool:
        self.wire.append((self.own_key, public_key, data))
        return True

    def publish_nowait(self, topic: object, data: bytes) -> bytes:
        return b""  # consensus broadcasts: not part of this test

    def alive_peers(self) -> int:
        return 1


def driver(index: int, kv: MemoryKV, wire: deque) -> ConsensusDriver:
    store = Store.memory(kv, chain_id=CHAIN_ID)
    mempool = Mempool(MempoolConfig(chain_id=CHAIN_ID), store.next_nonce)
    chain = Chain(GENESIS, store, mempool)
    key = VALIDATOR_KEYS[index]
    core = Core(
        chain_id=CHAIN_ID,
        validators=ValidatorSet.from_genesis(GENESIS),
        params=GENESIS.consensus,
        anchor=chain.anchor(),
        key=key,
        signing_state=store.signing_state(),
    )
    peer_keys = [k.public_key if i != index else b"" for i, k in enumerate(VALIDATOR_KEYS)]
    gossip = FakeGossip(key.public_key, wire)
    return ConsensusDriver(core, chain, gossip, peer_keys, lambda _id: False, random.Random(index))  # type: ignore[arg-type]


def test_a_node_behind_fetches_every_block_pipelined_with_one_fsync_per_response() -> None:
    wire: deque[tuple[bytes, bytes, bytes]] = deque()
    server_kv = MemoryKV()
    server_store = Store.memory(server_kv, chain_id=CHAIN_ID)
    for item in CHAIN:
        server_store.commit_block(*item.args())
    server = driver(0, server_kv, wire)
    client_kv = MemoryKV()
    client = driver(3, client_kv, wire)
    by_key = {VALIDATOR_KEYS[0].public_key: server, VALIDATOR_KEYS[3].public_key: client}

    # The client hears the server work on the height after its tip, and waits
    # out its patience before asking.
    client.catchup.observe(0, BLOCKS + 1)
    client.peer_heights[0] = BLOCKS + 1
    assert client.catchup.poll(1, wall_ms()) == []
    for _peer, request in client.catchup.poll(1, wall_ms() + HostConfig().sync_patience_ms):
        client.host._request(0, request)
    in_flight_at_start = len(wire)
    assert in_flight_at_start > 1  # pipelined: several ranges asked at once

    synced_before = client_kv.data.synced_writes
    responses = 0
    while wire:
        sender, receiver, data = wire.popleft()
        message = decode_sync(data)  # what the wire carries decodes as the typed messages
        if not isinstance(message, SyncRequest):
            responses += 1
        by_key[receiver].on_sync(message, sender)

    assert client.chain.height == BLOCKS
    assert client.core.height == BLOCKS + 1
    for item in CHAIN:
        assert client.chain.store.block(item.height) == item.block
    # Each applied response cost one synced write, not one per block.
    assert responses == -(-BLOCKS // SYNC_BLOCKS_MAX)
    assert client_kv.data.synced_writes - synced_before == responses
    assert client.counts["blocks_committed"] == BLOCKS
    assert server.counts["sync_served_blocks"] == BLOCKS
    # Caught up: nothing more to ask.
    assert client.catchup.poll(client.core.height, wall_ms()) == []
