"""The running node's fixed limits and pacing, in one place.

What an operator may tune is in `config.toml` (`node.config`); these are the
numbers the daemon keeps to itself, each with why it is what it is. The gossip
layer's own are in `net.config`, the consensus host's in its `HostConfig`.
"""

from __future__ import annotations

__all__ = [
    "BATCHER_RETRY_S_MAX",
    "BATCHER_RETRY_S_MIN",
    "BATCHER_TICK_S",
    "PEER_MUTE_S",
    "REANNOUNCE_TXS_MAX",
    "RECONNECT_POLL_S",
    "RESTORED_ANNOUNCE_DELAY_S",
    "TIMER_SLEEP_S_MAX",
    "TX_BATCH_MAX",
    "TX_DELIVERIES_BUFFERED",
    "VERIFIED_REMEMBERED_MAX",
]

# Transactions in one gossip message; 1,000 of 200-byte payloads are ~0.3 MiB.
TX_BATCH_MAX = 1_000

# Gossiped transaction messages a node holds unread: they arrive in bursts
# (a peer's group commit), and a dropped one reaches us only in a block.
TX_DELIVERIES_BUFFERED = 65_536

# Pooled transactions are announced again when peers return after none was
# alive (checked this often), at most this many.
RECONNECT_POLL_S = 1.0
REANNOUNCE_TXS_MAX = 20_000

# Transactions restored from the journal are announced this long after start,
# once peers had a chance to answer our first pings.
RESTORED_ANNOUNCE_DELAY_S = 1.0

# Verified transactions the pool no longer holds, remembered so that a late
# gossip or a proposal does not verify them again. A short window covers that
# (seconds, at thousands of tx/s); 200,000 held ~45 MiB per node for nothing.
VERIFIED_REMEMBERED_MAX = 20_000

# A peer past its allowance of bad consensus signatures (`consensus.guard`)
# has its consensus messages dropped unread this long.
PEER_MUTE_S = 60.0

# The consensus timer task sleeps at most this long, so a clock offset set by
# a chaos run (which moves consensus time, not trio's) is noticed soon.
TIMER_SLEEP_S_MAX = 1.0

# The batcher retries an unreachable L1 from the first delay, doubling up to
# the last; it checks whether the open batch is due this often.
BATCHER_RETRY_S_MIN = 0.2
BATCHER_RETRY_S_MAX = 5.0
BATCHER_TICK_S = 0.1
