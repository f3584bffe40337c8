"""The retry budget shared by buffered and streaming forwarding.

Up to three attempts, each on an endpoint not yet tried for this request, with a capped
exponential backoff between them. What the client is told when every attempt failed is decided
here too, so both paths word it the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from octoroute.enums import TIER_POOLS, Pool, Tier
from octoroute.errors import (
    BadUpstreamResponse,
    EndpointSaturated,
    EventTooLarge,
    NoHealthyEndpoint,
    OctorouteError,
    ResponseTooLarge,
    StreamTooLong,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamThrottled,
    UpstreamTimeout,
)

if TYPE_CHECKING:
    from octoroute.fleet.selector import Unavailability

MAX_ATTEMPTS: Final = 3
BACKOFF_BASE_SECONDS: Final = 0.1
BACKOFF_CAP_SECONDS: Final = 2.0
MAX_BUSY_SECONDS: Final = 60.0
"""A ``Retry-After`` longer than this is capped: a typo or a hostile header must not take an
instance out of rotation for hours."""
MIN_CLIENT_RETRY_AFTER_SECONDS: Final = 1.0
"""The shortest ``Retry-After`` a client is told (the header counts whole seconds)."""
DEFAULT_BUSY_SECONDS: Final = 1.0
"""How long an instance that said busy without a usable ``Retry-After`` is left alone."""


_NAMED_FAULTS: Final = (
    ResponseTooLarge,
    BadUpstreamResponse,
    UpstreamAuthFailed,
    EventTooLarge,
    StreamTooLong,
)
"""Upstream faults whose code the client gets when they were the last attempt's."""


def busy_seconds(retry_after: float | None) -> float:
    """How long to leave an instance alone after it answered busy with ``retry_after``."""
    if retry_after is None:
        return DEFAULT_BUSY_SECONDS
    return min(max(retry_after, 0.0), MAX_BUSY_SECONDS)


def backoff_before(attempt: int) -> float:
    """Seconds to wait before attempt number ``attempt`` (1-based): 0, then 0.1, 0.2, ... capped."""
    if attempt <= 1:
        return 0.0
    return float(min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 2), BACKOFF_CAP_SECONDS))


class Scope:
    """What may serve one request: a tier's endpoints, or the replicas of one named model
    (a chat model or an embedding model); ``pool`` picks the metric children it counts under."""

    __slots__ = ("description", "endpoint_count", "pool")

    def __init__(self, pool: Tier | Pool, description: str, endpoint_count: int) -> None:
        self.pool = pool if isinstance(pool, Pool) else TIER_POOLS[pool]
        self.description = description
        """``tier 'fast'`` or ``model 'qwen3:8b'``: how messages name the scope."""
        self.endpoint_count = endpoint_count


def exhausted(
    scope: Scope, tried: int, last_error: UpstreamError | None, unavailable: Unavailability
) -> OctorouteError:
    """The client-facing error once no further attempt is possible.

    When the only endpoints left are busy (they answered 429, or 503 with ``Retry-After``), the
    client is told the same status with a ``Retry-After`` of when the first is free again.
    Otherwise: 503 when nothing could even be tried, 504 when the last attempt timed out, else
    502; the message names the scope, how many endpoints were tried and why the last one failed.
    """
    throttled = isinstance(last_error, UpstreamThrottled)
    if throttled or (last_error is None and unavailable.busy_for is not None):
        busy = max(unavailable.busy, 1)
        waiting = "is" if busy == 1 else "are"
        if unavailable.busy_for is not None:
            wait, status = unavailable.busy_for, unavailable.busy_status
        else:
            # The busy spell is already over (``Retry-After: 0``): still the busy answer, and a
            # client should wait a moment rather than hammer a server that said "not now".
            assert isinstance(last_error, UpstreamThrottled)
            wait, status = last_error.retry_after or 0.0, last_error.upstream_status
        wait = max(wait, MIN_CLIENT_RETRY_AFTER_SECONDS)
        return UpstreamThrottled(
            f"Every endpoint of {scope.description} that could take this request is busy: "
            f"{busy} {waiting} asking clients to wait (HTTP {status} with "
            f"Retry-After). Retry in {wait:.0f} s.",
            endpoint=last_error.endpoint if last_error is not None else "",
            upstream_status=status,
            retry_after=wait,
        )
    if last_error is None:
        return NoHealthyEndpoint(_nobody(scope, unavailable))
    if isinstance(last_error, EndpointSaturated):
        # Overload of our own making (max_connections), not an upstream fault: say 503 and when.
        return EndpointSaturated(
            f"Every endpoint of {scope.description} that could take this request is at its "
            f"connection limit (max_connections); last: {last_error.message}",
            endpoint=last_error.endpoint,
        )
    plural = "endpoint" if tried == 1 else "endpoints"
    message = (
        f"Every attempt on {scope.description} failed ({tried} {plural} tried); "
        f"last error: {last_error.message}"
    )
    # Faults a person acts on differently (a key, a server sending garbage or too much, a limit
    # of ours) keep their own code; plain failures are "upstream_timeout" or "upstream_failed".
    named = isinstance(last_error, _NAMED_FAULTS)
    if isinstance(last_error, UpstreamTimeout):
        code = last_error.code if named else "upstream_timeout"
        return UpstreamTimeout(message, endpoint=last_error.endpoint, code=code)
    code = last_error.code if named else "upstream_failed"
    return UpstreamError(message, endpoint=last_error.endpoint, code=code)


def _nobody(scope: Scope, unavailable: Unavailability) -> str:
    """Why no endpoint of ``scope`` could be tried, in words that say what to check."""
    total = scope.endpoint_count
    if unavailable.ejected == 0:
        return (
            f"No healthy endpoint in {scope.description}: all {total} configured endpoints are "
            "marked unhealthy. Check that the servers are running; GET /models shows each "
            "endpoint's health."
        )
    back = (
        f"; the first is tried again in {unavailable.ejected_for:.0f} s"
        if unavailable.ejected_for is not None
        else ""
    )
    return (
        f"No endpoint in {scope.description} can take a request now: of {total} configured, "
        f"{unavailable.unhealthy} unhealthy and {unavailable.ejected} ejected after failing real "
        f"requests{back}. GET /models shows each endpoint's state and last error."
    )
