"""Consensus: the sans-IO Tendermint core, the host that runs it, and the
deterministic cluster simulator.

    core.py         the state machine (Algorithm 1): step(input, now) -> actions
    messages.py     its inputs, actions and wire messages
    votekeeper.py   vote counting, thresholds, evidence
    signer.py       never signs conflicting messages; the signing state
    admission.py    may a proposal, block or decided block be used?
    blocks.py       building and checking blocks
    proposer.py     weighted round-robin proposer schedule
    sync.py         catch-up: what to fetch from whom
    host.py         runs the core over ports: actions, timers, catch-up, serving
    ports.py        what the host needs: chain, mempool, network, signatures
    sim/            the simulator: the same host over simulated ports
    simulate.py     its command line (`python -m consensus.simulate`)
    errors.py       the exception tree

This package imports only `sequencer` (and the simulator only `consensus`).
"""
