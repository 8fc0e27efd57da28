"""The exception tree of `consensus`.

    SequencerError (sequencer.errors)
    └── ConsensusError
        ├── SigningRefusedError   the signer will not sign (it would regress or
        │                         conflict with what it already signed);
        │                         `reason` is "regression" or "conflict"
        └── SimulationError       the simulator was configured wrongly

Messages from peers never raise: the core drops and counts them.
"""

from __future__ import annotations

from sequencer.errors import SequencerError

__all__ = ["ConsensusError", "SigningRefusedError", "SimulationError"]


class ConsensusError(SequencerError):
    """Base class of the consensus package's errors."""


class SigningRefusedError(ConsensusError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SimulationError(ConsensusError):
    """A simulation that cannot run as configured."""
