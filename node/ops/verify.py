"""`sequencer verify …` and `sequencer follow`: check a node with only genesis.json.

`verify` checks one block (or a linked range), a transaction or a
namespace's part of a block, and prints what was proven; anything that does
not verify is one line on stderr naming the rule (exit 1). `follow` prints a
namespace's transactions as JSON lines, block by block, each verified.

`follow --out FILE` appends to FILE and resumes from it: every line says its
block and its place among that block's lines, so a restart drops the lines
of a block it did not finish and continues after the last whole block, and
the file holds every transaction exactly once, in order, however often the
follower or the node stops. On stdout, `--state FILE` records the last
block printed (written after the lines are flushed) for the same resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from sequencer.codec import parse_hex, to_builtins
from sequencer.errors import DecodeError, SequencerError
from sequencer.genesis import load_genesis
from sequencer.light import LightClient
from sequencer.light_protocol import Linker, VerifiedBlock, VerifiedNamespace

DEFAULT_RPC = "http://127.0.0.1:26600"


def _signers(block: VerifiedBlock, light: LightClient) -> str:
    validators = light.trust.validators
    power = sum(validators.powers[i] for i, _ in block.certificate.signatures)
    return (
        f"{len(block.certificate.signatures)} of {len(validators)} validators, "
        f"power {power}/{validators.total_power}"
    )


def _emit(args: argparse.Namespace, record: dict[str, Any], text: str) -> None:
    print(json.dumps(record) if args.json else text)


def cmd_verify_block(args: argparse.Namespace) -> int:
    with LightClient(args.rpc, load_genesis(args.genesis)) as light:
        last = args.height if args.to is None else args.to
        if last < args.height:
            raise SequencerError(f"--to {last} is below the height {args.height}")
        for block in light.blocks(args.height, last):
            record = {
                "height": block.height,
                "block_id": block.block_id.hex(),
                "txs": len(block.tx_ids or ()),
                "signers": [i for i, _ in block.certificate.signatures],
                "verified": True,
            }
            count = record["txs"]
            text = (
                f"block {block.height} {block.block_id.hex()} verified: certificate of "
                f"{_signers(block, light)}; {count} transaction{'' if count == 1 else 's'}"
                " in its tx_root"
            )
            _emit(args, record, text)
        if last > args.height and not args.json:
            print(f"heights {args.height}..{last} verified and linked (parent and last commit ids)")
    return 0


def cmd_verify_tx(args: argparse.Namespace) -> int:
    tx_id = _hex32(args.tx_id, "tx_id")
    with LightClient(args.rpc, load_genesis(args.genesis)) as light:
        found = light.tx(tx_id)
        status, block = found.status, found.block
        record = {
            "tx_id": tx_id.hex(),
            "height": block.height,
            "index": status.index,
            "block_id": block.block_id.hex(),
            "verified": True,
        }
        text = (
            f"transaction {tx_id.hex()} verified: index {status.index} of block "
            f"{block.height} {block.block_id.hex()}, certificate of {_signers(block, light)}"
        )
        _emit(args, record, text)
    return 0


def cmd_verify_namespace(args: argparse.Namespace) -> int:
    with LightClient(args.rpc, load_genesis(args.genesis)) as light:
        view = light.namespace(args.namespace, args.height)
        record = {
            "namespace": args.namespace,
            "height": view.block.height,
            "block_id": view.block.block_id.hex(),
            "tx_ids": [id_.hex() for id_ in view.tx_ids],
            "verified": True,
        }
        what = (
            f"all {len(view.txs)} of its transaction{'' if len(view.txs) == 1 else 's'}"
            " (presence proof)"
            if view.txs
            else "none of its transactions (absence proof)"
        )
        text = (
            f"namespace {args.namespace} in block {view.block.height} "
            f"{view.block.block_id.hex()} verified: {what}; certificate of "
            f"{_signers(view.block, light)}"
        )
        _emit(args, record, text)
    return 0


def _hex32(text: str, name: str) -> bytes:
    try:
        return parse_hex(text, length=32, path=name)
    except DecodeError as exc:
        raise SequencerError(f"{name}: {exc}") from None


# ------------------------------------------------------------------ follow


def _lines_of(view: VerifiedNamespace) -> str:
    count = len(view.txs)
    return "".join(
        json.dumps(
            {
                "height": view.block.height,
                "block_id": view.block.block_id.hex(),
                "position": position,
                "count": count,
                "tx_id": id_.hex(),
                "tx": to_builtins(tx),
            }
        )
        + "\n"
        for position, (tx, id_) in enumerate(zip(view.txs, view.tx_ids, strict=True))
    )


def _resume_from_out(path: Path) -> tuple[int, bytes] | None:
    """The last whole block in `path` (height, block_id); truncates the lines
    of a block left unfinished, and a torn last line."""
    if not path.exists():
        return None
    data = path.read_bytes()
    keep, last = 0, None
    offset = 0
    for raw in data.splitlines(keepends=True):
        offset += len(raw)
        if not raw.endswith(b"\n"):
            break
        try:
            line = json.loads(raw)
            height, block_id = int(line["height"]), bytes.fromhex(line["block_id"])
            whole = int(line["position"]) == int(line["count"]) - 1
        except (ValueError, KeyError, TypeError) as exc:
            raise SequencerError(f"{path}: a line that follow did not write ({exc})") from None
        if whole:
            keep, last = offset, (height, block_id)
    if keep != len(data):
        with path.open("r+b") as out:
            out.truncate(keep)
    return last


def _read_state(path: Path) -> tuple[int, bytes] | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        return int(state["height"]), bytes.fromhex(state["block_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SequencerError(f"{path}: not a follow state file ({exc})") from None


def _write_state(path: Path, block: VerifiedBlock) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"height": block.height, "block_id": block.block_id.hex()}))
    os.replace(temporary, path)


def cmd_follow(args: argparse.Namespace) -> int:
    from sequencer.follow import NamespaceFollower

    if args.start < 1:
        raise SequencerError(f"--from must be a height (1 or more), got {args.start}")
    genesis = load_genesis(args.genesis)
    resumed = _resume_from_out(args.out) if args.out else None
    if resumed is None and args.state:
        resumed = _read_state(args.state)
    start, linker = args.start, None
    if resumed is not None:
        start, linker = resumed[0] + 1, Linker(*resumed)
    out: TextIO = args.out.open("a") if args.out else sys.stdout

    def said(why: str) -> None:
        print(f"follow: {why}", file=sys.stderr)

    if not args.quiet:
        where = f"after block {start - 1}" if resumed else f"from height {start}"
        said(f"namespace {args.namespace} of {genesis.chain_id} at {args.rpc}, {where}")
    try:
        with NamespaceFollower(
            args.rpc,
            genesis,
            args.namespace,
            start=start,
            until=args.to,
            linker=linker,
            on_reconnect=None if args.quiet else said,
        ) as follower:
            for view in follower:
                lines = _lines_of(view)
                if lines:
                    out.write(lines)
                    out.flush()
                    if args.out:
                        os.fsync(out.fileno())
                if args.state:
                    _write_state(args.state, view.block)
    finally:
        if args.out:
            out.close()
    return 0


# ------------------------------------------------------------------ parsers


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default=DEFAULT_RPC, metavar="URL", help="the node to check")
    parser.add_argument(
        "--genesis", type=Path, required=True, metavar="FILE", help="the only thing trusted"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_light_commands(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser(
        "verify", help="check what a node serves against genesis.json alone"
    )
    sub = verify.add_subparsers(dest="verify_command", required=True, metavar="WHAT")
    block = sub.add_parser("block", help="a block's header, certificate and tx ids")
    block.add_argument("height", type=int, metavar="HEIGHT")
    block.add_argument("--to", type=int, metavar="HEIGHT", help="a linked range through HEIGHT")
    _common(block)
    block.set_defaults(run=cmd_verify_block)
    tx = sub.add_parser("tx", help="a transaction's inclusion in a finalized block")
    tx.add_argument("tx_id", metavar="TX_ID")
    _common(tx)
    tx.set_defaults(run=cmd_verify_tx)
    namespace = sub.add_parser(
        "namespace", help="all of a namespace's transactions in a block, or that it has none"
    )
    namespace.add_argument("namespace", type=int, metavar="N")
    namespace.add_argument("--height", type=int, required=True, metavar="HEIGHT")
    _common(namespace)
    namespace.set_defaults(run=cmd_verify_namespace)

    follow = commands.add_parser(
        "follow", help="stream a namespace's transactions as verified JSON lines"
    )
    follow.add_argument("--namespace", type=int, required=True, metavar="N")
    follow.add_argument("--rpc", default=DEFAULT_RPC, metavar="URL", help="the node to follow")
    follow.add_argument("--genesis", type=Path, required=True, metavar="FILE")
    follow.add_argument("--from", dest="start", type=int, default=1, metavar="HEIGHT")
    follow.add_argument("--to", type=int, metavar="HEIGHT", help="stop after this height")
    follow.add_argument(
        "--out", type=Path, metavar="FILE", help="append to FILE and resume from it (exactly once)"
    )
    follow.add_argument(
        "--state", type=Path, metavar="FILE", help="record the last block here, resume from it"
    )
    follow.add_argument("--quiet", action="store_true", help="no progress on stderr")
    follow.set_defaults(run=cmd_follow)
