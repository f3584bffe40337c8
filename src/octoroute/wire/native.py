"""What every native pass-through stream shares: an endpoint that speaks the client's dialect
itself (``native = [...]``) has its events, or NDJSON lines, relayed as it sent them.

``NativeRelay`` is the part of a ``StreamTranslator`` that writes nothing of its own: no
opening, the events as they came, no closing. A dialect's subclass says only what the relay adds
to a native stream, in the dialect's own way: the filler while the server is quiet, the end of a
stream that broke, and the stream of a whole answer from a server that ignored ``stream``.
"""

from __future__ import annotations

__all__ = ["NativeRelay"]


class NativeRelay:
    """Passes a native server's stream through unchanged (subclassed per dialect)."""

    __slots__ = ()

    def opening(self) -> bytes:
        """Nothing: the server sends its own start."""
        return b""

    def translate(self, events: list[bytes]) -> bytes:
        """The events (or lines) as they came."""
        return b"".join(events)

    def closing(self) -> bytes:
        """Nothing: the server ended its own stream."""
        return b""
