"""L1 sinks for batch commitments: `file` (JSON lines under the
node home) and `ethereum` (JSON-RPC, e.g. a local anvil). See `base.py`."""

from __future__ import annotations

from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, PostedBatch, Sink

__all__ = ["L1ConflictError", "L1Error", "L1UnavailableError", "PostedBatch", "Sink"]
