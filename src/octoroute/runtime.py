"""Everything one running router owns, built at start-up and torn down at shutdown.

Built inside the event loop (the upstream session needs it), passed to the handlers through the
aiohttp application; no module-level mutable state.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

import msgspec

from octoroute.access.keys import KeyTable
from octoroute.access.state import Limiter
from octoroute.catalog import Catalog
from octoroute.config.diff import Identity, endpoint_changes, endpoint_identity, match_endpoints
from octoroute.config.redact import redact_url
from octoroute.config.schema import Config, EndpointConfig, StateConfig
from octoroute.enums import Pool, Strategy
from octoroute.errors import ServerOverloaded, UpstreamError
from octoroute.fleet.dispatch import Dispatcher
from octoroute.fleet.endpoint import Endpoint, OutlierSettings
from octoroute.fleet.health import HealthProber, ProbeInconclusive, ProbeOutcome
from octoroute.fleet.placement import Affinity
from octoroute.fleet.selector import Fleet
from octoroute.observability.decisions import Dashboard
from octoroute.observability.logging import RateLimitedWarning, get_logger
from octoroute.observability.metrics import Metrics, instance_label
from octoroute.observability.tracing import Tracing
from octoroute.routing.strategy import Router
from octoroute.upstream.client import Target, UpstreamClient
from octoroute.upstream.forward import Forwarder, Lane
from octoroute.upstream.prewarm import Prewarmer
from octoroute.upstream.router_model import HttpRouterModel
from octoroute.upstream.status import StatusReader
from octoroute.upstream.tls import tls_files_digest
from octoroute.wire.responses_store import ResponseStore

log = get_logger("octoroute.fleet")

FALLBACK_LOG_INTERVAL_SECONDS: Final = 60.0
"""At most one "LLM router could not decide" warning a minute per reason (each is counted)."""


def _identity(endpoint: EndpointConfig) -> Identity:
    """The endpoint's identity (``config.diff``), its TLS files read now; ``OSError`` when one
    cannot be."""
    return endpoint_identity(endpoint, tls_files_digest(endpoint))


def _warn_tls_unverified(endpoints: Iterable[EndpointConfig]) -> None:
    for endpoint in endpoints:
        if not endpoint.tls_verify:
            log.warning(
                "TLS certificate checks are off for this endpoint (tls_verify = false)",
                endpoint=endpoint.name,
                instance=instance_label(endpoint),
            )


def _where(endpoint: Endpoint) -> dict[str, str]:
    """The fields that say which instance a fleet log line is about."""
    return {
        "endpoint": endpoint.name,
        "instance": instance_label(endpoint.config),
        "id": endpoint.id,
        "tier": endpoint.pool.value,
    }


STARTUP_UNREACHABLE_EVENT: Final = "endpoint unreachable at start-up"
"""The log line for each endpoint that failed the first probe round (with ``reason``)."""
STARTUP_ROUND_EVENT: Final = "start-up probe round done"
"""The summary of the first probe round: ``answered``, ``unreachable``, ``total``, ``seconds``;
a warning when an endpoint did not answer, else info."""
RELOAD_UNREACHABLE_EVENT: Final = "endpoint added by reload did not answer its first probe"
DRAINED_EVENT: Final = "endpoint drained"
"""The log line of a removed instance whose last attempt ended (:func:`log_drained`)."""


def log_drained(endpoint: Endpoint) -> None:
    """Say that ``endpoint``, removed by a reload, has drained."""
    log.info(DRAINED_EVENT, **_where(endpoint))


class _HealthEvents:
    """Logs each health and admission transition once and mirrors it in the gauges
    (``octoroute_endpoint_healthy``, ``octoroute_endpoint_ejected``) and the ejection counter;
    an instance coming back wakes the requests waiting for a slot of its pool."""

    def __init__(self) -> None:
        self.lanes: dict[Endpoint, Lane] = {}
        self.dispatcher: Dispatcher | None = None

    def _kick(self, endpoint: Endpoint) -> None:
        if self.dispatcher is not None:
            self.dispatcher.kick(endpoint.pool)

    def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
        lane = self.lanes.get(endpoint)
        if lane is not None:
            lane.metrics.health.set(0)
        log.warning(
            "endpoint marked unhealthy",
            **_where(endpoint),
            failures=endpoint.consecutive_failures,
            reason=reason,
        )

    def on_recovered(self, endpoint: Endpoint) -> None:
        lane = self.lanes.get(endpoint)
        if lane is not None:
            lane.metrics.health.set(1)
        log.info(
            "endpoint recovered",
            **_where(endpoint),
        )
        self._kick(endpoint)

    def on_ejected(self, endpoint: Endpoint, cause: str, seconds: float) -> None:
        lane = self.lanes.get(endpoint)
        if lane is not None:
            lane.metrics.ejected.set(1)
            lane.metrics.ejection(cause)
        log.warning(
            "endpoint ejected",
            **_where(endpoint),
            cause=cause,
            seconds=round(seconds, 3),
            ejections=endpoint.ejections,
            reason=endpoint.last_error,
        )

    def on_readmitted(self, endpoint: Endpoint) -> None:
        lane = self.lanes.get(endpoint)
        if lane is not None:
            lane.metrics.ejected.set(0)
        log.info(
            "endpoint re-admitted",
            **_where(endpoint),
            cause=endpoint.ejection_cause,
            ejections=endpoint.ejections,
        )
        self._kick(endpoint)

    def on_availability(self, endpoint: Endpoint) -> None:
        """Trials starting and ending, busy spells: too frequent and too minor to log; a trial
        that ended without a verdict makes the instance selectable again."""
        self._kick(endpoint)


class Reconfiguration:
    """A checked configuration ready to swap in (:meth:`Runtime.plan`): its fleet matched
    against the running one and the new instances' targets built. Nothing live is touched
    until :meth:`Runtime.commit`; ``problems`` lists what stops it from being committed."""

    __slots__ = ("added", "config", "kept", "problems", "removed")

    def __init__(self, config: Config) -> None:
        self.config = config
        self.kept: list[tuple[Lane, EndpointConfig]] = []
        """Running instances and their new configuration (same identity)."""
        self.added: list[tuple[EndpointConfig, Target, Identity]] = []
        self.removed: list[Lane] = []
        self.problems: list[str] = []


class Swapped(NamedTuple):
    """What :meth:`Runtime.commit` did to the fleet: each instance by its new ``id`` (or its
    last one, for those removed), and the settings of kept instances that changed."""

    added: tuple[Endpoint, ...]
    removed: tuple[Endpoint, ...]
    kept: tuple[Endpoint, ...]
    changed: tuple[str, ...]
    drained: tuple[Endpoint, ...]
    """Removed instances that were idle, so drained at once: their :data:`DRAINED_EVENT` line
    is the caller's to log (:func:`log_drained`), after its own lines about the reload."""


def _limiter(state: StateConfig, metrics: Metrics) -> Limiter:
    """The limit checker: shared through ``state.redis_url`` when set."""

    def shared(up: bool) -> None:
        metrics.state_shared.set(1 if up else 0)

    if state.redis_url is None:
        return Limiter()
    # redis-py takes ~0.2 s to import: only a router configured with Redis pays for it.
    from octoroute.access.redis_store import RedisLimiter

    password = None if state.password is None else state.password.reveal()
    return Limiter(
        RedisLimiter(state.redis_url, password=password),
        where=redact_url(state.redis_url),
        on_fallback=metrics.state_fallbacks.inc,
        on_shared=shared,
    )


class Runtime:
    """The fleet, the routing, the upstream client and the background prober of one server.

    What a reload replaces (:meth:`commit`) is read by requests through the attributes below
    (``config``, ``fleet``, ``catalog``, ``router``, ``forwarder``), so the next request sees
    the new configuration everywhere while one under way keeps the objects it already holds.
    What lives as long as the process does (``metrics``, ``client`` and its pool, ``lanes``,
    ``dispatcher``, ``prober``, ``prewarmer``, ``status``, ``responses``) is retargeted in
    place. ``docs/architecture.md`` ("Live reload") says how a component survives a reload.
    """

    def __init__(
        self,
        config: Config,
        *,
        multiprocess_dir: str | None = None,
        rng: random.Random | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing = tracing
        """The process's OpenTelemetry tracing; ``None`` (off) unless ``OTEL_*`` asked for it."""
        self.started_at = time.monotonic()
        self.dashboard = Dashboard(config.ui, time.time())
        """The dashboard's windows and last decisions: kept across reloads."""
        self.recorder: Dashboard | None = None
        """``dashboard`` while ``[ui] enabled``, else ``None``: what requests record into."""
        self.generation = 1
        """Configurations this runtime has run: 1 at start-up, one more per reload."""
        self._rng = random.Random() if rng is None else rng
        self._events = _HealthEvents()
        fleet = Fleet(config, listener=self._events, rng=self._rng)
        self.metrics = Metrics(config.all_endpoints(), multiprocess_dir=multiprocess_dir)
        self.client = UpstreamClient(max_response_bytes=config.limits.max_response_bytes)
        self.lanes: dict[Endpoint, Lane] = {
            endpoint: Lane(
                endpoint,
                Target(endpoint.config),
                self.metrics.endpoints[(endpoint.pool, endpoint.config.index)],
            )
            for endpoint in fleet.all()
        }
        """Every instance's lane: those of the current fleet, and those a reload removed until
        they drain."""
        self._identities = {endpoint: _identity(endpoint.config) for endpoint in fleet.all()}
        self._events.lanes = self.lanes
        self.dispatcher = Dispatcher(
            fleet,
            max_queue=config.limits.max_queue,
            queue_timeout=config.limits.queue_timeout_seconds,
        )
        """Slots and the per-tier queues of requests waiting for one."""
        self._events.dispatcher = self.dispatcher
        self.prewarmer = Prewarmer(self.client, self.lanes)
        """Background model loads (``routing.prewarm``)."""
        self.responses = ResponseStore(config.limits.responses_store)
        """Recent ``/v1/responses`` answers, for ``previous_response_id``."""
        self._drained_now: list[Endpoint] | None = None
        """While :meth:`commit` retires instances: those that drained at once."""
        self._fallback_warnings: dict[str, RateLimitedWarning] = {}
        """One rate-limited warning per fallback reason."""
        self.status = StatusReader(
            self.client,
            lambda endpoint: self.lanes[endpoint].target,
            timeout=config.health.probe_timeout_seconds,
            round_of=lambda: self.prober.rounds,
        )
        """Reads what each non-``openai`` server says about its model after every probe."""
        self.prober = HealthProber(
            fleet,
            self._probe,
            interval=config.health.interval_seconds,
            timeout=config.health.probe_timeout_seconds,
            on_task_failure=self._on_prober_failure,
            observe=self.status.observe,
            on_first_round=self._on_first_round,
        )
        _warn_tls_unverified(config.all_endpoints())
        self.limiter = _limiter(config.state, self.metrics)
        """Client-key limits: in Redis with ``[state] redis_url`` (while it answers), else here.
        Made once: ``[state]`` needs a restart, and a reload must keep every key's counters
        (and the Redis watcher started with the runtime)."""
        self._adopt(config, fleet)

    def _adopt(self, config: Config, fleet: Fleet) -> None:
        """Make ``config`` and ``fleet`` what the next request sees: one synchronous step, so
        no request can see half of it."""
        metrics = self.metrics
        self.dispatcher.retarget(
            fleet,
            max_queue=config.limits.max_queue,
            queue_timeout=config.limits.queue_timeout_seconds,
            depth=metrics.queue_depth,
            waited=metrics.queue_waits,
            affinity={Affinity(result): child for result, child in metrics.affinity.items()},
            refused=metrics.refusals,
        )
        self.config = config
        self.fleet = fleet
        self.output_ceiling = {
            tier: max((endpoint.config.max_tokens or 0 for endpoint in endpoints), default=0)
            for tier, endpoints in fleet.tiers.items()
        }
        """Each tier's largest ``max_tokens``: what a request that sets no output limit is
        charged to ``tokens_per_minute`` for it (``api.access``), worked out once."""
        self.catalog = Catalog(
            fleet,
            config.endpoint_names(),
            [(alias.name, alias.target, alias.pattern) for alias in config.aliases],
            embedding_names=config.embedding_names(),
        )
        self.forwarder = Forwarder(
            fleet,
            self.client,
            metrics,
            self.lanes,
            max_event_bytes=config.limits.max_event_bytes,
            stream_total_seconds=config.timeouts.stream_total_seconds,
            keepalive_seconds=config.server.stream_keepalive_seconds,
            dispatcher=self.dispatcher,
        )
        self._router_model = HttpRouterModel(config.routing, fleet, self.client, self.lanes)
        self.router = Router(config.routing, self._router_model, on_fallback=self._on_fallback)
        self._routers: dict[Strategy, Router] = {config.routing.strategy: self.router}
        """A router per strategy ``POST /route?strategy=`` asked for, built on first use."""
        self.client.max_response_bytes = config.limits.max_response_bytes
        self.responses.resize(config.limits.responses_store)
        self.status.timeout = config.health.probe_timeout_seconds
        self.prober.retarget(
            fleet,
            interval=config.health.interval_seconds,
            timeout=config.health.probe_timeout_seconds,
        )
        self.dashboard.configure(config.ui)
        self.recorder = self.dashboard if config.ui.enabled else None
        self._key_table: KeyTable | None = None

    def router_for(self, strategy: Strategy) -> Router:
        """The configuration's router with ``strategy`` instead of its own (the playground's
        dry runs): built once per configuration, sharing its router model."""
        router = self._routers.get(strategy)
        if router is None:
            routing = msgspec.structs.replace(self.config.routing, strategy=strategy)
            router = Router(routing, self._router_model, on_fallback=self._on_fallback)
            self._routers[strategy] = router
        return router

    def key_table(self) -> KeyTable | None:
        """The client keys of the current configuration's ``[auth]`` (``None``: auth is off),
        rebuilt when a reload swapped that section; each key's metric series exist from then."""
        auth = self.config.auth
        if auth is None:
            return None
        table = self._key_table
        if table is None or table.source is not auth:
            table = self._key_table = KeyTable(auth, self.metrics.key)
        return table

    # --- reload ---------------------------------------------------------------------------------

    def plan(self, config: Config) -> Reconfiguration:
        """Match ``config``'s endpoints against the running ones (``config.diff``) and build
        the targets (TLS contexts) of the new ones; a file that cannot be read or a TLS setting
        that cannot be loaded is a problem, reported, never raised. Touches nothing live."""
        plan = Reconfiguration(config)
        wanted: list[tuple[Identity, EndpointConfig]] = []
        for endpoint in config.all_endpoints():
            try:
                wanted.append((_identity(endpoint), endpoint))
            except OSError as error:
                plan.problems.append(f"{endpoint.key_path}: cannot read its TLS files: {error}")
        running = [
            (self._identities[endpoint], lane)
            for endpoint, lane in self.lanes.items()
            if not endpoint.retired
        ]
        matching = match_endpoints(running, wanted)
        plan.kept, plan.removed = matching.kept, matching.removed
        identities = {id(cfg): identity for identity, cfg in wanted}
        for endpoint in matching.added:
            try:
                target = Target(endpoint)
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                plan.problems.append(
                    f"{endpoint.key_path}: its TLS files cannot be loaded ({error}); check that "
                    "tls_ca_file, tls_client_cert and tls_client_key hold the PEM they should"
                )
                continue
            plan.added.append((endpoint, target, identities[id(endpoint)]))
        return plan

    def commit(self, plan: Reconfiguration) -> Swapped:
        """Swap ``plan`` in: kept instances take their new settings with their state, new ones
        join (probed at once), removed ones take no new attempt and drain; then the next
        request sees the new configuration everywhere. Synchronous: atomic on the event loop."""
        if plan.problems:
            raise ValueError("a reconfiguration with problems cannot be committed")
        config = plan.config
        health = config.health
        outlier = OutlierSettings(
            health.eject_after_failures, health.eject_base_seconds, health.eject_max_seconds
        )
        changed: list[str] = []
        carried: dict[tuple[Pool, int], Endpoint] = {}
        for lane, endpoint_config in plan.kept:
            endpoint = lane.endpoint
            changed += endpoint_changes(endpoint.config, endpoint_config)
            endpoint.reconfigure(
                endpoint_config, failure_threshold=health.failure_threshold, outlier=outlier
            )
            carried[(endpoint_config.pool, endpoint_config.index)] = endpoint
        fleet = Fleet(config, listener=self._events, rng=self._rng, carried=carried)
        fresh = {(cfg.pool, cfg.index): (target, identity) for cfg, target, identity in plan.added}
        added: list[Endpoint] = []
        for endpoint in fleet.all():
            made = fresh.get((endpoint.pool, endpoint.position))
            if made is None:
                continue
            target, identity = made
            self.lanes[endpoint] = Lane(
                endpoint, target, self.metrics.bind_endpoint(endpoint.config)
            )
            self._identities[endpoint] = identity
            added.append(endpoint)
        _warn_tls_unverified([endpoint.config for endpoint in added])
        removed = [lane.endpoint for lane in plan.removed]
        self._drained_now = []
        try:
            for endpoint in removed:
                endpoint.retire(self._drained)  # drains here at once when nothing is in flight
        finally:
            drained, self._drained_now = tuple(self._drained_now), None
        self._adopt(config, fleet)
        self.generation += 1
        for pool in self.metrics.queue_depth:
            self.dispatcher.kick(pool)  # more slots (new instances, a larger max_concurrent)
        self.prober.probe_now(added, then=self._on_added_probed)
        kept = tuple(lane.endpoint for lane, _ in plan.kept)
        return Swapped(tuple(added), tuple(removed), kept, tuple(changed), drained)

    def _drained(self, endpoint: Endpoint) -> None:
        """The last attempt on a removed instance ended: forget it, close the pooled
        connections of its server unless another instance uses that server, drop its series."""
        lane = self.lanes.pop(endpoint, None)
        self._identities.pop(endpoint, None)
        if lane is None:
            return
        origin = lane.target.origin.key
        if all(other.target.origin.key != origin for other in self.lanes.values()):
            self.client.close_idle(lane.target)
        self.metrics.unbind_endpoint(
            endpoint.config, [other.endpoint.config for other in self.lanes.values()]
        )
        self.prewarmer.forget(endpoint)
        self.status.forget(endpoint)
        if self._drained_now is not None:
            self._drained_now.append(endpoint)  # inside commit: logged after the reload's lines
        else:
            log_drained(endpoint)

    async def _probe(self, endpoint: Endpoint) -> None:
        lane = self.lanes.get(endpoint)
        if lane is None:  # removed by a reload and drained while its round was under way
            raise ProbeInconclusive("the endpoint was removed")
        try:
            await self.client.probe(lane.target, timeout=self.config.health.probe_timeout_seconds)
        except ServerOverloaded as error:
            raise ProbeInconclusive(error.message) from error
        except UpstreamError as error:
            if not error.counts_against_health:  # busy or saturated: alive, just not free
                raise ProbeInconclusive(error.message) from error
            raise

    def _on_first_round(self, outcomes: Sequence[ProbeOutcome]) -> None:
        """Say at start-up which endpoints did not answer, one line each, then how the round
        went: a dead host is reported seconds after start, not when its failures reach
        ``failure_threshold``."""
        failed = [outcome for outcome in outcomes if outcome.problem is not None]
        for outcome in failed:
            log.warning(
                STARTUP_UNREACHABLE_EVENT,
                **_where(outcome.endpoint),
                reason=outcome.problem,
            )
        summary = {
            "answered": len(outcomes) - len(failed),
            "unreachable": len(failed),
            "total": len(outcomes),
            "seconds": round(self.uptime(), 3),
        }
        report = log.warning if failed else log.info
        report(STARTUP_ROUND_EVENT, **summary)

    def _on_added_probed(self, outcomes: Sequence[ProbeOutcome]) -> None:
        """Say which endpoints a reload added did not answer their first probe, one line each,
        as start-up does."""
        for outcome in outcomes:
            if outcome.problem is not None:
                log.warning(
                    RELOAD_UNREACHABLE_EVENT, **_where(outcome.endpoint), reason=outcome.problem
                )

    def _on_prober_failure(self, error: BaseException) -> None:
        self.metrics.background_task_failures.inc()
        log.error("health prober crashed; restarting it", error=repr(error))

    def _on_fallback(self, reason: str) -> None:
        """Count every fallback, but log one warning a minute per reason: under load a router
        tier that is down or full would otherwise write a line per request."""
        self.metrics.fallback(reason)
        warning = self._fallback_warnings.get(reason)
        if warning is None:
            warning = self._fallback_warnings[reason] = RateLimitedWarning(
                log,
                "LLM router could not decide; using the fallback decision",
                FALLBACK_LOG_INTERVAL_SECONDS,
            )
        warning.warn(reason=reason, router_tier=self.config.routing.router_tier.value)

    async def start(self) -> None:
        """Open the upstream pool, then start probing: the first round runs now, not later."""
        await self.client.open()
        await self.limiter.start()
        await self.prober.start()

    async def stop(self) -> None:
        """Stop the prober and the pre-warms, and close every upstream connection."""
        await self.prober.stop()
        await self.prewarmer.stop()
        self.dispatcher.close()
        await self.limiter.stop()
        await self.client.close()

    def uptime(self) -> float:
        """Seconds since this runtime was built."""
        return time.monotonic() - self.started_at

    def summary(self) -> dict[str, Any]:
        """A start-up summary for the log: no URLs with credentials, no keys."""
        return {
            "strategy": self.config.routing.strategy.value,
            "router_tier": self.config.routing.router_tier.value,
            "default_tier": self.config.routing.default_tier.value,
            "endpoints": {
                tier.value: len(endpoints) for tier, endpoints in self.fleet.tiers.items()
            }
            | ({"embeddings": len(self.fleet.embeddings)} if self.fleet.embeddings else {}),
        }
