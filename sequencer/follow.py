"""Follow one namespace from a node's `/events`, verifying every block.

Each event of `/events?namespace=N` is that namespace's part of one
finalized block with its header, certificate and namespace proof. The
follower verifies each against genesis.json (`light_protocol`), links it
to the block before (`Linker`: contiguous heights, parent ids, last-commit
ids), and yields it. When the connection drops (the node restarts, the
network fails, the stream stalls past the keepalives) it reconnects with a
growing pause and resumes after the last block it verified, so nothing is
skipped or yielded twice. Anything that fails to verify raises: a node that
lies is not followed further.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx

from sequencer.errors import ClientError, DecodeError, ProofError
from sequencer.light import LightClient
from sequencer.light_protocol import Linker, VerifiedNamespace, verify_namespace
from sequencer.sse import SseParser
from sequencer.types import Genesis

__all__ = ["NamespaceFollower"]

# The node sends a keepalive every 15 s; silence for this long is a dead stream.
READ_TIMEOUT_S = 45.0
RECONNECT_S_FIRST = 0.2
RECONNECT_S_MAX = 5.0


class NamespaceFollower:
    """`for view in NamespaceFollower(url, genesis, 7): ...` yields a
    `VerifiedNamespace` per block from `start`, forever or through `until`."""

    def __init__(
        self,
        base_url: str,
        genesis: Genesis,
        namespace: int,
        *,
        start: int = 1,
        until: int | None = None,
        linker: Linker | None = None,
        on_reconnect: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`linker` resumes from a block verified earlier (its height must be
        `start - 1`); `on_reconnect` hears why a connection was dropped."""
        if start < 1:
            raise ValueError(f"start must be at least 1, got {start}")
        if linker is not None and linker.height is not None and linker.height != start - 1:
            raise ValueError(f"resuming after block {linker.height} means starting at its next")
        self.namespace = namespace
        self.next_height = start
        self.until = until
        self.linker = linker or Linker()
        self._base_url = base_url
        self._light = LightClient(base_url, genesis, transport=transport)
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(10.0, read=READ_TIMEOUT_S),
            transport=transport,
        )
        self._on_reconnect = on_reconnect or (lambda _why: None)
        self._sleep = sleep

    def close(self) -> None:
        self._light.close()
        self._http.close()

    def __enter__(self) -> NamespaceFollower:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[VerifiedNamespace]:
        pause = RECONNECT_S_FIRST
        while not self._done():
            try:
                for view in self._stream():
                    pause = RECONNECT_S_FIRST
                    yield view
                    if self._done():
                        return
                why = "the node ended the stream"
            except (httpx.TransportError, ClientError, DecodeError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            self._on_reconnect(
                f"{why}; reconnecting from height {self.next_height} in {pause:.1f} s"
            )
            self._sleep(pause)
            pause = min(pause * 2, RECONNECT_S_MAX)

    def _done(self) -> bool:
        return self.until is not None and self.next_height > self.until

    def _stream(self) -> Iterator[VerifiedNamespace]:
        params = {"namespace": str(self.namespace), "from": str(self.next_height)}
        with self._http.stream("GET", "/events", params=params) as response:
            if response.status_code != 200:
                response.read()
                raise ClientError(
                    "unavailable",
                    f"GET {self._base_url}/events answered {response.status_code}: "
                    f"{response.text[:200]}",
                    status=response.status_code,
                )
            parser = SseParser()
            for chunk in response.iter_bytes():
                for event in parser.feed(chunk):
                    if event.event == "error":
                        raise ClientError("unavailable", f"the node reported: {event.data[:200]}")
                    if event.event != "block":
                        continue
                    yield self._accept(event.data)
                    if self._done():
                        return

    def _accept(self, data: str) -> VerifiedNamespace:
        try:
            answer = json.loads(data)
        except ValueError:
            raise ProofError("malformed", f"block event {self.next_height}: not JSON") from None
        view = verify_namespace(self._light.trust, answer, self.namespace, self.next_height)
        self._light.link(self.linker, view.block)
        self.next_height += 1
        return view
