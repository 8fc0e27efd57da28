"""UDP multiaddrs: canonical printing, strict parsing, round trips."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.errors import InvalidMultiaddrError, NetError
from net.identity import peer_id
from net.multiaddr import Multiaddr, parse_multiaddr
from sequencer.crypto import PrivateKey

KEY = PrivateKey(bytes([1]) * 32).public_key
PID = peer_id(KEY)

VALID = [
    pytest.param(f"/ip4/192.0.2.7/udp/4001/p2p/{PID}", None, id="ip4-peer"),
    pytest.param("/ip4/127.0.0.1/udp/65535", None, id="ip4-listen"),
    pytest.param("/ip4/0.0.0.0/udp/1", None, id="ip4-any-port-1"),
    pytest.param("/ip6/::1/udp/4001", None, id="ip6-loopback"),
    pytest.param(f"/ip6/::/udp/4001/p2p/{PID}", None, id="ip6-any-peer"),
    pytest.param(
        "/ip6/2001:0DB8:0000:0000:0000:0000:0000:0007/udp/9000",
        "/ip6/2001:db8::7/udp/9000",
        id="ip6-uncompressed",
    ),
    pytest.param("/ip6/0:0:0:0:0:0:0:1/udp/80", "/ip6/::1/udp/80", id="ip6-long-loopback"),
]


@pytest.mark.parametrize(("text", "canonical"), VALID)
def test_valid(text: str, canonical: str | None) -> None:
    address = Multiaddr.parse(text)
    assert str(address) == (canonical or text)
    assert parse_multiaddr(str(address)) == address


LONG = "/ip4/1.2.3.4/udp/4001/p2p/" + "1" * 231  # 257 characters

INVALID = [
    pytest.param("", "must start with '/'", id="empty"),
    pytest.param("ip4/1.2.3.4/udp/1", "must start with '/'", id="no-leading-slash"),
    pytest.param(LONG, "longer than 256", id="too-long"),
    pytest.param("/ip4/1.2.3.4/udp/4001/", "trailing '/'", id="trailing-slash"),
    pytest.param("/", "trailing '/'", id="only-slash"),
    pytest.param("/ip4//1.2.3.4/udp/4001", "empty component", id="double-slash"),
    pytest.param("/ip4/1.2.3.4", "too few components", id="no-transport"),
    pytest.param("/ip4/1.2.3.4/udp", "too few components", id="no-port"),
    pytest.param("/dns4/example.com/udp/4001", "'dns4' is not supported", id="dns"),
    pytest.param("/IP4/1.2.3.4/udp/4001", "'IP4' is not supported", id="upper-case-protocol"),
    pytest.param("/ip4/::1/udp/4001", "'::1' is not an ip4 address", id="ip6-as-ip4"),
    pytest.param("/ip6/1.2.3.4/udp/4001", "'1.2.3.4' is not an ip6 address", id="ip4-as-ip6"),
    pytest.param("/ip4/256.0.0.1/udp/4001", "not an ip4 address", id="ip4-octet-range"),
    pytest.param("/ip4/01.2.3.4/udp/4001", "not an ip4 address", id="ip4-leading-zero"),
    pytest.param("/ip4/1.2.3/udp/4001", "not an ip4 address", id="ip4-three-octets"),
    pytest.param("/ip6/[::1]/udp/4001", "not an ip6 address", id="ip6-brackets"),
    pytest.param("/ip6/fe80::1%eth0/udp/4001", "zones are not supported", id="ip6-zone"),
    pytest.param("/ip4/1.2.3.4/tcp/4001", "'tcp' is not supported", id="tcp"),
    pytest.param("/ip4/1.2.3.4/quic/4001", "no quic", id="quic-transport"),
    pytest.param("/ip4/1.2.3.4/udp/4001/quic-v1", "quic is not supported", id="quic-v1"),
    pytest.param("/ip4/1.2.3.4/udp/0", "port must be 1..65535, got 0", id="port-0"),
    pytest.param("/ip4/1.2.3.4/udp/65536", "port must be 1..65535", id="port-65536"),
    pytest.param("/ip4/1.2.3.4/udp/04001", "leading 0", id="port-leading-zero"),
    pytest.param("/ip4/1.2.3.4/udp/+4001", "'+4001'", id="port-plus"),
    pytest.param("/ip4/1.2.3.4/udp/-1", "'-1'", id="port-minus"),
    pytest.param("/ip4/1.2.3.4/udp/4_001", "'4_001'", id="port-underscore"),
    pytest.param("/ip4/1.2.3.4/udp/ 4001", "' 4001'", id="port-space"),
    pytest.param("/ip4/1.2.3.4/udp/٤٠٠١", "not a decimal number", id="port-arabic-digits"),
    pytest.param("/ip4/1.2.3.4/udp/0x10", "not a decimal number", id="port-hex"),
    pytest.param("/ip4/1.2.3.4/udp/4001/p2p", "/p2p needs a peer id", id="p2p-no-id"),
    pytest.param("/ip4/1.2.3.4/udp/4001/p2p/12D3KooW", "bad peer id", id="peer-id-short"),
    pytest.param(
        "/ip4/1.2.3.4/udp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
        "bad peer id",
        id="peer-id-rsa",
    ),
    pytest.param(f"/ip4/1.2.3.4/udp/4001/ipfs/{PID}", "not 'ipfs'", id="legacy-ipfs"),
    pytest.param(f"/ip4/1.2.3.4/udp/4001/p2p/{PID}/x", "trailing components", id="trailing"),
    pytest.param(
        f"/ip4/1.2.3.4/udp/4001/p2p/{PID}/p2p/{PID}", "trailing components", id="two-peer-ids"
    ),
]


@pytest.mark.parametrize(("text", "problem"), INVALID)
def test_invalid(text: str, problem: str) -> None:
    with pytest.raises(InvalidMultiaddrError) as caught:
        parse_multiaddr(text)
    message = str(caught.value)
    assert problem in message
    # The input is quoted whole, unless it is too long to parse at all.
    quoted = f"{text[:64]!r}..." if len(text) > 256 else f"{text!r}:"
    assert message.startswith(f"invalid multiaddr {quoted}")


def test_error_classes() -> None:
    with pytest.raises(NetError):
        parse_multiaddr("/ip4/1.2.3.4/tcp/1")
    with pytest.raises(ValueError, match="tcp"):
        parse_multiaddr("/ip4/1.2.3.4/tcp/1")


HOSTS = st.ip_addresses(v=4) | st.ip_addresses(v=6)
PEER_IDS = st.none() | st.binary(min_size=32, max_size=32).map(peer_id)


@given(HOSTS, st.integers(min_value=1, max_value=65535), PEER_IDS)
def test_round_trip(host: IPv4Address | IPv6Address, port: int, pid: str | None) -> None:
    address = Multiaddr(host, port, pid)
    assert parse_multiaddr(str(address)) == address
    assert Multiaddr.parse(str(address)) == address


def test_socket_address_and_public_key() -> None:
    address = parse_multiaddr(f"/ip6/2001:db8::7/udp/4001/p2p/{PID}")
    assert address.socket_address == ("2001:db8::7", 4001)
    assert address.public_key == KEY
    assert parse_multiaddr("/ip4/10.0.0.1/udp/9").socket_address == ("10.0.0.1", 9)


def test_no_peer_id_no_public_key() -> None:
    listen = parse_multiaddr("/ip4/10.0.0.1/udp/9")
    with pytest.raises(InvalidMultiaddrError, match="no /p2p/<peer id>"):
        _ = listen.public_key


def test_with_peer_id() -> None:
    listen = parse_multiaddr("/ip4/10.0.0.1/udp/9")
    dialable = listen.with_peer_id(PID)
    assert str(dialable) == f"/ip4/10.0.0.1/udp/9/p2p/{PID}"
    assert listen.peer_id is None
    assert dialable.with_peer_id(None) == listen
    with pytest.raises(InvalidMultiaddrError, match="bad peer id"):
        listen.with_peer_id("12D3KooW")


def test_constructor_checks() -> None:
    with pytest.raises(InvalidMultiaddrError, match="port must be"):
        Multiaddr(IPv4Address("10.0.0.1"), 0)
    with pytest.raises(TypeError, match="host must be"):
        Multiaddr("10.0.0.1", 9)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port must be an int"):
        Multiaddr(IPv4Address("10.0.0.1"), True)
