"""The files of a local devnet, as `cometbft testnet` writes them.

    <out>/devnet.json            the manifest (`DevnetLayout`); written last,
                                 so its presence means the devnet is complete
    <out>/wallet.json            the dev wallet's key (mode 0600): account 0
    <out>/accounts/              dev account keys derived from a seed (node.ops.accounts)
    <out>/node<i>/key.json       the validator's key (mode 0600)
    <out>/node<i>/genesis.json   the same bytes in every home
    <out>/node<i>/config.toml    RPC on base_port + 10 i, gossip on base_port + 10 i + 1,
                                 every other node as a peer

Nodes listen on 127.0.0.1, or each on its own IPv4 address (`hosts`: one
host per node, as for nodes in separate network namespaces).

Every file is written atomically (a temporary file renamed into place). An
`out` that already holds a devnet (a `devnet.json` that loads) is wiped only
with `force=True`; a directory that holds anything else is never written
into nor deleted.
"""

from __future__ import annotations

import ipaddress
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from net.config import DATAGRAM_BYTES_MAX
from net.identity import peer_id
from node.config import CONFIG_FILE, config_from_table, dump_config, parse_config, read_limited
from node.errors import ConfigError
from node.ops.accounts import ACCOUNTS_MAX, DEFAULT_SEED, account_key, write_accounts
from sequencer.crypto import PrivateKey, load_key, save_key
from sequencer.files import write_atomic
from sequencer.genesis import dump_genesis, parse_genesis
from sequencer.limits import CHAIN_ID_CHARS_MAX
from sequencer.types import ConsensusParams, Genesis, ValidatorInfo

__all__ = [
    "DEVNET_VALIDATORS_MAX",
    "MANIFEST_FILE",
    "WALLET_FILE",
    "DevnetLayout",
    "DevnetNode",
    "init_devnet",
    "load_layout",
]

DEVNET_VALIDATORS_MAX = 64
MANIFEST_FILE = "devnet.json"
MANIFEST_VERSION = 1
MANIFEST_BYTES_MAX = 1024 * 1024
WALLET_FILE = "wallet.json"
KEY_FILE = "key.json"
GENESIS_FILE = "genesis.json"
# Node i owns ports base + 10 i (RPC) and base + 10 i + 1 (gossip); the
# rest of each decade is left for what a node may grow (metrics, pprof).
PORT_STRIDE = 10
BLOCK_TIME_MS_MAX = 3_600_000
PORT_MAX = 65535
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class DevnetNode:
    name: str
    home: Path
    rpc: str  # base URL of the HTTP API
    metrics: str  # rpc + /metrics
    p2p: str  # multiaddr with /p2p/<peer id>
    public_key: bytes

    @property
    def peer_id(self) -> str:
        return peer_id(self.public_key)


@dataclass(frozen=True, slots=True)
class DevnetLayout:
    """What `devnet.json` records, with paths made absolute."""

    root: Path
    chain_id: str
    nodes: tuple[DevnetNode, ...]
    wallet: Path  # the dev wallet's key file
    wallet_public_key: bytes

    def wallet_key(self) -> PrivateKey:
        return load_key(self.wallet)


# ------------------------------------------------------------------ the manifest file


class _ManifestNode(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    home: str  # relative to the devnet root, so the directory can move
    rpc: str
    metrics: str
    p2p: str
    public_key: str  # hex


class _ManifestWallet(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    public_key: str  # hex


class _Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int
    chain_id: str
    nodes: list[_ManifestNode]
    wallet: _ManifestWallet


def load_layout(out: str | Path) -> DevnetLayout:
    """The devnet under `out`, from its `devnet.json`."""
    root = Path(out).absolute()
    path = root / MANIFEST_FILE
    missing = f"no such file: {root} holds no devnet (run `sequencer devnet init`)"
    data = read_limited(path, MANIFEST_BYTES_MAX, missing)
    try:
        manifest = msgspec.json.decode(data, type=_Manifest)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not a devnet manifest: {exc}") from None
    if manifest.version != MANIFEST_VERSION:
        raise ConfigError(
            f"{path}: manifest version {manifest.version}, this program reads {MANIFEST_VERSION}"
        )
    return DevnetLayout(
        root=root,
        chain_id=manifest.chain_id,
        nodes=tuple(
            DevnetNode(
                name=node.name,
                home=root / node.home,
                rpc=node.rpc,
                metrics=node.metrics,
                p2p=node.p2p,
                public_key=_public_key(path, f"nodes[{index}].public_key", node.public_key),
            )
            for index, node in enumerate(manifest.nodes)
        ),
        wallet=root / manifest.wallet.path,
        wallet_public_key=_public_key(path, "wallet.public_key", manifest.wallet.public_key),
    )


def _public_key(path: Path, key: str, text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ConfigError(f"{path}: {key}: expected 64 hex digits, got {text!r}", key=key)
    return value


def _manifest(layout: DevnetLayout) -> bytes:
    manifest = _Manifest(
        version=MANIFEST_VERSION,
        chain_id=layout.chain_id,
        nodes=[
            _ManifestNode(
                name=node.name,
                home=node.home.relative_to(layout.root).as_posix(),
                rpc=node.rpc,
                metrics=node.metrics,
                p2p=node.p2p,
                public_key=node.public_key.hex(),
            )
            for node in layout.nodes
        ],
        wallet=_ManifestWallet(
            path=layout.wallet.relative_to(layout.root).as_posix(),
            public_key=layout.wallet_public_key.hex(),
        ),
    )
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


# ------------------------------------------------------------------ init


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything `init_devnet` writes, built and checked before any write."""

    layout: DevnetLayout
    keys: tuple[PrivateKey, ...]
    wallet: PrivateKey
    genesis: bytes
    configs: tuple[str, ...]


def init_devnet(
    out: str | Path,
    validators: int,
    base_port: int = 26600,
    chain_id: str = "devnet-1",
    gossip_overrides: dict[str, Any] | None = None,
    *,
    force: bool = False,
    genesis_time_ms: int | None = None,
    hosts: Sequence[str] | None = None,
    block_time_ms: int = 0,
    accounts: int = 10,
    seed: str = DEFAULT_SEED,
) -> DevnetLayout:
    """Write a `validators`-node devnet under `out` (see the module doc).

    `gossip_overrides` adds `[p2p.gossip]` settings to every node's config
    (when every node is on loopback, `datagram_bytes_max` is already raised
    to the UDP limit; across real links it keeps the MTU-sized default).
    `hosts` gives each node its own IPv4 address (default: all on 127.0.0.1).
    `block_time_ms` > 0 makes a block every that many ms, empty or not (the
    genesis' `empty_block_interval_ms`); 0 makes blocks only for transactions.
    `accounts` dev accounts are derived from `seed` (`node.ops.accounts`);
    the dev wallet is account 0.
    Arguments are checked, and every file built and validated, before `out`
    is touched; raises `ConfigError`.
    """
    _check_arguments(validators, base_port, chain_id)
    if not _is_int(block_time_ms) or not 0 <= block_time_ms <= BLOCK_TIME_MS_MAX:
        raise ConfigError(f"block time must be 0..{BLOCK_TIME_MS_MAX} ms, got {block_time_ms!r}")
    if not _is_int(accounts) or not 1 <= accounts <= ACCOUNTS_MAX:
        raise ConfigError(f"accounts must be 1..{ACCOUNTS_MAX}, got {accounts!r}")
    if not isinstance(seed, str) or not seed:
        raise ConfigError("the accounts' seed must be a non-empty string")
    hosts = _check_hosts(validators, hosts)
    root = Path(out).absolute()
    plan = _plan(
        root,
        validators,
        base_port,
        chain_id,
        gossip_overrides or {},
        genesis_time_ms,
        hosts,
        block_time_ms,
        account_key(seed, 0),
    )
    existed = _prepare(root, force=force)
    try:
        _write(plan)
        write_accounts(root, seed, accounts)
    except BaseException:
        _clear(root, remove=not existed)
        raise
    return plan.layout


def _check_arguments(validators: int, base_port: int, chain_id: str) -> None:
    if not _is_int(validators) or not 1 <= validators <= DEVNET_VALIDATORS_MAX:
        raise ConfigError(f"validators must be 1..{DEVNET_VALIDATORS_MAX}, got {validators!r}")
    if not _is_int(base_port) or not 1 <= base_port <= PORT_MAX:
        raise ConfigError(f"base port must be 1..{PORT_MAX}, got {base_port!r}")
    last_port = _p2p_port(base_port, validators - 1)
    if last_port > PORT_MAX:
        raise ConfigError(
            f"base port {base_port} is too high for {validators} validators: they need ports"
            f" up to {last_port}, above {PORT_MAX} (node i uses base + {PORT_STRIDE} i and"
            f" base + {PORT_STRIDE} i + 1)"
        )
    if not 1 <= len(chain_id) <= CHAIN_ID_CHARS_MAX:
        raise ConfigError(f"chain id must be 1..{CHAIN_ID_CHARS_MAX} characters, got {chain_id!r}")


def _check_hosts(validators: int, hosts: Sequence[str] | None) -> tuple[str, ...]:
    if hosts is None:
        return (LOOPBACK,) * validators
    if isinstance(hosts, str) or len(hosts) != validators:
        raise ConfigError(
            f"hosts must list one address per validator ({validators}), got {hosts!r}"
        )
    for host in hosts:
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(f"hosts: {host!r} is not an IPv4 address") from None
    return tuple(hosts)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rpc_port(base_port: int, index: int) -> int:
    return base_port + PORT_STRIDE * index


def _p2p_port(base_port: int, index: int) -> int:
    return base_port + PORT_STRIDE * index + 1


def _plan(
    root: Path,
    validators: int,
    base_port: int,
    chain_id: str,
    gossip_overrides: dict[str, Any],
    genesis_time_ms: int | None,
    hosts: tuple[str, ...],
    block_time_ms: int,
    wallet: PrivateKey,
) -> _Plan:
    keys = tuple(PrivateKey.generate() for _ in range(validators))
    nodes = tuple(
        _node(root, base_port, index, key, hosts[index]) for index, key in enumerate(keys)
    )
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=time.time_ns() // 1_000_000 if genesis_time_ms is None else genesis_time_ms,
        validators=[
            ValidatorInfo(node.name, node.public_key, 1, node.p2p, node.rpc) for node in nodes
        ],
        consensus=ConsensusParams(empty_block_interval_ms=block_time_ms),
    )
    genesis_bytes = dump_genesis(genesis)
    assert parse_genesis(genesis_bytes) == genesis, "devnet genesis does not read back"
    loopback = all(ipaddress.IPv4Address(host).is_loopback for host in hosts)
    gossip = ({"datagram_bytes_max": DATAGRAM_BYTES_MAX} if loopback else {}) | gossip_overrides
    configs = tuple(
        _config_text(index, base_port, nodes, gossip, hosts[index]) for index in range(validators)
    )
    layout = DevnetLayout(
        root=root,
        chain_id=chain_id,
        nodes=nodes,
        wallet=root / WALLET_FILE,
        wallet_public_key=wallet.public_key,
    )
    return _Plan(layout, keys, wallet, genesis_bytes, configs)


def _node(root: Path, base_port: int, index: int, key: PrivateKey, host: str) -> DevnetNode:
    name = f"node{index}"
    rpc = f"http://{host}:{_rpc_port(base_port, index)}"
    return DevnetNode(
        name=name,
        home=root / name,
        rpc=rpc,
        metrics=f"{rpc}/metrics",
        p2p=f"/ip4/{host}/udp/{_p2p_port(base_port, index)}/p2p/{peer_id(key.public_key)}",
        public_key=key.public_key,
    )


def _config_text(
    index: int, base_port: int, nodes: tuple[DevnetNode, ...], gossip: dict[str, Any], host: str
) -> str:
    table = {
        "node": {
            "name": nodes[index].name,
            "key_file": KEY_FILE,
            "genesis_file": GENESIS_FILE,
        },
        "rpc": {"listen": f"{host}:{_rpc_port(base_port, index)}"},
        "p2p": {
            "listen": f"/ip4/{host}/udp/{_p2p_port(base_port, index)}",
            "peers": [node.p2p for position, node in enumerate(nodes) if position != index],
            "gossip": gossip,
        },
        # Node 0 posts batch commitments to the file L1 under its home.
        "batcher": {"enabled": index == 0},
    }
    # Through the same checks as a file on disk: a bad override fails here,
    # before anything is written.
    config = config_from_table(table, source=f"devnet config of {nodes[index].name}")
    text = dump_config(config)
    assert parse_config(text) == config, "devnet config does not read back"
    return text


def _prepare(root: Path, *, force: bool) -> bool:
    """Make `root` an empty directory; whether it existed before."""
    if not root.exists():
        _mkdir(root)
        return False
    if not root.is_dir():
        raise ConfigError(f"{root} exists and is not a directory")
    if (root / MANIFEST_FILE).exists():
        if not force:
            raise ConfigError(
                f"{root} already holds a devnet ({MANIFEST_FILE}); pass --force to wipe it"
                " and create a new one"
            )
        _wipe(root)
        return False
    if any(root.iterdir()):
        raise ConfigError(
            f"{root} is not empty and holds no {MANIFEST_FILE}, so it does not look like a"
            " devnet: refusing to write into it or delete it (choose a new directory)"
        )
    return True


def _wipe(root: Path) -> None:
    """Delete a devnet, only after its manifest proved it is one."""
    try:
        load_layout(root)
    except ConfigError as exc:
        raise ConfigError(
            f"{root} has a {MANIFEST_FILE} that is not a devnet manifest, so it may not be"
            f" a devnet: refusing to delete it ({exc})"
        ) from None
    try:
        shutil.rmtree(root)
    except OSError as exc:
        raise ConfigError(f"cannot wipe the devnet at {root}: {exc.strerror or exc}") from None
    _mkdir(root)


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror or exc}") from None


def _clear(root: Path, *, remove: bool) -> None:
    """Undo a failed init: `root` held nothing of value before it (or was wiped)."""
    if remove:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _write(plan: _Plan) -> None:
    layout = plan.layout
    for node, key, config in zip(layout.nodes, plan.keys, plan.configs, strict=True):
        _mkdir(node.home)
        save_key(key, node.home / KEY_FILE)
        _write_file(node.home / GENESIS_FILE, plan.genesis)
        _write_file(node.home / CONFIG_FILE, config.encode())
    save_key(plan.wallet, layout.wallet)
    _write_file(layout.root / MANIFEST_FILE, _manifest(layout))


def _write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file, fsynced, then renamed."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
