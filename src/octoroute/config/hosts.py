"""``server.allowed_hosts``: the names the router answers to, checked against each request's
``Host`` header, so a web page cannot reach it through DNS rebinding.

A rebinding attack points a name the attacker owns (``evil.example``) at the router's address;
the victim's browser then sends the attacker's page's requests to the router with
``Host: evil.example``. A router that answers only the names it is really reached by refuses
them. The list is not authentication: any program that is not a browser can send any ``Host``.

An entry is one of:

* a host name or IP address, any port: ``router.lan``, ``192.168.1.10``, ``[fd00::1]``;
* the same with a port, that port only: ``router.lan:3000``, ``[fd00::1]:3000``;
* ``*.`` and a domain, any name under it (not the domain itself): ``*.lan``,
  ``*.lan:3000``.

Names are compared without case and without a trailing dot. Loopback names (``localhost``,
``127.0.0.1`` and the rest of ``127.0.0.0/8``, ``[::1]``, and the IPv4-mapped forms of
``127.0.0.0/8`` such as ``[::ffff:127.0.0.1]``) are always accepted, listed or not: no
DNS answer can make a browser send them for another site, and health checks on the machine
itself (a container's, a proxy's) use them. A ``Host`` without a port matches only entries
without one (browsers leave out the default port, 80 or 443). Empty or absent: no check.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Final, NamedTuple

from octoroute.config.reader import show

if TYPE_CHECKING:
    from octoroute.config.reader import Table

KEY: Final = "allowed_hosts"
WILDCARD: Final = "*."
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
"""The names that always mean this machine, known without parsing (any loopback IP address
does too)."""
REMEMBERED_HOSTS: Final = 256
"""``Host`` values whose verdict an allowlist keeps; past that it starts over, so a client
sending a new ``Host`` each time costs the full check, never memory."""

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_FORM = (
    'must be a host name or IP address, optionally with ":port", or "*." and a domain '
    '(e.g. "router.lan", "router.lan:3000", "*.lan")'
)


class HostEntry(NamedTuple):
    """One allowed host, parsed: ``name`` lower-case (an IPv6 address without brackets; for a
    wildcard, the domain with its leading dot, ``.lan``), ``port`` ``None`` for any."""

    name: str
    port: int | None
    wildcard: bool


def check_allowed_hosts(server: Table) -> tuple[str, ...] | None:
    """The entries of ``[server] allowed_hosts`` in canonical form (default: none, no check);
    ``None`` after a problem."""
    return server.string_list(KEY, _check)


def _check(item: str) -> tuple[str | None, str | None]:
    """``(canonical entry, None)``, or ``(None, problem)``."""
    text = item.strip()
    if text == "*":
        return None, f"{show(item)} would allow every host; remove allowed_hosts instead"
    if "://" in text or "/" in text or "@" in text:
        return None, f"{_FORM}, not a URL, got {show(item)}"
    entry = parse_entry(text)
    if entry is None:
        return None, f"{_FORM}, got {show(item)}"
    return render(entry), None


def parse_entry(text: str) -> HostEntry | None:
    """An ``allowed_hosts`` entry; ``None`` when it is not one."""
    wildcard = text.startswith(WILDCARD)
    address = split_host(text[len(WILDCARD) :] if wildcard else text)
    if address is None:
        return None
    name, port = address
    if not name or (port is not None and not 1 <= port <= 65535):
        return None
    if _ip(name) is None and not _NAME.fullmatch(name):
        return None
    if wildcard:
        if _ip(name) is not None:
            return None  # "*.10.0.0.1" names nothing
        name = "." + name
    return HostEntry(name, port, wildcard)


def render(entry: HostEntry) -> str:
    """An entry as ``check`` shows it and the loader stores it: lower-case, IPv6 bracketed."""
    name = entry.name
    if entry.wildcard:
        name = "*" + name
    elif ":" in name:
        name = f"[{name}]"
    return name if entry.port is None else f"{name}:{entry.port}"


def split_host(value: str) -> tuple[str, int | None] | None:
    """``Host``-header syntax (``name``, ``name:port``, ``[v6]``, ``[v6]:port``, or a bare IPv6
    address) as a lower-case name without brackets or trailing dot, and the port; ``None`` when
    it is malformed."""
    value = value.strip().lower()
    port_text = ""
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            return None
        if _ip(name) is None or ":" not in name:
            return None
    elif value.count(":") > 1:
        name = value  # an IPv6 address written without brackets (an entry, never a header)
        if _ip(name) is None:
            return None
    else:
        name, colon, port_text = value.partition(":")
        if colon and not port_text:
            return None
    if port_text and not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
        return None
    name = name.removesuffix(".")
    return name, int(port_text) if port_text else None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class HostAllowlist:
    """The parsed ``allowed_hosts``, answering "may a request with this ``Host`` be served?":
    a dict lookup for a ``Host`` seen before (about 0.2 µs), else one or two set lookups and a
    suffix test per wildcard entry."""

    __slots__ = ("_exact", "_verdicts", "_wildcards")

    def __init__(self, entries: tuple[str, ...]) -> None:
        parsed = [parse_entry(entry) for entry in entries]
        self._exact = frozenset(
            (entry.name, entry.port) for entry in parsed if entry and not entry.wildcard
        )
        self._wildcards = tuple(
            (entry.name, entry.port) for entry in parsed if entry and entry.wildcard
        )
        self._verdicts: dict[str, bool] = {}

    def allows(self, host_header: str | None) -> bool:
        """Whether ``host_header`` (the request's ``Host``, ``None`` when absent) is allowed.

        Clients send the same few ``Host`` values again and again, so each verdict is kept."""
        if host_header is None:
            return False
        verdict = self._verdicts.get(host_header)
        if verdict is None:
            if len(self._verdicts) >= REMEMBERED_HOSTS:
                self._verdicts.clear()
            verdict = self._verdicts[host_header] = self._check(host_header)
        return verdict

    def _check(self, host_header: str) -> bool:
        address = split_host(host_header)
        if address is None:
            return False
        name, port = address
        if (name, None) in self._exact or (port is not None and (name, port) in self._exact):
            return True
        for suffix, allowed in self._wildcards:
            # A label of its own before the domain: "gpu.lan", never ".lan" nor "x..lan".
            if name.endswith(suffix) and (allowed is None or allowed == port):
                label = name[: -len(suffix)]
                if label and not label.endswith(".") and not label.startswith("."):
                    return True
        return is_loopback(name)


def is_loopback(name: str) -> bool:
    """Whether ``name`` (lower-case, no brackets) can only mean this machine."""
    if name in LOOPBACK_NAMES:
        return True
    if not name or not (name[0].isdigit() or ":" in name):
        return False  # not an IP address: spare ip_address() its exception
    address = _ip(name)
    return address is not None and loopback_address(address)


def loopback_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is a loopback address, an IPv4-mapped IPv6 one included
    (``::ffff:127.0.0.1`` reaches ``127.0.0.1``, and Python before 3.13 does not call it
    loopback)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
