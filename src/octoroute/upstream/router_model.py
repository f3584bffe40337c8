"""The LLM router's model call over HTTP: the ``RouterModel`` the routing strategies ask.

Two attempts on distinct endpoints of ``routing.router_tier``, each bounded by that tier's
``[routing.router_timeouts]`` value. Only transport failures count against an endpoint's health;
an answer the router cannot use is the model's fault, not the server's.
"""

from __future__ import annotations

import asyncio
from typing import Final

import msgspec
import orjson

from octoroute.config.schema import RoutingConfig
from octoroute.errors import (
    RoutingError,
    ServerOverloaded,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamStatusError,
    UpstreamThrottled,
    UpstreamTimeout,
)
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.selector import Fleet
from octoroute.upstream.attempts import busy_seconds
from octoroute.upstream.client import BufferedResponse, UpstreamClient
from octoroute.upstream.forward import Lane

ROUTER_ATTEMPTS: Final = 2
ROUTER_BACKOFF_SECONDS: Final = 0.1
ROUTER_MAX_TOKENS: Final = 32
"""A tier name is one or two tokens; a small cap bounds the cost of a model that rambles."""


class _AnswerMessage(msgspec.Struct):
    content: str | None = None


class _AnswerChoice(msgspec.Struct):
    message: _AnswerMessage


class _Answer(msgspec.Struct):
    choices: list[_AnswerChoice]


_decode_answer = msgspec.json.Decoder(_Answer).decode


class HttpRouterModel:
    """Asks the router tier's model, over the shared upstream client."""

    def __init__(
        self,
        routing: RoutingConfig,
        fleet: Fleet,
        client: UpstreamClient,
        lanes: dict[Endpoint, Lane],
    ) -> None:
        self._tier = routing.router_tier
        self._timeout = routing.router_timeouts.for_tier(routing.router_tier)
        self._fleet = fleet
        self._client = client
        self._lanes = lanes

    async def _call(self, endpoint: Endpoint, prompt: str) -> BufferedResponse:
        body = orjson.dumps(
            {
                "model": endpoint.config.name,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": min(
                    ROUTER_MAX_TOKENS, endpoint.config.max_tokens or ROUTER_MAX_TOKENS
                ),
                "temperature": 0,
                "stream": False,
            }
        )
        lane = self._lanes[endpoint]
        return await self._client.send(lane.target, body, timeout=self._timeout)

    async def ask(self, prompt: str) -> str:
        """The router model's raw answer text; ``RoutingError`` when none could be had."""
        tried: list[Endpoint] = []
        last: UpstreamError | None = None
        for attempt in range(1, ROUTER_ATTEMPTS + 1):
            taken = self._fleet.take(self._fleet.tiers[self._tier], tried)
            if taken is None:
                break
            endpoint, trial = taken
            tried.append(endpoint)
            lane = self._lanes[endpoint]
            lane.metrics.inflight.inc()
            try:
                if attempt > 1:
                    await asyncio.sleep(ROUTER_BACKOFF_SECONDS)
                answer = await self._call(endpoint, prompt)
            except UpstreamStatusError as error:
                if error.is_client_error:
                    endpoint.answered(trial)
                    raise RoutingError(
                        f"router model refused the request: {error.message}", reason="transport"
                    ) from error
                endpoint.failed(error.reason, error.message, trial)
                last = error
                continue
            except UpstreamThrottled as error:
                lane.metrics.throttled.inc()
                endpoint.throttle(busy_seconds(error.retry_after), error.upstream_status)
                last = error
                continue
            except UpstreamError as error:
                if isinstance(error, UpstreamAuthFailed):
                    lane.log_auth_failure(error)
                if error.counts_against_health:
                    endpoint.failed(error.reason, error.message, trial)
                last = error
                continue
            except ServerOverloaded as error:
                # Out of file descriptors: no endpoint is to blame; the rules decide instead.
                raise RoutingError(
                    f"router model unreachable: {error.message}", reason="transport"
                ) from error
            else:
                # Before end(): a trial's verdict must be in while it is still the trial.
                endpoint.succeeded(trial)
            finally:
                lane.metrics.inflight.dec()
                endpoint.end(trial)
            try:
                choices = _decode_answer(answer.body).choices
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                raise RoutingError(
                    f"router model answered something that is not a chat completion: {error}",
                    reason="unparseable",
                ) from error
            return (choices[0].message.content or "") if choices else ""
        if last is None:
            raise RoutingError(
                f"no endpoint of router tier '{self._tier}' could take the call (unhealthy, "
                "ejected, told busy, or at max_concurrent)",
                reason="unavailable",
            )
        reason = "timeout" if isinstance(last, UpstreamTimeout) else "transport"
        raise RoutingError(f"router model unreachable: {last.message}", reason=reason)
