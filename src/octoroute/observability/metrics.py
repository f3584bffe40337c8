"""Prometheus metrics: every family defined once per application, label children bound up front.

v1's families keep their names and labels so existing dashboards keep working; the rest answer
"why is it slow" and "which box is failing". Label values are only tiers, strategies, configured
endpoint names and fixed reasons, never request data, so cardinality is bounded by the config.

Each application owns its registry (tests run several in one process). With ``--workers N`` the
registry is backed by prometheus_client's multiprocess mode, set up by the CLI before any worker
starts.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Collection, Sequence
from urllib.parse import urlsplit

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from octoroute.config.schema import EndpointConfig
from octoroute.enums import TIER_POOLS, TIERS, DecisionSource, Pool

ROUTING_BUCKETS_MS = (0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0)
UPSTREAM_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip
STATUS_CLASSES = ("2xx", "4xx", "5xx", "error")
RETRY_REASONS = (
    "connect",
    "timeout",
    "protocol",
    "status",
    "event_too_large",
    "too_large",
    "bad_response",
    "auth",
    "throttled",
    "saturated",
    "stream_total",
)
"""Every ``UpstreamError.reason`` (``octoroute.errors``): why an attempt failed (a test checks
that every subclass's is here: a missing one was a ``KeyError`` on the request path)."""
EJECTION_CAUSES = ("timeout", "connect", "status", "protocol", "bad_response", "auth", "other")
"""Why an instance was ejected: the reason of the failure that ejected it, ``other`` for the rest."""
OVERLOAD_REASONS = ("max_in_flight", "file_descriptors")
FALLBACK_REASONS = (
    "timeout",
    "transport",
    "unavailable",
    "refusal",
    "unparseable",
    "empty",
    "oversize",
)
COLD_START_BUCKETS_S = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0)
QUEUE_WAIT_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
BUSY_REASONS = ("queue_full", "queue_timeout")
"""Why a request was refused 503 ``fleet_busy``."""
AFFINITY_RESULTS = ("hit", "moved", "none")
"""``fleet.placement.Affinity`` values: what conversation affinity did for one placement."""
ESCALATIONS = tuple(
    (TIERS[low].value, TIERS[high].value)
    for low in range(len(TIERS))
    for high in range(low + 1, len(TIERS))
)
"""Every (from, to) pair a context escalation can take: always upwards."""
AUTH_FAILURE_REASONS = ("missing", "invalid")
"""Why a request was answered 401 ``invalid_api_key``: no key, or none the router knows."""
KEY_REJECTION_REASONS = (
    "model_not_allowed",
    "admin_key_required",
    "requests",
    "tokens",
    "concurrent_requests",
)
"""Why a request with a valid client key was refused: 403s, then the 429s by limit."""
RECORDING_OPERATIONS = ("record_request", "record_routing_duration", "record_model_invocation")
HEALTH_ERROR_TYPES = ("unknown_endpoint", "http_client_failed", "invalid_url")


def instance_label(endpoint: EndpointConfig) -> str:
    """``host:port`` of an endpoint: tells replicas that share a model name apart."""
    parts = urlsplit(endpoint.base_url)
    # Never the userinfo part: a password in a base_url must not reach Prometheus.
    host = parts.hostname or endpoint.base_url
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port is not None else host


class EndpointMetrics:
    """The label children of one endpoint instance, bound once when the fleet is built."""

    __slots__ = (
        "cold_start_seconds",
        "cold_starts",
        "count_response",
        "duration",
        "ejected",
        "ejections",
        "health",
        "inflight",
        "mid_stream_failures",
        "move_inflight",
        "observe_duration",
        "observe_ttfb",
        "responses",
        "throttled",
        "ttfb",
    )

    def __init__(self, metrics: Metrics, endpoint: EndpointConfig) -> None:
        tier, name, instance = endpoint.pool.value, endpoint.name, instance_label(endpoint)
        self.duration = metrics.upstream_duration.labels(tier, name, instance)
        self.ttfb = metrics.upstream_ttfb.labels(tier, name, instance)
        self.observe_duration = observer(self.duration)
        self.observe_ttfb = observer(self.ttfb)
        self.responses = {
            cls: metrics.upstream_responses.labels(tier, name, instance, cls)
            for cls in STATUS_CLASSES
        }
        self.count_response = {cls: adder(child) for cls, child in self.responses.items()}
        """``responses``' increments, as :func:`adder` makes them (call them with 1)."""
        self.health = metrics.endpoint_healthy.labels(tier, name, instance)
        self.health.set(1)
        self.mid_stream_failures = metrics.mid_stream_failures.labels(name)
        self.ejections = {
            cause: metrics.ejections.labels(name, instance, cause) for cause in EJECTION_CAUSES
        }
        self.ejected = metrics.endpoint_ejected.labels(tier, name, instance)
        self.ejected.set(0)
        self.throttled = metrics.upstream_throttled.labels(name)
        self.inflight = metrics.inflight.labels(name, instance)
        self.move_inflight = adder(self.inflight)
        """``inflight``'s ``inc`` (1) and ``dec`` (-1), as :func:`adder` makes it."""
        self.cold_starts = metrics.cold_starts.labels(tier, name, instance)
        self.cold_start_seconds = metrics.cold_start_seconds.labels(tier, name, instance)

    def ejection(self, cause: str) -> None:
        """Count one ejection; an unexpected cause still counts, under ``other``."""
        (self.ejections.get(cause) or self.ejections["other"]).inc()

    def response(self, status: int | None) -> None:
        """Count one upstream outcome by status class (``error`` when no status arrived)."""
        if status is None:
            self.count_response["error"](1)
        elif status < 300:
            self.count_response["2xx"](1)
        elif status < 500:
            self.count_response["4xx"](1)
        else:
            self.count_response["5xx"](1)


def adder(child: Counter | Gauge) -> Callable[[float], None]:
    """A bound counter or gauge child's increment without ``Counter.inc``'s checks, for the
    request path: its value's own ``inc`` (the same one ``Counter.inc``, ``Gauge.inc`` and, with
    a negative amount, ``Gauge.dec`` end in, multiprocess or not).
    Those checks (the metric is a child, not a labelled parent; the amount is not negative; an
    exemplar) hold by construction for a child bound here and a count or a token estimate, and
    cost three Python calls an increment."""
    value = getattr(child, "_value", None)
    increment = getattr(value, "inc", None)
    if not callable(increment):  # a prometheus_client that keeps its value elsewhere
        return child.inc
    return increment  # type: ignore[no-any-return]


def observer(child: Histogram) -> Callable[[float], None]:
    """A bound histogram child's ``observe`` for the request path: the sum's and the bucket's
    own ``inc`` (what ``Histogram.observe`` ends in, multiprocess or not), the bucket found by
    bisection instead of a Python loop over the bounds, and none of ``observe``'s checks (a
    bound child, no exemplar: both hold by construction). An amount that is not a number
    (NaN), which no bucket holds, goes through ``observe`` itself."""
    sum_value = getattr(child, "_sum", None)
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    add_sum = getattr(sum_value, "inc", None)
    if (
        not callable(add_sum)
        or not isinstance(bounds, list)
        or not isinstance(buckets, list)
        or len(bounds) != len(buckets)
        or not bounds
        or bounds[-1] != math.inf
    ):  # a prometheus_client that keeps its values elsewhere
        return child.observe
    add_bucket = [bucket.inc for bucket in buckets]
    slow = child.observe

    def observe(amount: float) -> None:
        if amount != amount:  # NaN
            slow(amount)
            return
        add_sum(amount)
        add_bucket[bisect_left(bounds, amount)](1)

    return observe


class KeyMetrics:
    """The label children of one client key (``[[auth.keys]]`` name), bound when the key table
    is built: at start-up, and after a reload for names not seen before. The key holds them
    (``ClientKey.metrics``), so a request finds them without a lookup."""

    __slots__ = (
        "add_estimated_tokens",
        "count_request",
        "estimated_tokens",
        "rejections",
        "requests",
    )

    def __init__(self, metrics: Metrics, name: str) -> None:
        self.requests = metrics.key_requests.labels(name)
        self.estimated_tokens = metrics.key_estimated_tokens.labels(name)
        self.count_request = adder(self.requests)
        """``requests.inc``, as :func:`adder` makes it (call it with 1)."""
        self.add_estimated_tokens = adder(self.estimated_tokens)
        self.rejections = {
            reason: metrics.key_rejections.labels(name, reason) for reason in KEY_REJECTION_REASONS
        }


class TierMetrics:
    """The label children of one tier, or of the embedding models (``tier="embeddings"``)."""

    __slots__ = (
        "add_tokens",
        "count_invocation",
        "count_request",
        "failovers",
        "in_flight",
        "invocations",
        "move_in_flight",
        "requests",
        "retries",
        "tokens",
    )

    def __init__(self, metrics: Metrics, tier: str) -> None:
        self.requests = {
            source: metrics.requests.labels(tier, source.value) for source in DecisionSource
        }
        self.invocations = metrics.model_invocations.labels(tier)
        self.in_flight = metrics.in_flight.labels(tier)
        self.retries = {reason: metrics.retries.labels(tier, reason) for reason in RETRY_REASONS}
        self.failovers = metrics.failovers.labels(tier)
        self.tokens = {kind: metrics.tokens.labels(tier, kind) for kind in ("prompt", "completion")}
        # The increments every answered request makes, as :func:`adder` makes them.
        self.count_request = {source: adder(child) for source, child in self.requests.items()}
        self.count_invocation = adder(self.invocations)
        self.move_in_flight = adder(self.in_flight)
        """``in_flight``'s ``inc`` (1) and ``dec`` (-1)."""
        self.add_tokens = {kind: adder(child) for kind, child in self.tokens.items()}


class Metrics:
    """All metric families of one application."""

    def __init__(
        self, endpoints: Sequence[EndpointConfig], *, multiprocess_dir: str | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._multiprocess = multiprocess_dir is not None
        # In multiprocess mode the families write to files; scrapes read every worker's files.
        reg = None if self._multiprocess else self.registry
        if multiprocess_dir is not None:
            multiprocess.MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]

        self.requests = Counter(
            "octoroute_requests_total",
            "Chat requests by the tier they were sent to and who decided it (rule, llm, direct).",
            ["tier", "strategy"],
            registry=reg,
        )
        self.routing_duration = Histogram(
            "octoroute_routing_duration_ms",
            "Time spent deciding the tier, in milliseconds.",
            ["strategy"],
            buckets=ROUTING_BUCKETS_MS,
            registry=reg,
        )
        self.model_invocations = Counter(
            "octoroute_model_invocations_total",
            "Successful model answers by tier (router-model calls not included).",
            ["tier"],
            registry=reg,
        )
        self.health_tracking_failures = Counter(
            "octoroute_health_tracking_failures_total",
            "Health bookkeeping errors by endpoint and error type (should stay 0).",
            ["endpoint", "error_type"],
            registry=reg,
        )
        self.recording_failures = Counter(
            "octoroute_metrics_recording_failures_total",
            "Metric recordings that failed, by operation (should stay 0).",
            ["operation"],
            registry=reg,
        )
        self.background_task_failures = Counter(
            "octoroute_background_health_task_failures_total",
            "Times the background health prober crashed and was restarted.",
            registry=reg,
        )
        self.mid_stream_failures = Counter(
            "octoroute_mid_stream_failures_total",
            "Streams that failed after the first byte reached the client, by endpoint.",
            ["endpoint"],
            registry=reg,
        )
        instance_labels = ["tier", "endpoint", "instance"]
        self.upstream_duration = Histogram(
            "octoroute_upstream_request_duration_seconds",
            "Duration of upstream attempts from send to the last byte, in seconds.",
            instance_labels,
            buckets=UPSTREAM_BUCKETS_S,
            registry=reg,
        )
        self.upstream_ttfb = Histogram(
            "octoroute_upstream_time_to_first_byte_seconds",
            "Time from sending an upstream request to its first body byte, in seconds.",
            instance_labels,
            buckets=UPSTREAM_BUCKETS_S,
            registry=reg,
        )
        self.upstream_responses = Counter(
            "octoroute_upstream_responses_total",
            "Upstream attempt outcomes by status class (error: no HTTP status at all).",
            [*instance_labels, "status_class"],
            registry=reg,
        )
        self.retries = Counter(
            "octoroute_upstream_retries_total",
            "Attempts that failed and were retried on another endpoint, by tier and reason.",
            ["tier", "reason"],
            registry=reg,
        )
        self.failovers = Counter(
            "octoroute_failovers_total",
            "Requests answered by an endpoint other than the first one tried, by tier.",
            ["tier"],
            registry=reg,
        )
        self.routing_fallbacks = Counter(
            "octoroute_routing_fallbacks_total",
            "LLM-router failures that fell back to the rule decision, by reason.",
            ["reason"],
            registry=reg,
        )
        self.in_flight = Gauge(
            "octoroute_in_flight_requests",
            "Requests currently being answered, by tier.",
            ["tier"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.endpoint_healthy = Gauge(
            "octoroute_endpoint_healthy",
            "1 while an endpoint instance is considered healthy, 0 while it is skipped.",
            instance_labels,
            registry=reg,
            multiprocess_mode="min",
        )
        self.ejections = Counter(
            "octoroute_endpoint_ejections_total",
            "Instances taken out of rotation by failures of real requests, by cause.",
            ["endpoint", "instance", "cause"],
            registry=reg,
        )
        self.endpoint_ejected = Gauge(
            "octoroute_endpoint_ejected",
            "1 while an endpoint instance is ejected (or on its one half-open trial), else 0.",
            instance_labels,
            registry=reg,
            multiprocess_mode="max",
        )
        self.overload_rejections = Counter(
            "octoroute_overload_rejections_total",
            "Requests answered 503 server_overloaded by the router itself, by reason.",
            ["reason"],
            registry=reg,
        )
        self.upstream_throttled = Counter(
            "octoroute_upstream_throttled_total",
            "Upstream answers saying busy (429, or 503 with Retry-After), by endpoint.",
            ["endpoint"],
            registry=reg,
        )
        self.tokens = Counter(
            "octoroute_tokens_total",
            "Tokens reported by upstreams in `usage`, by tier and kind (prompt, completion).",
            ["tier", "kind"],
            registry=reg,
        )

        self.inflight = Gauge(
            "octoroute_inflight",
            "Attempts under way on each endpoint instance (each holds one of its slots).",
            ["endpoint", "instance"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.queue_depth_family = Gauge(
            "octoroute_queue_depth",
            "Requests waiting for a slot (every instance at max_concurrent), by tier.",
            ["tier"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.queue_wait = Histogram(
            "octoroute_queue_wait_seconds",
            "Time requests waited in a tier's queue for a slot (served, timed out or gone).",
            ["tier"],
            buckets=QUEUE_WAIT_BUCKETS_S,
            registry=reg,
        )
        self.fleet_busy = Counter(
            "octoroute_fleet_busy_total",
            "Requests refused 503 fleet_busy: the tier's queue was full, or they waited out "
            "queue_timeout_seconds.",
            ["tier", "reason"],
            registry=reg,
        )
        self.cold_starts = Counter(
            "octoroute_cold_starts_total",
            "Answers (and pre-warms) from instances the prober said were cold: model loads.",
            instance_labels,
            registry=reg,
        )
        self.cold_start_seconds = Histogram(
            "octoroute_cold_start_seconds",
            "Observed model load time: time to first byte of an answer from a cold instance.",
            instance_labels,
            buckets=COLD_START_BUCKETS_S,
            registry=reg,
        )
        self.context_escalations = Counter(
            "octoroute_context_escalations_total",
            "Routed requests sent up a tier because no instance of theirs had a large enough "
            "context window, by the tier routed to and the tier that served.",
            ["from_tier", "to_tier"],
            registry=reg,
        )
        self.affinity_total = Counter(
            "octoroute_affinity_total",
            "Placements by what conversation affinity did (hit, moved, none: no key).",
            ["result"],
            registry=reg,
        )

        self.auth_failures_family = Counter(
            "octoroute_auth_failures_total",
            "Requests answered 401 invalid_api_key with [auth] on: no key, or an unknown one.",
            ["reason"],
            registry=reg,
        )
        self.key_requests = Counter(
            "octoroute_key_requests_total",
            "Requests that reach a model, per client key, counted once they passed its limits.",
            ["key"],
            registry=reg,
        )
        self.key_estimated_tokens = Counter(
            "octoroute_key_estimated_tokens_total",
            "Tokens charged to a client key's tokens_per_minute: estimated prompt plus the most "
            "the answer may take.",
            ["key"],
            registry=reg,
        )
        self.key_rejections = Counter(
            "octoroute_key_rejections_total",
            "Requests with a valid client key refused: 403 model_not_allowed or "
            "admin_key_required, or 429 by the limit hit.",
            ["key", "reason"],
            registry=reg,
        )
        self.state_fallbacks = Counter(
            "octoroute_state_fallbacks_total",
            "Client-key limit checks answered by this process's own counters because the "
            "[state] Redis could not be reached.",
            registry=reg,
        )
        self.state_shared = Gauge(
            "octoroute_state_shared",
            "1 while client-key limits are counted in the [state] Redis, 0 while they are "
            "counted per process (no redis_url, or Redis unreachable).",
            registry=reg,
            multiprocess_mode="min",
        )

        self.tiers = {tier: TierMetrics(self, tier.value) for tier in TIERS}
        self.pools: dict[Pool, TierMetrics] = {TIER_POOLS[tier]: self.tiers[tier] for tier in TIERS}
        """The tiers' children again, by pool, plus ``embeddings`` once embedding endpoints are
        configured (without them no ``tier="embeddings"`` series exists)."""
        self.routing_by_source = {
            source: self.routing_duration.labels(source.value) for source in DecisionSource
        }
        self.observe_routing = {
            source: observer(child) for source, child in self.routing_by_source.items()
        }
        """``routing_by_source``'s ``observe``, as :func:`observer` makes them."""
        self.fallbacks = {
            reason: self.routing_fallbacks.labels(reason) for reason in FALLBACK_REASONS
        }
        self.overloads = {
            reason: self.overload_rejections.labels(reason) for reason in OVERLOAD_REASONS
        }
        for operation in RECORDING_OPERATIONS:
            self.recording_failures.labels(operation)
        self.queue_depth: dict[Pool, Gauge] = {}
        """``octoroute_queue_depth`` by pool (the embeddings' only once configured)."""
        self.queue_waits: dict[Pool, Histogram] = {}
        self.refusals: dict[tuple[Pool, str], Counter] = {}
        for pool in TIER_POOLS.values():
            self._bind_queue(pool)
        self.endpoints = {
            (endpoint.pool, endpoint.index): self.bind_endpoint(endpoint) for endpoint in endpoints
        }
        """The children of the endpoints this registry was built with (a reload binds those it
        adds with :meth:`bind_endpoint`)."""
        self.escalations = {
            (low, high): self.context_escalations.labels(low, high) for low, high in ESCALATIONS
        }
        self.affinity = {result: self.affinity_total.labels(result) for result in AFFINITY_RESULTS}
        self.auth_failures = {
            reason: self.auth_failures_family.labels(reason) for reason in AUTH_FAILURE_REASONS
        }
        self._keys: dict[str, KeyMetrics] = {}

    def key(self, name: str) -> KeyMetrics:
        """The children of client key ``name``, bound on first use (by the key table, when it is
        built; names come only from the configuration, so their number is bounded by it)."""
        children = self._keys.get(name)
        if children is None:
            children = self._keys[name] = KeyMetrics(self, name)
        return children

    def _bind_queue(self, pool: Pool) -> None:
        self.queue_depth[pool] = self.queue_depth_family.labels(pool.value)
        self.queue_waits[pool] = self.queue_wait.labels(pool.value)
        for reason in BUSY_REASONS:
            self.refusals[(pool, reason)] = self.fleet_busy.labels(pool.value, reason)

    def bind_endpoint(self, endpoint: EndpointConfig) -> EndpointMetrics:
        """The label children of one instance (at start-up, or added by a reload), and those of
        its pool when it is the first embedding model."""
        if endpoint.pool not in self.pools:
            self.pools[endpoint.pool] = TierMetrics(self, endpoint.pool.value)
            self._bind_queue(endpoint.pool)
        for error_type in HEALTH_ERROR_TYPES:
            self.health_tracking_failures.labels(endpoint.name, error_type)
        return EndpointMetrics(self, endpoint)

    def unbind_endpoint(self, endpoint: EndpointConfig, live: Collection[EndpointConfig]) -> None:
        """Drop the series of an instance a reload removed, once it is drained, except those
        it shares with a ``live`` one (same tier, name and ``host:port``).

        In multiprocess mode (``--workers``) nothing is dropped: prometheus_client keeps every
        worker's values in files it cannot forget a series from, so a removed instance's series
        stay until the workers restart."""
        if self._multiprocess:
            return
        tier, name, instance = endpoint.pool.value, endpoint.name, instance_label(endpoint)
        triples = {(e.pool.value, e.name, instance_label(e)) for e in live}
        if (tier, name, instance) not in triples:
            for family in (
                self.upstream_duration,
                self.upstream_ttfb,
                self.endpoint_healthy,
                self.endpoint_ejected,
                self.cold_starts,
                self.cold_start_seconds,
            ):
                family.remove(tier, name, instance)
            for cls in STATUS_CLASSES:
                self.upstream_responses.remove(tier, name, instance, cls)
        if (name, instance) not in {(n, i) for _, n, i in triples}:
            self.inflight.remove(name, instance)
            for cause in EJECTION_CAUSES:
                self.ejections.remove(name, instance, cause)
        if name not in {n for _, n, _ in triples}:
            self.mid_stream_failures.remove(name)
            self.upstream_throttled.remove(name)
            for error_type in HEALTH_ERROR_TYPES:
                self.health_tracking_failures.remove(name, error_type)

    def fallback(self, reason: str) -> None:
        """Count one routing fallback; an unexpected reason still counts, under ``unavailable``."""
        child = self.fallbacks.get(reason) or self.fallbacks["unavailable"]
        child.inc()

    def render(self) -> bytes:
        """The exposition text of every family (zero-valued where nothing happened yet)."""
        return generate_latest(self.registry)
