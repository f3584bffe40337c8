"""``server.cors_origins``: the browser origins allowed to call the API.

A browser sends ``Origin`` as ``scheme://host[:port]``, lower-case, without a path, and the
router compares it with each entry byte for byte (one set lookup per request). So an entry is
accepted only in that exact form; a near miss (a trailing slash, a path, capitals) would never
match anything and is refused with the form it should take.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from octoroute.config.reader import Table, describe, show

ANY_ORIGIN: Final = "*"
KEY: Final = "cors_origins"


def check_cors_origins(server: Table) -> tuple[str, ...] | None:
    """The origins of ``[server] cors_origins`` (default: none); ``None`` after a problem."""
    value = server.raw(KEY, [])
    if not isinstance(value, list):
        server.fail(KEY, f"must be an array of strings, got {describe(value)}")
        return None
    origins: list[str] = []
    ok = True
    for index, entry in enumerate(value):
        problem = _problem(entry, origins)
        if problem is not None:
            server.problems.add(f"{server.key(KEY)}[{index}]", problem)
            ok = False
        elif isinstance(entry, str):
            origins.append(entry)
    if ok and ANY_ORIGIN in origins and len(origins) > 1:
        server.fail(KEY, '"*" allows every origin; remove the other entries or the "*"')
        ok = False
    return tuple(origins) if ok else None


def _problem(entry: object, seen: list[str]) -> str | None:
    """What is wrong with one entry, or ``None``."""
    if not isinstance(entry, str):
        return f"must be a string, got {describe(entry)}"
    if entry in seen:
        return f"{show(entry)} is listed twice"
    if entry == ANY_ORIGIN:
        return None
    canonical = canonical_origin(entry)
    if canonical == entry:
        return None
    form = 'must be "*" or an origin: http(s)://host[:port], no path, lower-case'
    if canonical is None:
        return f"{form}, got {show(entry)}"
    return f"{form}, got {show(entry)}; did you mean {show(canonical)}?"


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
    if ":" in host:
        host = f"[{host}]"
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")
