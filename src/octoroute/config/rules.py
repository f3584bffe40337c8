"""Checks on single string values (host, base URL, environment variable name, log level).

Each function returns the problem in words, or ``None`` when the value is fine, so the loader
can attach the key path. They are pure and know nothing about TOML.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from octoroute.config.reader import Table, quoted_list, show
from octoroute.config.redact import redact_url

if TYPE_CHECKING:
    from collections.abc import Mapping

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
"""The levels ``observability.log_level`` accepts, as stored in ``ObservabilityConfig``."""

_LOG_LEVEL_ALIASES = {"trace": "debug", "warn": "warning"}
"""Spellings from v1's ``RUST_LOG`` vocabulary, kept working so v1 configs load unchanged."""

_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\.?$){_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_ENV_NAME = 64


def control_character_problem(value: str) -> str | None:
    """Whether ``value`` holds a control character (NUL, ESC, DEL...), named by its code point.

    Names and URLs end up in HTTP headers, request lines, log lines and metric labels, where a
    control character is refused by the other side or splits the line; TOML lets one in through
    an escape such as ``\\u0000``, so it is caught here rather than at the first request.
    """
    found = next((char for char in value if unicodedata.category(char) == "Cc"), None)
    if found is None:
        return None
    return (
        f"must not contain control characters (found U+{ord(found):04X} at position "
        f"{value.index(found) + 1})"
    )


def normalize_log_level(value: str) -> str | None:
    """The canonical level for ``value`` (any case; ``trace``/``warn`` accepted), else ``None``."""
    level = value.strip().lower()
    level = _LOG_LEVEL_ALIASES.get(level, level)
    return level if level in LOG_LEVELS else None


def log_level_problem(value: str) -> str:
    """Why ``value`` is not a log level; v1 users may have written a ``RUST_LOG`` filter."""
    message = f"must be one of {quoted_list(LOG_LEVELS)}, got {show(value)}"
    if "=" in value or "," in value:
        return f"{message}; give one level, not a RUST_LOG-style filter"
    return message


def host_problem(host: str) -> str | None:
    """Whether ``host`` can name a listening address: an IP literal or a host name, nothing more."""
    shown = show(host)
    if not host.strip():
        return (
            'must not be empty; use "0.0.0.0" for every interface or "127.0.0.1" for this machine'
        )
    if "://" in host or "/" in host:
        return f"must be a host name or IP address, not a URL, got {shown}"
    if any(char.isspace() for char in host):
        return f"must not contain spaces, got {shown}"
    if host.startswith("[") and host.endswith("]"):
        return f"must be written without brackets, got {shown}; did you mean {show(host[1:-1])}?"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    if ":" in host:
        return f"must not include a port (set server.port instead), got {shown}"
    if re.fullmatch(r"[0-9.]+", host):
        return f"is not a valid IPv4 address, got {shown}"
    if not _HOST_NAME.fullmatch(host):
        return f"is not a valid host name or IP address, got {shown}"
    return None


def normalize_base_url(url: str) -> str:
    """``url`` with the one tolerated trailing slash after ``/v1`` removed."""
    return url[:-1] if url.endswith("/v1/") else url


def base_url_problem(url: str) -> str | None:
    """Whether ``url`` is the root of an OpenAI-compatible API: ``http(s)://host[:port]/.../v1``.

    Host and port are checked now because a placeholder such as ``http://server:port/v1`` would
    otherwise load fine and fail on the first request.
    """
    # A rejected URL is echoed back, so any password in it is masked first.
    shown = show(redact_url(url))
    if not url.startswith(("http://", "https://")):
        return f"must start with http:// or https://, got {shown}"
    if any(char.isspace() for char in url):
        return f"must not contain spaces, got {shown}"
    if problem := control_character_problem(url):
        return f"{problem}, got {shown}"
    try:
        # urlsplit refuses an unclosed "[" or a bracketed host that is no IPv6 address.
        parts = urlsplit(normalize_base_url(url))
    except ValueError:
        return (
            "has an invalid host: an IPv6 address must be complete and in brackets, e.g. "
            f"http://[::1]:8000/v1, got {shown}"
        )
    if not parts.hostname:
        return f"has no host name, got {shown}"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        # Port 0 means "any free port" to a listener; no server can be reached on it.
        return f"has an invalid port (must be a number from 1 to 65535), got {shown}"
    if parts.query or parts.fragment:
        return f"must not have a query string or fragment, got {shown}"
    return _v1_path_problem(parts.scheme, parts.netloc, parts.path, shown)


def _v1_path_problem(scheme: str, netloc: str, path: str, shown: str) -> str | None:
    """Whether the path ends with ``/v1``, with a corrected URL when the mistake is a common one."""
    if path.endswith("/v1"):
        return None
    message = f"must end with /v1 (the root of the OpenAI-compatible API), got {shown}"
    if "/v1/" in path:
        fixed = f"{scheme}://{netloc}{path[: path.index('/v1/') + 3]}"
        return f"{message}; did you mean {show(redact_url(fixed))}?"
    fixed = f"{scheme}://{netloc}{path.rstrip('/')}/v1"
    return f"{message}; did you mean {show(redact_url(fixed))}?"


def env_name_problem(name: str) -> str | None:
    """Whether ``name`` can be an environment variable name. The name itself is never echoed:
    a user who pasted the key here instead of a variable name must not see it in a log."""
    if len(name) <= _MAX_ENV_NAME and _ENV_NAME.fullmatch(name):
        return None
    return (
        "must be the name of an environment variable (letters, digits and _, not starting with "
        "a digit), not the key itself; the value is not shown"
    )


def shows_env_name(name: str) -> bool:
    """Whether a message may quote ``name``: yes for names like ``VLLM_KEY`` or ``vllm_key``.

    A name with digits but no underscore (``a9f3c2...``) could be a key pasted in the wrong
    place; messages then refer to it without quoting it.
    """
    return "_" in name or not any(char.isdigit() for char in name)


def variable_wording(name: str) -> str:
    """How a message names the environment variable ``name`` (without quoting a name that may
    be a key pasted in the wrong place: see :func:`shows_env_name`)."""
    return (
        f"environment variable {name}"
        if shows_env_name(name)
        else "the environment variable it names"
    )


def env_value(table: Table, key: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The environment variable that ``key`` of ``table`` names, and its value (stripped).

    ``None`` when the key is absent (nothing recorded) or after a problem (recorded: not a
    variable name, not set, empty); callers tell the two apart with ``key in table.data``.
    The environment itself is the caller's ``environ``: only ``config/load.py`` reads it.
    """
    name = table.string(key, None)
    if name is None:
        return None
    if problem := env_name_problem(name):
        table.fail(key, problem)
        return None
    value = environ.get(name)
    if value is None or not value.strip():
        table.fail(key, f"{variable_wording(name)} is {'not set' if value is None else 'empty'}")
        return None
    return name, value.strip()
