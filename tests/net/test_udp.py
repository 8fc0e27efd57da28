"""Gossip nodes on real UDP sockets on 127.0.0.1, in one trio run per test."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable

import pytest
import trio

from net.config import GossipConfig
from net.driver import GossipNode
from net.faults import FaultConfig
from net.gossip import Delivery, PeerAddress
from net.wire import Topic
from sequencer.crypto import PrivateKey
from tests.net.harness import node_keys

DEADLINE_S = 30.0


def free_ports(count: int) -> list[int]:
    """Ports the kernel handed out just now (closed again: tiny race, loopback only)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def make_nodes(
    count: int,
    loss: float = 0.0,
    config: GossipConfig | None = None,
    ports: list[int] | None = None,
) -> tuple[list[GossipNode], list[PrivateKey]]:
    """`ports`, when a test needs more sockets than the nodes': drawn with
    theirs in one `free_ports` call, or the kernel may hand out a node's port
    again (it is closed until the node binds it)."""
    keys = node_keys(count)
    ports = free_ports(count) if ports is None else ports
    entries = [
        PeerAddress(k.public_key, ("127.0.0.1", p)) for k, p in zip(keys, ports, strict=True)
    ]
    faults = FaultConfig(drop=loss)
    nodes = [
        GossipNode(key, ("127.0.0.1", port), entries, config, faults, seed=index)
        for index, (key, port) in enumerate(zip(keys, ports, strict=True))
    ]
    return nodes, keys


def run(test: Callable[[trio.Nursery], Awaitable[None]]) -> None:
    async def main() -> None:
        with trio.fail_after(DEADLINE_S):
            async with trio.open_nursery() as nursery:
                await test(nursery)
                nursery.cancel_scope.cancel()

    trio.run(main)


async def start(nursery: trio.Nursery, nodes: list[GossipNode]) -> None:
    for node in nodes:
        await nursery.start(node.run)
    # Let the first liveness round finish so routes are settled.
    with trio.fail_after(10):
        while any(node.alive_peers() < len(nodes) - 1 for node in nodes):
            await trio.sleep(0.05)


async def collect(
    channel: trio.MemoryReceiveChannel[Delivery], expected: int, into: list[Delivery]
) -> None:
    while len(into) < expected:
        into.append(await channel.receive())


@pytest.mark.parametrize(
    ("count", "loss", "messages"),
    [(4, 0.0, 2_000), (4, 0.1, 2_000), (16, 0.0, 480), (16, 0.1, 480)],
    ids=["4-nodes", "4-nodes-loss10", "16-nodes", "16-nodes-loss10"],
)
def test_every_subscriber_gets_every_message_exactly_once(
    count: int, loss: float, messages: int
) -> None:
    nodes, _keys = make_nodes(count, loss)
    received: list[list[Delivery]] = [[] for _ in range(count + 1)]

    async def test(nursery: trio.Nursery) -> None:
        await start(nursery, nodes)
        channels = [node.subscribe(Topic.TX) for node in nodes]
        channels.append(nodes[1].subscribe(Topic.TX))  # a second subscriber on one node
        owners = [*range(count), 1]
        async with trio.open_nursery() as readers:
            for index, channel in enumerate(channels):
                expected = messages - messages // count
                readers.start_soon(collect, channel, expected, received[index])
            for number in range(messages):
                await nodes[number % count].publish(Topic.TX, b"%06d" % number + bytes(194))
                if number % 50 == 0:
                    await trio.sleep(0.001)
        await trio.sleep(0.3)  # anything extra would arrive now
        for index, deliveries in enumerate(received):
            owner = owners[index]
            numbers = sorted(int(d.data[:6]) for d in deliveries)
            assert numbers == [n for n in range(messages) if n % count != owner], index

    run(test)
    if loss:
        assert sum(node.statistics().gossip.frames_retransmitted for node in nodes) > 0


def test_a_one_mebibyte_message_arrives_under_ten_percent_loss() -> None:
    nodes, _keys = make_nodes(4, loss=0.1)
    data = os.urandom(1024 * 1024)

    async def test(nursery: trio.Nursery) -> None:
        await start(nursery, nodes)
        channels = [node.subscribe(Topic.CONSENSUS) for node in nodes[1:]]
        await nodes[0].publish(Topic.CONSENSUS, data)
        for channel in channels:
            delivery = await channel.receive()
            assert delivery.data == data
        await trio.sleep(0.3)
        for channel in channels:
            with pytest.raises(trio.WouldBlock):
                channel.receive_nowait()

    run(test)
    assert nodes[0].statistics().faults.dropped > 0


def test_forged_and_replayed_datagrams_are_dropped_and_counted() -> None:
    # Node 0 believes node 1 lives at the tap's address: the tap sees what
    # node 0 seals for node 1 and plays it to node 1, genuine, forged and twice.
    keys = node_keys(2)
    ports = free_ports(3)
    tap_port = ports[2]
    to_node_0 = [PeerAddress(keys[1].public_key, ("127.0.0.1", tap_port))]
    to_node_1 = [PeerAddress(keys[0].public_key, ("127.0.0.1", ports[0]))]
    sender = GossipNode(keys[0], ("127.0.0.1", ports[0]), to_node_0)
    receiver = GossipNode(keys[1], ("127.0.0.1", ports[1]), to_node_1)

    async def test(nursery: trio.Nursery) -> None:
        tap = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await tap.bind(("127.0.0.1", tap_port))
        await nursery.start(sender.run)
        await nursery.start(receiver.run)
        channel = receiver.subscribe(Topic.CONSENSUS)
        vote = b"vote" * 50
        sender.send_nowait(keys[1].public_key, Topic.CONSENSUS, vote)
        while True:
            datagram, _ = await tap.recvfrom(65_536)
            if len(datagram) > len(vote):  # the message, not a ping
                break
        target = ("127.0.0.1", ports[1])
        for position in (1, 30, 40, len(datagram) - 1):  # tag, counter, horizon, AEAD tag
            forged = bytearray(datagram)
            forged[position] ^= 0x40
            await tap.sendto(bytes(forged), target)
        await tap.sendto(datagram, target)
        await tap.sendto(datagram, target)
        assert (await channel.receive()).data == vote
        await trio.sleep(0.2)
        with pytest.raises(trio.WouldBlock):
            channel.receive_nowait()
        dropped = receiver.statistics().dropped
        # Byte 1 sits in the sender tag: that forgery names nobody we know.
        assert dropped["unknown_peer"] == 1
        assert dropped["unauthenticated"] == 3
        assert dropped["replayed"] >= 1
        tap.close()

    run(test)


def test_an_unknown_peer_cannot_inject_messages() -> None:
    *node_ports, stranger_port = free_ports(3)
    nodes, _keys = make_nodes(2, ports=node_ports)
    stranger_key = PrivateKey(b"\x55" * 32)
    victim = PeerAddress(_keys[1].public_key, nodes[1]._listen)
    stranger = GossipNode(stranger_key, ("127.0.0.1", stranger_port), [victim])

    async def test(nursery: trio.Nursery) -> None:
        await start(nursery, nodes)
        await nursery.start(stranger.run)
        channel = nodes[1].subscribe(Topic.TX)
        for number in range(20):
            await stranger.publish(Topic.TX, b"intruder %d" % number)
        await trio.sleep(0.5)
        with pytest.raises(trio.WouldBlock):
            channel.receive_nowait()
        assert nodes[1].statistics().dropped["unknown_peer"] >= 1

    run(test)


def test_a_short_partition_loses_nothing() -> None:
    nodes, keys = make_nodes(4)
    everyone = {key.public_key for key in keys}
    isolated = keys[3].public_key

    async def test(nursery: trio.Nursery) -> None:
        await start(nursery, nodes)
        channel = nodes[3].subscribe(Topic.TX)
        nodes[3].set_faults(FaultConfig.isolating(isolated, {isolated}, everyone))
        for number in range(100):
            await nodes[number % 3].publish(Topic.TX, b"%03d" % number)
        await trio.sleep(0.5)
        with pytest.raises(trio.WouldBlock):
            channel.receive_nowait()  # cut off: nothing gets through
        nodes[3].set_faults(FaultConfig())
        got = sorted([int((await channel.receive()).data) for _ in range(100)])
        assert got == list(range(100))
        assert nodes[3].statistics().faults.blocked > 0

    run(test)


def test_datagrams_replayed_to_a_restarted_node_are_refused_as_stale() -> None:
    # A tap in the middle relays between the two (each believes the other
    # lives at the tap) and records what the sender seals. The receiver
    # restarts with empty receive windows; the recordings, played to it at
    # once, echo its earlier run and are refused, nothing delivered.
    keys = node_keys(2)
    sender_port, receiver_port, tap_port = free_ports(3)
    tap_address = ("127.0.0.1", tap_port)
    to_sender = [PeerAddress(keys[1].public_key, tap_address)]
    to_receiver = [PeerAddress(keys[0].public_key, tap_address)]
    sender = GossipNode(keys[0], ("127.0.0.1", sender_port), to_sender)
    recorded: list[bytes] = []
    recording = False

    relaying = trio.CancelScope()

    async def relay(tap: trio.socket.SocketType) -> None:
        with relaying:
            await _relay(tap)

    async def _relay(tap: trio.socket.SocketType) -> None:
        while True:
            datagram, source = await tap.recvfrom(65_536)
            if source[1] == sender_port:
                if recording:
                    recorded.append(datagram)
                await tap.sendto(datagram, ("127.0.0.1", receiver_port))
            else:
                await tap.sendto(datagram, ("127.0.0.1", sender_port))

    async def test(nursery: trio.Nursery) -> None:
        nonlocal recording
        tap = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await tap.bind(tap_address)
        nursery.start_soon(relay, tap)
        await nursery.start(sender.run)
        async with trio.open_nursery() as first_run:
            receiver = GossipNode(keys[1], ("127.0.0.1", receiver_port), to_receiver)
            await first_run.start(receiver.run)
            channel = receiver.subscribe(Topic.CONSENSUS)
            await sender.publish(Topic.CONSENSUS, b"before")
            assert (await channel.receive()).data == b"before"
            while sender.statistics().gossip.peer_sessions < 1:  # it heard this run
                await trio.sleep(0.01)
            recording = True
            await sender.publish(Topic.CONSENSUS, b"recorded" * 40)
            assert (await channel.receive()).data == b"recorded" * 40
            recording = False
            await trio.sleep(0.3)  # acknowledged: the sender will not resend it
            first_run.cancel_scope.cancel()
        assert recorded
        restarted = GossipNode(keys[1], ("127.0.0.1", receiver_port), to_receiver)
        await nursery.start(restarted.run)
        channel = restarted.subscribe(Topic.CONSENSUS)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as elsewhere:
            elsewhere.bind(("127.0.0.2", 0))
            for datagram in recorded:
                await tap.sendto(datagram, ("127.0.0.1", receiver_port))
                elsewhere.sendto(datagram, ("127.0.0.1", receiver_port))
        await trio.sleep(0.3)
        dropped = restarted.statistics().dropped
        assert dropped.get("stale", 0) >= 2 * len(recorded)
        # The two find each other again, and new messages flow.
        await sender.publish(Topic.CONSENSUS, b"after")
        assert (await channel.receive()).data == b"after"
        with pytest.raises(trio.WouldBlock):
            channel.receive_nowait()
        relaying.cancel()
        await trio.sleep(0.01)  # the relay has left its receive
        tap.close()

    run(test)
