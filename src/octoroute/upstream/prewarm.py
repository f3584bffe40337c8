"""Pre-warming (``routing.prewarm``): load a model on a cold instance before requests need it.

When a request is routed to the deep tier and the instance placement would prefer there (by
load and affinity, warmth aside) is known cold while the request itself goes elsewhere, a tiny
load request is sent to that instance in the background, so the conversation's next turns find
it warm. It never delays the request that triggered it, and never piles up: at most one
pre-warm per instance at a time, and none within :data:`COOLDOWN_SECONDS` of the last.

What is sent depends on the instance's ``kind``:

* ``ollama``: ``POST {server root}/api/generate`` with only ``{"model": name}``, which loads
  the model without generating; the server's own ``OLLAMA_KEEP_ALIVE`` decides how long it stays
  (a ``keep_alive`` of ours could shorten a longer one the operator chose);
* any other kind: a one-token chat completion (``max_tokens: 1``), which loads a model on
  servers that load on demand (llama.cpp in router mode, LM Studio).

A pre-warm that answers counts as a cold start (its duration is the observed load time) and the
instance counts as warm from then on. It holds no ``max_concurrent`` slot: it loads, it does not
decode. Failures are logged at debug level only; the request path reports real failures.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final

import orjson

from octoroute.enums import Kind
from octoroute.errors import ServerOverloaded, UpstreamError
from octoroute.observability.logging import get_logger
from octoroute.upstream.client import CHAT_PATH, OLLAMA_LOAD_PATH, UpstreamClient

if TYPE_CHECKING:
    from octoroute.fleet.endpoint import Endpoint
    from octoroute.upstream.forward import Lane

COOLDOWN_SECONDS: Final = 60.0
"""After a pre-warm of an instance ends (either way), the next waits this long: the prober's
next round says whether the model stayed loaded."""
TIMEOUT_SECONDS: Final = 600.0
"""A model load may take minutes (a 120B model from disk); the pre-warm waits this long."""

log = get_logger("octoroute.fleet")


def load_request(endpoint: Endpoint) -> tuple[str, bytes]:
    """The path and body that make ``endpoint``'s server load its model."""
    name = endpoint.config.name
    if endpoint.config.kind is Kind.OLLAMA:
        return OLLAMA_LOAD_PATH, orjson.dumps({"model": name})
    body = {
        "model": name,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "stream": False,
    }
    return CHAT_PATH, orjson.dumps(body)


class Prewarmer:
    """The background pre-warms of one runtime: started on demand, cancelled at shutdown."""

    def __init__(self, client: UpstreamClient, lanes: dict[Endpoint, Lane]) -> None:
        self._client = client
        self._lanes = lanes
        self._tasks: dict[Endpoint, asyncio.Task[None]] = {}
        self._last: dict[Endpoint, float] = {}

    def warm(self, endpoint: Endpoint) -> bool:
        """Start loading ``endpoint``'s model unless it is not known cold, is loading, or was
        pre-warmed lately; ``True`` when a pre-warm started."""
        if not endpoint.cold or endpoint.facts.loading or endpoint in self._tasks:
            return False
        now = time.monotonic()
        if now - self._last.get(endpoint, -COOLDOWN_SECONDS) < COOLDOWN_SECONDS:
            return False
        self._last[endpoint] = now
        task = asyncio.get_running_loop().create_task(self._load(endpoint))
        self._tasks[endpoint] = task
        return True

    def running(self, endpoint: Endpoint) -> bool:
        """Whether a pre-warm of ``endpoint`` is under way."""
        return endpoint in self._tasks

    def forget(self, endpoint: Endpoint) -> None:
        """``endpoint`` is gone (a reload removed it and it drained): cancel its pre-warm."""
        task = self._tasks.pop(endpoint, None)
        if task is not None:
            task.cancel()
        self._last.pop(endpoint, None)

    async def _load(self, endpoint: Endpoint) -> None:
        lane = self._lanes[endpoint]
        path, body = load_request(endpoint)
        started = time.perf_counter()
        try:
            await self._client.send(lane.target, body, timeout=TIMEOUT_SECONDS, path=path)
        except (UpstreamError, ServerOverloaded) as error:
            log.debug("pre-warm failed", instance=endpoint.id, error=error.message)
            return
        finally:
            if self._tasks.get(endpoint) is asyncio.current_task():
                del self._tasks[endpoint]
                self._last[endpoint] = time.monotonic()
        seconds = time.perf_counter() - started
        if endpoint.cold:
            lane.metrics.cold_starts.inc()
            lane.metrics.cold_start_seconds.observe(seconds)
            endpoint.loaded()
        log.info(
            "pre-warmed", instance=endpoint.id, endpoint=endpoint.name, seconds=round(seconds, 3)
        )

    async def stop(self) -> None:
        """Cancel every pre-warm still under way and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
