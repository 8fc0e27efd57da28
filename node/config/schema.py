"""The node's configuration: `<home>/config.toml`.

The file is read with `tomllib` and converted by msgspec into the typed,
frozen structs below, which forbid unknown keys; then the values msgspec
cannot check alone (addresses, the network's and mempool's own rules) are
validated. Every problem raises one `ConfigError` naming the file and the
dotted key:

    /x/node0/config.toml: rpc.listen: expected "host:port", got "nope"
    /x/node0/config.toml: unknown key p2p.gossip.datagram_bytes (did you mean datagram_bytes_max?)

Every key has a default, so an empty file is a valid configuration. Paths
are relative to the node's home. The schema:

    [node]        name, key_file, genesis_file, data_dir (LevelDB), journal
    [rpc]         listen ("host:port", IP literal host), body_bytes_max,
                  batch_txs_max, requests_per_s, burst, connections_max,
                  connections_per_client_max, send_timeout_s, body_timeout_s,
                  read_timeout_s, response_bytes_max
    [p2p]         listen (multiaddr without /p2p), peers (multiaddrs with /p2p)
    [p2p.gossip]  any `net.config.GossipConfig` field
    [p2p.faults]  any `net.faults.FaultConfig` field; blocked_to / blocked_from
                  list peer ids
    [mempool]     any `sequencer.mempool.MempoolConfig` field but chain_id
                  (it is the genesis's)
    [consensus]   any `consensus.core.CoreConfig` field
    [log]         format ("human" or "json"), level (debug, info, warning, error)
    [chaos]       control (off by default): re-read `chaos.json` in the home on
                  SIGUSR1, for chaos runs (see `node.daemon.chaos_control`)

The last four tables mirror their library types field for field (types,
bounds and defaults are taken from them, so they cannot drift), and
`dump_config` writes only the keys that differ from those defaults.

Loading (`node.config.load`) applies environment overrides and translates
errors; writing is `node.config.write`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from consensus.core import CoreConfig
from net.config import GossipConfig
from net.errors import NetError
from net.faults import FaultConfig
from net.multiaddr import Multiaddr
from net.wire import PEERS_MAX
from node.api.limits import RpcLimits
from node.errors import ConfigError
from sequencer.batcher import BatchConfig
from sequencer.limits import BLOCK_TXS_MAX, NAME_CHARS_MAX
from sequencer.mempool import MempoolConfig

__all__ = [
    "CONFIG_FILE",
    "KEYS",
    "TABLE_KEYS",
    "BatcherSection",
    "ChaosSection",
    "ConsensusSection",
    "FaultsSection",
    "GossipSection",
    "LogSection",
    "MempoolSection",
    "NodeConfig",
    "NodeSection",
    "P2PSection",
    "RpcSection",
    "parse_host_port",
]

CONFIG_FILE = "config.toml"
RPC_BODY_BYTES_LIMIT = 64 * 1024 * 1024
RPC_REQUESTS_PER_S_LIMIT = 10_000_000
RPC_BURST_LIMIT = 10_000_000
PATH_CHARS_MAX = 4096
PORT_MAX = 65535

_T = TypeVar("_T")

Name = Annotated[str, Meta(min_length=1, max_length=NAME_CHARS_MAX)]
PathText = Annotated[str, Meta(min_length=1, max_length=PATH_CHARS_MAX)]
Address = Annotated[str, Meta(max_length=256)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A TOML table: strict, immutable, every key optional."""


class NodeSection(_Section):
    name: Name = "node0"
    key_file: PathText = "key.json"
    genesis_file: PathText = "genesis.json"
    data_dir: PathText = "data"  # the LevelDB directory
    journal: bool = True  # journal accepted transactions


# The defaults of keys that configure a library type are that type's own, so
# that the two cannot drift apart.
_RPC = RpcLimits()
_BATCH = BatchConfig()


class RpcSection(_Section):
    listen: Address = "127.0.0.1:26600"
    body_bytes_max: Annotated[int, Meta(ge=1, le=RPC_BODY_BYTES_LIMIT)] = _RPC.body_bytes_max
    batch_txs_max: Annotated[int, Meta(ge=1, le=BLOCK_TXS_MAX)] = _RPC.batch_txs_max
    requests_per_s: Annotated[float, Meta(gt=0, le=RPC_REQUESTS_PER_S_LIMIT)] = float(
        _RPC.requests_per_s
    )
    burst: Annotated[int, Meta(ge=1, le=RPC_BURST_LIMIT)] = _RPC.burst
    # Open connections in all (lowered at start to keep descriptors free for
    # storage) and per client address; one over either gets 503 `overloaded`.
    connections_max: Annotated[int, Meta(ge=1, le=1_000_000)] = 1_024
    connections_per_client_max: Annotated[int, Meta(ge=1, le=1_000_000)] = 64
    # A client must take each write within send_timeout_s (or lose the
    # connection), send a request's whole body within body_timeout_s (or get
    # 408); a connection on which nothing moved either way for read_timeout_s
    # is closed (an event stream's keepalive comment counts as moving).
    send_timeout_s: Annotated[float, Meta(gt=0, le=3_600)] = 10.0
    body_timeout_s: Annotated[float, Meta(gt=0, le=3_600)] = _RPC.body_timeout_s
    read_timeout_s: Annotated[float, Meta(gt=0, le=3_600)] = 30.0
    response_bytes_max: Annotated[int, Meta(ge=65_536, le=1 << 30)] = _RPC.response_bytes_max


# ------------------------------------------------------------------ mirrored tables


def _defaults(target: type) -> Iterator[tuple[str, Any]]:
    """(name, default) of every field of a dataclass or msgspec struct."""
    if dataclasses.is_dataclass(target):
        for field in dataclasses.fields(target):
            yield field.name, field.default
    else:
        for info in msgspec.structs.fields(target):
            yield info.name, info.default


def _mirror(
    name: str,
    target: type,
    *,
    exclude: frozenset[str] = frozenset(),
    replace: Mapping[str, tuple[Any, Any]] | None = None,
) -> Any:
    """A `_Section` with `target`'s fields, types and defaults.

    A knob in a config file is a size, a count, a duration or a probability,
    so plain `int` and `float` fields are bounded below by 0 here even where
    the target does not check it. `replace` maps a field to (type, default)
    when the file spells it differently (peer ids instead of key bytes).
    """
    hints = typing.get_type_hints(target, include_extras=True)
    fields = []
    for field_name, default in _defaults(target):
        if field_name in exclude:
            continue
        field_type = hints[field_name]
        if field_type in (int, float):
            field_type = Annotated[field_type, Meta(ge=0)]
        if replace and field_name in replace:
            field_type, default = replace[field_name]
        assert default is not msgspec.NODEFAULT, f"{target.__name__}.{field_name} has no default"
        assert default is not dataclasses.MISSING, f"{target.__name__}.{field_name} has no default"
        fields.append((field_name, field_type, default))
    section = msgspec.defstruct(
        name,
        fields,
        bases=(_Section,),
        module=__name__,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        omit_defaults=True,
    )
    section.__doc__ = f"The `{target.__name__}` fields, as a config table."
    return section


_PeerList = Annotated[tuple[str, ...], Meta(max_length=PEERS_MAX)]

GossipSection = _mirror("GossipSection", GossipConfig)
FaultsSection = _mirror(
    "FaultsSection",
    FaultConfig,
    replace={"blocked_to": (_PeerList, ()), "blocked_from": (_PeerList, ())},
)
MempoolSection = _mirror("MempoolSection", MempoolConfig, exclude=frozenset({"chain_id"}))
ConsensusSection = _mirror("ConsensusSection", CoreConfig)


class P2PSection(_Section):
    listen: Address = "/ip4/127.0.0.1/udp/26601"  # no /p2p: the key file says who we are
    peers: _PeerList = ()  # each with /p2p/<peer id>: it says who they are
    gossip: GossipSection = msgspec.field(default_factory=GossipSection)
    faults: FaultsSection = msgspec.field(default_factory=FaultsSection)


class BatcherSection(_Section):
    """The L1 batch poster; a devnet enables it on node 0."""

    enabled: bool = False
    sink: Literal["file", "ethereum"] = "file"
    file: PathText = "l1.jsonl"  # the file L1, relative to the home
    ethereum_url: Address = "http://127.0.0.1:8545"
    # Hex private key of the L1 account (better set by SEQUENCER_BATCHER_ETHEREUM_PRIVATE_KEY).
    ethereum_private_key: Annotated[str, Meta(pattern=r"^((0x)?[0-9a-fA-F]{64})?$")] = ""
    inbox_address: Annotated[str, Meta(pattern=r"^0x[0-9a-fA-F]{40}$")] = (
        "0x00000000000000000000000000000000000b47c4"
    )
    confirmations: Annotated[int, Meta(ge=0, le=1_000)] = 1
    max_blocks: Annotated[int, Meta(ge=1, le=100_000)] = _BATCH.max_blocks
    max_bytes: Annotated[int, Meta(ge=1, le=128 * 1024 * 1024)] = _BATCH.max_bytes
    max_age_ms: Annotated[int, Meta(ge=1, le=3_600_000)] = _BATCH.max_age_ms
    backlog_batches_max: Annotated[int, Meta(ge=1, le=100_000)] = 64


class LogSection(_Section):
    format: Literal["human", "json"] = "human"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ChaosSection(_Section):
    """Fault injection at run time, for chaos runs only (`node.daemon.chaos_control`)."""

    control: bool = False  # apply `chaos.json` in the home at start and on SIGUSR1


# ------------------------------------------------------------------ the configuration


class NodeConfig(_Section):
    """A node's whole configuration; `load_config` returns it validated.

    The `[mempool]` table is `mempool_settings` here, because `mempool()`
    builds the `MempoolConfig` (it needs the genesis's chain id).
    Accessors raise `ConfigError` naming the key, so a hand-built config
    fails as clearly as a file.
    """

    node: NodeSection = msgspec.field(default_factory=NodeSection)
    rpc: RpcSection = msgspec.field(default_factory=RpcSection)
    p2p: P2PSection = msgspec.field(default_factory=P2PSection)
    mempool_settings: MempoolSection = msgspec.field(default_factory=MempoolSection, name="mempool")
    consensus: ConsensusSection = msgspec.field(default_factory=ConsensusSection)
    log: LogSection = msgspec.field(default_factory=LogSection)
    batcher: BatcherSection = msgspec.field(default_factory=BatcherSection)
    chaos: ChaosSection = msgspec.field(default_factory=ChaosSection)

    # -------------------------------------------------------------- addresses

    @property
    def rpc_address(self) -> tuple[str, int]:
        """(host, port) for the HTTP server; an IPv6 host has no brackets."""
        try:
            return parse_host_port(self.rpc.listen)
        except ValueError as exc:
            raise ConfigError(f"rpc.listen: {exc}", key="rpc.listen") from None

    @property
    def p2p_listen(self) -> Multiaddr:
        address = _multiaddr("p2p.listen", self.p2p.listen)
        if address.peer_id is not None:
            raise ConfigError(
                f"p2p.listen: a listen address has no /p2p/<peer id> part (the key file"
                f" says who we are), got {json.dumps(self.p2p.listen)}",
                key="p2p.listen",
            )
        return address

    @property
    def peer_addresses(self) -> list[Multiaddr]:
        """The peers to dial, each with its peer id; no peer id twice."""
        addresses: list[Multiaddr] = []
        seen: dict[str, str] = {}
        for index, text in enumerate(self.p2p.peers):
            key = f"p2p.peers[{index}]"
            address = _multiaddr(key, text)
            if address.peer_id is None:
                raise ConfigError(
                    f"{key}: a peer address must end with /p2p/<peer id>, got {json.dumps(text)}",
                    key=key,
                )
            if address.peer_id in seen:
                raise ConfigError(
                    f"{key}: peer {address.peer_id} is already listed as {seen[address.peer_id]}",
                    key=key,
                )
            seen[address.peer_id] = key
            addresses.append(address)
        return addresses

    # -------------------------------------------------------------- library configs

    def gossip(self) -> GossipConfig:
        return _build("p2p.gossip", lambda: GossipConfig(**_fields(self.p2p.gossip)))

    def faults(self) -> FaultConfig:
        return _build("p2p.faults", lambda: FaultConfig.from_mapping(_fields(self.p2p.faults)))

    def mempool(self, chain_id: str) -> MempoolConfig:
        settings = _fields(self.mempool_settings)
        return _build("mempool", lambda: MempoolConfig(chain_id=chain_id, **settings))

    def core(self) -> CoreConfig:
        return _build("consensus", lambda: CoreConfig(**_fields(self.consensus)))

    def rpc_limits(self) -> RpcLimits:
        """The `[rpc]` keys the app enforces, by the names `RpcLimits` shares."""
        fields = _fields(self.rpc)
        shared = {f.name: fields[f.name] for f in dataclasses.fields(RpcLimits) if f.name in fields}
        return _build("rpc", lambda: RpcLimits(**shared))

    def batch_config(self) -> BatchConfig:
        fields = _fields(self.batcher)
        shared = {name: fields[name] for name in BatchConfig.__struct_fields__}
        return _build("batcher", lambda: BatchConfig(**shared))

    # -------------------------------------------------------------- paths

    def key_path(self, home: Path) -> Path:
        return _under(home, self.node.key_file)

    def genesis_path(self, home: Path) -> Path:
        return _under(home, self.node.genesis_file)

    def data_path(self, home: Path) -> Path:
        return _under(home, self.node.data_dir)

    def validate(self) -> None:
        """Check what msgspec alone cannot; raises `ConfigError` naming the key."""
        _ = self.rpc_address, self.p2p_listen, self.peer_addresses
        self.gossip()
        self.faults()
        self.mempool("validation")
        self.core()
        self.rpc_limits()
        self.batch_config()


def _fields(section: msgspec.Struct) -> dict[str, Any]:
    return msgspec.structs.asdict(section)


def _under(home: Path, path: str) -> Path:
    return Path(home) / Path(path).expanduser()


def _build(key: str, make: Callable[[], _T]) -> _T:
    try:
        return make()
    except (NetError, TypeError, ValueError) as exc:
        raise _library_error(key, str(exc)) from None


def _library_error(table: str, message: str) -> ConfigError:
    """A library's complaint, named by the full key when it names its field.

    `net` says "gossip.tick_ms must be ..." of the table `p2p.gossip`.
    """
    match = re.fullmatch(r"(\w+)\.(\w+):? (.*)", message, re.DOTALL)
    if match and match[1] == table.rsplit(".", 1)[-1] and f"{table}.{match[2]}" in KEYS:
        key = f"{table}.{match[2]}"
        return ConfigError(f"{key}: {match[3]}", key=key)
    return ConfigError(f"{table}: {message}", key=table)


def _multiaddr(key: str, text: str) -> Multiaddr:
    try:
        return Multiaddr.parse(text)
    except ValueError as exc:  # InvalidMultiaddrError quotes the text
        raise ConfigError(f"{key}: {exc}", key=key) from None


def parse_host_port(text: str) -> tuple[str, int]:
    """`"127.0.0.1:26600"` or `"[::1]:26600"` to (host, port); port 0 means any.

    The host must be an IP literal: a name would be resolved at bind time,
    far from the config file that spelled it. Raises `ValueError`.
    """
    expected = f'expected "host:port", got {json.dumps(text)}'
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port:
        raise ValueError(expected)
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{expected}: {json.dumps(host)} is not an IP address") from None
    if (ip.version == 6) != bracketed:
        raise ValueError(f'{expected}: write an IPv6 host in brackets, "[::1]:26600"')
    if not (port.isascii() and port.isdigit()) or str(int(port)) != port:
        raise ValueError(f"{expected}: port {json.dumps(port)} is not a decimal number")
    if int(port) > PORT_MAX:
        raise ValueError(f"{expected}: port {port} is above {PORT_MAX}")
    return str(ip), int(port)


# ------------------------------------------------------------------ the schema as keys


def _tables(struct: type, prefix: str = "") -> Iterator[tuple[str, Any, bool]]:
    """(dotted key, type, is a table) of every key under `struct`, depth first."""
    for info in msgspec.structs.fields(struct):
        key = f"{prefix}{info.encode_name}"
        table = isinstance(info.type, type) and issubclass(info.type, _Section)
        yield key, info.type, table
        if table:
            yield from _tables(info.type, f"{key}.")


# Every dotted key of a value, with its type; every dotted key of a table.
KEYS: dict[str, Any] = {key: kind for key, kind, table in _tables(NodeConfig) if not table}
TABLE_KEYS = frozenset(key for key, _, table in _tables(NodeConfig) if table)
