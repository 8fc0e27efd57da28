"""The RPC's limits and its cost model: what a request may bring and take.

`RpcLimits` is what the app enforces and the OpenAPI description states;
`request_tokens` is what the rate limit charges a request.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "BODY_COST_UNIT_BYTES",
    "PROBE_PATHS",
    "RESPONSE_COST_UNIT_BYTES",
    "RpcLimits",
    "request_tokens",
]

# The probes have rate limits of their own (`probe_requests_per_s`).
PROBE_PATHS = frozenset({"/health", "/ready", "/metrics"})
# A request costs a rate-limit token, and one more per BODY_COST_UNIT_BYTES of
# body and per RESPONSE_COST_UNIT_BYTES of response: a token is about the
# node's CPU for one small request. Measured (scripts/bench_rpc.py): a body's
# transactions are decoded, verified and gossiped at about an eighth of a
# single POST /tx each, some 4 KiB of them; a full block range of 3.2 MB
# costs about 20 small requests, one per ~160 KB; 64 KiB also counts the
# bandwidth a real network pays.
BODY_COST_UNIT_BYTES = 4_096
RESPONSE_COST_UNIT_BYTES = 65_536


@dataclasses.dataclass(frozen=True, slots=True)
class RpcLimits:
    body_bytes_max: int = 1_048_576
    batch_txs_max: int = 1_000
    # Tokens per client IP, refilled continuously. A core serves 240-1,200
    # tokens a second, whatever they are spent on, on a 2-core machine whose
    # Ed25519 verification takes 130 us (scripts/bench_rpc.py): one address
    # takes at most about 40% of a core there, some 12% where it takes 38 us.
    requests_per_s: float = 100
    # Bucket size: what a quiet client may spend at once. At least the dearest
    # request (`dearest_request_tokens`), which may leave the bucket this far in debt.
    burst: int = 400
    # /health, /ready and /metrics, per client: scrapers and probes poll a few
    # times a second at most.
    probe_requests_per_s: float = 50
    probe_burst: int = 100
    blocks_range_max: int = 100
    # A block range stops before the block that would take its JSON past
    # this (it always holds one block): the client pages on from the last.
    response_bytes_max: int = 4 * 1024 * 1024
    # The whole request body must arrive within this, or 408 `request_timeout`.
    body_timeout_s: float = 10.0

    @property
    def body_cost_unit_bytes(self) -> int:
        return BODY_COST_UNIT_BYTES

    @property
    def response_cost_unit_bytes(self) -> int:
        return RESPONSE_COST_UNIT_BYTES

    @property
    def dearest_request_tokens(self) -> int:
        """A whole body in and a capped response out."""
        return request_tokens(self.body_bytes_max, self.response_bytes_max)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"RpcLimits.{field.name} must be positive")


def request_tokens(body_bytes: int, response_bytes: int) -> int:
    """Tokens the rate limit charges an admitted request moving these body bytes."""
    return 1 + body_bytes // BODY_COST_UNIT_BYTES + response_bytes // RESPONSE_COST_UNIT_BYTES
