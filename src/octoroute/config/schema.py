"""The validated, immutable configuration: what every other module receives.

Structs here are frozen and carry no validation of their own; ``octoroute.config.load`` builds
them only after every rule has passed, so holding a ``Config`` means holding a valid one.
"""

from __future__ import annotations

from typing import Final

import msgspec

from octoroute.enums import (
    POOLS,
    TIERS,
    Importance,
    Kind,
    LogFormat,
    Overflow,
    Placement,
    Pool,
    Strategy,
    Tier,
)


class Secret:
    """A credential that never shows itself in ``repr``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The raw value, for the one place that builds the upstream ``Authorization`` header."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


DEFAULT_MAX_CONNECTIONS: Final = 100
"""Connections to one instance at once, unless its ``max_connections`` says otherwise."""

DEFAULT_STREAM_KEEPALIVE_SECONDS: Final = 15.0
"""Quiet time on a stream after which the router writes a keep-alive, unless
``server.stream_keepalive_seconds`` says otherwise."""


class EndpointConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One OpenAI-compatible upstream serving one model.

    ``name`` is the model id sent upstream as ``model``. Two endpoints may share a name within a
    pool (replicas on different hosts); they remain two endpoints with their own health.
    ``base_url`` is stored without a trailing slash and always ends in ``/v1``.

    ``pool`` is a tier for ``[[models.<tier>]]`` endpoints and ``embeddings`` for
    ``[[embeddings]]`` ones: one struct for both, because health, selection, ejection, limits,
    TLS and the upstream client treat them alike; only the code that routes text reads tiers.
    """

    pool: Pool
    index: int
    """Position within its pool in the file, so messages and ``/models`` can point at it."""
    name: str
    base_url: str
    max_tokens: int | None = None
    """The default ``max_tokens`` of a chat request; ``None`` for an embedding model, which
    generates no tokens (the loader requires it for every tier endpoint)."""
    temperature: float = 0.7
    weight: float = 1.0
    priority: int = 1
    api_key_env: str | None = None
    api_key: Secret | None = None
    """Resolved from ``api_key_env`` by the loader; ``None`` when no key is configured."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Connections open to this instance at once; more requests wait for one to come free."""
    tls_ca_file: str | None = None
    """A PEM bundle trusted instead of the system store (a private CA); https only."""
    tls_verify: bool = True
    """``False`` accepts any certificate (logged as a warning at start-up); https only."""
    tls_client_cert: str | None = None
    """A PEM client certificate presented to the upstream (mutual TLS); https only."""
    tls_client_key: str | None = None
    """The client certificate's private key, when it is not in ``tls_client_cert`` itself."""
    native: frozenset[str] = frozenset()
    """Protocols the server speaks itself (``enums.Native`` values): a ``/v1/responses`` request
    sent here goes to its own ``/responses`` (an Ollama ``/api/chat`` to its own ``/api/chat``)
    instead of being translated to chat completions."""
    compat: frozenset[str] = frozenset()
    """Rewrites of chat bodies for a server that rejects newer fields (``enums.Compat`` values);
    empty: bodies are forwarded byte-faithful."""
    kind: Kind = Kind.OPENAI
    """The server behind it, so the prober can read its own status endpoints (loaded models,
    context length, slots); ``openai`` learns nothing beyond health."""
    max_concurrent: int | None = None
    """Requests this instance serves at once (its parallel slots); more wait in the tier's
    queue. ``None``: unlimited."""
    context_window: int | None = None
    """The context length the server runs the model with, in tokens; ``None``: discovered by the
    prober for kinds that say it, else unknown (never assumed too small)."""

    @property
    def key_path(self) -> str:
        """Where this endpoint lives in the TOML file, e.g. ``models.fast[1]``, ``embeddings[0]``."""
        if self.pool is Pool.EMBEDDINGS:
            return f"embeddings[{self.index}]"
        return f"models.{self.pool}[{self.index}]"


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The listening socket and request-wide limits."""

    host: str
    port: int
    request_timeout_seconds: float = 30.0
    max_request_bytes: int = 8 * 1024 * 1024
    max_in_flight: int = 1024
    """Requests answered at once; above it new ones get 503 with ``Retry-After`` at once."""
    client_header_timeout_seconds: float = 10.0
    """A client must send a whole request head this soon after connecting (or after its last
    request on a kept-alive connection), or the connection is closed (slowloris)."""
    keepalive_idle_seconds: float = 75.0
    """An idle kept-alive client connection is closed after this long."""
    stream_keepalive_seconds: float = DEFAULT_STREAM_KEEPALIVE_SECONDS
    """A stream with no event for this long gets a keep-alive (an SSE comment, or the dialect's
    own ping event), so idle-timeout proxies keep it open."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API (exact ``scheme://host[:port]``, or ``"*"``);
    empty: no CORS headers at all."""
    workers: int = 1
    """Server processes sharing the port (``serve --workers`` overrides it)."""
    watch_config: bool = False
    """Reload the configuration file when it changes, as ``SIGHUP`` and ``POST /admin/reload``
    do (``octoroute.reload``)."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` names the router answers to (``config.hosts``, canonical entries); empty: any."""


class TierSeconds(msgspec.Struct, frozen=True, kw_only=True):
    """A number of seconds for each tier (router timeouts)."""

    fast: float = 10.0
    balanced: float = 10.0
    deep: float = 10.0

    def for_tier(self, tier: Tier) -> float:
        """The value configured for ``tier``."""
        value: float = getattr(self, tier.value)
        return value


DEFAULT_CONFIDENCE_THRESHOLD: Final = 0.6
"""``[routing] confidence_threshold``: below it, ``hybrid`` asks the router model."""


class RoutingConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How ``model: auto`` requests pick a tier."""

    strategy: Strategy
    default_importance: Importance = Importance.NORMAL
    router_tier: Tier = Tier.BALANCED
    default_tier: Tier = Tier.BALANCED
    """Where a request goes when no rule matches and no LLM decides (v1 silently used fast)."""
    router_timeouts: TierSeconds = msgspec.field(default_factory=TierSeconds)
    placement: Placement = Placement.FLEET
    """How an instance of the chosen tier is picked: fleet-aware, or v1's static selection."""
    overflow: Overflow = Overflow.OFF
    """Whether a routed request waiting for a full tier may go one tier up."""
    overflow_after_ms: int = 1000
    """How long a routed request waits in a full tier's queue before going up (overflow ``up``)."""
    cold_after_ms: int = 10_000
    """How long a request waits for a slot on a warm instance before it takes a free slot on a
    cold one (whose model must load first)."""
    prewarm: bool = False
    """Load the model on the deep tier's preferred instance when a request is routed to deep
    while that instance is known cold."""
    affinity: bool = True
    """Keep a conversation on one replica of its tier (its KV / prefix cache survives)."""
    affinity_imbalance: float = 2.0
    """A conversation leaves its replica when that one has this many more requests in flight
    (per unit of weight) than the least-loaded instance it could go to."""
    model_file: str | None = None
    """The learned router's model file (absolute, resolved against the config file's folder);
    ``None``: the model shipped with octoroute."""
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    """``hybrid`` asks the router model only when the learned model's confidence in its tier
    is below this probability."""


class ObservabilityConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Logging settings."""

    log_level: str = "info"
    log_format: LogFormat = LogFormat.TEXT


class TimeoutsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Per-tier request timeouts in seconds; ``None`` falls back to the server-wide value."""

    fast: float | None = None
    balanced: float | None = None
    deep: float | None = None
    embeddings: float | None = None
    """The per-attempt timeout of ``POST /v1/embeddings``."""
    stream_total_seconds: float | None = None
    """The longest a stream may run in total; ``None``: unbounded (only idle gaps are timed)."""


class HealthConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Background probing and the failure threshold shared with real requests."""

    interval_seconds: float = 30.0
    failure_threshold: int = 3
    probe_timeout_seconds: float = 5.0
    eject_after_failures: int = 3
    """Consecutive failures of real requests (timeouts, connect errors, 5xx) that eject an
    instance, whatever the probes say."""
    eject_base_seconds: float = 30.0
    """The first ejection lasts this long; the n-th lasts n times as long."""
    eject_max_seconds: float = 300.0
    """No ejection lasts longer than this."""


class LimitsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds on a chat request's conversation (generous enough for long agent sessions) and on
    what an upstream may send back, so a broken server cannot exhaust the router's memory."""

    max_messages: int = 2048
    max_content_chars: int = 2_000_000
    max_response_bytes: int = 64 * 1024 * 1024
    """The largest non-streaming upstream answer read (after decompression)."""
    max_event_bytes: int = 4 * 1024 * 1024
    """The largest single SSE event of an upstream stream."""
    responses_store: int = 1000
    """Recent ``/v1/responses`` answers kept (per process, least recently used dropped first)
    for ``previous_response_id``; 0 keeps none."""
    queue_timeout_seconds: float = 30.0
    """The longest a request waits for a free slot (every instance at ``max_concurrent``)
    before it is answered 503 ``fleet_busy``."""
    max_queue: int = 256
    """Requests that may wait for a slot per tier (and for the embedding models); more are
    answered 503 ``fleet_busy`` at once."""


class ModelsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The fleet: every tier has at least one endpoint."""

    fast: tuple[EndpointConfig, ...]
    balanced: tuple[EndpointConfig, ...]
    deep: tuple[EndpointConfig, ...]

    def for_tier(self, tier: Tier) -> tuple[EndpointConfig, ...]:
        """The endpoints of ``tier`` in file order."""
        endpoints: tuple[EndpointConfig, ...] = getattr(self, tier.value)
        return endpoints

    def all(self) -> tuple[EndpointConfig, ...]:
        """Every endpoint, fast then balanced then deep, each tier in file order."""
        return self.fast + self.balanced + self.deep


class Alias(msgspec.Struct, frozen=True, kw_only=True):
    """One ``[aliases]`` entry: a client-visible model name, or a glob pattern, and its target.

    ``target`` is ``auto``, a tier name or an endpoint name, checked at load. ``pattern`` is true
    when ``name`` holds a glob character (``*``, ``?``, ``[``); patterns are matched with
    ``fnmatch.fnmatchcase`` after every exact name missed, the first in file order winning.
    """

    name: str
    target: str
    pattern: bool


DEFAULT_PUBLIC_PATHS: Final = ("/health",)
"""What ``[auth]`` leaves open when ``public_paths`` is not set: the liveness check."""


class ClientKeyConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One ``[[auth.keys]]`` entry: a client key's name, its SHA-256, what it may use and its
    limits. The key itself is never kept: ``key_env``'s value is hashed by the loader."""

    name: str
    """Shown in logs and metric labels (the ``key`` label) instead of the key."""
    key_sha256: str
    """The SHA-256 of the key, 64 lower-case hex digits (from the file, or from ``key_env``)."""
    key_env: str | None = None
    """The environment variable the key was read from, when it was not given as a hash."""
    tiers: frozenset[Pool] = frozenset(POOLS)
    """The pools whose models the key may use (the three tiers and ``embeddings``)."""
    models: frozenset[str] | None = None
    """What the key may name in ``model`` (``auto``, tiers, endpoint, embedding and alias
    names); ``None``: anything the router serves."""
    admin: bool = False
    """Whether the key may use the operator surfaces (``/metrics``, ``/models``, ``/route``,
    ``/admin/*``, ``/ui*``)."""
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    """Estimated tokens (prompt plus the most the answer may take) a minute."""
    max_concurrent: int | None = None
    """Requests of this key answered at once."""


class AuthConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``[auth]``: present means every request needs a valid client key, except on
    ``public_paths``."""

    keys: tuple[ClientKeyConfig, ...]
    public_paths: tuple[str, ...] = DEFAULT_PUBLIC_PATHS
    """Exact paths, or prefixes ending in ``*``, served without a key."""


class StateConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``[state]``: where state shared by every worker and router instance lives."""

    redis_url: str | None = None
    """``redis://``, ``rediss://`` or ``unix://``; ``None``: limits are counted per process."""
    password_env: str | None = None
    password: Secret | None = None
    """Resolved from ``password_env`` by the loader."""


DEFAULT_UI_DECISIONS: Final = 100
"""Decisions the dashboard keeps (``[ui] decisions``) unless told otherwise."""
DEFAULT_PROMPT_PREVIEW_CHARS: Final = 200


class UiConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``[ui]``: the dashboard (``GET /ui``) and its state API (``GET /admin/state``,
    ``GET /admin/events``), and the in-memory windows behind them."""

    enabled: bool = True
    """``False``: ``/ui*``, ``/admin/state`` and ``/admin/events`` answer 404 and no request is
    recorded for them."""
    show_prompts: bool = False
    """Whether each decision keeps a preview of the request's latest user turn."""
    decisions: int = DEFAULT_UI_DECISIONS
    """How many recent decisions are kept (per process), newest first."""
    prompt_preview_chars: int = DEFAULT_PROMPT_PREVIEW_CHARS
    """The longest preview kept with ``show_prompts``, in characters."""


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """The whole validated configuration, passed explicitly to whatever needs it."""

    server: ServerConfig
    models: ModelsConfig
    routing: RoutingConfig
    observability: ObservabilityConfig = msgspec.field(default_factory=ObservabilityConfig)
    timeouts: TimeoutsConfig = msgspec.field(default_factory=TimeoutsConfig)
    health: HealthConfig = msgspec.field(default_factory=HealthConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    embeddings: tuple[EndpointConfig, ...] = ()
    """``[[embeddings]]`` in file order (pool ``embeddings``); empty when none are configured."""
    aliases: tuple[Alias, ...] = ()
    """``[aliases]`` in file order."""
    auth: AuthConfig | None = None
    """``[auth]``; ``None``: no client keys, every request is served (the default)."""
    state: StateConfig = msgspec.field(default_factory=StateConfig)
    """``[state]``; without ``redis_url`` every process keeps its own counters."""
    ui: UiConfig = msgspec.field(default_factory=UiConfig)
    """``[ui]``: the dashboard, on by default."""
    source: str = "<memory>"
    """The file this came from, for messages."""
    digest: str = ""
    """The SHA-256 (hex) of the TOML text this was parsed from: the config watcher's baseline.
    Not a setting (two files that differ only in comments configure the same thing)."""

    def timeout_for(self, pool: Tier | Pool) -> float:
        """The per-attempt timeout of a tier or pool: its ``[timeouts]`` override, else the
        server's."""
        override: float | None = getattr(self.timeouts, pool.value)
        return self.server.request_timeout_seconds if override is None else override

    def endpoint_names(self) -> tuple[str, ...]:
        """Each distinct endpoint name once, in config order (fast, balanced, deep)."""
        seen: dict[str, None] = {}
        for tier in TIERS:
            for endpoint in self.models.for_tier(tier):
                seen.setdefault(endpoint.name, None)
        return tuple(seen)

    def embedding_names(self) -> tuple[str, ...]:
        """Each distinct embedding model name once, in file order; the first is ``auto``'s."""
        return tuple(dict.fromkeys(endpoint.name for endpoint in self.embeddings))

    def all_endpoints(self) -> tuple[EndpointConfig, ...]:
        """Every endpoint instance: the tiers' (``ModelsConfig.all``), then the embedding
        models'. What the fleet, the metrics and the prober cover."""
        return self.models.all() + self.embeddings
