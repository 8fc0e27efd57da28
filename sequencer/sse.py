"""Server-sent events, parsed incrementally and within a bound.

`SseParser.feed(chunk)` returns the events completed by `chunk`. Comment
lines (keepalives) are skipped; an event or a line longer than
`event_bytes_max` is a `DecodeError`, so a node that never ends a line
cannot make a reader hold unbounded memory.
"""

from __future__ import annotations

import dataclasses

from sequencer.errors import DecodeError

__all__ = ["EVENT_BYTES_MAX", "SseEvent", "SseParser"]

# The biggest legitimate event is a full block as JSON (see client.RESPONSE_BYTES_MAX).
EVENT_BYTES_MAX = 64 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    id: str | None
    data: str


class SseParser:
    def __init__(self, event_bytes_max: int = EVENT_BYTES_MAX) -> None:
        self._max = event_bytes_max
        self._buffer = bytearray()
        self._event = "message"
        self._id: str | None = None
        self._data: list[str] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        events: list[SseEvent] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._size > self._max:
            raise DecodeError(f"an event stream line or event over {self._max} bytes")
        return events

    def _line(self, line: bytes) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None
        name, _, value = line.partition(b":")
        text = value[1:] if value.startswith(b" ") else value
        try:
            decoded = text.decode()
        except UnicodeDecodeError:
            raise DecodeError("an event stream line that is not UTF-8") from None
        self._size += len(line)
        if self._size > self._max:
            raise DecodeError(f"an event over {self._max} bytes")
        if name == b"event":
            self._event = decoded
        elif name == b"id":
            self._id = decoded
        elif name == b"data":
            self._data.append(decoded)
        return None

    def _dispatch(self) -> SseEvent | None:
        event = None
        if self._data:
            event = SseEvent(self._event, self._id, "\n".join(self._data))
        self._event, self._data, self._size = "message", [], 0
        return event
