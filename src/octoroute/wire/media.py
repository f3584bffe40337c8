"""The Content-Type check for JSON request bodies.

Accepted: ``application/json`` and any ``application/<something>+json``, with or without
parameters, in any case, as v1 (and axum) accepted them. Anything else, a missing header
included, is a 415: sending a form or plain text to a JSON API is a client bug worth naming.
"""

from __future__ import annotations

from octoroute.errors import UnsupportedMediaType

__all__ = ["check_json_content_type"]


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
