"""A byzantine validator's gossip flood, as a process of its own.

    python -m tests.node.byzantine_peer --key KEY.json --peer-key HEX \\
        --to 127.0.0.1:PORT --kind relayed-junk --seconds 10 --bytes-per-s 5e6

It speaks with the validator's own key under a fresh session, so every
datagram authenticates at the target, and sends what no honest node sends:

- `relayed-junk`: datagrams packed with tiny `Message` frames on the sync
  topic, marked for relay, under random origins;
- `fragments`: datagrams packed with 1-byte `Fragment`s, each under a fresh
  message id (a partial message that will never complete);
- `junk-votes`: datagrams of consensus messages under its own origin, each a
  vote bundle of well-formed votes of any validator for heights from
  `--height` on, with signatures that do not verify: every vote costs its
  receiver a signature check.

It paces itself to `--bytes-per-s` and stops after `--seconds`; it prints
one JSON line: datagrams and bytes sent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time

from net.link import LinkKeys, seal_datagram
from net.wire import (
    OVERHEAD_BYTES,
    PAYLOAD_HEADER_BYTES,
    SENDER_TAG_BYTES,
    Fragment,
    Message,
    Topic,
    encode_frame,
    join_frames,
)
from node.daemon.messages import VoteBundle, encode_consensus
from sequencer.crypto import load_key
from sequencer.types import Vote, VoteKind

DATAGRAM_BYTES = 1_400  # the gossip default, datagram_bytes_max
KINDS = ("relayed-junk", "fragments", "junk-votes")
VOTES_PER_BUNDLE = 11  # a bundle fills a datagram


def junk_bundle(chain_id: str, height: int, validators: int) -> bytes:
    votes = [
        Vote(
            chain_id,
            VoteKind.PREVOTE if n % 2 else VoteKind.PRECOMMIT,
            height + random.randrange(8),
            random.randrange(2),
            os.urandom(32),
            random.randrange(validators),
            os.urandom(64),
        )
        for n in range(VOTES_PER_BUNDLE)
    ]
    return encode_consensus(VoteBundle(nonce=os.urandom(16), votes=votes))


def frames_for(kind: str, tag: bytes, room: int, args: argparse.Namespace) -> list[bytes]:
    frames: list[bytes] = []
    while True:
        if kind == "junk-votes":
            data = junk_bundle(args.chain_id, args.height, args.validators)
            frame = encode_frame(Message(Topic.CONSENSUS, tag, True, data))
            if frames or len(frame) > room:
                return frames or [frame]
        elif kind == "relayed-junk":
            frame = encode_frame(Message(Topic.SYNC, os.urandom(8), True, os.urandom(4)))
        else:
            frame = encode_frame(Fragment(os.urandom(32), Topic.TX, tag, True, 4_096, 0, b"x"))
        if len(frame) > room:
            return frames
        frames.append(frame)
        room -= len(frame)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", required=True, help="the validator's key.json")
    parser.add_argument("--peer-key", required=True, help="the target's public key (hex)")
    parser.add_argument("--to", required=True, help="the target's gossip address, host:port")
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bytes-per-s", type=float, default=5e6)
    parser.add_argument("--chain-id", default="", help="junk-votes: the chain's id")
    parser.add_argument("--height", type=int, default=1, help="junk-votes: the first height")
    parser.add_argument("--validators", type=int, default=4, help="junk-votes: how many")
    args = parser.parse_args(argv)
    key = load_key(args.key)
    host, port = args.to.rsplit(":", 1)
    target = (host, int(port))
    session = time.time_ns() // 1_000  # newer than the validator's own: the target takes it
    cipher = LinkKeys(key.seed, key.public_key, bytes.fromhex(args.peer_key)).sending_cipher(
        session
    )
    tag = key.public_key[:SENDER_TAG_BYTES]
    room = DATAGRAM_BYTES - OVERHEAD_BYTES - PAYLOAD_HEADER_BYTES
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = sent_bytes = 0
    started = time.monotonic()
    deadline = started + args.seconds
    counter = 0
    while (now := time.monotonic()) < deadline:
        if sent_bytes > (now - started) * args.bytes_per_s:
            time.sleep(0.001)
            continue
        counter += 1
        payload = join_frames(frames_for(args.kind, tag, room, args))
        datagram = seal_datagram(cipher, tag, session, counter, counter, payload)
        try:
            sock.sendto(datagram, target)
        except OSError:
            continue  # the kernel's buffer is full: that is the target's problem
        sent += 1
        sent_bytes += len(datagram)
    elapsed = time.monotonic() - started
    print(json.dumps({"datagrams": sent, "bytes": sent_bytes, "seconds": round(elapsed, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
