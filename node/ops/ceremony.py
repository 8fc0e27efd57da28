"""A genesis made by operators on separate machines, and testnet homes.

Each operator makes a key (`sequencer keys new`) and prints its validator's
public entry (`sequencer genesis validator`: name, key, power, p2p and rpc
addresses, as JSON). Anyone then assembles `genesis.json` from all the
entries (`sequencer genesis build`); the result depends only on the entries
and the flags, not on their order or on who builds it, so every operator
can build it too and compare the printed hash (`sequencer genesis hash`).

`sequencer testnet init --hosts A,B,…` writes one node home per host, each
listening on its host's address and peering with the others (and a genesis
for all of them), to copy to the hosts.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from blake3 import blake3

from net.identity import peer_id
from node.config import config_from_table, dump_config
from sequencer.codec import from_builtins, to_builtins
from sequencer.crypto import load_key
from sequencer.errors import DecodeError, SequencerError
from sequencer.files import write_atomic
from sequencer.genesis import dump_genesis, load_genesis
from sequencer.types import ConsensusParams, Genesis, ValidatorInfo

__all__ = ["add_genesis_commands", "build_genesis", "genesis_hash", "validator_entry"]

_P2P = re.compile(r"^/ip4/(\d{1,3}(\.\d{1,3}){3})/udp/(\d{1,5})$")


def validator_entry(key_file: Path, name: str, p2p: str, rpc: str, power: int) -> ValidatorInfo:
    """This operator's public entry: its key's public half, the addresses others use."""
    if _P2P.match(p2p) is None:
        raise SequencerError(f"--p2p must look like /ip4/10.0.0.1/udp/26601, got {p2p!r}")
    if not rpc.startswith(("http://", "https://")):
        raise SequencerError(f"--rpc must be a base URL (http://10.0.0.1:26600), got {rpc!r}")
    if power < 1:
        raise SequencerError(f"--power must be at least 1, got {power}")
    key = load_key(key_file)
    address = f"{p2p}/p2p/{peer_id(key.public_key)}"
    try:
        return ValidatorInfo(name, key.public_key, power, address, rpc)
    except (ValueError, TypeError) as exc:
        raise SequencerError(f"the entry does not fit: {exc}") from None


def _read_entry(path: Path) -> ValidatorInfo:
    try:
        return from_builtins(json.loads(path.read_text()), ValidatorInfo)
    except OSError as exc:
        raise SequencerError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, DecodeError) as exc:
        raise SequencerError(f"{path} is not a validator entry: {exc}") from None


def build_genesis(
    entries: Sequence[Path],
    chain_id: str,
    genesis_time_ms: int,
    block_time_ms: int = 0,
) -> bytes:
    """`genesis.json`'s bytes: the validators sorted by public key, so the
    same entries give the same file whoever builds it and in whatever order."""
    if not entries:
        raise SequencerError("genesis build needs at least one validator entry")
    validators = sorted((_read_entry(path) for path in entries), key=lambda v: v.public_key)
    keys = [v.public_key for v in validators]
    if len(set(keys)) != len(keys):
        raise SequencerError("two entries have the same public key")
    try:
        genesis = Genesis(
            chain_id=chain_id,
            genesis_time_ms=genesis_time_ms,
            validators=validators,
            consensus=ConsensusParams(empty_block_interval_ms=block_time_ms),
        )
    except (ValueError, TypeError) as exc:
        raise SequencerError(f"not a valid genesis: {exc}") from None
    return dump_genesis(genesis)


def genesis_hash(data: bytes) -> str:
    """What operators compare: BLAKE3 of the file's bytes."""
    return blake3(data).hexdigest()


def entry_json(entry: ValidatorInfo) -> str:
    return json.dumps(to_builtins(entry), indent=2)


def home_files(key_file: Path, genesis_file: Path) -> tuple[str, bytes, bytes, str]:
    """(name, key file bytes, genesis bytes, config.toml) of the node whose key
    this is: it listens on the addresses of its own entry and peers with every
    other validator of the genesis."""
    genesis = load_genesis(genesis_file)
    key = load_key(key_file)
    mine = [v for v in genesis.validators if v.public_key == key.public_key]
    if not mine:
        raise SequencerError(
            f"{key_file}'s public key {key.public_key.hex()} is not a validator of {genesis_file}"
        )
    (entry,) = mine
    rpc = urlsplit(entry.rpc)
    p2p = entry.p2p.split("/p2p/")[0]
    table = {
        "node": {"name": entry.name, "key_file": "key.json", "genesis_file": "genesis.json"},
        "rpc": {"listen": f"{rpc.hostname}:{rpc.port}"},
        "p2p": {
            "listen": p2p,
            "peers": [v.p2p for v in genesis.validators if v.public_key != key.public_key],
        },
    }
    config = dump_config(config_from_table(table, source=f"the config of {entry.name}"))
    return entry.name, key_file.read_bytes(), genesis_file.read_bytes(), config


# ------------------------------------------------------------------ commands


def cmd_genesis_home(args: argparse.Namespace) -> int:
    name, key, genesis, config = home_files(args.key, args.genesis)
    if args.out.exists() and any(args.out.iterdir()):
        raise SequencerError(f"{args.out} is not empty: choose a new directory for the home")
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "key.json", key, mode=0o600)
    write_atomic(args.out / "genesis.json", genesis)
    write_atomic(args.out / "config.toml", config.encode())
    print(f"{args.out}: the home of {name}; start it with: sequencer node --home {args.out}")
    return 0


def cmd_genesis_validator(args: argparse.Namespace) -> int:
    entry = validator_entry(args.key, args.name, args.p2p, args.rpc, args.power)
    text = entry_json(entry) + "\n"
    if args.out is not None:
        write_atomic(args.out, text.encode())
    print(text, end="")
    return 0


def cmd_genesis_build(args: argparse.Namespace) -> int:
    data = build_genesis(args.entries, args.chain_id, args.genesis_time_ms, args.block_time)
    write_atomic(args.out, data)
    count = len(args.entries)
    print(f"{args.out}: chain {args.chain_id}, {count} validators, hash {genesis_hash(data)}")
    return 0


def cmd_genesis_hash(args: argparse.Namespace) -> int:
    load_genesis(args.file)  # a file that is no genesis is refused, not hashed
    print(f"{genesis_hash(args.file.read_bytes())}  {args.file}")
    return 0


def cmd_testnet_init(args: argparse.Namespace) -> int:
    from node.ops.devnet import init_devnet

    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    layout = init_devnet(
        args.out,
        len(hosts),
        args.base_port,
        args.chain_id,
        force=args.force,
        hosts=hosts,
        block_time_ms=args.block_time,
    )
    data = (Path(layout.nodes[0].home) / "genesis.json").read_bytes()
    print(f"testnet {layout.chain_id}: {len(hosts)} validators, genesis hash {genesis_hash(data)}")
    for node, host in zip(layout.nodes, hosts, strict=True):
        print(f"  {host:<16}{node.home}  rpc {node.rpc}  p2p {node.p2p}")
    print("copy each home to its host and run: sequencer node --home <that home>")
    return 0


def add_genesis_commands(commands: argparse._SubParsersAction) -> None:
    genesis = commands.add_parser("genesis", help="make a genesis with operators on other machines")
    sub = genesis.add_subparsers(dest="genesis_command", required=True, metavar="COMMAND")
    entry = sub.add_parser("validator", help="print this validator's public entry (JSON)")
    entry.add_argument("--key", type=Path, required=True, metavar="FILE", help="its key file")
    entry.add_argument("--name", required=True)
    entry.add_argument("--p2p", required=True, metavar="ADDR", help="/ip4/HOST/udp/PORT")
    entry.add_argument("--rpc", required=True, metavar="URL", help="http://HOST:PORT")
    entry.add_argument("--power", type=int, default=1)
    entry.add_argument("--out", type=Path, metavar="FILE", help="also write it here")
    entry.set_defaults(run=cmd_genesis_validator)
    build = sub.add_parser("build", help="assemble genesis.json from every validator's entry")
    build.add_argument("entries", type=Path, nargs="+", metavar="ENTRY")
    build.add_argument("--chain-id", required=True)
    build.add_argument(
        "--genesis-time-ms", type=int, required=True, metavar="MS", help="agreed by all"
    )
    build.add_argument("--block-time", type=int, default=0, metavar="MS")
    build.add_argument("--out", type=Path, default=Path("genesis.json"), metavar="FILE")
    build.set_defaults(run=cmd_genesis_build)
    home = sub.add_parser("home", help="this validator's node home from its key and the genesis")
    home.add_argument("--key", type=Path, required=True, metavar="FILE")
    home.add_argument("--genesis", type=Path, required=True, metavar="FILE")
    home.add_argument("--out", type=Path, required=True, metavar="DIR")
    home.set_defaults(run=cmd_genesis_home)
    hash_ = sub.add_parser("hash", help="the hash every operator compares")
    hash_.add_argument("file", type=Path, metavar="FILE")
    hash_.set_defaults(run=cmd_genesis_hash)

    testnet = commands.add_parser("testnet", help="homes for validators on several hosts")
    tsub = testnet.add_subparsers(dest="testnet_command", required=True, metavar="COMMAND")
    init = tsub.add_parser("init", help="one home per host, listening there, peering the others")
    init.add_argument("--hosts", required=True, metavar="A,B,...", help="one IPv4 per validator")
    init.add_argument("--out", type=Path, required=True, metavar="DIR")
    init.add_argument("--chain-id", default="testnet-1")
    init.add_argument("--base-port", type=int, default=26600, metavar="PORT")
    init.add_argument("--block-time", type=int, default=0, metavar="MS")
    init.add_argument("--force", action="store_true", help="replace what is there")
    init.set_defaults(run=cmd_testnet_init)
