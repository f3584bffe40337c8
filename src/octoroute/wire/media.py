"""The Content-Type and Content-Encoding checks for JSON request bodies.

Accepted: ``application/json`` and any ``application/<something>+json``, with or without
parameters, in any case, as v1 (and axum) accepted them. Anything else, a missing header
included, is a 415: sending a form or plain text to a JSON API is a client bug worth naming.

A body is decoded from ``gzip`` or ``deflate`` (aiohttp does it as it arrives); any other
content coding, or a list of them, is a 415 with ``Accept-Encoding: gzip, deflate`` (RFC 7694):
read as it came, a ``br`` or ``gzip, br`` body would be judged as bytes it is not.
"""

from __future__ import annotations

from typing import Final

from octoroute.errors import UnsupportedMediaType

__all__ = ["check_content_encoding", "check_json_content_type", "unsupported_encoding"]

DECODED_ENCODINGS: Final = frozenset({"", "identity", "gzip", "deflate"})
"""Content codings a request body may carry (case ignored): those aiohttp's parser decodes."""
ACCEPTED_ENCODINGS: Final = "gzip, deflate"


def unsupported_encoding(encoding: str) -> UnsupportedMediaType:
    """The 415 for a request body in a content coding this router does not decode."""
    error = UnsupportedMediaType(
        f"The request body's Content-Encoding {encoding.strip()[:60]!r} is not one this router "
        f"decodes ({ACCEPTED_ENCODINGS}); send the body uncompressed or gzip-compressed"
    )
    error.headers = (("Accept-Encoding", ACCEPTED_ENCODINGS),)
    return error


def check_content_encoding(encoding: str | None) -> None:
    """Return if ``encoding`` (a raw ``Content-Encoding`` value, or ``None``) is one the body
    was decoded from, or none; raise the 415 of :func:`unsupported_encoding` otherwise."""
    if encoding is not None and encoding.strip().lower() not in DECODED_ENCODINGS:
        raise unsupported_encoding(encoding)


def check_json_content_type(content_type: str | None) -> None:
    """Return if ``content_type`` (a raw header value) declares JSON; raise otherwise.

    Raises ``UnsupportedMediaType`` with a message telling the client which header to send.
    """
    # Nearly every client sends exactly this: answer it with one comparison.
    if content_type == "application/json":
        return
    if content_type is not None:
        media_type = content_type.partition(";")[0].strip().lower()
        if media_type == "application/json":
            return
        if (
            media_type.startswith("application/")
            and media_type.endswith("+json")
            and len(media_type) > len("application/+json")
        ):
            return
    shown = "no Content-Type" if not content_type else f"Content-Type {content_type[:100]!r}"
    raise UnsupportedMediaType(
        f"Request body must be JSON, but the request has {shown}; "
        "send it with `Content-Type: application/json`"
    )
