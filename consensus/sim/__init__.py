"""The deterministic cluster simulator: the node's own consensus host on a
seeded, simulated world.

    events.py     simulated time: one heap of callbacks
    network.py    lossy, duplicating, reordering links; partitions; the seen-cache
    scenario.py   fault classes, and what a seed draws of them (the fault plan)
    disk.py       the chain port: an in-memory store that can lose unsynced writes
    node.py       one node: `consensus.host.Host` over simulated ports, crashes, clocks
    byzantine.py  the behaviours of byzantine validators (a network port filter)
    check.py      the invariants: agreement, certificates, signatures, liveness
    run.py        one seeded run: build the world, play the plan, judge it

A seed fixes everything, so a failing seed replays exactly
(`python -m consensus.simulate ... --seed K`); `scripts/simulate_campaign.py`
runs seed ranges on every core.
"""

from consensus.sim.run import RunResult, Simulation, run_seed
from consensus.sim.scenario import FAULT_CLASSES, FAULT_NAMES, Scenario, parse_faults

__all__ = [
    "FAULT_CLASSES",
    "FAULT_NAMES",
    "RunResult",
    "Scenario",
    "Simulation",
    "parse_faults",
    "run_seed",
]
