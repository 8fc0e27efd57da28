"""What an operator runs beside the daemon.

devnet.py      the files of a local devnet (`devnet init`)
supervisor.py  `devnet up`: the nodes as child processes
ports.py       are a devnet's ports free? (and who holds one that is not)
prometheus.py  a scrape config and a Prometheus process for a devnet
l1verify.py    `l1 verify`: the L1 against the chain a node serves
verify.py      `verify block|tx|namespace` and `follow`: a node against genesis.json
ceremony.py    `genesis validator|build|hash` across machines, `testnet init --hosts`
accounts.py    a devnet's dev accounts, derived from a seed
procs.py       ChildProcess, the one handle for every child process (start,
               wait, stop, kill); NodeProcess over it; stop_all
"""
