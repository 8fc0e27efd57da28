"""Multiaddrs of gossip peers, in their textual form only.

Peers talk plain UDP, so the only addresses accepted are

    /ip4/<dotted quad>/udp/<port>[/p2p/<peer id>]
    /ip6/<address>/udp/<port>[/p2p/<peer id>]

for example

    /ip4/192.0.2.7/udp/4001/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq
    /ip6/2001:db8::7/udp/4001

A listen address has no `/p2p` part. A peer's address has one: the peer id
(`net.identity`) holds the Ed25519 key that the peer's messages must verify
against, so the address alone says both where and who.

Parsing is strict so that an address has a single spelling: `str(parse(t)) == t`
for every accepted `t`, except that an IPv6 address is printed compressed, as
`ipaddress` prints it (no brackets). DNS names, IPv6 zones, tcp and quic are
refused. Every failure raises `InvalidMultiaddrError`, quoting the input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

from net.errors import InvalidMultiaddrError, InvalidPeerIdError
from net.identity import public_key_from_peer_id

__all__ = ["Multiaddr", "parse_multiaddr"]

# Far above the longest valid address (about 110 characters), low enough that
# a hostile config or peer record cannot make us split megabytes.
_TEXT_CHARS_MAX = 256
_QUOTE_CHARS_MAX = 64
_SHAPE = "/ip4|ip6/<address>/udp/<port>[/p2p/<peer id>]"
_IP_VERSIONS: dict[str, type[IPv4Address | IPv6Address]] = {"ip4": IPv4Address, "ip6": IPv6Address}
_PORT_MAX = 65535


@dataclass(frozen=True, slots=True)
class Multiaddr:
    """A UDP endpoint, optionally with the peer id of the node behind it."""

    host: IPv4Address | IPv6Address
    port: int
    peer_id: str | None = None

    def __post_init__(self) -> None:
        # Checked here, not only in `parse`, so every instance prints as text
        # that parses back to it, however it was built.
        _check_types(self.host, self.port)
        _check_values(self.host, self.port, self.peer_id)

    @classmethod
    def parse(cls, text: str) -> Multiaddr:
        return parse_multiaddr(text)

    def __str__(self) -> str:
        protocol = "ip4" if self.host.version == 4 else "ip6"
        text = f"/{protocol}/{self.host}/udp/{self.port}"
        return text if self.peer_id is None else f"{text}/p2p/{self.peer_id}"

    @property
    def socket_address(self) -> tuple[str, int]:
        """`(host, port)` for a trio UDP socket's `sendto`."""
        return (str(self.host), self.port)

    @property
    def public_key(self) -> bytes:
        """The peer's Ed25519 public key, taken from its peer id."""
        if self.peer_id is None:
            raise InvalidMultiaddrError(f"no /p2p/<peer id> in {str(self)!r}, so no public key")
        return public_key_from_peer_id(self.peer_id)

    def with_peer_id(self, peer_id: str | None) -> Multiaddr:
        """A copy with `peer_id` (None: the bare listen address)."""
        return replace(self, peer_id=peer_id)


def parse_multiaddr(text: str) -> Multiaddr:
    """Parse `/ip4|ip6/<address>/udp/<port>[/p2p/<peer id>]`."""
    parts = _split(text)
    host = _parse_host(text, parts[0], parts[1])
    if parts[2] != "udp":
        raise _invalid(text, f"transport {parts[2]!r} is not supported, only udp (no tcp, no quic)")
    port = _parse_port(text, parts[3])
    peer_id = _parse_peer_id(text, parts[4:])
    try:
        return Multiaddr(host, port, peer_id)
    except InvalidMultiaddrError as e:
        raise _invalid(text, str(e)) from None


def _invalid(text: str, problem: str) -> InvalidMultiaddrError:
    quoted = repr(text[:_QUOTE_CHARS_MAX]) + "..." if len(text) > _TEXT_CHARS_MAX else repr(text)
    return InvalidMultiaddrError(f"invalid multiaddr {quoted}: {problem}")


def _split(text: str) -> list[str]:
    """The components of `text`, at least four, none empty."""
    if len(text) > _TEXT_CHARS_MAX:
        raise _invalid(text, f"longer than {_TEXT_CHARS_MAX} characters ({len(text)})")
    if not text.startswith("/"):
        raise _invalid(text, "must start with '/'")
    if text.endswith("/"):
        raise _invalid(text, "trailing '/'")
    parts = text[1:].split("/")
    if "" in parts:
        raise _invalid(text, "empty component ('//')")
    if len(parts) < 4:
        raise _invalid(text, f"too few components, expected {_SHAPE}")
    return parts


def _parse_host(text: str, protocol: str, address: str) -> IPv4Address | IPv6Address:
    version = _IP_VERSIONS.get(protocol)
    if version is None:
        raise _invalid(text, f"protocol {protocol!r} is not supported, only ip4 or ip6")
    try:
        return version(address)
    except ValueError:
        raise _invalid(text, f"{address!r} is not an {protocol} address") from None


def _parse_port(text: str, port: str) -> int:
    # int() also takes '+1', ' 1', '1_0', '01' and non-ASCII digits; allow one
    # spelling per port so that printing gives back the input.
    if not (port.isascii() and port.isdigit()) or str(int(port)) != port:
        raise _invalid(text, f"port {port!r} is not a decimal number without sign or leading 0")
    return int(port)


def _parse_peer_id(text: str, rest: list[str]) -> str | None:
    """The peer id from the components after the port, if any."""
    if not rest:
        return None
    if rest[0] != "p2p":
        raise _invalid(
            text,
            f"only /p2p/<peer id> may follow the port, not {rest[0]!r} (quic is not supported)",
        )
    if len(rest) == 1:
        raise _invalid(text, "/p2p needs a peer id")
    if len(rest) > 2:
        raise _invalid(text, f"trailing components after the peer id: {'/'.join(rest[2:])!r}")
    return rest[1]


def _check_types(host: object, port: object) -> None:
    if not isinstance(host, IPv4Address | IPv6Address):
        raise TypeError(f"host must be an IPv4Address or IPv6Address, got {type(host).__name__}")
    # bool is an int, and a float port would print as '4001.0'.
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be an int, got {type(port).__name__}")


def _check_values(host: IPv4Address | IPv6Address, port: int, peer_id: str | None) -> None:
    # A zone ('fe80::1%eth0') is local to one machine; multiaddr spells it
    # /ip6zone, which we do not support.
    if isinstance(host, IPv6Address) and host.scope_id is not None:
        raise InvalidMultiaddrError(f"IPv6 zones are not supported: {str(host)!r}")
    if not 1 <= port <= _PORT_MAX:
        raise InvalidMultiaddrError(f"port must be 1..{_PORT_MAX}, got {port}")
    if peer_id is not None:
        try:
            public_key_from_peer_id(peer_id)
        except InvalidPeerIdError as e:
            raise InvalidMultiaddrError(f"bad peer id: {e}") from None
