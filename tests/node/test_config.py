"""`node.config.schema`: the TOML schema, its errors, environment overrides, dumping."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.core import CoreConfig
from net.config import GossipConfig
from net.faults import FaultConfig
from net.identity import peer_id
from net.multiaddr import Multiaddr
from node.api.limits import RpcLimits
from node.config import (
    CONFIG_FILE,
    NodeConfig,
    config_from_table,
    dump_config,
    load_config,
    parse_config,
    parse_host_port,
)
from node.config.schema import (
    ConsensusSection,
    FaultsSection,
    GossipSection,
    MempoolSection,
    NodeSection,
    P2PSection,
    RpcSection,
)
from node.errors import ConfigError, NodeError
from sequencer.batcher import BatchConfig
from sequencer.crypto import PrivateKey
from sequencer.errors import SequencerError
from sequencer.mempool import MempoolConfig


def public_key(n: int) -> bytes:
    return PrivateKey(bytes([n]) * 32).public_key


PEER_1 = peer_id(public_key(1))
PEER_2 = peer_id(public_key(2))
ADDRESS_1 = f"/ip4/127.0.0.1/udp/26611/p2p/{PEER_1}"
ADDRESS_2 = f"/ip4/127.0.0.1/udp/26621/p2p/{PEER_2}"

FULL = f"""
[node]
name = "node7"
key_file = "keys/validator.json"
genesis_file = "/etc/sequencer/genesis.json"
data_dir = "db"
journal = false

[rpc]
listen = "0.0.0.0:9000"
body_bytes_max = 2048
batch_txs_max = 10
requests_per_s = 50
burst = 100

[p2p]
listen = "/ip4/0.0.0.0/udp/9001"
peers = ["{ADDRESS_1}", "{ADDRESS_2}"]

[p2p.gossip]
datagram_bytes_max = 65000
mesh_degree = 4
tick_ms = 2

[p2p.faults]
drop = 0.25
blocked_to = ["{PEER_2}"]

[mempool]
slots_max = 10
min_gas_price = 0

[consensus]
rebroadcast_ms = 500
wait_for_txs = false

[log]
format = "json"
level = "debug"
"""


# ------------------------------------------------------------------ valid files


def test_empty_file_is_the_defaults() -> None:
    config = parse_config("")
    assert config == NodeConfig()
    assert config.rpc_address == ("127.0.0.1", 26600)
    assert config.p2p_listen == Multiaddr.parse("/ip4/127.0.0.1/udp/26601")
    assert config.peer_addresses == []
    assert config.gossip() == GossipConfig()
    assert config.faults() == FaultConfig()
    assert config.mempool("c-1") == MempoolConfig(chain_id="c-1")
    assert config.core() == CoreConfig()
    assert (config.log.format, config.log.level) == ("human", "info")
    assert config.node.journal is True


def test_every_section() -> None:
    config = parse_config(FULL)
    assert config.node == NodeSection(
        name="node7",
        key_file="keys/validator.json",
        genesis_file="/etc/sequencer/genesis.json",
        data_dir="db",
        journal=False,
    )
    assert config.rpc == RpcSection(
        listen="0.0.0.0:9000", body_bytes_max=2048, batch_txs_max=10, requests_per_s=50, burst=100
    )
    assert config.rpc_address == ("0.0.0.0", 9000)
    assert str(config.p2p_listen) == "/ip4/0.0.0.0/udp/9001"
    assert [str(a) for a in config.peer_addresses] == [ADDRESS_1, ADDRESS_2]
    assert [a.public_key for a in config.peer_addresses] == [public_key(1), public_key(2)]
    assert config.gossip() == GossipConfig(datagram_bytes_max=65000, mesh_degree=4, tick_ms=2.0)
    assert config.faults() == FaultConfig(drop=0.25, blocked_to=frozenset({public_key(2)}))
    assert config.mempool("c-1") == MempoolConfig(chain_id="c-1", slots_max=10, min_gas_price=0)
    assert config.core() == CoreConfig(rebroadcast_ms=500, wait_for_txs=False)
    assert (config.log.format, config.log.level) == ("json", "debug")


@pytest.mark.parametrize(
    ("toml", "check"),
    [
        ('[rpc]\nlisten = "[::1]:26600"', lambda c: c.rpc_address == ("::1", 26600)),
        ('[rpc]\nlisten = "127.0.0.1:0"', lambda c: c.rpc_address == ("127.0.0.1", 0)),
        ("[rpc]\nrequests_per_s = 0.5", lambda c: c.rpc.requests_per_s == 0.5),
        ('[p2p]\nlisten = "/ip6/::1/udp/4001"', lambda c: c.p2p_listen.port == 4001),
        ("[p2p.gossip]\nflush_interval_ms = 0", lambda c: c.gossip().flush_interval_ms == 0),
        ("[p2p.faults]\ndelay = 1.0\ndelay_ms_max = 50", lambda c: c.faults().delay_ms_max == 50),
        ('[log]\nlevel = "warning"', lambda c: c.log.level == "warning"),
        ('[node]\nname = "validator-ß"', lambda c: c.node.name == "validator-ß"),
        ("[consensus]\nrebroadcast_rounds = 0", lambda c: c.core().rebroadcast_rounds == 0),
    ],
)
def test_valid_table(toml: str, check) -> None:
    assert check(parse_config(toml))


# ------------------------------------------------------------------ invalid files

INVALID = [
    # (toml, the key the error names, a fragment of the message)
    ('[rpc]\nlisten = "nope"', "rpc.listen", 'expected "host:port", got "nope"'),
    ('[rpc]\nlisten = "localhost:26600"', "rpc.listen", '"localhost" is not an IP address'),
    ('[rpc]\nlisten = "::1:26600"', "rpc.listen", "in brackets"),
    ('[rpc]\nlisten = "[127.0.0.1]:26600"', "rpc.listen", "in brackets"),
    ('[rpc]\nlisten = "127.0.0.1:65536"', "rpc.listen", "above 65535"),
    ('[rpc]\nlisten = "127.0.0.1:-1"', "rpc.listen", "not a decimal number"),
    ('[rpc]\nlisten = "127.0.0.1:"', "rpc.listen", "expected"),
    ("[rpc]\nlisten = 26600", "rpc.listen", "expected `str`, got `int`"),
    ("[rpc]\nbody_bytes_max = 0", "rpc.body_bytes_max", ">= 1"),
    ('[rpc]\nbody_bytes_max = "1M"', "rpc.body_bytes_max", "expected `int`, got `str`"),
    ("[rpc]\nbatch_txs_max = 1.5", "rpc.batch_txs_max", "expected `int`, got `float`"),
    ("[rpc]\nburst = true", "rpc.burst", "got `bool`"),
    ("[rpc]\nrequests_per_s = 0", "rpc.requests_per_s", "> 0"),
    ("[rpc]\nport = 1", "rpc.port", "unknown key rpc.port"),
    ("rpc = 5", "rpc", "expected a table"),
    ("[bogus]", "bogus", "unknown key bogus"),
    ("[p2p.gossip]\ndatagram_bytes = 1", "p2p.gossip.datagram_bytes", "did you mean"),
    ("[p2p.gossip]\ndatagram_bytes_max = 70000", "p2p.gossip.datagram_bytes_max", "65000"),
    ("[p2p.gossip]\ntick_ms = -1", "p2p.gossip.tick_ms", ">= 0"),
    ("[p2p.gossip]\nmesh_degree = 2.5", "p2p.gossip.mesh_degree", "expected `int`"),
    ("[p2p.gossip]\nin_flight_bytes_max = 600", "p2p.gossip.in_flight_bytes_max", "between"),
    (
        f'[p2p]\nlisten = "{ADDRESS_1}"',
        "p2p.listen",
        "a listen address has no /p2p/<peer id> part",
    ),
    ('[p2p]\nlisten = "/ip4/127.0.0.1/tcp/1"', "p2p.listen", "only udp"),
    ('[p2p]\nlisten = "/dns4/example.com/udp/1"', "p2p.listen", "invalid multiaddr"),
    (
        f'[p2p]\npeers = ["{ADDRESS_1}", "/ip4/127.0.0.1/udp/5"]',
        "p2p.peers[1]",
        "must end with /p2p/<peer id>",
    ),
    (
        f'[p2p]\npeers = ["{ADDRESS_1}", "/ip4/10.0.0.1/udp/5/p2p/{PEER_1}"]',
        "p2p.peers[1]",
        "already listed as p2p.peers[0]",
    ),
    ('[p2p]\npeers = ["/ip4/127.0.0.1/udp/5/p2p/12D3KooWnope"]', "p2p.peers[0]", "bad peer id"),
    ('[p2p]\npeers = "x"', "p2p.peers", "expected a list"),
    ("[p2p]\npeers = [1]", "p2p.peers[0]", "expected `str`"),
    ("[p2p.faults]\ndrop = 1.5", "p2p.faults.drop", "probability"),
    ('[p2p.faults]\nblocked_to = ["nope"]', "p2p.faults.blocked_to", "not a peer id"),
    ("[p2p.faults]\nloss = 0.1", "p2p.faults.loss", "unknown key p2p.faults.loss"),
    ('[mempool]\nchain_id = "x"', "mempool.chain_id", "unknown key mempool.chain_id"),
    ("[mempool]\nslots_max = 0", "mempool.slots_max", ">= 1"),
    ("[mempool]\nmin_gas_price = -1", "mempool.min_gas_price", ">= 0"),
    ("[consensus]\nrebroadcast_ms = -1", "consensus.rebroadcast_ms", ">= 0"),
    ('[consensus]\nwait_for_txs = "yes"', "consensus.wait_for_txs", "expected `bool`"),
    ('[log]\nformat = "xml"', "log.format", "one of: human, json"),
    ('[log]\nlevel = "trace"', "log.level", "one of: debug, info, warning, error"),
    ('[node]\nname = ""', "node.name", "length >= 1"),
    ('[node]\nkey_file = ""', "node.key_file", "length >= 1"),
    ('[node]\njournal = "yes"', "node.journal", "expected `bool`"),
    ("[node]\nname = 1979-05-27", "node.name", "expected `str`"),
]


@pytest.mark.parametrize(("toml", "key", "fragment"), INVALID)
def test_invalid_table(toml: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(toml, source="config.toml")
    message = str(caught.value)
    assert message.startswith((f"config.toml: {key}: ", f"config.toml: unknown key {key}"))
    assert fragment in message
    assert caught.value.key == key


def test_error_tree() -> None:
    assert issubclass(ConfigError, NodeError)
    assert issubclass(NodeError, SequencerError)


def test_not_toml() -> None:
    with pytest.raises(ConfigError, match=r"^config.toml: not valid TOML: "):
        parse_config("[rpc\nlisten = 1")


def test_a_close_key_is_suggested() -> None:
    with pytest.raises(ConfigError, match=r"unknown key rpc\.burts \(did you mean burst\?\)$"):
        parse_config("[rpc]\nburts = 1")


# ------------------------------------------------------------------ load_config


def test_load_config_reads_the_home(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(FULL)
    assert load_config(tmp_path, environ={}) == parse_config(FULL)


def test_load_config_names_the_file(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text('[rpc]\nlisten = "nope"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={})
    assert str(caught.value) == (
        f'{tmp_path / CONFIG_FILE}: rpc.listen: expected "host:port", got "nope"'
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.toml: no such file"):
        load_config(tmp_path / "nowhere", environ={})


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(b'[node]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path, environ={})


def test_too_large(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(tmp_path, environ={})


def test_paths_are_relative_to_the_home(tmp_path: Path) -> None:
    config = parse_config(FULL)
    assert config.key_path(tmp_path) == tmp_path / "keys" / "validator.json"
    assert config.genesis_path(tmp_path) == Path("/etc/sequencer/genesis.json")
    assert config.data_path(tmp_path) == tmp_path / "db"


def test_accessors_of_a_hand_built_config_raise_config_error() -> None:
    config = NodeConfig(
        rpc=RpcSection(listen="nope"),
        p2p=P2PSection(peers=("/ip4/127.0.0.1/udp/5",)),
    )
    with pytest.raises(ConfigError, match=r"^rpc\.listen: "):
        _ = config.rpc_address
    with pytest.raises(ConfigError, match=r"^p2p\.peers\[0\]: "):
        _ = config.peer_addresses
    with pytest.raises(ConfigError) as caught:
        config.validate()
    assert caught.value.key == "rpc.listen"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("[::]:80", ("::", 80)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", ":80", "127.0.0.1", "127.0.0.1:+80", "127.0.0.1:080", "127.0.0.1: 80", "host:1", "[::1]"],
)
def test_parse_host_port_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_host_port(text)


# ------------------------------------------------------------------ environment


def test_environment_overrides_the_file() -> None:
    environ = {
        "SEQUENCER_RPC_LISTEN": "127.0.0.1:9000",
        "SEQUENCER_LOG_FORMAT": "json",
        "SEQUENCER_NODE_JOURNAL": "false",
        "SEQUENCER_RPC_BURST": "7",
        "SEQUENCER_RPC_REQUESTS_PER_S": "2.5",
        "SEQUENCER_P2P_GOSSIP_DATAGRAM_BYTES_MAX": "9000",
        "SEQUENCER_MEMPOOL_SLOTS_MAX": "5",
        "SEQUENCER_CONSENSUS_WAIT_FOR_TXS": "false",
    }
    config = parse_config(FULL, environ=environ)
    assert config.rpc_address == ("127.0.0.1", 9000)
    assert config.log.format == "json"
    assert config.node.journal is False
    assert config.rpc.burst == 7
    assert config.rpc.requests_per_s == 2.5
    assert config.gossip().datagram_bytes_max == 9000
    assert config.gossip().mesh_degree == 4  # the file's, untouched
    assert config.mempool("c").slots_max == 5
    assert config.core().wait_for_txs is False


def test_string_keys_take_the_value_as_it_is() -> None:
    environ = {"SEQUENCER_NODE_NAME": "123", "SEQUENCER_LOG_LEVEL": "error"}
    config = parse_config("", environ=environ)
    assert config.node.name == "123"
    assert config.log.level == "error"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{ADDRESS_1},{ADDRESS_2}", (ADDRESS_1, ADDRESS_2)),
        (f" {ADDRESS_1} , ", (ADDRESS_1,)),
        (f'["{ADDRESS_2}"]', (ADDRESS_2,)),
        ("", ()),
    ],
)
def test_list_from_environment(value: str, expected: tuple[str, ...]) -> None:
    config = parse_config(f'[p2p]\npeers = ["{ADDRESS_1}"]', environ={"SEQUENCER_P2P_PEERS": value})
    assert config.p2p.peers == expected


def test_faults_peers_from_environment() -> None:
    config = parse_config("", environ={"SEQUENCER_P2P_FAULTS_BLOCKED_FROM": f"{PEER_1},{PEER_2}"})
    assert config.faults().blocked_from == {public_key(1), public_key(2)}


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("", environ={"SEQUENCER_RPC_LISTEN": "nope"})
    assert str(caught.value) == (
        'config.toml: rpc.listen: expected "host:port", got "nope" (set by SEQUENCER_RPC_LISTEN)'
    )
    with pytest.raises(ConfigError, match=r"rpc\.burst: expected `int`, got `str` \(set by "):
        parse_config("", environ={"SEQUENCER_RPC_BURST": "lots"})
    with pytest.raises(ConfigError, match=r"p2p\.gossip\.datagram_bytes_max: .*\(set by SEQ"):
        parse_config("", environ={"SEQUENCER_P2P_GOSSIP_DATAGRAM_BYTES_MAX": "10"})


def test_an_unknown_variable_in_a_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"SEQUENCER_RPC_LISTN .*did you mean SEQUENCER_RPC_LIS"):
        parse_config("", environ={"SEQUENCER_RPC_LISTN": "127.0.0.1:1"})


def test_other_variables_are_ignored() -> None:
    environ = {"SEQUENCER_HOME": "/x", "SEQUENCERX_RPC_LISTEN": "no", "RPC_LISTEN": "no"}
    assert parse_config("", environ=environ) == NodeConfig()


def test_environment_is_only_read_when_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQUENCER_LOG_FORMAT", "json")
    (tmp_path / CONFIG_FILE).write_text("")
    assert load_config(tmp_path).log.format == "json"
    assert parse_config("").log.format == "human"


def test_environment_does_not_touch_the_callers_table() -> None:
    table = {"rpc": {"listen": "127.0.0.1:1"}}
    config = config_from_table(table, environ={"SEQUENCER_RPC_LISTEN": "127.0.0.1:2"})
    assert config.rpc.listen == "127.0.0.1:2"
    assert table == {"rpc": {"listen": "127.0.0.1:1"}}


# ------------------------------------------------------------------ dumping


@pytest.mark.parametrize("toml", ["", FULL])
def test_round_trip(toml: str, tmp_path: Path) -> None:
    config = parse_config(toml)
    (tmp_path / CONFIG_FILE).write_text(dump_config(config))
    assert load_config(tmp_path, environ={}) == config


def test_dump_lists_only_changed_library_settings() -> None:
    text = dump_config(parse_config(FULL))
    assert "datagram_bytes_max = 65000" in text
    assert "tick_ms = 2.0" in text
    assert "ack_delay_ms" not in text
    assert "queued_slots_max" not in text
    assert "rebroadcast_ms = 500" in text
    # Own sections are written whole, so an operator sees every setting.
    assert "batch_txs_max = 10" in text
    assert 'level = "debug"' in text


names = st.text(
    st.characters(blacklist_categories=("Cs",)),  # no lone surrogates: not UTF-8
    min_size=1,
    max_size=64,
)


@given(
    name=names,
    data_dir=names,
    requests_per_s=st.floats(min_value=1e-9, max_value=1e7, allow_nan=False),
)
def test_round_trip_of_any_text_and_number(name: str, data_dir: str, requests_per_s: float) -> None:
    config = NodeConfig(
        node=NodeSection(name=name, data_dir=data_dir),
        rpc=RpcSection(requests_per_s=requests_per_s),
    )
    assert parse_config(dump_config(config)) == config


# ------------------------------------------------------------------ mirrors of library types


@pytest.mark.parametrize(
    ("section", "target", "excluded"),
    [
        (GossipSection, GossipConfig, set()),
        (FaultsSection, FaultConfig, set()),
        (MempoolSection, MempoolConfig, {"chain_id"}),
        (ConsensusSection, CoreConfig, set()),
    ],
)
def test_mirrored_tables_follow_their_library_types(section, target, excluded) -> None:
    if dataclasses.is_dataclass(target):
        names = [field.name for field in dataclasses.fields(target)]
    else:
        names = list(target.__struct_fields__)
    assert list(section.__struct_fields__) == [n for n in names if n not in excluded]
    assert msgspec.to_builtins(section()) == {}  # defaults are omitted when dumped


def test_the_rpc_and_batcher_tables_default_to_what_the_node_enforces() -> None:
    config = parse_config("")
    assert config.rpc_limits() == RpcLimits()
    assert config.batch_config() == BatchConfig()
    shared = [
        f.name for f in dataclasses.fields(RpcLimits) if f.name in RpcSection.__struct_fields__
    ]
    assert len(shared) >= 6  # body, batch, rate, burst, response bytes, body timeout


def test_the_rpc_table_reaches_the_limits() -> None:
    config = parse_config("[rpc]\nrequests_per_s = 7\nburst = 9\n[batcher]\nmax_blocks = 3")
    assert (config.rpc_limits().requests_per_s, config.rpc_limits().burst) == (7, 9)
    assert config.batch_config().max_blocks == 3
