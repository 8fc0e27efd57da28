"""The `sequencer` command line (DESIGN 12).

Each subcommand is a function `(args) -> exit status`. Errors the user can
fix (`SequencerError`) print one line to stderr and exit 1; usage errors
exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import sequencer
from net.identity import peer_id
from sequencer.crypto import PrivateKey, load_key, save_key
from sequencer.errors import SequencerError

Command = Callable[[argparse.Namespace], int]


def _print_key(key: PrivateKey, *, as_json: bool, path: Path | None = None) -> None:
    info = {"public_key": key.public_key.hex(), "peer_id": peer_id(key.public_key)}
    if as_json:
        print(json.dumps(info | ({"path": str(path)} if path else {})))
        return
    if path is not None:
        print(f"key file    {path}")
    print(f"public key  {info['public_key']}")
    print(f"peer id     {info['peer_id']}")


def cmd_keys_new(args: argparse.Namespace) -> int:
    key = PrivateKey.generate()
    save_key(key, args.out, overwrite=args.force)
    _print_key(key, as_json=args.json, path=args.out)
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    _print_key(load_key(args.file), as_json=args.json)
    return 0


def cmd_devnet_up(args: argparse.Namespace) -> int:
    print(
        "error: `sequencer devnet up` is not implemented yet in this version "
        "(the node runtime is still being built); the environment is installed "
        "and `sequencer keys new` works.",
        file=sys.stderr,
    )
    return 1


def _add_keys(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="create and inspect Ed25519 key files")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    new = sub.add_parser("new", help="generate a key file (mode 0600)")
    new.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write it")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.add_argument("--json", action="store_true", help="print JSON")
    new.set_defaults(run=cmd_keys_new)
    show = sub.add_parser("show", help="print a key file's public key and peer id")
    show.add_argument("file", type=Path, metavar="FILE")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=cmd_keys_show)


def _add_devnet(commands: argparse._SubParsersAction) -> None:
    devnet = commands.add_parser("devnet", help="run a local multi-node devnet")
    sub = devnet.add_subparsers(dest="devnet_command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start a devnet (4 validators under ./.devnet)")
    up.add_argument("--validators", type=int, default=4, metavar="N")
    up.add_argument("--home", type=Path, default=Path(".devnet"), metavar="DIR")
    up.add_argument("--base-port", type=int, default=26600, metavar="PORT")
    up.add_argument("--fresh", action="store_true", help="wipe the devnet home first")
    up.set_defaults(run=cmd_devnet_up)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sequencer",
        description="A multi-node BFT rollup sequencer.",
    )
    parser.add_argument(
        "--version", action="version", version=f"sequencer {sequencer.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_keys(commands)
    _add_devnet(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    try:
        return run(args)
    except SequencerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
