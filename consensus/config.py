"""The node-local knobs of the core (`CoreConfig`) and of its host
(`HostConfig`), in one place; the protocol parameters are in the genesis,
the wire limits with the messages they bound (`consensus.sync`,
`sequencer.limits`)."""

from __future__ import annotations

from msgspec import Struct

from consensus.sync import SYNC_BLOCKS_MAX

__all__ = ["CoreConfig", "HostConfig"]


class CoreConfig(Struct, frozen=True):
    """Node-local knobs (the protocol parameters are in the genesis)."""

    rebroadcast_ms: int = 1_000  # when a round lasts this long, re-send its messages
    rebroadcast_rounds: int = 4  # ... and those of this many rounds before it
    wait_for_txs: bool = True  # a height starts on TxsAvailable (or a peer's message)
    # A height waits this long after the one before it began before it starts
    # on our own transactions (a peer's proposal or vote starts it at once), so
    # that under a steady trickle each height's fixed cost (votes, signatures,
    # synced writes) is shared by more transactions. 0: start at once.
    min_block_interval_ms: int = 0
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


class HostConfig(Struct, frozen=True):
    """The host's: catch-up pacing, serving, evidence kept."""

    sync_poll_ms: int = 100  # how often catch-up looks for what to ask
    sync_patience_ms: int = 300  # behind this long before fetching
    sync_probe_ms: int = 1_000  # ask a random peer for blocks this often (idle peers say nothing)
    sync_blocks_max: int = SYNC_BLOCKS_MAX  # blocks asked per request
    # A response stays well inside one gossip message (4 MiB).
    sync_response_bytes_max: int = 3 * 1024 * 1024
    evidence_kept_max: int = 64
