"""The lab: benchmarks, load, chaos and audits over real node processes.

bench.py            end-to-end benchmark of a devnet (`scripts/bench.py`): CLI, table
bench_load.py       its load runs: saturation, a fixed rate, the soak
bench_single.py     its single POST /tx run, beside a bare server
wallet.py           its wallet run: one fresh sender per POST /tx, from wrk, beside
                    bare handlers (wallet_wrk.py: wrk and wallet.lua; wallet_bare.py:
                    the bare handlers; wallet_report.py: its table)
rpcbench.py         RPC capacity in rate-limit tokens (`scripts/bench_rpc.py`): CLI,
                    the candidate limit
rpcbench_phases.py  its phases: the chain, capacity, interference
rpcbench_drive.py   its load drivers, each in its own process
rpcbench_wallets.py its wallet load over raw connections
rpcbench_report.py  its tables
syncbench.py        restart and catch-up over a long chain (`scripts/bench_sync.py`)
chainbuild.py       a long finalized chain written straight into stores
chaos.py            chaos runs (`scripts/chaos.py`): CLI
chaos_plan.py       their plan      chaos_net.py     the devnet and its faults
chaos_run.py        the plan executed, liveness watched
chaos_report.py     the audit at the end, the summary line
audit.py            safety checks over the chains a devnet's nodes serve
facts.py            how often each fact about a transaction is computed
                    (`scripts/bench_facts.py`)

Shared by the above:

devnet.py           a devnet's node processes, started and stopped together
machine.py          the machine's limit; CPU time and memory from /proc
presign.py          transactions signed before the clock starts
loadgen.py          load over httpx: `run_load`, and `SteadyLoad` for chaos runs
finality.py         each transaction timed to finality from `/events`
rawhttp.py          minimal keep-alive HTTP/1.1 clients
stats.py            percentiles     harness.py       progress lines, a run's directory
"""
