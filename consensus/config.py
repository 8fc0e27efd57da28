"""The core's node-local knobs (`CoreConfig`); the protocol parameters are in the genesis."""

from __future__ import annotations

from msgspec import Struct

__all__ = ["CoreConfig"]


class CoreConfig(Struct, frozen=True):
    """Node-local knobs (the protocol parameters are in the genesis)."""

    rebroadcast_ms: int = 1_000  # when a round lasts this long, re-send its messages
    rebroadcast_rounds: int = 4  # ... and those of this many rounds before it
    wait_for_txs: bool = True  # a height starts on TxsAvailable (or a peer's message)
    # Messages further ahead than this are not kept; only their validator's
    # round is noted, for L55.
    rounds_ahead_max: int = 32
    # Buffered messages of the next height, per validator (signature checked
    # first, so no one fills another validator's share) ...
    future_messages_per_validator_max: int = 12
    future_proposals_max: int = 16  # ... and proposals in all (they carry whole blocks)
    # Distinct proposals kept from one equivocating proposer in one round,
    # beyond those whose value more than 1/3 of the power voted for.
    proposals_per_round_max: int = 4
    clock_drift_ms_max: int = 10_000  # how far a block's timestamp may run ahead of ours
