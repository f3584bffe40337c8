"""What an upstream's response headers ask of the reader: content decoding and ``Retry-After``.

Every request says ``Accept-Encoding: identity``, yet some servers (or proxies in front of them)
compress anyway. ``BodyDecoder`` undoes gzip and deflate incrementally, with the output of each
call bounded: a few KiB of compressed zeros can expand to gigabytes, so the decoded size, not
the bytes on the wire, is what ``limits.max_response_bytes`` counts. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import math
import time
import zlib
from email.utils import parsedate_to_datetime
from typing import Final

DECODED_CHUNK_BYTES: Final = 256 * 1024
"""The most one decoding step produces; the rest of its input waits for the next step."""
SUPPORTED_ENCODINGS: Final = frozenset({"gzip", "x-gzip", "deflate"})
"""``Content-Encoding`` values decoded here; ``identity`` (or none) needs no decoding."""
MAX_RETRY_AFTER_SECONDS: Final = 60.0
"""A longer ``Retry-After`` is capped: the instance is retried after a minute at the latest."""


class BodyDecoder:
    """Incremental gzip or deflate decoding of one response body."""

    __slots__ = ("_deflate", "_fresh", "_inflater", "_tail")

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        # gzip: 16 + window bits; deflate: the zlib wrapper RFC 9110 asks for (raw tried below).
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | (0 if self._deflate else 16))
        self._tail = b""
        self._fresh = True

    @property
    def pending(self) -> bool:
        """Input is left over from the last step because its output hit the bound."""
        return bool(self._tail)

    def decode(self, data: bytes) -> bytes:
        """Decode ``data`` after any left-over input; at most ``DECODED_CHUNK_BYTES`` out.

        May return ``b""`` when the input so far decodes to nothing yet. Raises ``zlib.error``
        for input that is not in the declared encoding.
        """
        if self._tail:
            data = self._tail + data
        try:
            out = self._inflater.decompress(data, DECODED_CHUNK_BYTES)
        except zlib.error:
            if not (self._deflate and self._fresh):
                raise
            # Some servers send raw deflate without the zlib wrapper; browsers accept both.
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._inflater.decompress(data, DECODED_CHUNK_BYTES)
        self._fresh = False
        self._tail = self._inflater.unconsumed_tail
        return out

    def finish(self) -> None:
        """Check the body ended where its compressed data did; raises ``zlib.error`` if cut."""
        if not self._fresh and not self._inflater.eof:
            raise zlib.error("compressed body cut short")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date).

    Capped at ``MAX_RETRY_AFTER_SECONDS``; ``None`` for no header, a negative or past value, or
    anything unreadable. ``now`` is the wall-clock time an HTTP-date is measured from.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None  # RFC 9110 dates are GMT; a zone-less one is not one of them
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)
