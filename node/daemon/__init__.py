"""The running node: every subsystem in one trio nursery (`runtime.py`).

Its public surface is `Node` and `run_node`, below: the lab drives nodes
through them, or as processes through their HTTP API.

runtime.py        the nursery and the wiring; implements the API's Backend
ingest.py         transactions from wallets and peers, and the journal
inbound.py        what peers gossip: one reader loop, a table of topics
consensus.py      the trio shell around `consensus.host.Host`
signwriter.py     the signing state written off the loop; broadcasts wait for it
chain.py          committing decided blocks, publishing each to subscribers
batcher.py        posting batch commitments of finalized blocks to the L1
messages.py       what nodes send each other over gossip, per topic
metrics.py        the Prometheus registry
gcpauses.py       the garbage collector's pauses, timed for the metrics
memory.py         glibc's malloc arenas capped before any thread starts
health.py         storage failure: out of service until restarted
chaos_control.py  run-time fault control, for chaos runs only
limits.py         the daemon's fixed limits and pacing, each with its reason
"""

from node.daemon.runtime import Node, run_node

__all__ = ["Node", "run_node"]
