"""How often each fact about a transaction is computed: encodes and hashes
per transaction per node, counted on a real devnet run in one process.

    python3 scripts/bench_facts.py                  # 4 nodes, 2,000 txs, table + JSON
    python3 scripts/bench_facts.py --nodes 1 --txs 500 --json facts.json

The nodes are the daemon's own (`node.daemon.Node`, one trio nursery each,
real LevelDB stores, real UDP gossip and HTTP on loopback), started in this
process so that the functions that compute facts can be wrapped with
counters: the canonical msgpack encoder (`sequencer.codec.encode`, by what
it encodes), transaction ids (`sequencer.ids.tx_id`), header ids
(`block_id`), the nonce map of a block (`consensus.blocks.next_nonces`) and
signature checks (`verify_transaction`). Every module that imported one of
them by name gets the counting wrapper, so no call is missed. Transactions
are sent as wallets send them: one `POST /tx` each, from distinct senders,
spread over the nodes; the run ends when every one is final on every node.

A count is per transaction per node: the total over all nodes divided by
transactions and nodes. Block-level counts (a header's id, the nonce map)
are per block per node.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

import consensus.blocks
import sequencer.codec
import sequencer.crypto
import sequencer.ids
from node.config import load_config
from node.daemon import Node
from node.ops.devnet import init_devnet
from node.ops.procs import free_base_port
from sequencer.codec import to_builtins
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.types import Block, BlockHeader, Transaction

__all__ = ["FactCounts", "count_facts", "main"]

PACKAGES = ("sequencer", "storage", "consensus", "net", "node")
FINAL_TIMEOUT_S = 120.0
CONNECTIONS = 16
PAYLOAD_BYTES = 64


class FactCounts(collections.Counter[str]):
    """Calls by kind: `encode:tx`, `encode:tx_signing`, `tx_id`, `block_id`, ..."""


def _encoded_kind(obj: Any) -> str:
    if isinstance(obj, Transaction):
        return "encode:tx"
    if isinstance(obj, Block):
        return "encode:block"
    if isinstance(obj, BlockHeader):
        return "encode:header"
    if isinstance(obj, list) and obj:
        if obj[0] == "seq/tx/v1":
            return "encode:tx_signing"
        if all(isinstance(item, Transaction) for item in obj):
            return "encode:tx_list"
    return "encode:other"


def _counting(counts: FactCounts) -> dict[Callable[..., Any], Callable[..., Any]]:
    """Each counted function, mapped to its counting wrapper."""
    encode = sequencer.codec.encode
    tx_id = sequencer.ids.tx_id
    tx_facts = sequencer.ids.tx_facts
    block_id = sequencer.ids.block_id
    next_nonces = consensus.blocks.next_nonces
    verify = sequencer.crypto.verify_transaction

    def counted_encode(obj: Any) -> bytes:
        kind = _encoded_kind(obj)
        counts[kind] += 1
        if kind == "encode:tx_list":
            counts["encode:tx_in_list"] += len(obj)
        return encode(obj)

    def counted_tx_id(tx: Transaction) -> bytes:
        counts["tx_id"] += 1
        return tx_id(tx)

    def counted_tx_facts(tx: Transaction) -> sequencer.ids.TxFacts:
        counts["tx_id"] += 1  # one hash of one encoding, the id (the encode counts itself)
        return tx_facts(tx)

    def counted_block_id(header: BlockHeader) -> bytes:
        counts["block_id"] += 1
        return block_id(header)

    def counted_next_nonces(*args: Any, **kwargs: Any) -> Any:
        counts["next_nonces"] += 1
        return next_nonces(*args, **kwargs)

    def counted_verify(tx: Transaction) -> bool:
        counts["verify_transaction"] += 1
        return verify(tx)

    return {
        encode: counted_encode,
        tx_id: counted_tx_id,
        tx_facts: counted_tx_facts,
        block_id: counted_block_id,
        next_nonces: counted_next_nonces,
        verify: counted_verify,
    }


@contextmanager
def counted(counts: FactCounts) -> Iterator[None]:
    """Wrap every module's reference to a counted function, then restore them."""
    wrappers = _counting(counts)
    patched: list[tuple[types.ModuleType, str, Any]] = []
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(PACKAGES):
            continue
        for attribute, value in list(vars(module).items()):
            try:
                wrapper = wrappers.get(value)
            except TypeError:  # unhashable
                continue
            if wrapper is not None:
                patched.append((module, attribute, value))
                setattr(module, attribute, wrapper)
    try:
        yield
    finally:
        for module, attribute, value in patched:
            setattr(module, attribute, value)


def _signed(count: int, chain_id: str) -> list[dict[str, Any]]:
    """One transaction from each of `count` fresh senders, as JSON objects."""
    return [
        to_builtins(
            sign_transaction(
                PrivateKey.generate(),
                chain_id=chain_id,
                namespace=1,
                nonce=0,
                gas_price=1,
                payload=bytes(PAYLOAD_BYTES),
            )
        )
        for _ in range(count)
    ]


async def _send_all(urls: list[str], txs: list[dict[str, Any]]) -> list[str]:
    """POST each transaction once, round-robin over the nodes; the tx ids."""
    ids: list[str] = []
    queue = iter(enumerate(txs))
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            for index, tx in queue:
                response = await client.post(f"{urls[index % len(urls)]}/tx", json=tx)
                if response.status_code != 202:
                    raise RuntimeError(f"POST /tx: {response.status_code} {response.text}")
                ids.append(response.json()["tx_id"])

        async with trio.open_nursery() as nursery:
            for _ in range(CONNECTIONS):
                nursery.start_soon(worker)
    return ids


async def _wait_final(nodes: list[Node], ids: list[str]) -> int:
    """Wait until every transaction is committed on every node; the height.

    Asked of the stores directly: `GET /tx/{id}` would compute ids itself
    and be counted with the node's own work."""
    wanted = [bytes.fromhex(id_) for id_ in ids]
    with trio.fail_after(FINAL_TIMEOUT_S):
        for node in nodes:
            for id_ in wanted:
                while node.store.tx_location(id_) is None:
                    await trio.sleep(0.05)
    return nodes[0].store.height()


async def _run(root: Path, count: int, txs: int, counts: FactCounts) -> dict[str, Any]:
    layout = init_devnet(root, count, base_port=free_base_port(count))
    homes = [Path(node.home) for node in layout.nodes]
    urls = [node.rpc for node in layout.nodes]
    signed = _signed(txs, layout.chain_id)
    nodes = [Node(home, load_config(home)) for home in homes]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        async with httpx.AsyncClient() as client:
            with trio.fail_after(60):
                for url in urls:
                    while (await client.get(f"{url}/ready")).status_code != 200:
                        await trio.sleep(0.05)
        before = FactCounts(counts)
        ids = await _send_all(urls, signed)
        height = await _wait_final(nodes, ids)
        after = FactCounts(counts)
        nursery.cancel_scope.cancel()
    spent = after - before
    blocks = max(1, height)
    per_tx = {kind: spent[kind] / (txs * count) for kind in sorted(spent)}
    return {
        "nodes": count,
        "txs": txs,
        "height": height,
        "per_tx_per_node": per_tx,
        "per_block_per_node": {
            kind: spent[kind] / (blocks * count) for kind in ("block_id", "next_nonces")
        },
        "totals": dict(sorted(spent.items())),
    }


def count_facts(nodes: int = 4, txs: int = 2_000) -> dict[str, Any]:
    """One counted run of a fresh devnet in a temporary directory."""
    counts = FactCounts()
    with tempfile.TemporaryDirectory(prefix="facts-") as tmp, counted(counts):
        return trio.run(_run, Path(tmp) / "devnet", nodes, txs, counts)


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{result['nodes']} nodes, {result['txs']:,} transactions (one POST /tx each),"
        f" {result['height']} blocks",
        "",
        "| fact | per transaction per node |",
        "|---|---:|",
    ]
    lines += [f"| `{kind}` | {value:.2f} |" for kind, value in result["per_tx_per_node"].items()]
    lines += ["", "| fact | per block per node |", "|---|---:|"]
    lines += [f"| `{kind}` | {value:.2f} |" for kind, value in result["per_block_per_node"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 scripts/bench_facts.py",
        description="Count encodes and hashes per transaction per node on a devnet run.",
    )
    parser.add_argument("--nodes", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--txs", type=int, default=2_000, help="transactions (default 2000)")
    parser.add_argument("--json", type=Path, default=Path("bench-facts.json"), help="output")
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 16 or not 1 <= args.txs <= 100_000:
        parser.error("--nodes must be in 1..16 and --txs in 1..100000")
    print(f"counting: {args.nodes} nodes, {args.txs:,} transactions ...", flush=True)
    result = count_facts(args.nodes, args.txs)
    print(render(result))
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0
