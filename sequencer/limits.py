"""Hard limits of the wire formats, in one place.

These bound what the decoders accept from anyone, before any configuration is
consulted: they are the outer walls. Configurable, tighter limits (mempool
transaction size, block gas, RPC body size) live in the configuration and
genesis and must not exceed these.
"""

from __future__ import annotations

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

CHAIN_ID_CHARS_MAX = 64
# One RPC body (1 MiB by default) must be able to carry one transaction.
TX_PAYLOAD_BYTES_MAX = 1024 * 1024
# Block bodies travel as gossip messages of at most 4 MiB; a count bound keeps
# a hostile block of empty transactions from costing more than its bytes.
BLOCK_TXS_MAX = 65_536
VALIDATORS_MAX = 1_024
# Own votes a signing state keeps (two per round, of its last rounds).
OWN_VOTES_MAX = 64
# Votes re-sent in one gossip message (about 200 bytes each: under 0.5 MiB).
VOTE_BUNDLE_MAX = 2_048
# CometBFT's bound: keeps 3 * power inside a u64 in every implementation.
TOTAL_VOTING_POWER_MAX = 2**60
NAME_CHARS_MAX = 64
ADDRESS_CHARS_MAX = 256
# An audit path has one hash per tree level; 64 levels cover any u64 size.
MERKLE_PATH_HASHES_MAX = 64
