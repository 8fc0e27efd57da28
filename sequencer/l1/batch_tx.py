"""A batch as an Ethereum transaction, and back: the format of the inbox call.

A batch transaction goes from the poster's account to the batch inbox
address, carries no value, and its calldata is `0x01 || encoding` (the
version byte, then `ids.encode_batch`). Its fees are a `jsonrpc.Fees`:
EIP-1559 when they have a tip, legacy otherwise; a replacement raises them.

Apart from `sequencer.l1.ethereum` because both sides of the sink need it:
posting builds these transactions, the inbox scan (`sequencer.l1.inbox_scan`)
and the adoption of pending ones read them back. All of it is pure.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from sequencer.errors import DecodeError
from sequencer.ids import decode_batch, encode_batch
from sequencer.l1.jsonrpc import Fees, lowercase
from sequencer.types import BatchCommitment

__all__ = [
    "CALLDATA_PREFIX",
    "CALLDATA_PREFIX_HEX",
    "batch_transaction",
    "bumped_fees",
    "decode_batch_transaction",
]

CALLDATA_PREFIX = b"\x01"  # the version byte before the encoding
CALLDATA_PREFIX_HEX = "0x" + CALLDATA_PREFIX.hex()  # as a node lists calldata


def batch_transaction(
    chain_id: int, nonce: int, inbox: str, encoding: bytes, gas: int, fees: Fees
) -> dict[str, Any]:
    """The unsigned transaction carrying `encoding` to `inbox`, for eth-account."""
    tx: dict[str, Any] = {
        "chainId": chain_id,
        "nonce": nonce,
        "to": bytes.fromhex(inbox[2:]),
        "value": 0,
        "data": CALLDATA_PREFIX + encoding,
        "gas": gas,
    }
    if fees.tip is None:
        tx["gasPrice"] = fees.max_fee
    else:
        tx |= {"type": 2, "maxFeePerGas": fees.max_fee, "maxPriorityFeePerGas": fees.tip}
    return tx


def decode_batch_transaction(
    tx: dict[str, Any], inbox: str, chain_id: str
) -> tuple[BatchCommitment, bytes] | str:
    """A canonical batch of `chain_id` sent to `inbox`, or why not: "undecodable"
    or "other_chain" (the names of the scan's skip counters)."""
    data = lowercase(tx.get("input") or tx.get("data"))
    if lowercase(tx.get("to")) != inbox or not data.startswith(CALLDATA_PREFIX_HEX):
        return "undecodable"
    try:
        encoding = bytes.fromhex(data[len(CALLDATA_PREFIX_HEX) :])
        batch = decode_batch(encoding)
    except (ValueError, DecodeError):
        return "undecodable"
    if encode_batch(batch) != encoding:
        return "undecodable"
    if batch.chain_id != chain_id:
        return "other_chain"
    return batch, encoding


def bumped_fees(old: Fees, percent: float, fresh: Fees) -> Fees:
    """`old` raised by `percent` (and by 1 wei at least), or `fresh` when that is more."""
    factor = 1 + Fraction(percent) / 100

    def up(value: int) -> int:
        return max(value + 1, math.ceil(value * factor))

    if old.tip is None:
        return Fees(max(up(old.max_fee), fresh.max_fee), None)
    tip = max(up(old.tip), fresh.tip or 0)
    return Fees(max(up(old.max_fee), fresh.max_fee, tip), tip)
