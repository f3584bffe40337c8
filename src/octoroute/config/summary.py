"""A one-screen account of a loaded configuration, printed by ``octoroute check``.

It shows what the loader understood (defaults filled in, URLs normalised) so a user can confirm
the router will do what they meant. An endpoint's key is shown only as whether one is set and
which variable it came from, never its value; credentials in a ``base_url`` are masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from octoroute.config.redact import redact_url, strip_userinfo
from octoroute.config.rules import shows_env_name
from octoroute.config.schema import DEFAULT_MAX_CONNECTIONS
from octoroute.enums import POOLS, TIERS, Pool, Strategy

if TYPE_CHECKING:
    from octoroute.config.schema import ClientKeyConfig, Config, EndpointConfig

_KIB = 1024
_MIB = 1024 * 1024


def summarize(config: Config) -> str:
    """The configuration in ten lines plus one per endpoint, without a trailing newline."""
    lines = [config.source, *_settings(config), *_access(config), ""]
    endpoints = config.all_endpoints()
    name_width = max(len(endpoint.name) for endpoint in endpoints)
    url_width = max(len(redact_url(endpoint.base_url)) for endpoint in endpoints)
    for tier in TIERS:
        tier_endpoints = config.models.for_tier(tier)
        count = len(tier_endpoints)
        plural = "endpoint" if count == 1 else "endpoints"
        lines.append(f"  {tier} (timeout {_seconds(config.timeout_for(tier))}, {count} {plural})")
        lines.extend(_endpoint_line(e, name_width, url_width) for e in tier_endpoints)
    if config.embeddings:
        models = len(config.embedding_names())
        count = len(config.embeddings)
        lines.append(
            f"  embeddings (timeout {_seconds(config.timeout_for(Pool.EMBEDDINGS))}, "
            f"{models} {'model' if models == 1 else 'models'}, "
            f"{count} {'endpoint' if count == 1 else 'endpoints'})"
        )
        lines.extend(_endpoint_line(e, name_width, url_width) for e in config.embeddings)
    return "\n".join(lines)


def _settings(config: Config) -> list[str]:
    """One line for each section other than ``[models]``."""
    server, routing, health, limits = config.server, config.routing, config.health, config.limits
    if routing.strategy in (Strategy.RULE, Strategy.LEARNED):
        router = ""
    else:
        timeout = _seconds(routing.router_timeouts.for_tier(routing.router_tier))
        router = f", router tier {routing.router_tier} (timeout {timeout})"
    learned: list[str] = []
    if routing.strategy in (Strategy.LEARNED, Strategy.HYBRID):
        model = routing.model_file or "the model shipped with octoroute"
        learned.append(f"            learned model: {model}")
        if routing.strategy is Strategy.HYBRID:
            learned.append(
                "            the router model decides when the learned model's confidence is "
                f"below {routing.confidence_threshold:g}"
            )
    hosts = (
        [f"            answers only Host {', '.join(server.allowed_hosts)} (and loopback)"]
        if server.allowed_hosts
        else []
    )
    return [
        f"  server    {server.host}:{server.port}, request timeout "
        f"{_seconds(server.request_timeout_seconds)}, "
        f"max request body {_bytes(server.max_request_bytes)}",
        f"            at most {server.max_in_flight:,} requests at once, request head within "
        f"{_seconds(server.client_header_timeout_seconds)}, idle ones closed after "
        f"{_seconds(server.keepalive_idle_seconds)}",
        *hosts,
        f"  routing   strategy {routing.strategy}{router}",
        *learned,
        f"            default tier {routing.default_tier}, "
        f"default importance {routing.default_importance}",
        f"  health    probe every {_seconds(health.interval_seconds)} (timeout "
        f"{_seconds(health.probe_timeout_seconds)}), skipped after "
        f"{health.failure_threshold} consecutive failures",
        f"            ejected after {health.eject_after_failures} failed requests in a row for "
        f"{_seconds(health.eject_base_seconds)} x n (at most {_seconds(health.eject_max_seconds)})",
        f"  limits    {limits.max_messages:,} messages, {limits.max_content_chars:,} "
        "characters of content per request",
        f"            upstream answers up to {_bytes(limits.max_response_bytes)}, stream events "
        f"up to {_bytes(limits.max_event_bytes)}"
        + (
            ""
            if config.timeouts.stream_total_seconds is None
            else f", streams cut after {_seconds(config.timeouts.stream_total_seconds)}"
        ),
        f"  logging   level {config.observability.log_level}, "
        f"format {config.observability.log_format}",
    ]


def _access(config: Config) -> list[str]:
    """``[auth]`` (one line per key: what it may use and its limits, never the key) and
    ``[state]``; nothing when neither is configured."""
    lines = []
    auth = config.auth
    if auth is not None:
        count = len(auth.keys)
        public = ", ".join(auth.public_paths) or "nothing"
        lines.append(
            f"  auth      {count} client {'key' if count == 1 else 'keys'}; "
            f"served without a key: {public}"
        )
        width = max(len(key.name) for key in auth.keys)
        lines.extend(f"              {key.name:<{width}}  {_key_rights(key)}" for key in auth.keys)
    if config.state.redis_url is not None:
        lines.append(f"  state     limits shared through {redact_url(config.state.redis_url)}")
    return lines


def _key_rights(key: ClientKeyConfig) -> str:
    """What a client key may use, and how much."""
    rights = ["admin"] if key.admin else []
    tiers = [pool.value for pool in POOLS if pool in key.tiers]
    rights.append("every tier" if len(tiers) == len(POOLS) else f"tiers {', '.join(tiers)}")
    if key.models is not None:
        rights.append(f"models {', '.join(sorted(key.models))}")
    limits = [
        f"{key.requests_per_minute:,} requests a minute" if key.requests_per_minute else "",
        f"{key.tokens_per_minute:,} tokens a minute" if key.tokens_per_minute else "",
        f"{key.max_concurrent:,} at once" if key.max_concurrent else "",
    ]
    rights.append(", ".join(limit for limit in limits if limit) or "no limits")
    return "; ".join(rights)


def _endpoint_line(endpoint: EndpointConfig, name_width: int, url_width: int) -> str:
    """One endpoint: position, name, URL, how it is selected and whether a key is sent."""
    return (
        f"    [{endpoint.index}] {endpoint.name:<{name_width}}  "
        f"{redact_url(endpoint.base_url):<{url_width}}"
        f"  priority {endpoint.priority}, weight {endpoint.weight:g}, {_key_status(endpoint)}"
        f"{_connection_notes(endpoint)}"
    )


def _connection_notes(endpoint: EndpointConfig) -> str:
    """What differs from a plain connection: a connection cap other than the default, and TLS
    settings (a private CA, checks turned off, a client certificate)."""
    notes = []
    if endpoint.max_connections != DEFAULT_MAX_CONNECTIONS:
        notes.append(f"max {endpoint.max_connections} connections")
    if endpoint.tls_ca_file is not None:
        notes.append(f"CA {endpoint.tls_ca_file}")
    if not endpoint.tls_verify:
        notes.append("TLS NOT VERIFIED")
    if endpoint.tls_client_cert is not None:
        notes.append("client certificate")
    return "".join(f", {note}" for note in notes)


def _key_status(endpoint: EndpointConfig) -> str:
    """Whether a key is sent, and from which variable: enough to debug a 401, nothing to leak."""
    if endpoint.api_key is None or endpoint.api_key_env is None:
        # The upstream client sends a base_url's user:password as basic auth when no key is set.
        if strip_userinfo(endpoint.base_url) != endpoint.base_url:
            return "basic auth from base_url"
        return "no api key"
    if shows_env_name(endpoint.api_key_env):
        return f"api key from ${endpoint.api_key_env}"
    return "api key set"


def _seconds(value: float) -> str:
    """``30 s``, ``0.5 s``: seconds without a pointless ``.0``."""
    return f"{value:g} s"


def _bytes(value: int) -> str:
    """A byte count in the largest binary unit that divides it exactly."""
    if value % _MIB == 0:
        return f"{value // _MIB} MiB"
    if value % _KIB == 0:
        return f"{value // _KIB} KiB"
    return f"{value:,} bytes"
