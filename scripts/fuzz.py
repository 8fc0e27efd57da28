#!/usr/bin/env python3
"""Coverage-guided fuzzing of the decoders peers can reach, with atheris.

    pip install atheris                        # optional: not in requirements.lock
    python3 scripts/fuzz.py --target datagram --seconds 60
    python3 scripts/fuzz.py --target all --seconds 30 --corpus /tmp/corpus

Targets (each must never raise anything but its documented error):
    payload     net.wire.decode_payload            msgspec.DecodeError
    datagram    Gossip.receive_datagram, as a configured peer that seals
                whatever the fuzzer writes (authentication passes)     nothing
    consensus   node.daemon.messages.decode_consensus, then a consensus core   DecodeError
    sync        node.daemon.messages.decode_sync, then a core's catch-up       DecodeError
    tx          node.daemon.messages.decode_txs                                DecodeError

msgspec decodes in C, which atheris cannot see: for `payload` and `tx` the
fuzzer is blind (random mutation only); the other targets reach Python code
after decoding and are guided by its coverage.

A crash prints the input and writes it as crash-<sha> in the working
directory (libFuzzer's usual behaviour); the hypothesis tests in
tests/net/test_fuzz_decoders.py and tests/consensus/test_fuzz_messages.py are
the regression suite for anything found here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = ("payload", "datagram", "consensus", "sync", "tx")


def _payload() -> Callable[[bytes], None]:
    import msgspec

    from net.wire import decode_payload

    def run(data: bytes) -> None:
        with contextlib.suppress(msgspec.DecodeError):
            decode_payload(data)

    return run


def _datagram() -> Callable[[bytes], None]:
    from net.config import GossipConfig
    from net.gossip import Gossip, PeerAddress
    from net.link import seal_datagram
    from sequencer.crypto import PrivateKey

    keys = [PrivateKey(bytes([i + 1]) * 32) for i in range(2)]
    addresses = [("127.0.0.1", 20_000 + i) for i in range(2)]
    entries = [PeerAddress(k.public_key, a) for k, a in zip(keys, addresses, strict=True)]
    config = GossipConfig(datagram_bytes_max=65_000, message_bytes_max=65_536)
    sender = Gossip(keys[0].seed, keys[0].public_key, entries, config, 1, 0.0)
    cipher = sender.peers()[0].keys.sending_cipher(1)
    state = {"core": None, "counter": 0, "now": 0.0}

    def run(data: bytes) -> None:
        # A fresh receiver every 10,000 inputs keeps the state bounded per run.
        if state["core"] is None or state["counter"] >= 10_000:
            state["core"] = Gossip(keys[1].seed, keys[1].public_key, entries, config, 1, 0.0)
            state["counter"] = 0
        core = state["core"]
        state["counter"] += 1
        state["now"] += 1.0
        datagram = seal_datagram(cipher, keys[0].public_key[:8], 1, state["counter"], 1, data)
        core.receive_datagram(datagram, addresses[0], state["now"])
        core.receive_datagram(data, addresses[0], state["now"])  # and unsealed
        core.datagrams_to_send(state["now"])
        core.handle_timer(state["now"])
        core.deliveries()

    return run


def _core_node() -> object:
    from tests.consensus.harness import Node

    return Node(0)


def _consensus() -> Callable[[bytes], None]:
    from node.daemon.messages import decode_consensus
    from sequencer.errors import DecodeError

    node = _core_node()

    def run(data: bytes) -> None:
        try:
            message = decode_consensus(data)
        except DecodeError:
            return
        node.core.step(message, 10_000)  # type: ignore[attr-defined]

    return run


def _sync() -> Callable[[bytes], None]:
    from consensus.messages import DecidedBlock
    from consensus.sync import SyncResponse
    from node.daemon.messages import decode_sync
    from sequencer.errors import DecodeError

    node = _core_node()

    def run(data: bytes) -> None:
        try:
            message = decode_sync(data)
        except DecodeError:
            return
        if isinstance(message, SyncResponse):
            parent = message.parent_certificate
            for block, certificate in message.blocks:
                node.core.step(DecidedBlock(block, certificate, parent), 10_000)  # type: ignore[attr-defined]
                parent = None

    return run


def _tx() -> Callable[[bytes], None]:
    from node.daemon.messages import decode_txs
    from sequencer.errors import DecodeError

    def run(data: bytes) -> None:
        with contextlib.suppress(DecodeError):
            decode_txs(data)

    return run


BUILDERS: dict[str, Callable[[], Callable[[bytes], None]]] = {
    "payload": _payload,
    "datagram": _datagram,
    "consensus": _consensus,
    "sync": _sync,
    "tx": _tx,
}


def _seeds(target: str) -> list[bytes]:
    """Valid inputs to start from, so the fuzzer begins past the first byte."""
    from consensus.sync import SyncRequest, SyncResponse
    from net.wire import Message as Frame
    from net.wire import Ping, Topic, encode_frame, join_frames
    from node.daemon.messages import encode_consensus, encode_sync
    from sequencer.codec import encode
    from tests.consensus.harness import PREVOTE, A, certificate, proposal, vote

    if target in ("payload", "datagram"):
        return [
            join_frames(
                [
                    encode_frame(Ping(1, [b"t" * 8])),
                    encode_frame(Frame(Topic.TX, b"o" * 8, True, b"d")),
                ]
            )
        ]
    if target == "consensus":
        return [encode_consensus(proposal("A")), encode_consensus(vote(PREVOTE, 2, "A"))]
    if target == "sync":
        return [
            encode_sync(SyncRequest(1, 4)),
            encode_sync(SyncResponse(None, [(A, certificate("A"))])),
        ]
    return [encode(A.txs)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 scripts/fuzz.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--seconds", type=int, default=60, help="per target")
    parser.add_argument("--corpus", type=Path, default=None, help="a directory (one per target)")
    args = parser.parse_args(argv)
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    targets = TARGETS if args.target == "all" else (args.target,)
    if len(targets) > 1:  # atheris runs once per process: one child per target
        import subprocess

        status = 0
        for target in targets:
            command = [sys.executable, __file__, "--target", target, "--seconds", str(args.seconds)]
            if args.corpus is not None:
                command += ["--corpus", str(args.corpus)]
            print(f"== {target}", flush=True)
            status = subprocess.call(command) or status
        return status
    return _fuzz(targets[0], args.seconds, args.corpus)


def _fuzz(target: str, seconds: int, corpus: Path | None) -> int:
    import atheris

    with atheris.instrument_imports(include=["net", "node", "consensus", "sequencer"]):
        run = BUILDERS[target]()
    directory = (corpus or Path(os.environ.get("TMPDIR", "/tmp")) / "sequencer-fuzz") / target
    directory.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(_seeds(target)):
        (directory / f"seed-{number}").write_bytes(seed)
    atheris.Setup(
        [sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=2048", str(directory)],
        run,
    )
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
