"""A byzantine validator's gossip flood, as a process of its own.

    python -m tests.node.byzantine_peer --key KEY.json --peer-key HEX \\
        --to 127.0.0.1:PORT --kind relayed-junk --seconds 10 --bytes-per-s 5e6

It speaks with the validator's own key under a fresh session, so every
datagram authenticates at the target, and sends what no honest node sends:

- `relayed-junk`: datagrams packed with tiny `Message` frames on the sync
  topic, marked for relay, under random origins;
- `fragments`: datagrams packed with 1-byte `Fragment`s, each under a fresh
  message id (a partial message that will never complete).

It paces itself to `--bytes-per-s` and stops after `--seconds`; it prints
one JSON line: datagrams and bytes sent.
"""

from __future__ import annotations

import argparse
import json
import os
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
from sequencer.crypto import load_key

DATAGRAM_BYTES = 1_400  # the gossip default, datagram_bytes_max
KINDS = ("relayed-junk", "fragments")


def frames_for(kind: str, tag: bytes, room: int) -> list[bytes]:
    frames: list[bytes] = []
    while True:
        if kind == "relayed-junk":
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
        payload = join_frames(frames_for(args.kind, tag, room))
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
