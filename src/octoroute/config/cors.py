"""``server.cors_origins``: the browser origins allowed to call the API.

A browser sends ``Origin`` as ``scheme://host[:port]``, lower-case, without a path, and the
router compares it with each entry byte for byte (one set lookup per request). So an entry is
accepted only in that exact form; a near miss (a trailing slash, a path, capitals) would never
match anything and is refused with the form it should take.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from octoroute.config.reader import Table, show
from octoroute.config.rules import control_character_problem

ANY_ORIGIN: Final = "*"
KEY: Final = "cors_origins"


def check_cors_origins(server: Table) -> tuple[str, ...] | None:
    """The origins of ``[server] cors_origins`` (default: none); ``None`` after a problem."""
    origins = server.string_list(KEY, _check)
    # Judged on the entries as written, so this is reported along with any bad entry.
    written = server.data.get(KEY)
    if (
        isinstance(written, list)
        and ANY_ORIGIN in written
        and any(entry != ANY_ORIGIN for entry in written)
    ):
        server.fail(KEY, '"*" allows every origin; remove the other entries or the "*"')
        return None
    return origins


def _check(entry: str) -> tuple[str | None, str | None]:
    """``(entry, None)`` for ``"*"`` or an origin in its exact form, else ``(None, problem)``."""
    if entry == ANY_ORIGIN:
        return entry, None
    if problem := control_character_problem(entry):
        return None, f"{problem}, got {show(entry)}"
    if _port(entry) == 0:
        return None, f"has an invalid port (must be a number from 1 to 65535), got {show(entry)}"
    canonical = canonical_origin(entry)
    if canonical == entry:
        return entry, None
    form = 'must be "*" or an origin: http(s)://host[:port], no path, lower-case'
    if canonical is None:
        return None, f"{form}, got {show(entry)}"
    return None, f"{form}, got {show(entry)}; did you mean {show(canonical)}?"


def canonical_origin(text: str) -> str | None:
    """``text`` as a browser would send it in ``Origin`` (any path, query or fragment dropped),
    or ``None`` when it names no http(s) host."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if port == 0:
        return None  # no browser page is served from port 0
    if ":" in host:
        host = f"[{host}]"
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _port(text: str) -> int | None:
    """The port written in ``text``, ``None`` when there is none or it cannot be read."""
    try:
        return urlsplit(text.strip()).port
    except ValueError:
        return None
