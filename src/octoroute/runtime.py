"""Everything one running router owns, built at start-up and torn down at shutdown.

Built inside the event loop (the upstream session needs it), passed to the handlers through the
aiohttp application; no module-level mutable state.
"""

from __future__ import annotations

import random
import time
from typing import Any, Final

from octoroute.catalog import Catalog
from octoroute.config.schema import Config
from octoroute.errors import ServerOverloaded, UpstreamError
from octoroute.fleet.dispatch import Dispatcher
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.health import HealthProber, ProbeInconclusive
from octoroute.fleet.placement import Affinity
from octoroute.fleet.selector import Fleet
from octoroute.observability.logging import RateLimitedWarning, get_logger
from octoroute.observability.metrics import Metrics, instance_label
from octoroute.routing.strategy import Router
from octoroute.upstream.client import Target, UpstreamClient
from octoroute.upstream.forward import Forwarder, Lane
from octoroute.upstream.prewarm import Prewarmer
from octoroute.upstream.router_model import HttpRouterModel
from octoroute.upstream.status import StatusReader
from octoroute.wire.responses_store import ResponseStore

log = get_logger("octoroute.fleet")

FALLBACK_LOG_INTERVAL_SECONDS: Final = 60.0
"""At most one "LLM router could not decide" warning a minute per reason (each is counted)."""


def _where(endpoint: Endpoint) -> dict[str, str]:
    """The fields that say which instance a fleet log line is about."""
    return {
        "endpoint": endpoint.name,
        "instance": instance_label(endpoint.config),
        "id": endpoint.id,
        "tier": endpoint.pool.value,
    }


class _HealthEvents:
    """Logs each health and admission transition once and mirrors it in the gauges
    (``octoroute_endpoint_healthy``, ``octoroute_endpoint_ejected``) and the ejection counter;
    an instance coming back wakes the requests waiting for a slot of its pool."""

    def __init__(self) -> None:
        self.lanes: dict[str, Lane] = {}
        self.dispatcher: Dispatcher | None = None

    def _kick(self, endpoint: Endpoint) -> None:
        if self.dispatcher is not None:
            self.dispatcher.kick(endpoint.pool)

    def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
        lane = self.lanes.get(endpoint.id)
        if lane is not None:
            lane.metrics.health.set(0)
        log.warning(
            "endpoint marked unhealthy",
            **_where(endpoint),
            failures=endpoint.consecutive_failures,
            reason=reason,
        )

    def on_recovered(self, endpoint: Endpoint) -> None:
        lane = self.lanes.get(endpoint.id)
        if lane is not None:
            lane.metrics.health.set(1)
        log.info(
            "endpoint recovered",
            **_where(endpoint),
        )
        self._kick(endpoint)

    def on_ejected(self, endpoint: Endpoint, cause: str, seconds: float) -> None:
        lane = self.lanes.get(endpoint.id)
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
        lane = self.lanes.get(endpoint.id)
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


class Runtime:
    """The fleet, the routing, the upstream client and the background prober of one server."""

    def __init__(
        self,
        config: Config,
        *,
        multiprocess_dir: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.started_at = time.monotonic()
        events = _HealthEvents()
        self.fleet = Fleet(config, listener=events, rng=rng)
        self.metrics = Metrics(config.all_endpoints(), multiprocess_dir=multiprocess_dir)
        self.catalog = Catalog(
            self.fleet,
            config.endpoint_names(),
            [(alias.name, alias.target, alias.pattern) for alias in config.aliases],
            embedding_names=config.embedding_names(),
        )
        self.client = UpstreamClient(max_response_bytes=config.limits.max_response_bytes)
        self.lanes = {
            endpoint.id: Lane(
                endpoint,
                Target(endpoint.config),
                self.metrics.endpoints[(endpoint.pool, endpoint.config.index)],
            )
            for endpoint in self.fleet.all()
        }
        events.lanes = self.lanes
        self.dispatcher = Dispatcher(
            self.fleet,
            max_queue=config.limits.max_queue,
            queue_timeout=config.limits.queue_timeout_seconds,
            depth=self.metrics.queue_depth,
            waited=self.metrics.queue_waits,
            affinity={Affinity(result): child for result, child in self.metrics.affinity.items()},
            refused=self.metrics.refusals,
        )
        """Slots and the per-tier queues of requests waiting for one."""
        events.dispatcher = self.dispatcher
        for endpoint_config in config.all_endpoints():
            if not endpoint_config.tls_verify:
                log.warning(
                    "TLS certificate checks are off for this endpoint (tls_verify = false)",
                    endpoint=endpoint_config.name,
                    instance=instance_label(endpoint_config),
                )
        self.forwarder = Forwarder(
            self.fleet,
            self.client,
            self.metrics,
            self.lanes,
            max_event_bytes=config.limits.max_event_bytes,
            stream_total_seconds=config.timeouts.stream_total_seconds,
            keepalive_seconds=config.server.stream_keepalive_seconds,
            dispatcher=self.dispatcher,
        )
        self.prewarmer = Prewarmer(self.client, self.lanes)
        """Background model loads (``routing.prewarm``)."""
        self.responses = ResponseStore(config.limits.responses_store)
        """Recent ``/v1/responses`` answers, for ``previous_response_id``."""
        self.router = Router(
            config.routing,
            HttpRouterModel(config.routing, self.fleet, self.client, self.lanes),
            on_fallback=self._on_fallback,
        )
        self._fallback_warnings: dict[str, RateLimitedWarning] = {}
        """One rate-limited warning per fallback reason."""
        self.status = StatusReader(
            self.client,
            {endpoint_id: lane.target for endpoint_id, lane in self.lanes.items()},
            timeout=config.health.probe_timeout_seconds,
            round_of=lambda: self.prober.rounds,
        )
        """Reads what each non-``openai`` server says about its model after every probe."""
        self.prober = HealthProber(
            self.fleet,
            self._probe,
            interval=config.health.interval_seconds,
            timeout=config.health.probe_timeout_seconds,
            on_task_failure=self._on_prober_failure,
            observe=self.status.observe,
        )

    async def _probe(self, endpoint: Endpoint) -> None:
        try:
            await self.client.probe(
                self.lanes[endpoint.id].target, timeout=self.config.health.probe_timeout_seconds
            )
        except ServerOverloaded as error:
            raise ProbeInconclusive(error.message) from error
        except UpstreamError as error:
            if not error.counts_against_health:  # busy or saturated: alive, just not free
                raise ProbeInconclusive(error.message) from error
            raise

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
        await self.prober.start()

    async def stop(self) -> None:
        """Stop the prober and the pre-warms, and close every upstream connection."""
        await self.prober.stop()
        await self.prewarmer.stop()
        self.dispatcher.close()
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
