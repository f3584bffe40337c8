"""The retry budget shared by buffered and streaming forwarding.

Up to three attempts, each on an endpoint not yet tried for this request, with a capped
exponential backoff between them. What the client is told when every attempt failed is decided
here too, so both paths word it the same way.
"""

from __future__ import annotations

from typing import Final

from octoroute.enums import Tier
from octoroute.errors import (
    NoHealthyEndpoint,
    OctorouteError,
    UpstreamError,
    UpstreamTimeout,
)

MAX_ATTEMPTS: Final = 3
BACKOFF_BASE_SECONDS: Final = 0.1
BACKOFF_CAP_SECONDS: Final = 2.0


def backoff_before(attempt: int) -> float:
    """Seconds to wait before attempt number ``attempt`` (1-based): 0, then 0.1, 0.2, ... capped."""
    if attempt <= 1:
        return 0.0
    return float(min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 2), BACKOFF_CAP_SECONDS))


class Scope:
    """What may serve one request: a tier's endpoints, or the replicas of one named model."""

    __slots__ = ("description", "endpoint_count", "tier")

    def __init__(self, tier: Tier, description: str, endpoint_count: int) -> None:
        self.tier = tier
        self.description = description
        """``tier 'fast'`` or ``model 'qwen3:8b'``: how messages name the scope."""
        self.endpoint_count = endpoint_count


def exhausted(scope: Scope, tried: int, last_error: UpstreamError | None) -> OctorouteError:
    """The client-facing error once no further attempt is possible.

    503 when nothing could even be tried, 504 when the last attempt timed out, else 502; the
    message names the scope, how many endpoints were tried and why the last one failed.
    """
    if last_error is None:
        return NoHealthyEndpoint(
            f"No healthy endpoint in {scope.description}: all {scope.endpoint_count} "
            "configured endpoints are marked unhealthy. Check that the servers are running; "
            "GET /models shows each endpoint's health."
        )
    plural = "endpoint" if tried == 1 else "endpoints"
    message = (
        f"Every attempt on {scope.description} failed ({tried} {plural} tried); "
        f"last error: {last_error.message}"
    )
    if isinstance(last_error, UpstreamTimeout):
        return UpstreamTimeout(message, endpoint=last_error.endpoint, code="upstream_timeout")
    return UpstreamError(message, endpoint=last_error.endpoint, code="upstream_failed")
