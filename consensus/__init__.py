"""Consensus: the sans-IO Tendermint core, the host that runs it, and the
deterministic cluster simulator.

    core.py         the state machine (Algorithm 1): step(input, now) -> actions
    config.py       its node-local knobs (CoreConfig)
    rules.py        the upon rules: which fires, and the effect the core carries out
    inbox.py        peers' proposals and votes: routed, buffered, counted, recorded
    voice.py        our proposals and votes: signed, persisted first, re-sent
    proposals.py    a height's proposals, blocks with valid(v), lock and valid value
    votekeeper.py   vote counting, quorums, evidence
    anchor.py       the last finalized block, what the next height builds on
    messages.py     its inputs, actions and wire messages
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
