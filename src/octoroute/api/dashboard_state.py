"""``GET /admin/state``: what the dashboard shows, as one documented JSON document (version 1).

The fleet as it is now (health, ejection, slots, warm or cold, in flight, queues), the traffic
of the last 5 minutes or hour from the in-memory windows (``observability.window``), the last
decisions (``observability.decisions``) and the effective configuration with every credential
masked (``config.effective``), plus the last reload's result. ``docs/api.md`` ("Dashboard state
API") documents every field; ``api.dashboard_events`` streams the same fleet and decision
objects.

Everything is read from the runtime when asked, so after a reload the next answer shows the new
fleet; the windows and decisions belong to the runtime's dashboard, which a reload keeps. With
``serve --workers`` each worker answers with its own windows and decisions (``router.note``).
With ``[ui] enabled = false`` the path answers 404, as if it did not exist.
"""

from __future__ import annotations

import os
import time
from collections.abc import Hashable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from octoroute import __version__
from octoroute.api.common import RUNTIME
from octoroute.api.reload import RELOADER
from octoroute.config.effective import effective_config
from octoroute.config.redact import redact_url
from octoroute.enums import TIER_POOLS, TIERS, Pool
from octoroute.errors import InvalidRequest, RouteNotFound
from octoroute.fleet.endpoint import Admission, Endpoint, Health
from octoroute.observability.decisions import Decided
from octoroute.observability.window import BUCKET_SECONDS, WINDOWS, InstanceStats, WindowView
from octoroute.runtime import Runtime

STATE_VERSION: Final = 1
"""The version of the document; fields are only ever added within a version."""
DEFAULT_WINDOW: Final = 300
_WINDOW_VALUES: Final = {str(seconds): seconds for seconds in WINDOWS}
_NO_STATS: Final = InstanceStats(0, 0.0, None)
_DECISION_FIELDS: Final = (
    "route",
    "model",
    "tier",
    "strategy",
    "reason",
    "confidence",
    "endpoint",
    "instance",
    "status",
    "duration_ms",
    "ttfb_ms",
    "attempts",
    "key",
)
"""The decision's fields read from its log line, in the documented order (absent: ``null``)."""


def iso(seconds: float) -> str:
    """Epoch ``seconds`` as UTC ISO 8601 with milliseconds: ``2026-12-07T06:20:00.123Z``."""
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def ensure_enabled(runtime: Runtime, request: web.Request) -> None:
    """404 in the OpenAI error shape while ``[ui] enabled = false``."""
    if not runtime.config.ui.enabled:
        raise RouteNotFound(
            f"There is no {request.method} {request.path[:100]} on this router: the dashboard "
            "and its state API are switched off ([ui] enabled = false in the configuration)."
        )


def window_of(request: web.Request) -> int:
    """The ``window`` query parameter: 300 (the default) or 3600 seconds; else a 400."""
    raw = request.query.get("window")
    if raw is None:
        return DEFAULT_WINDOW
    seconds = _WINDOW_VALUES.get(raw.strip())
    if seconds is None:
        raise InvalidRequest(
            f"window must be 300 (the last 5 minutes) or 3600 (the last hour), in seconds; "
            f"got {raw[:40]!r}.",
            param="window",
        )
    return seconds


# --- the fleet ----------------------------------------------------------------------------------


def health_of(endpoint: Endpoint) -> str:
    """``unhealthy`` (probes or requests failing), else ``ejected`` (out of rotation after real
    requests failed, on trial included), else ``healthy`` or ``unknown`` (nothing succeeded
    on it yet)."""
    if not endpoint.healthy:
        return Health.UNHEALTHY.value
    if endpoint.ejected:
        return "ejected"
    return endpoint.health.value


def instance_state(endpoint: Endpoint, stats: InstanceStats, now: float) -> dict[str, Any]:
    """One instance as the dashboard shows it; ``now`` is the endpoint clock's reading."""
    facts = endpoint.facts
    ejection = None
    if endpoint.ejected:
        ejection = {
            "cause": endpoint.ejection_cause,
            "seconds_left": round(max(0.0, endpoint.ejected_until - now), 1),
            "trial": endpoint.admission is Admission.TRIAL,
            "ejections": endpoint.ejections,
        }
    latency = stats.latency_ms
    return {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": redact_url(endpoint.base_url),
        "kind": endpoint.config.kind.value,
        "priority": endpoint.priority,
        "weight": endpoint.weight,
        "health": health_of(endpoint),
        "ejection": ejection,
        "in_flight": endpoint.in_flight,
        "slots": endpoint.max_concurrent or facts.slots_total,
        "slots_idle": facts.slots_idle,
        "warm": False if endpoint.cold else facts.loaded,
        "context_window": endpoint.context_window,
        "last_error": endpoint.last_error,
        "seconds_since_check": endpoint.seconds_since_check(now),
        "requests": stats.requests,
        "error_rate": round(stats.error_rate, 4),
        "latency_ms": None if latency is None else {"p50": latency[0], "p95": latency[1]},
    }


def fleet_state(
    runtime: Runtime, instances: Mapping[Hashable, InstanceStats] | None = None
) -> dict[str, Any]:
    """The ``fleet`` object: each tier with its queue and instances, then the embedding models.
    ``instances`` are the window's per-instance numbers (none: zeros)."""
    fleet = runtime.fleet
    max_queue = runtime.config.limits.max_queue
    stats = {} if instances is None else instances
    now = time.monotonic()

    def shown(endpoints: tuple[Endpoint, ...]) -> list[dict[str, Any]]:
        return [
            instance_state(endpoint, stats.get(endpoint, _NO_STATS), now) for endpoint in endpoints
        ]

    body: dict[str, Any] = {
        "tiers": [
            {
                "tier": tier.value,
                "queue_length": runtime.dispatcher.depth(TIER_POOLS[tier]),
                "max_queue": max_queue,
                "instances": shown(fleet.tiers[tier]),
            }
            for tier in TIERS
        ],
        "embeddings": shown(fleet.embeddings),
    }
    if fleet.embeddings:
        body["embeddings_queue_length"] = runtime.dispatcher.depth(Pool.EMBEDDINGS)
    return body


def fleet_fingerprint(runtime: Runtime) -> tuple[object, ...]:
    """What changes the fleet object in a way worth a ``fleet`` event: every instance's health,
    ejection, load, what the prober learned and its last error, and the queues."""
    fleet = runtime.fleet
    return (
        id(fleet),
        tuple(
            (
                endpoint.healthy,
                endpoint.seen_healthy,
                endpoint.admission,
                endpoint.ejected_until,
                endpoint.in_flight,
                endpoint.facts,
                endpoint.last_error,
            )
            for endpoint in fleet.all()
        ),
        tuple(runtime.dispatcher.depth(TIER_POOLS[tier]) for tier in TIERS),
    )


# --- traffic and decisions --------------------------------------------------------------------


def _pools(runtime: Runtime, view: WindowView) -> list[str]:
    """The pools every bucket lists: the tiers, and the embedding models when configured or
    counted."""
    pools = [tier.value for tier in TIERS]
    if runtime.fleet.embeddings or Pool.EMBEDDINGS.value in view.requests:
        pools.append(Pool.EMBEDDINGS.value)
    return pools


def traffic_state(runtime: Runtime, view: WindowView) -> dict[str, Any]:
    """The ``traffic`` object of one window."""
    pools = _pools(runtime, view)
    ttft = view.ttft_ms
    unrouted = view.requests.get("unrouted", 0)
    return {
        "window_seconds": view.seconds,
        "bucket_seconds": view.bucket_seconds,
        "buckets": [
            {
                "start": iso(bucket.start),
                "requests": {pool: bucket.requests.get(pool, 0) for pool in pools},
                "by_strategy": bucket.strategies,
                "errors": bucket.errors,
                "retries": bucket.retries,
                "failovers": bucket.failovers,
                "fallbacks": bucket.fallbacks,
            }
            for bucket in view.buckets
        ],
        "totals": {
            "requests": view.total,
            "rps": round(view.total / max(float(BUCKET_SECONDS), view.covered_seconds), 3),
            "by_tier": {pool: view.requests.get(pool, 0) for pool in pools},
            "unrouted": unrouted,
            "by_strategy": view.strategies,
            "by_reason": view.reasons,
            "retries": view.retries,
            "failovers": view.failovers,
            "fallbacks": view.fallbacks,
            "errors": view.errors,
            "ttft_ms": None if ttft is None else {"p50": ttft[0], "p95": ttft[1]},
            "tokens": {
                pool: {"prompt": prompt, "completion": completion}
                for pool, (prompt, completion) in view.tokens.items()
            },
        },
    }


def shown_preview(kept: str, limit: int) -> str:
    """A kept preview as shown: whitespace folded, at most ``limit`` characters, an ellipsis
    marking a cut."""
    folded = " ".join(kept.split())
    return folded if len(folded) <= limit else folded[: limit - 1].rstrip() + "…"


def decision_state(item: Decided, show_prompts: bool, limit: int = 0) -> dict[str, Any]:
    """One recorded decision as the documented object; ``prompt_preview`` only while
    ``[ui] show_prompts`` is on, at most ``limit`` characters."""
    ended, request_id, fields, preview = item
    body: dict[str, Any] = {"time": iso(ended), "request_id": request_id}
    for name in _DECISION_FIELDS:
        body[name] = fields.get(name)
    body["stream"] = fields.get("stream")
    body["fallback"] = fields.get("routing_fallback")
    body["routing_ms"] = fields.get("routing_ms")
    body["error"] = fields.get("error")
    prompt_tokens = fields.get("prompt_tokens")
    body["tokens"] = (
        None
        if prompt_tokens is None
        else {"prompt": prompt_tokens, "completion": fields.get("completion_tokens")}
    )
    if show_prompts and preview is not None:
        body["prompt_preview"] = shown_preview(preview, limit)
    return body


def decisions_state(runtime: Runtime) -> list[dict[str, Any]]:
    """The kept decisions, newest first."""
    dashboard = runtime.dashboard
    show, limit = dashboard.show_prompts, dashboard.preview_chars
    return [decision_state(item, show, limit) for item in dashboard.decisions.newest()]


# --- the whole document -------------------------------------------------------------------------


def _router(runtime: Runtime) -> dict[str, Any]:
    workers = runtime.config.server.workers
    pid = os.getpid()
    note = None
    if workers > 1:
        note = (
            f"One worker's view (pid {pid}, one of {workers}): traffic and decisions count "
            "only the requests this worker answered; each worker keeps its own."
        )
    return {
        "version": __version__,
        "strategy": runtime.config.routing.strategy.value,
        "pid": pid,
        "workers": workers,
        "generation": runtime.generation,
        "note": note,
    }


def _config(request: web.Request, runtime: Runtime) -> dict[str, Any]:
    last = request.app[RELOADER].last
    last_reload = None
    if last is not None:
        at, report = last
        last_reload = {
            "at": iso(at),
            "ok": not report.rejected,
            "status": report.status,
            "trigger": report.trigger,
            "generation": report.generation,
            "problems": list(report.problems),
            "changed": list(report.changed),
            "restart_needed": list(report.restart_needed),
        }
    return {
        "source": runtime.config.source,
        "effective": effective_config(runtime.config),
        "last_reload": last_reload,
    }


def state_document(request: web.Request, runtime: Runtime, window: int) -> dict[str, Any]:
    """The whole ``GET /admin/state`` answer for ``window`` seconds."""
    now = time.time()
    view = runtime.dashboard.traffic.view(window, now)
    return {
        "version": STATE_VERSION,
        "generated_at": iso(now),
        "uptime_seconds": round(runtime.uptime(), 1),
        "router": _router(runtime),
        "fleet": fleet_state(runtime, view.instances),
        "traffic": traffic_state(runtime, view),
        "decisions": decisions_state(runtime),
        "config": _config(request, runtime),
    }


async def state(request: web.Request) -> web.Response:
    """``GET /admin/state?window=300|3600``."""
    runtime = request.app[RUNTIME]
    ensure_enabled(runtime, request)
    window = window_of(request)
    return web.Response(
        body=orjson.dumps(state_document(request, runtime, window)),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_get("/admin/state", state)
