"""Hosts that cannot be a real server: the template's placeholders and the example domains.

``octoroute check`` reports them: the untouched template is a valid file (every value has the
right form) that can serve nothing, and a valid file is exactly what ``check`` would otherwise
pass. A placeholder is one of :data:`TEMPLATE_HOSTS` (the names ``octoroute config`` writes) or a
name under a domain reserved for examples by RFC 2606 and RFC 6761 (``example.com``, ``.net``,
``.org``, ``.example``, ``.invalid``), which never resolves to anyone's server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from octoroute.config.reader import show

if TYPE_CHECKING:
    from octoroute.config.schema import Config

TEMPLATE_HOSTS: Final = frozenset({"your-server", "another-server"})
"""The host names of the template's ``base_url`` placeholders (a test holds the template to it)."""
EXAMPLE_DOMAINS: Final = ("example.com", "example.net", "example.org", "example", "invalid")
"""Reserved for documentation; a name equal to or under one of these is never a real host."""


def is_placeholder(host: str) -> bool:
    """Whether ``host`` (a host name, any case, optional trailing dot) is a placeholder."""
    name = host.lower().removesuffix(".")
    if name in TEMPLATE_HOSTS:
        return True
    return any(name == domain or name.endswith("." + domain) for domain in EXAMPLE_DOMAINS)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def placeholder_problems(config: Config) -> list[str]:
    """One line per value that still names a placeholder host: every endpoint's ``base_url``
    and every ``server.cors_origins`` entry, each prefixed by its key path."""
    problems = []
    for endpoint in config.all_endpoints():
        host = _host(endpoint.base_url)
        if host is not None and is_placeholder(host):
            problems.append(
                f"{endpoint.key_path}.base_url: {show(host)} is a placeholder, not a server; "
                "put the host name or address of the machine that serves "
                f"{show(endpoint.name)} here"
            )
    for index, origin in enumerate(config.server.cors_origins):
        host = _host(origin)
        if host is not None and is_placeholder(host):
            problems.append(
                f"server.cors_origins[{index}]: {show(origin)} is an example origin; list the "
                "origins of your own browser apps, or remove cors_origins"
            )
    return problems
