"""Transactions signed before any clock starts, so that what a run measures
is the nodes, not the wallet.

Each sender always uses the same node and its nonces go out in order, so no
transaction waits in a node's queue for an earlier one sent elsewhere.
"""

from __future__ import annotations

import dataclasses
import random
import time

import msgspec

from node.lab.harness import say
from sequencer.codec import to_builtins
from sequencer.crypto import PrivateKey, sign_transaction
from sequencer.ids import tx_id

__all__ = ["Signed", "presign", "presign_timed"]


@dataclasses.dataclass(frozen=True, slots=True)
class Signed:
    id: bytes
    body: bytes  # the transaction as JSON, as `POST /tx` takes it
    node: int  # the node it goes to


def presign(
    chain_id: str,
    *,
    count: int,
    senders: int,
    nodes: int,
    payload_bytes: int = 200,
    seed: int = 0,
    gas_price: int = 1,
) -> list[Signed]:
    """`count` signed transactions: sender k % senders, nonces in order.

    The seed picks the sender keys: a fresh seed gives fresh senders (whose
    nonces start at 0) on a devnet that earlier runs already used.
    """
    rng = random.Random(seed)
    keys = [PrivateKey(rng.randbytes(32)) for _ in range(senders)]
    signed = []
    for k in range(count):
        sender = k % senders
        tx = sign_transaction(
            keys[sender],
            chain_id=chain_id,
            namespace=0,
            nonce=k // senders,
            gas_price=gas_price,
            payload=rng.randbytes(payload_bytes),
        )
        signed.append(Signed(tx_id(tx), msgspec.json.encode(to_builtins(tx)), sender % nodes))
    return signed


def presign_timed(
    tag: str,
    chain_id: str,
    *,
    count: int,
    senders: int,
    nodes: int,
    seed: int,
    payload_bytes: int = 200,
) -> list[Signed]:
    """`presign`, saying under `tag` how long the signing took."""
    started = time.perf_counter()
    signed = presign(
        chain_id, count=count, senders=senders, nodes=nodes, payload_bytes=payload_bytes, seed=seed
    )
    say(tag, f"signed {count} transactions in {time.perf_counter() - started:.1f} s")
    return signed
