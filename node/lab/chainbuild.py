"""Write a long finalized chain straight into devnet stores, for benchmarks.

    python -m node.lab.chainbuild DEVNET_DIR --blocks 100000 [--txs-per-block K] [--nodes 0,1,2]

Given a devnet written by `node.ops.devnet.init_devnet`, `build_chain` makes
`blocks` blocks on top of genesis exactly as consensus would have finalized
them: each block is built by `consensus.blocks.build_block` (parent id,
last_commit_id, tx root and state root chained), proposed by the round-0
proposer of its height, and finalized by a commit certificate of precommits
signed with the validators' own keys (the first validators, in index order,
whose power makes a quorum). Transactions, when asked for, are signed
200-byte payloads from a few deterministic senders with consecutive nonces.
Timestamps increase from the genesis time to a second before now, so a
devnet for a long chain needs a genesis time far enough in the past (see
`genesis_time_for`).

The chain goes into the first chosen node's store, many blocks per LevelDB
write (through `WriteBatch`, which checks the links as consensus commits
would); the finished store directory is then copied to the other chosen
nodes. Each chosen node whose key signed the certificates gets a signing
state at the last height (its own precommit), so it never signs below the
chain it holds. Nodes not chosen keep their (empty) stores and catch up.

The stores of the chosen nodes must be empty (never started, or their data
directories removed). Nothing here runs consensus: it is a fixture writer.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from consensus.blocks import build_block
from consensus.proposer import ProposerSchedule
from node.config import load_config
from node.errors import ConfigError
from node.ops.devnet import load_layout
from sequencer.certificate import ValidatorSet
from sequencer.crypto import PrivateKey, load_key, sign_transaction, vote_signing_bytes
from sequencer.errors import SequencerError
from sequencer.genesis import load_genesis
from sequencer.ids import gas, genesis_state_root, hash32
from sequencer.types import (
    ZERO_ID,
    CommitCertificate,
    Genesis,
    SigningState,
    SignStep,
    Transaction,
    VoteKind,
)
from storage.store import Store

__all__ = ["BuildResult", "build_chain", "genesis_time_for", "main"]

PAYLOAD_BYTES = 200
SENDERS_DEFAULT = 4
# Blocks per LevelDB write: large writes are cheap per block, and a batch of
# this many small blocks stays a few MiB in memory.
BLOCKS_PER_WRITE = 1_000
# The last block is this far before now: a node then builds the next block
# on a parent from the past, whatever the clock skew between processes.
END_MARGIN_MS = 1_000
# Blocks are spaced by up to this much when the genesis time leaves room.
BLOCK_INTERVAL_MS_MAX = 1_000
PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True, slots=True)
class BuildResult:
    blocks: int
    txs: int
    nodes: tuple[int, ...]
    seconds: float
    last_block_id: bytes
    store_bytes: int  # the first node's data directory, after the build


def genesis_time_for(blocks: int, *, interval_ms: int = 1, now_ms: int | None = None) -> int:
    """A genesis time that leaves room for `blocks` blocks `interval_ms` apart before now
    (pass it to `init_devnet(genesis_time_ms=...)`)."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return now - END_MARGIN_MS - (blocks + 1) * interval_ms - 60_000


def sender_keys(count: int) -> list[PrivateKey]:
    """The deterministic senders of the built transactions (the same in every build)."""
    return [PrivateKey(hash32(b"chainbuild/sender/%d" % index)) for index in range(count)]


def build_chain(
    devnet_dir: str | Path,
    blocks: int,
    *,
    txs_per_block: int = 0,
    nodes: Sequence[int] = (0, 1, 2),
    senders: int = SENDERS_DEFAULT,
    progress: Callable[[str], None] | None = print,
    now_ms: int | None = None,
) -> BuildResult:
    """Write `blocks` finalized blocks into the stores of devnet nodes `nodes`.

    Raises `ConfigError` (a `SequencerError`) for what the caller must fix: no
    devnet there, an unknown node, a store that is not empty, a genesis time
    too recent for this many blocks, more transactions than a block takes.
    `progress` gets a line now and then (None: silent).
    """
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    plan = _plan(Path(devnet_dir), blocks, txs_per_block, nodes, senders, now_ms)
    first = plan.data_paths[0]
    say(
        f"[chainbuild] {blocks} blocks, {txs_per_block} txs each, into node(s) "
        f"{','.join(map(str, plan.nodes))}; certificates signed by validators "
        f"{','.join(map(str, plan.signers))}"
    )
    with Store.open(first, chain_id=plan.genesis.chain_id) as store:
        last_id, last_signatures = _write_chain(store, plan, say)
    for node, path in zip(plan.nodes[1:], plan.data_paths[1:], strict=True):
        shutil.copytree(first, path)
        say(f"[chainbuild] copied the store to node{node}")
    for node, path in zip(plan.nodes, plan.data_paths, strict=True):
        signature = last_signatures.get(node)
        if signature is not None:
            state = SigningState(blocks, 0, SignStep.PRECOMMIT, last_id, signature)
            with Store.open(path, chain_id=plan.genesis.chain_id, create=False) as store:
                store.save_signing_state(state)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in first.rglob("*") if p.is_file())
    say(
        f"[chainbuild] done: {blocks} blocks in {seconds:.1f} s "
        f"({blocks / max(seconds, 1e-9):,.0f} blocks/s), store {size / 1e6:.1f} MB"
    )
    return BuildResult(blocks, blocks * txs_per_block, plan.nodes, seconds, last_id, size)


# ------------------------------------------------------------------ planning


@dataclass(frozen=True, slots=True)
class _Plan:
    genesis: Genesis
    nodes: tuple[int, ...]
    data_paths: tuple[Path, ...]
    keys: dict[int, PrivateKey]  # validator index -> key, for the signers
    signers: tuple[int, ...]
    blocks: int
    txs_per_block: int
    senders: list[PrivateKey]
    first_timestamp_ms: int
    interval_ms: int


def _plan(
    root: Path,
    blocks: int,
    txs_per_block: int,
    nodes: Sequence[int],
    senders: int,
    now_ms: int | None,
) -> _Plan:
    layout = load_layout(root)
    if blocks < 1:
        raise ConfigError(f"--blocks must be at least 1, got {blocks}")
    chosen = tuple(dict.fromkeys(nodes))  # in order, without repeats
    if not chosen:
        raise ConfigError("choose at least one node (--nodes)")
    for node in chosen:
        if not 0 <= node < len(layout.nodes):
            raise ConfigError(f"the devnet has nodes 0..{len(layout.nodes) - 1}, not node {node}")
    homes = [layout.nodes[node].home for node in chosen]
    genesis = load_genesis(homes[0] / "genesis.json")
    for node, home in zip(chosen, homes, strict=True):
        if load_genesis(home / "genesis.json") != genesis:
            raise ConfigError(f"node{node} has another genesis than node{chosen[0]}")
    data_paths = tuple(load_config(home).data_path(home) for home in homes)
    for node, path in zip(chosen, data_paths, strict=True):
        if path.exists() and any(path.iterdir()):
            raise ConfigError(
                f"node{node}'s store {path} is not empty: the chain is built from genesis "
                "(stop the node and remove that directory first)"
            )
    _check_txs(genesis, txs_per_block, senders)
    validators = ValidatorSet.from_genesis(genesis)
    keys = _validator_keys(layout.nodes, validators)
    signers = _quorum(validators, keys)
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    room = now - END_MARGIN_MS - genesis.genesis_time_ms
    interval = min(BLOCK_INTERVAL_MS_MAX, room // (blocks + 1))
    if interval < 1:
        earliest = genesis_time_for(blocks, now_ms=now)
        raise ConfigError(
            f"the genesis time {genesis.genesis_time_ms} is too recent for {blocks} blocks with "
            f"increasing millisecond timestamps before now: initialise the devnet with "
            f"genesis_time_ms <= {earliest} (init_devnet(..., genesis_time_ms=...))"
        )
    return _Plan(
        genesis=genesis,
        nodes=chosen,
        data_paths=data_paths,
        keys={index: keys[index] for index in signers},
        signers=signers,
        blocks=blocks,
        txs_per_block=txs_per_block,
        senders=sender_keys(senders) if txs_per_block else [],
        first_timestamp_ms=genesis.genesis_time_ms + interval,
        interval_ms=interval,
    )


def _check_txs(genesis: Genesis, txs_per_block: int, senders: int) -> None:
    if txs_per_block < 0:
        raise ConfigError(f"--txs-per-block must be 0 or more, got {txs_per_block}")
    if txs_per_block and senders < 1:
        raise ConfigError("transactions need at least one sender")
    params = genesis.consensus
    per_tx_gas = gas(Transaction(genesis.chain_id, 0, ZERO_ID, 0, 1, bytes(PAYLOAD_BYTES), b""))
    most = min(params.max_block_txs, params.max_block_gas // per_tx_gas)
    if txs_per_block > most:
        raise ConfigError(
            f"--txs-per-block {txs_per_block} is more than a block takes under this genesis "
            f"({most} of {PAYLOAD_BYTES}-byte payload)"
        )


def _validator_keys(devnet_nodes: Sequence, validators: ValidatorSet) -> dict[int, PrivateKey]:
    """Validator index -> key, from the key files of the devnet's homes."""
    keys: dict[int, PrivateKey] = {}
    for node in devnet_nodes:
        key = load_key(node.home / "key.json")
        index = validators.index_of(key.public_key)
        if index is not None:
            keys[index] = key
    return keys


def _quorum(validators: ValidatorSet, keys: dict[int, PrivateKey]) -> tuple[int, ...]:
    """The first validators (index order) with a key here whose power is a quorum."""
    signers: list[int] = []
    power = 0
    for index in sorted(keys):
        signers.append(index)
        power += validators.powers[index]
        if validators.is_quorum(power):
            return tuple(signers)
    raise ConfigError(
        f"the devnet's key files give {power} of {validators.total_power} voting power, "
        "not the more than 2/3 a certificate needs"
    )


# ------------------------------------------------------------------ writing


def _write_chain(
    store: Store, plan: _Plan, say: Callable[[str], None]
) -> tuple[bytes, dict[int, bytes]]:
    """Write the blocks; (last block id, validator -> its last precommit signature)."""
    genesis = plan.genesis
    chain_id = genesis.chain_id
    schedule = ProposerSchedule([v.power for v in genesis.validators])
    signer_keys = [(index, plan.keys[index]) for index in plan.signers]
    nonces: dict[bytes, int] = {}
    parent_id, last_commit_id = ZERO_ID, ZERO_ID
    state_root = genesis_state_root(chain_id)
    signatures: list[tuple[int, bytes]] = []
    started = last_report = time.perf_counter()
    for first in range(1, plan.blocks + 1, BLOCKS_PER_WRITE):
        last = min(plan.blocks, first + BLOCKS_PER_WRITE - 1)
        # Unsynced writes but the last: LevelDB syncs its log in order, so the
        # final synced write makes every earlier one durable too.
        with store.batch(sync=last == plan.blocks) as batch:
            for height in range(first, last + 1):
                block, facts = build_block(
                    chain_id=chain_id,
                    height=height,
                    round=0,
                    proposer=schedule.proposer(height, 0),
                    timestamp_ms=plan.first_timestamp_ms + (height - 1) * plan.interval_ms,
                    parent_id=parent_id,
                    last_commit_id=last_commit_id,
                    parent_state_root=state_root,
                    txs=_txs(plan, chain_id, height, nonces),
                    next_nonce=lambda sender: nonces.get(sender, 0),
                )
                value = facts.block_id
                message = vote_signing_bytes(chain_id, VoteKind.PRECOMMIT, height, 0, value)
                signatures = [(index, key.sign(message)) for index, key in signer_keys]
                assert facts.next_nonces is not None
                certificate = CommitCertificate(height, 0, value, signatures)
                batch.put_finalized(block, certificate, facts.next_nonces, facts=facts)
                nonces.update(facts.next_nonces)
                tip = batch.tip
                assert tip is not None
                parent_id, last_commit_id, state_root = tip.block_id, tip.commit_id, tip.state_root
        now = time.perf_counter()
        if now - last_report >= PROGRESS_EVERY_S or last == plan.blocks:
            last_report = now
            rate = last / max(now - started, 1e-9)
            say(f"[chainbuild] {last}/{plan.blocks} blocks ({rate:,.0f} blocks/s)")
    return parent_id, dict(signatures)


def _txs(plan: _Plan, chain_id: str, height: int, nonces: dict[bytes, int]) -> list[Transaction]:
    """The block's transactions: round robin over the senders, nonces consecutive."""
    txs = []
    pending: dict[bytes, int] = {}
    for position in range(plan.txs_per_block):
        key = plan.senders[position % len(plan.senders)]
        sender = key.public_key
        nonce = pending.get(sender, nonces.get(sender, 0))
        pending[sender] = nonce + 1
        payload = (b"%d/%d " % (height, position)).ljust(PAYLOAD_BYTES, b".")
        txs.append(
            sign_transaction(
                key, chain_id=chain_id, namespace=0, nonce=nonce, gas_price=1, payload=payload
            )
        )
    return txs


# ------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m node.lab.chainbuild",
        description="Write N valid finalized blocks into the stores of devnet nodes "
        "(for benchmarks; the nodes must be stopped and their stores empty).",
    )
    parser.add_argument("devnet", type=Path, metavar="DEVNET_DIR", help="written by devnet init")
    parser.add_argument("--blocks", type=int, required=True, metavar="N", help="blocks to build")
    parser.add_argument(
        "--txs-per-block", type=int, default=0, metavar="K", help="signed txs per block (0)"
    )
    parser.add_argument(
        "--senders", type=int, default=SENDERS_DEFAULT, metavar="S", help="tx senders (4)"
    )
    parser.add_argument(
        "--nodes",
        default="0,1,2",
        metavar="LIST",
        help="comma-separated node indexes whose stores get the chain (0,1,2)",
    )
    args = parser.parse_args(argv)
    try:
        nodes = [int(part) for part in args.nodes.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--nodes: expected comma-separated integers, got {args.nodes!r}")
    try:
        build_chain(
            args.devnet,
            args.blocks,
            txs_per_block=args.txs_per_block,
            nodes=nodes,
            senders=args.senders,
            progress=lambda line: print(line, flush=True),
        )
    except SequencerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
