"""Credentials in an endpoint URL, kept out of everything shown to people.

A ``base_url`` may carry HTTP basic credentials (``http://user:password@host:port/v1``). They are
sent upstream, but ``GET /models``, the ``octoroute check`` summary and messages show the URL
through ``redact_url``; a request line needs it without them, which ``strip_userinfo`` gives,
and the upstream client reads the credentials themselves with ``userinfo``.
"""

from __future__ import annotations

from typing import Final

MASK: Final = "***"
"""What a password (or a user part that may itself be a token) is shown as."""


def _split(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, userinfo, host-and-rest)``, or ``None`` when ``url`` has no userinfo.

    The authority ends at the first ``/``, ``?`` or ``#`` (as ``urllib.parse.urlsplit`` reads
    it, which is what the config loader validated), and the userinfo at its last ``@``, so a
    password with a raw ``@`` is still cut off whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not at:
        return None
    return scheme + sep, userinfo, host + rest[end:]


def redact_url(url: str) -> str:
    """``url`` safe to show: ``http://user:***@host:port/v1``, never the password.

    A userinfo without a password (``http://token@host/v1``) is often a token itself, so it is
    masked whole (``http://***@host/v1``). Scheme, host, port and path are kept as written; a
    URL without credentials is returned unchanged.
    """
    parts = _split(url)
    if parts is None:
        return url
    prefix, userinfo, rest = parts
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:{MASK}" if colon and user else MASK
    return f"{prefix}{shown}@{rest}"


def strip_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` at all, for a request line or a log label."""
    parts = _split(url)
    return url if parts is None else parts[0] + parts[2]


def userinfo(url: str) -> str:
    """The ``user:password`` part of ``url`` as written (still percent-encoded), ``""`` if none."""
    parts = _split(url)
    return "" if parts is None else parts[1]
