"""What a reload changes: the settings that differ, the endpoints kept, added and removed, and
what only a restart can change.

Pure: two validated configurations in, key paths and matches out (the TLS files' digest, the
only thing read from disk, is passed in). ``octoroute.reload`` reports what this finds and
``octoroute.runtime`` applies it.

**An endpoint's identity** is what its connection is made of: its pool (tier or
``embeddings``), ``name`` (sent upstream as ``model``), ``base_url`` (credentials included), the
API key's value (not the variable's name), the TLS keys and the digest of the files they name,
and ``max_connections``. A reloaded endpoint with the identity of a running one *is* that one:
it keeps its health, ejection, attempts in flight, slots and pooled connections, and takes the
rest of its new settings (``priority``, ``weight``, ``max_concurrent``, ``context_window``,
``max_tokens``, ``temperature``, ``kind``, ``native``, ``compat``, its place in the file). Any
other change makes it a new instance: the old one drains, the new one is probed at once.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import msgspec

if TYPE_CHECKING:
    from octoroute.config.schema import Alias, Config, EndpointConfig

RESTART_KEYS: Final = (
    "server.host",
    "server.port",
    "server.workers",
    "server.max_request_bytes",
    "server.client_header_timeout_seconds",
    "server.keepalive_idle_seconds",
    "server.cors_origins",
    "observability.log_level",
    "observability.log_format",
    "state.redis_url",
    "state.password_env",
)
"""Settings a running process cannot change: the listening socket and the number of processes,
what the HTTP server, the log output and the shared-state client were built with at start-up. A reload that changes one
applies everything else and reports these as needing a restart; until then the process keeps
running with the old values."""

_ENDPOINT_SECTIONS: Final = frozenset({"models", "embeddings"})
"""Reported per endpoint (kept, added, removed, and each kept one's changed keys)."""
_NOT_SETTINGS: Final = frozenset({"source", "digest"})
_IDENTITY_SKIPS: Final = frozenset({"pool", "index"})
"""An endpoint's pool is in its identity and its place in the file is not a setting."""

Identity = tuple[Hashable, ...]
T = TypeVar("T")


def endpoint_identity(endpoint: EndpointConfig, tls_files: bytes = b"") -> Identity:
    """What makes a reloaded endpoint the same instance as a running one (see the module);
    ``tls_files`` is the digest of the TLS files it names (``upstream.tls.tls_files_digest``)."""
    return (
        endpoint.pool,
        endpoint.name,
        endpoint.base_url,
        endpoint.api_key,
        endpoint.tls_ca_file,
        endpoint.tls_verify,
        endpoint.tls_client_cert,
        endpoint.tls_client_key,
        tls_files,
        endpoint.max_connections,
    )


@dataclass
class Matching(Generic[T]):
    """A reloaded fleet against the running one: which running instances (``T``) go on with
    which new configuration, which configurations are new, and which instances are gone."""

    kept: list[tuple[T, EndpointConfig]] = field(default_factory=list)
    added: list[EndpointConfig] = field(default_factory=list)
    removed: list[T] = field(default_factory=list)


def match_endpoints(
    running: Iterable[tuple[Identity, T]], wanted: Iterable[tuple[Identity, EndpointConfig]]
) -> Matching[T]:
    """Pair each wanted endpoint with a running instance of the same identity, in file order
    (two identical entries pair with two instances, first with first)."""
    pending: dict[Identity, deque[T]] = {}
    for identity, instance in running:
        pending.setdefault(identity, deque()).append(instance)
    matching: Matching[T] = Matching()
    for identity, endpoint in wanted:
        same = pending.get(identity)
        if same:
            matching.kept.append((same.popleft(), endpoint))
        else:
            matching.added.append(endpoint)
    matching.removed = [instance for left in pending.values() for instance in left]
    return matching


def endpoint_changes(old: EndpointConfig, new: EndpointConfig) -> tuple[str, ...]:
    """The settings of a kept endpoint that changed, as key paths under its new place
    (``models.fast[1].weight``)."""
    return tuple(
        f"{new.key_path}.{name}"
        for name in new.__struct_fields__
        if name not in _IDENTITY_SKIPS and getattr(old, name) != getattr(new, name)
    )


def changed_keys(old: Config, new: Config) -> tuple[str, ...]:
    """Every setting outside the endpoints that differs, as a key path: ``routing.default_tier``,
    ``routing.router_timeouts.fast``, ``aliases."gpt-4*"``; a section that appeared or went
    away is its own name. Values are never shown (some are secrets)."""
    found: list[str] = []
    for name in old.__struct_fields__:
        if name in _ENDPOINT_SECTIONS or name in _NOT_SETTINGS:
            continue
        before, after = getattr(old, name), getattr(new, name)
        if name == "aliases":
            found += _alias_changes(before, after)
        else:
            _walk(name, before, after, found)
    return tuple(found)


def _walk(path: str, old: Any, new: Any, found: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, msgspec.Struct) and type(old) is type(new):
        for name in old.__struct_fields__:
            _walk(f"{path}.{name}", getattr(old, name), getattr(new, name), found)
        return
    found.append(path)


def _alias_changes(old: tuple[Alias, ...], new: tuple[Alias, ...]) -> list[str]:
    """The aliases added, removed or pointed elsewhere (or moved among the patterns, whose
    order decides which matches), in the new file's order then the removed ones."""
    before = {alias.name: alias for alias in old}
    after = {alias.name: alias for alias in new}
    patterns_before = [alias.name for alias in old if alias.pattern]
    patterns_after = [alias.name for alias in new if alias.pattern]
    changed = [
        name
        for name, alias in after.items()
        if before.get(name) != alias
        or (alias.pattern and patterns_before.index(name) != patterns_after.index(name))
    ]
    changed += [name for name in before if name not in after]
    # Quoted as the loader's messages quote them (``config.aliases``).
    return [f"aliases.{json.dumps(name, ensure_ascii=False)}" for name in changed]


def _get(config: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def restart_needed(running: Config, new: Config) -> tuple[str, ...]:
    """The :data:`RESTART_KEYS` whose value in ``new`` is not the one the process runs with."""
    return tuple(key for key in RESTART_KEYS if _get(running, key) != _get(new, key))


def keep_running(new: Config, running: Config) -> Config:
    """``new`` with the :data:`RESTART_KEYS` values of ``running``: what the process can apply
    now, and what ``runtime.config`` then truthfully says it runs with."""
    sections: dict[str, dict[str, Any]] = {}
    for key in restart_needed(running, new):
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = _get(running, key)
    if not sections:
        return new
    changes = {
        section: msgspec.structs.replace(getattr(new, section), **values)
        for section, values in sections.items()
    }
    return msgspec.structs.replace(new, **changes)
