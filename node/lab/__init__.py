"""The lab: benchmarks, load, chaos and audits over real node processes.

bench.py       end-to-end benchmark of a devnet (`scripts/bench.py`)
loadgen.py     pre-signed load over HTTP, timed to finality
rpcbench.py    RPC capacity in rate-limit tokens (`scripts/bench_rpc.py`)
syncbench.py   restart and catch-up over a long chain (`scripts/bench_sync.py`)
chainbuild.py  a long finalized chain written straight into stores
chaos.py       chaos runs (`scripts/chaos.py`), planned by chaos_plan.py
audit.py       safety checks over the chains a devnet's nodes serve
"""
