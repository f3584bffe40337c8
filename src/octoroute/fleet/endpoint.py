"""One configured upstream instance and its health state machine.

v1 keyed health by endpoint *name*, so two replicas sharing a name on different hosts shared one
record: one host failing took both out of rotation, and ``/models`` showed one of them. Here every
configured instance is its own :class:`Endpoint` with its own counters, compared by identity.

The state machine, driven by real requests and background probes alike::

    healthy --(failure_threshold consecutive failures)--> unhealthy
    unhealthy --(one success)--> healthy

Only the two transitions are reported, through a :class:`HealthListener`, so a flapping upstream
produces one log line and one gauge change per transition, not one per failed request.

Pure and synchronous: time comes from an injected :class:`Clock`, nothing here touches I/O.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Protocol

from octoroute.config.redact import redact_url

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig
    from octoroute.enums import Tier

MAX_ERROR_CHARS = 200
"""``last_error`` is cut to this length: it is shown in ``/models`` and logs, not a traceback."""


class Clock(Protocol):
    """A monotonic clock in seconds; ``time.monotonic`` in production, a fake in tests."""

    def __call__(self) -> float: ...


class HealthListener(Protocol):
    """Told about health transitions, once each; never about individual failures.

    Called synchronously, after the endpoint's state has changed, from whatever marked it (a
    request handler or the prober), so implementations must be cheap and must not raise.
    """

    def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
        """``endpoint`` just went from healthy to unhealthy; ``reason`` is the last failure."""

    def on_recovered(self, endpoint: Endpoint) -> None:
        """``endpoint`` just went from unhealthy back to healthy."""


class NullListener:
    """A :class:`HealthListener` that ignores every transition: the default."""

    __slots__ = ()

    def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
        """Ignore the transition."""

    def on_recovered(self, endpoint: Endpoint) -> None:
        """Ignore the transition."""


def shorten_error(reason: str) -> str:
    """``reason`` on one line and at most :data:`MAX_ERROR_CHARS` long, for ``last_error``.

    Upstream error texts can be whole HTML pages or multi-line tracebacks; a status view and a log
    field need the first useful words only.
    """
    text = " ".join(reason.split())
    if len(text) > MAX_ERROR_CHARS:
        return text[: MAX_ERROR_CHARS - 3] + "..."
    return text


class Endpoint:
    """One configured upstream instance: its immutable config plus mutable health state.

    Identity is the instance (default ``__eq__``/``__hash__``), so exclusion sets and metric maps
    can be keyed by the endpoint itself and replicas sharing a ``name`` never collide. The routing
    attributes (``tier``, ``name``, ``base_url``, ``priority``, ``weight``, ``healthy``) are plain
    slots, copied out of the config, because the selector reads them on every request; treat them
    as read-only.

    State changes only through :meth:`mark_success` and :meth:`mark_failure`.
    """

    __slots__ = (
        "_clock",
        "_consecutive_failures",
        "_last_check",
        "_last_error",
        "_listener",
        "_threshold",
        "base_url",
        "config",
        "healthy",
        "id",
        "name",
        "priority",
        "tier",
        "weight",
    )

    id: str
    """Stable and unique within a fleet: tier and position in the file, e.g. ``fast[0]``."""
    config: EndpointConfig
    tier: Tier
    name: str
    """The model id sent upstream; replicas may share it."""
    base_url: str
    priority: int
    """Higher is preferred; lower priorities serve only when every higher one is unavailable."""
    weight: float
    """Relative share of traffic among eligible endpoints of the same priority; finite and > 0."""
    healthy: bool
    """Whether selection may choose this endpoint; every endpoint starts healthy.

    Read-only for everyone else: assigning it would bypass the transition listener and leave the
    fleet's precomputed selection tables stale. It is a plain slot rather than a property because
    a property read costs about 100 ns and selection reads it once per candidate.
    """

    def __init__(
        self,
        config: EndpointConfig,
        *,
        failure_threshold: int = 3,
        clock: Clock = time.monotonic,
        listener: HealthListener | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        # The loader already enforces this; a non-positive or NaN weight would make weighted
        # selection silently skew or never pick, so refuse to build such an endpoint at all.
        if not (math.isfinite(config.weight) and config.weight > 0):
            raise ValueError(
                f"{config.key_path}: weight must be finite and > 0, got {config.weight}"
            )
        self.config = config
        self.id = f"{config.tier}[{config.index}]"
        self.tier = config.tier
        self.name = config.name
        self.base_url = config.base_url
        self.priority = config.priority
        self.weight = config.weight
        self._threshold = failure_threshold
        self._clock = clock
        self._listener: HealthListener = NullListener() if listener is None else listener
        self.healthy = True
        self._consecutive_failures = 0
        # Until the first check, "since last check" means "since start-up", as in v1's /models.
        self._last_check = clock()
        self._last_error: str | None = None

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success, uncapped (keeps counting while unhealthy)."""
        return self._consecutive_failures

    @property
    def last_check(self) -> float:
        """Clock reading of the last success or failure, or of construction before any."""
        return self._last_check

    @property
    def last_error(self) -> str | None:
        """The most recent failure's reason while failures are accumulating; ``None`` after a
        success, so a recovered endpoint does not keep showing a stale error."""
        return self._last_error

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that make this endpoint unhealthy."""
        return self._threshold

    def mark_success(self) -> None:
        """A request or probe succeeded: healthy at once, failure count reset.

        Reports :meth:`HealthListener.on_recovered` only if the endpoint was unhealthy.
        """
        self._last_check = self._clock()
        self._consecutive_failures = 0
        self._last_error = None
        if not self.healthy:
            self.healthy = True
            self._listener.on_recovered(self)

    def mark_failure(self, reason: str) -> None:
        """A request or probe failed with ``reason`` (shortened for display).

        The ``failure_threshold``-th consecutive failure makes the endpoint unhealthy and reports
        :meth:`HealthListener.on_unhealthy`; failures after that only count.
        """
        self._last_check = self._clock()
        self._consecutive_failures += 1
        self._last_error = shorten_error(reason)
        if self.healthy and self._consecutive_failures >= self._threshold:
            self.healthy = False
            self._listener.on_unhealthy(self, self._last_error)

    def seconds_since_check(self, now: float | None = None) -> int:
        """Whole seconds since :attr:`last_check` (``now`` defaults to this endpoint's clock).

        Never negative, so a caller passing a slightly older reading still gets a sane value.
        """
        if now is None:
            now = self._clock()
        return max(0, int(now - self._last_check))

    def __repr__(self) -> str:
        state = "healthy" if self.healthy else "unhealthy"
        return f"<Endpoint {self.id} {self.name!r} {redact_url(self.base_url)} {state}>"
