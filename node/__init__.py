"""The node daemon and the tools around it, one room each.

    config/   the typed `config.toml`: schema, loading with environment
              overrides, the generated reference
    daemon/   the running node: one trio nursery of ingest and journal, the
              consensus shell, chain, batcher, metrics, health, chaos hook
    api/      the HTTP API: the Starlette app, its limits, OpenAPI, and the
              guarded Hypercorn server it runs on
    ops/      what an operator runs: devnet files, the devnet supervisor,
              Prometheus, `l1 verify`, node processes
    lab/      benchmarks, load generation, chaos runs, chain building, audits
    cli.py    `sequencer`: the front door to all of the above
    errors.py the exception tree          logs.py   logging set-up

The daemon imports nothing from `ops/` or `lab/`; `api/` imports nothing
from `daemon/` (the daemon implements the API's `Backend`). The lab drives
nodes as processes, through their HTTP API and files (tests/test_layout.py
checks these rules against the import graph).
"""
