"""Newline-delimited JSON, the framing of Ollama's own streams: split it into lines, peek at them.

A server with ``native = ["ollama"]`` streams ``application/x-ndjson``: one JSON object per
line, the last one carrying ``"done": true`` and the token counts. The relay needs what it needs
of SSE (where each line ends, which line ends the answer, the usage), nothing more: lines are
relayed as they came.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["MEDIA_TYPE", "LineSplitter", "is_final", "usage_from_line"]

MEDIA_TYPE: Final = "application/x-ndjson"
"""The Content-Type of Ollama's streams."""


class LineSplitter:
    """Cuts a byte stream into complete lines, whatever the read boundaries.

    Each line is returned as received with its ``\\n`` (a ``\\r`` before it kept), so the lines
    joined back together plus ``pending`` always equal the bytes fed. Empty lines are returned
    too: dropping them is the reader's business. The same interface as ``sse.SSESplitter``.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> bytes:
        """The bytes of the line still incomplete."""
        return bytes(self._buffer)

    @property
    def pending_size(self) -> int:
        """How many bytes of an incomplete line are held (bounded by the caller)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the lines they complete, in order."""
        end = data.rfind(b"\n")
        if end < 0:
            self._buffer += data
            return []
        if self._buffer:
            whole = bytes(self._buffer) + data[: end + 1]
            self._buffer.clear()
        else:
            whole = data[: end + 1]
        self._buffer += data[end + 1 :]
        lines = whole.split(b"\n")
        lines.pop()  # the empty remainder after the last "\n"
        return [line + b"\n" for line in lines]


class _Final(msgspec.Struct):
    done: object = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None


_FINAL: Final = msgspec.json.Decoder(_Final)


def _decoded(line: bytes) -> _Final | None:
    try:
        return _FINAL.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return None


def is_final(line: bytes) -> bool:
    """Whether ``line`` is the last one of an Ollama stream (``"done": true``)."""
    if b'"done"' not in line or b"true" not in line:
        return False
    decoded = _decoded(line)
    return decoded is not None and decoded.done is True


def usage_from_line(line: bytes) -> tuple[int, int] | None:
    """``(prompt_eval_count, eval_count)`` of an Ollama answer or final line, a missing one
    counted 0; ``None`` when it carries neither (or is not a JSON object)."""
    if b"eval_count" not in line:
        return None
    decoded = _decoded(line)
    if decoded is None or (decoded.prompt_eval_count is None and decoded.eval_count is None):
        return None
    return max(0, decoded.prompt_eval_count or 0), max(0, decoded.eval_count or 0)
