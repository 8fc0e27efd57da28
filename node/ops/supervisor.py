"""`sequencer devnet up`: run every node of a local devnet as a child process.

The supervisor starts the nodes, waits until each answers `/health`, prints a
banner with everything needed to use the devnet, and stops all nodes on
Ctrl-C (SIGINT) or SIGTERM: SIGTERM to each child, then SIGKILL to any still
running after a grace period, so no process is left behind. If a node dies
on its own, the others are stopped too and the exit status says so.

With `prometheus_port` (`--prometheus`), a Prometheus scraping every node is
started once the nodes are ready (see node/ops/prometheus.py; its files under
`<home>/prometheus/`), its URL is in the banner, and it is stopped with the
nodes. Prometheus is optional: when it is not installed, or does not start,
one line says why and the devnet runs without it.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from blake3 import blake3

from node.ops.accounts import read_accounts
from node.ops.devnet import DevnetLayout
from node.ops.procs import ChildProcess, node_argv, stop_all
from node.ops.prometheus import (
    DEVNET_SCRAPE_INTERVAL_S,
    PrometheusError,
    PrometheusServer,
    PrometheusUnavailableError,
    prometheus_config,
    require_prometheus,
)
from sequencer.codec import to_builtins
from sequencer.crypto import PrivateKey, load_key, sign_transaction
from sequencer.files import write_atomic

__all__ = ["run_devnet"]

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0


PROMETHEUS_DIR = "prometheus"


def run_devnet(layout: DevnetLayout, home: Path, prometheus_port: int | None = None) -> int:
    """Run the devnet until Ctrl-C; with `prometheus_port`, a Prometheus on that port too."""
    prometheus: PrometheusServer | None = None
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Before the first node starts: a Ctrl-C from then on stops them in order.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[ChildProcess] = []
    try:
        for node in layout.nodes:
            if stopping:
                break
            children.append(_spawn(Path(node.home)))
        if stopping or not _wait_ready(layout, children, lambda: stopping):
            if stopping:
                print("\n[devnet] interrupted while starting; stopping all nodes ...", flush=True)
                return 0
            return 1
        if prometheus_port is not None:
            prometheus = _start_prometheus(layout, home, prometheus_port)
        print(banner(layout, home, prometheus.url if prometheus else None), flush=True)
        while not stopping:
            if prometheus is not None and not prometheus.running():
                print(
                    "[devnet] Prometheus exited; the nodes keep running."
                    f" See {prometheus.log_path}",
                    file=sys.stderr,
                    flush=True,
                )
                prometheus.stop()
                prometheus = None
            for node, child in zip(layout.nodes, children, strict=True):
                if child.poll() is not None:
                    print(
                        f"[devnet] {node.name} exited with status {child.returncode}; "
                        f"see {Path(node.home) / 'node.log'}",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.2)
        print("\n[devnet] stopping all nodes ...", flush=True)
        return 0
    finally:
        if prometheus is not None:
            prometheus.stop()
        stop_all(children, STOP_GRACE_S)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _spawn(home: Path) -> ChildProcess:
    # A new session: a Ctrl-C in the terminal reaches the supervisor only,
    # which then stops the nodes in order.
    return ChildProcess(node_argv(home), output=home / "node.log", new_session=True).start()


def _start_prometheus(layout: DevnetLayout, home: Path, port: int) -> PrometheusServer | None:
    """Prometheus scraping the devnet, or None (and one line on stderr saying why)."""
    try:
        binary = require_prometheus()
    except PrometheusUnavailableError as exc:
        print(f"[devnet] Prometheus not started: {exc}", file=sys.stderr, flush=True)
        return None
    directory = Path(home).absolute() / PROMETHEUS_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "prometheus.yml"
        write_atomic(config, prometheus_config(layout, DEVNET_SCRAPE_INTERVAL_S).encode())
        server = PrometheusServer(
            config, directory / "data", port, binary=binary, log_path=directory / "prometheus.log"
        )
        return server.start()
    except (PrometheusError, OSError) as exc:
        print(
            f"[devnet] Prometheus not started, continuing without it: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return None


def _wait_ready(layout: DevnetLayout, children: list[ChildProcess], stopping: Any) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = {node.name: node.rpc for node in layout.nodes}
    while pending and time.monotonic() < deadline and not stopping():
        for node, child in zip(layout.nodes, children, strict=True):
            if child.poll() is not None:
                print(
                    f"[devnet] {node.name} failed to start (status {child.returncode}); "
                    f"see {Path(node.home) / 'node.log'}",
                    file=sys.stderr,
                )
                return False
        for name, url in list(pending.items()):
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    if stopping():
        return False  # interrupted while starting: the caller says so and stops the nodes
    if pending:
        print(
            f"[devnet] not up after {READY_TIMEOUT_S:.0f} s: {', '.join(pending)}", file=sys.stderr
        )
        return False
    return True


def _accounts_lines(layout: DevnetLayout) -> list[str]:
    seed, accounts = read_accounts(layout.root)
    if not accounts:
        return []
    lines = [f"  dev accounts (seed {seed!r}; account 0 is the dev wallet):"]
    for path, key in accounts:
        lines.append(f"    {key.public_key.hex()}  {path}")
    return [*lines, ""]


def example_wallet(wallet: PrivateKey) -> PrivateKey:
    """The banner's example key, derived from the dev wallet (the same per devnet)."""
    return PrivateKey(blake3(b"seq/devnet/example/" + wallet.seed).digest())


def _next_nonce(rpc: str, sender: bytes) -> int:
    try:
        return int(httpx.get(f"{rpc}/accounts/{sender.hex()}", timeout=2.0).json()["next_nonce"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return 0


def banner(layout: DevnetLayout, home: Path, prometheus_url: str | None = None) -> str:
    wallet = load_key(Path(layout.wallet))
    first = layout.nodes[0]
    # The pasted curl signs with a key of its own, at its next nonce when the
    # banner is printed, so it does not collide with the walkthrough's
    # `tx send` from the dev wallet.
    example_key = example_wallet(wallet)
    nonce = _next_nonce(first.rpc, example_key.public_key)
    example = sign_transaction(
        example_key,
        chain_id=layout.chain_id,
        namespace=0,
        nonce=nonce,
        gas_price=1,
        payload=b"hello",
    )
    body = json.dumps(to_builtins(example), separators=(",", ":"))
    lines = [
        "",
        f"  devnet {layout.chain_id} is up: {len(layout.nodes)} validators under {home}",
        "",
        f"  {'node':<8}{'rpc':<28}{'metrics':<36}p2p",
    ]
    for node in layout.nodes:
        lines.append(f"  {node.name:<8}{node.rpc:<28}{node.metrics:<36}{node.p2p}")
    lines += [
        "",
        f"  dev wallet   {layout.wallet}",
        f"  its address  {wallet.public_key.hex()}",
        "",
        *_accounts_lines(layout),
        "  send a transaction and wait until it is final:",
        f"    sequencer tx send --rpc {first.rpc} --key {layout.wallet} --payload hello --wait",
        "",
        f"  or post one already signed (nonce {nonce} of the example key: valid once,"
        " a second post is 409 duplicate):",
        f"    curl -s -X POST {first.rpc}/tx -H 'content-type: application/json' -d '{body}'",
        "",
    ]
    if prometheus_url is not None:
        lines += [
            f"  prometheus   {prometheus_url}   (scrapes every node every"
            f" {DEVNET_SCRAPE_INTERVAL_S:g} s; config {home}/{PROMETHEUS_DIR}/prometheus.yml)",
            f"    {prometheus_url}/graph?g0.expr=rate(sequencer_txs_committed_total%5B1m%5D)",
            "",
        ]
    lines += [
        f"  node logs: {home}/node*/node.log     stop: Ctrl-C",
        "",
    ]
    return "\n".join(lines)
