"""Who sent a request: the client key table built from ``[auth]``, and the paths it guards.

A presented key is hashed with SHA-256 and the digest looked up in a dict of the configured
digests. That is as safe against timing attacks as comparing every digest with
``hmac.compare_digest``, and O(1) in the number of keys: what a timing side channel could reveal
is how the lookup went for the *digest* (its hash bucket, how many leading bytes matched an
entry), and the digest of a guess is a one-way function of it. An attacker who learned that the
digest of one guess shares its first bytes with a configured key's digest cannot use that to
choose a better next guess (that would mean finding SHA-256 preimages), so the timing of the
lookup carries no information about the key. The bucket itself is chosen by Python's keyed
SipHash of the digest, a secret per process. The raw key is never compared with anything, kept,
or logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from hashlib import sha256
from typing import Final, Literal, Protocol

from octoroute.access.limits import Limits
from octoroute.access.permissions import AUTO, allowed_tiers, allows, caps, unrestricted
from octoroute.config.schema import AuthConfig, ClientKeyConfig


class Counted(Protocol):
    """A metric child the request path increments."""

    def inc(self, amount: float = 1) -> None:
        """Add ``amount``."""


class KeyMetrics(Protocol):
    """What the request path counts for a key (``observability.metrics.KeyMetrics``, bound by
    the runtime)."""

    count_request: Callable[[float], None]
    add_estimated_tokens: Callable[[float], None]

    @property
    def rejections(self) -> Mapping[str, Counted]:
        """Refusals by reason."""


KEY_HEADERS: Final = ("authorization", "x-api-key", "api-key")
"""Where a client key may come, in the order they are tried: ``Authorization: Bearer`` (OpenAI
SDKs, most clients), ``x-api-key`` (Anthropic SDKs, Claude Code) and ``api-key`` (Azure-style
clients)."""
ADMIN_PATHS: Final = ("/metrics", "/models", "/route", "/admin", "/admin/*", "/ui*")
"""The operator surfaces: an admin key is needed for them (unless ``public_paths`` lists them).
A trailing ``*`` matches any rest of the path."""
UI_SHELL_PATHS: Final = ("/ui", "/ui/", "/ui/static/*")
"""The dashboard's page and static files: served without a key, because they carry no data (the
page asks the user for an admin key and sends it with every request for data, to ``/admin/*`` and
``/route``); a browser cannot send a key when it opens a page."""
BEARER: Final = "bearer "
Refusal = Literal["missing", "invalid"]
"""Why a request was not identified: it carried no key, or none the router knows (the reasons
of ``octoroute_auth_failures_total``)."""


class ClientKey:
    """A configured key as the request path uses it: name, permissions, limits, and what can
    be worked out from them once (so a request does table lookups, not set algebra)."""

    __slots__ = (
        "admin",
        "caps",
        "config",
        "limited",
        "limits",
        "may_route",
        "metrics",
        "models",
        "name",
        "pools",
        "tiers",
        "unrestricted",
    )

    metrics: KeyMetrics
    """The key's metric series (bound by :class:`KeyTable` when it is given ``bind``)."""

    def __init__(
        self, config: ClientKeyConfig, bind: Callable[[str], KeyMetrics] | None = None
    ) -> None:
        self.config = config
        if bind is not None:
            self.metrics = bind(config.name)
        self.name = config.name
        self.admin = config.admin
        self.pools = config.tiers
        """The pools the key may be served by (``tiers``, embeddings included)."""
        self.models = config.models
        """What ``model`` may name; ``None``: anything."""
        self.limits = Limits(
            config.requests_per_minute, config.tokens_per_minute, config.max_concurrent
        )
        self.limited = self.limits.any
        """Whether any limit is counted for this key."""
        self.tiers = allowed_tiers(self.pools)
        """The tiers the key may be served by, cheapest first."""
        self.caps = caps(self.tiers)
        """Where ``auto`` goes for each tier routing may choose (``None``: nowhere)."""
        self.unrestricted = unrestricted(self.pools, self.models)
        """Whether the key may use every model of every pool."""
        self.may_route = allows(self, AUTO, None, None)
        """Whether the key may send ``auto`` (not through an alias)."""


class Paths:
    """A set of paths: exact ones and prefixes (written with a trailing ``*``). The request
    path tests ``exact`` and ``prefixes`` itself (two C-level operations, no call)."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.exact = frozenset(p for p in patterns if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def __contains__(self, path: object) -> bool:
        return path in self.exact or (
            bool(self.prefixes) and isinstance(path, str) and path.startswith(self.prefixes)
        )


ADMIN: Final = Paths(ADMIN_PATHS)
UI_SHELL: Final = Paths(UI_SHELL_PATHS)


def digest(key: str) -> bytes:
    """The SHA-256 of ``key``'s UTF-8 bytes (header text aiohttp could not decode is hashed as
    the bytes that came)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyTable:
    """The keys of one ``[auth]`` section, looked up by digest, and its public paths."""

    __slots__ = ("_by_digest", "keys", "public", "source")

    def __init__(self, auth: AuthConfig, bind: Callable[[str], KeyMetrics] | None = None) -> None:
        """``bind`` gives each key its metric series (the runtime's ``Metrics.key``)."""
        self.source = auth
        """The section this table was built from (a reload swaps the section, then the table)."""
        self.keys = {key.name: ClientKey(key, bind) for key in auth.keys}
        self._by_digest = {bytes.fromhex(key.key_sha256): self.keys[key.name] for key in auth.keys}
        self.public = Paths(auth.public_paths)

    def identify(self, headers: Mapping[str, str]) -> ClientKey | Refusal:
        """The key a request carries: the first of ``KEY_HEADERS`` that holds a known key;
        ``missing`` when none holds anything, ``invalid`` when what they hold is unknown."""
        presented = False
        for name in KEY_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            if name == "authorization":
                # startswith first: what nearly every client sends, without lower()'s copy.
                if not value.startswith("Bearer ") and value[:7].lower() != BEARER:
                    continue
                value = value[7:]
            value = value.strip()
            if not value:
                continue
            presented = True
            # digest(), inlined: this runs on every request.
            key = self._by_digest.get(sha256(value.encode("utf-8", "surrogateescape")).digest())
            if key is not None:
                return key
        return "invalid" if presented else "missing"
