"""Are a devnet's ports free? Checked before any node starts.

Each node needs its RPC port (TCP) and its gossip port (UDP). A port that
is taken is named in one line with what holds it, when this machine says
(`/proc/net` and the processes' descriptors on Linux): a devnet's node that
answers there is named by its chain, another program by its pid and name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from node.ops.devnet import DevnetLayout
from sequencer.errors import SequencerError

__all__ = ["PortTaken", "check_ports_free", "layout_ports"]


class PortTaken(SequencerError):
    """A port a devnet node needs is held by something else."""


def layout_ports(layout: DevnetLayout) -> list[tuple[str, int, str, str]]:
    """(host, port, "tcp" | "udp", what) of every port the devnet's nodes bind."""
    ports = []
    for node in layout.nodes:
        rpc = urlsplit(node.rpc)
        assert rpc.hostname is not None
        assert rpc.port is not None
        ports.append((rpc.hostname, rpc.port, "tcp", f"{node.name} rpc"))
        parts = node.p2p.split("/")  # /ip4/HOST/udp/PORT/p2p/ID
        ports.append((parts[2], int(parts[4]), "udp", f"{node.name} p2p"))
    return ports


def check_ports_free(layout: DevnetLayout) -> None:
    """Raise `PortTaken` naming the first port that cannot be bound."""
    for host, port, kind, what in layout_ports(layout):
        if _bindable(host, port, kind):
            continue
        holder = _holder(host, port, kind)
        raise PortTaken(
            f"port {port} ({what}, {kind.upper()}) is taken{holder}: stop it, or start this"
            f" devnet on other ports with --fresh --base-port PORT (node i uses PORT+10i"
            f" and PORT+10i+1)"
        )


def _bindable(host: str, port: int, kind: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    with sock:
        if kind == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the node binds
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise SequencerError(f"cannot bind {host}:{port} ({kind}): {error}") from None
    return True


def _holder(host: str, port: int, kind: str) -> str:
    """' by …' when something says who holds the port, else ''."""
    if kind == "tcp":
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
            status = httpx.get(f"http://{host}:{port}/status", timeout=1.0).json()
            return f" by a running devnet node ({status['node']} of chain {status['chain_id']})"
    inodes = set(_socket_inodes(port, kind))
    for pid, name in _processes():
        if _holds(pid, inodes):
            return f" by pid {pid} ({name})"
    return ""


def _socket_inodes(port: int, kind: str) -> Iterable[int]:
    for table in (f"/proc/net/{kind}", f"/proc/net/{kind}6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    yield int(fields[9])


def _processes() -> Iterable[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                yield int(entry.name), (entry / "comm").read_text().strip()


def _holds(pid: int, inodes: set[int]) -> bool:
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                    return True
    return False
