"""The `sequencer` command line.

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
from node.ops.ceremony import add_genesis_commands
from node.ops.verify import add_light_commands
from sequencer.crypto import PrivateKey, load_key, save_key
from sequencer.errors import SequencerError

Command = Callable[[argparse.Namespace], int]
DEFAULT_BASE_PORT = 26600
DEFAULT_ACCOUNTS = 10


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


def cmd_node(args: argparse.Namespace) -> int:
    import trio

    from node.config import load_config
    from node.daemon.memory import limit_malloc_arenas
    from node.daemon.runtime import run_node
    from node.logs import setup_logging

    limit_malloc_arenas()  # before trio starts a thread
    config = load_config(args.home)
    setup_logging(args.log_format or config.log.format, config.log.level)
    trio.run(run_node, args.home)
    return 0


def cmd_devnet_init(args: argparse.Namespace) -> int:
    from node.ops.devnet import init_devnet

    layout = init_devnet(
        args.out,
        args.validators,
        args.base_port,
        force=args.force,
        block_time_ms=args.block_time,
        accounts=args.accounts,
        seed=args.seed,
    )
    print(f"devnet {layout.chain_id}: {len(layout.nodes)} validators under {args.out}")
    for node in layout.nodes:
        print(f"  {node.name}  home {node.home}  rpc {node.rpc}")
    print(f"  dev wallet {layout.wallet}")
    return 0


def cmd_devnet_up(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from node.ops.accounts import DEFAULT_SEED, read_accounts
    from node.ops.devnet import init_devnet, load_layout
    from node.ops.ports import check_ports_free
    from node.ops.prometheus import DEFAULT_PORT
    from node.ops.supervisor import run_devnet
    from sequencer.genesis import load_genesis

    prometheus_port = None  # no Prometheus
    if args.prometheus or args.prometheus_port is not None:
        prometheus_port = DEFAULT_PORT if args.prometheus_port is None else args.prometheus_port
        if not 1 <= prometheus_port <= 65535:
            raise SequencerError(f"--prometheus-port must be 1..65535, got {prometheus_port}")
    manifest = args.home / "devnet.json"
    base_port = DEFAULT_BASE_PORT if args.base_port is None else args.base_port
    block_time = 0 if args.block_time is None else args.block_time
    if args.fresh or not manifest.exists():
        layout = init_devnet(
            args.home,
            args.validators,
            base_port,
            force=args.fresh,
            block_time_ms=block_time,
            accounts=DEFAULT_ACCOUNTS if args.accounts is None else args.accounts,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
        )
    else:
        layout = load_layout(args.home)
        if len(layout.nodes) != args.validators and args.validators_given:
            raise SequencerError(
                f"the devnet under {args.home} has {len(layout.nodes)} validators; "
                "add --fresh to recreate it with a different number"
            )
        existing = urlsplit(layout.nodes[0].rpc).port
        if args.base_port is not None and args.base_port != existing:
            raise SequencerError(
                f"the devnet under {args.home} uses base port {existing}, not {args.base_port};"
                f" add --fresh to recreate it on {args.base_port}, or leave --base-port out"
            )
        interval = load_genesis(Path(layout.nodes[0].home) / "genesis.json").consensus
        if args.block_time is not None and args.block_time != interval.empty_block_interval_ms:
            raise SequencerError(
                f"the devnet under {args.home} has block time"
                f" {interval.empty_block_interval_ms} ms, not {args.block_time};"
                f" add --fresh to recreate it, or leave --block-time out"
            )
        seed, keys = read_accounts(layout.root)
        for flag, asked, has in (
            ("--seed", args.seed, seed),
            ("--accounts", args.accounts, len(keys)),
        ):
            if asked is not None and asked != has:
                raise SequencerError(
                    f"the devnet under {args.home} has {flag} {has!r}, not {asked!r};"
                    f" add --fresh to recreate it, or leave {flag} out"
                )
    check_ports_free(layout)
    return run_devnet(layout, args.home, prometheus_port)


def cmd_tx_send(args: argparse.Namespace) -> int:
    from sequencer.client import Client, Wallet

    try:
        payload = (
            bytes.fromhex(args.payload_hex)
            if args.payload_hex is not None
            else args.payload.encode()
        )
    except ValueError:
        raise SequencerError(f"--payload-hex: not hex bytes: {args.payload_hex!r:.80}") from None
    key = load_key(args.key)
    with Client(args.rpc) as client:
        chain_id = client.status()["chain_id"]
        wallet = Wallet(key, chain_id, args.namespace)
        tx = client.send(wallet, payload, gas_price=args.gas_price, nonce=args.nonce)
        result: dict[str, object] = {"tx_id": tx.hex()}
        if args.wait:
            status = client.wait_final(tx, timeout=args.timeout, level=args.wait)
            result |= {"status": status.status, "height": status.height, "index": status.index}
            if status.l1 is not None:
                result |= {"l1_batch": status.l1.batch_number}
                result |= {"l1_commitment": status.l1.commitment.hex()}
    if args.json:
        print(json.dumps(result))
    else:
        print(" ".join(f"{k} {v}" for k, v in result.items()))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sequencer.client import Client

    with Client(args.rpc) as client:
        status = client.status()
    if args.json:
        print(json.dumps(status))
        return 0
    consensus = status.get("consensus", {})
    print(f"chain     {status.get('chain_id')}   node {status.get('node')}")
    print(
        f"height    {status.get('height')}   (working on {consensus.get('height')}, "
        f"round {consensus.get('round')})"
    )
    print(
        f"mempool   {status.get('mempool', {}).get('pending')} pending, "
        f"{status.get('mempool', {}).get('queued')} queued"
    )
    print(f"peers     {status.get('peers_alive')} alive   ready {status.get('ready')}")
    return 0


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
    up.add_argument("--validators", type=int, metavar="N", help="validators (default 4)")
    up.add_argument("--home", type=Path, default=Path(".devnet"), metavar="DIR")
    up.add_argument(
        "--base-port",
        type=int,
        metavar="PORT",
        help=f"node i uses PORT+10i (RPC) and PORT+10i+1 (gossip); default {DEFAULT_BASE_PORT}",
    )
    up.add_argument("--fresh", action="store_true", help="wipe the devnet home first")
    up.add_argument(
        "--accounts", type=int, metavar="N", help=f"dev accounts (default {DEFAULT_ACCOUNTS})"
    )
    up.add_argument(
        "--seed",
        metavar="TEXT",
        help="derive the dev accounts from TEXT (default 'devnet': the same keys everywhere)",
    )
    up.add_argument(
        "--block-time",
        type=int,
        metavar="MS",
        help="a block every MS milliseconds, empty or not (default 0: blocks only for"
        " transactions)",
    )
    up.add_argument(
        "--prometheus",
        action="store_true",
        help="also run Prometheus scraping every node, when installed (apt-get install prometheus)",
    )
    up.add_argument(
        "--prometheus-port",
        type=int,
        metavar="PORT",
        help="Prometheus' port on 127.0.0.1 (default 9090; implies --prometheus)",
    )
    up.set_defaults(run=cmd_devnet_up)
    init = sub.add_parser("init", help="write keys, genesis and configs of a devnet")
    init.add_argument("--validators", type=int, default=4, metavar="N")
    init.add_argument("--out", type=Path, required=True, metavar="DIR")
    init.add_argument("--base-port", type=int, default=26600, metavar="PORT")
    init.add_argument("--force", action="store_true", help="replace a devnet already there")
    init.add_argument(
        "--block-time", type=int, default=0, metavar="MS", help="a block every MS ms (0: on demand)"
    )
    init.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNTS, metavar="N")
    init.add_argument("--seed", default="devnet", metavar="TEXT", help="the dev accounts' seed")
    init.set_defaults(run=cmd_devnet_init)


def cmd_l1_verify(args: argparse.Namespace) -> int:
    from node.ops.l1verify import print_report, verify_l1

    report, certificate_issues, tip = verify_l1(
        args.rpc, args.l1, args.genesis, sender=args.sender, inbox=args.inbox
    )
    return print_report(report, certificate_issues, tip)


def _add_l1(commands: argparse._SubParsersAction) -> None:
    l1 = commands.add_parser("l1", help="L1 batch commitments")
    sub = l1.add_subparsers(dest="l1_command", required=True, metavar="COMMAND")
    verify = sub.add_parser(
        "verify", help="check every commitment on the L1 against a node's chain"
    )
    verify.add_argument("--rpc", default="http://127.0.0.1:26600", metavar="URL")
    verify.add_argument("--l1", required=True, metavar="SPEC", help="file:PATH or ethereum:URL")
    verify.add_argument(
        "--genesis",
        type=Path,
        metavar="FILE",
        help="check certificates against this genesis (default: the node's /validators)",
    )
    verify.add_argument("--sender", metavar="ADDR", help="ethereum: the batch poster's address")
    verify.add_argument("--inbox", metavar="ADDR", help="ethereum: the batch inbox address")
    verify.set_defaults(run=cmd_l1_verify)


def _add_node(commands: argparse._SubParsersAction) -> None:
    node = commands.add_parser("node", help="run one node")
    node.add_argument("--home", type=Path, required=True, metavar="DIR", help="its home")
    node.add_argument("--log-format", choices=["human", "json"], help="override [log] format")
    node.set_defaults(run=cmd_node)


def _add_client(commands: argparse._SubParsersAction) -> None:
    tx = commands.add_parser("tx", help="transactions")
    sub = tx.add_subparsers(dest="tx_command", required=True, metavar="COMMAND")
    send = sub.add_parser("send", help="sign a transaction and post it")
    send.add_argument("--rpc", default="http://127.0.0.1:26600", metavar="URL")
    send.add_argument("--key", type=Path, required=True, metavar="FILE", help="key file")
    group = send.add_mutually_exclusive_group(required=True)
    group.add_argument("--payload", help="payload text (UTF-8)")
    group.add_argument("--payload-hex", metavar="HEX", help="payload bytes in hex")
    send.add_argument("--namespace", type=int, default=0, metavar="N")
    send.add_argument("--gas-price", type=int, default=1, metavar="P")
    send.add_argument("--nonce", type=int, metavar="N", help="default: the next one")
    send.add_argument(
        "--wait",
        nargs="?",
        const="final",
        choices=["final", "l1"],
        help="wait until it is final (the default level) or held by a confirmed L1 batch",
    )
    send.add_argument("--timeout", type=float, default=30.0, metavar="S")
    send.add_argument("--json", action="store_true", help="print JSON")
    send.set_defaults(run=cmd_tx_send)
    status = commands.add_parser("status", help="a node's status")
    status.add_argument("--rpc", default="http://127.0.0.1:26600", metavar="URL")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=cmd_status)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sequencer",
        description="A multi-node BFT rollup sequencer.",
    )
    parser.add_argument("--version", action="version", version=f"sequencer {sequencer.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_keys(commands)
    _add_devnet(commands)
    _add_node(commands)
    _add_client(commands)
    _add_l1(commands)
    add_light_commands(commands)
    add_genesis_commands(commands)
    # Listed here; its arguments are node.lab.bench's own (see `main`).
    commands.add_parser("bench", help="benchmark a fresh 4-node devnet (see `bench --help`)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from node.lab.bench import main as bench  # its own parser, and only loaded for it

        return bench(argv[1:])
    args = build_parser().parse_args(argv)
    if getattr(args, "devnet_command", None) == "up":
        args.validators_given = args.validators is not None
        args.validators = 4 if args.validators is None else args.validators
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
