"""The rate limit: a token bucket per client address, charged by cost.

A request costs `request_tokens` of what it moved; the body and response are
charged once known, into debt if need be, so a client reading full block
ranges runs out long before one sending transactions one by one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.api.backend import ErrorCode
from node.api.limits import PROBE_PATHS, request_tokens
from node.api.responses import error_response

__all__ = ["RateLimit", "TokenBuckets", "limited"]

CLIENTS_MAX = 65_536  # token buckets kept; the least recently seen goes first


class TokenBuckets:
    """One token bucket per client; `take` spends tokens or says how long to wait.

    An OrderedDict, least recently seen first: finding and dropping the
    oldest client is O(1) however many came and went (a plain dict's first
    key is found by walking the slots its deletions left)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, time)

    def take(self, client: str, cost: float = 1.0) -> float:
        """0.0 if the request may proceed (its `cost` spent), else the seconds until it could."""
        now = self._clock()
        tokens, then = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - then) * self._rate)
        allowed = tokens >= cost
        self._buckets[client] = (tokens - cost if allowed else tokens, now)
        self._buckets.move_to_end(client)
        if len(self._buckets) > CLIENTS_MAX:  # a forgotten client starts with a full bucket
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (cost - tokens) / self._rate

    def charge(self, client: str, cost: float) -> None:
        """Spend `cost` more after the fact, into debt: the client waits it off."""
        if cost <= 0:
            return
        now = self._clock()
        tokens, then = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - then) * self._rate)
        self._buckets[client] = (max(tokens - cost, -self._burst), now)
        self._buckets.move_to_end(client)


class RateLimit:
    """ASGI middleware answering 429 `rate_limited` to a client over its rate.

    The probes (/health, /ready, /metrics) have buckets of their own: a
    flood of API requests does not blind the node's monitoring, and a flood
    of probes is limited too."""

    def __init__(self, app: ASGIApp, *, buckets: TokenBuckets, probes: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets
        self.probes = probes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        buckets = self.probes if scope["path"] in PROBE_PATHS else self.buckets
        await limited(buckets, self.app, scope, receive, send)


async def limited(
    buckets: TokenBuckets, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """`app` answering one HTTP request under its client's bucket in `buckets`:
    429 `rate_limited` when the client is over its rate, else the request
    runs and is charged what it moved (`request_tokens`). The middleware and
    the submission fast path (`node.api.fastpath`) both charge through this."""
    client_address = scope.get("client")
    client = client_address[0] if client_address else ""
    wait = buckets.take(client)
    if wait:
        retry = {"Retry-After": str(math.ceil(wait))}
        message = "too many requests from this client; retry later"
        response = error_response(ErrorCode.RATE_LIMITED, message, headers=retry)
        await response(scope, receive, send)
        return
    # The body (transactions to decode and verify) and the response (blocks
    # to encode and write) are charged once known, into debt if need be: a
    # client reading full block ranges runs out long before one sending
    # transactions one by one.
    received = sent = 0

    async def counted_receive() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        return message

    async def counted_send(message: Message) -> None:
        nonlocal sent
        sent += len(message.get("body", b""))
        await send(message)

    try:
        await app(scope, counted_receive, counted_send)
    finally:
        buckets.charge(client, request_tokens(received, sent) - 1)
