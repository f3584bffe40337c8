"""One configured upstream instance: its health, its admission and its load.

v1 keyed health by endpoint *name*, so two replicas sharing a name on different hosts shared one
record: one host failing took both out of rotation, and ``/models`` showed one of them. Here every
configured instance is its own :class:`Endpoint` with its own counters, compared by identity.

The state machine, driven by real requests and background probes alike::

    healthy --(failure_threshold consecutive failures)--> unhealthy
    unhealthy --(one success)--> healthy

Only the two transitions are reported, through a :class:`HealthListener`, so a flapping upstream
produces one log line and one gauge change per transition, not one per failed request.

Probes cannot see a server that answers ``GET /models`` but hangs on chat, so real requests feed a
second machine, passive outlier detection (Envoy's, scaled down to one process)::

    admitted --(eject_after consecutive real failures)--> ejected until T
    ejected --(T passes)--> half-open: selectable for exactly one request
    half-open --(selected)--> trial --success--> admitted
                                    --failure--> ejected again, for longer
                                    --no verdict (cancelled, busy)--> half-open

The n-th ejection lasts ``n × eject_base`` seconds, at most ``eject_max``; the count starts over
once an instance has stayed admitted for ``eject_max``. Only the trial's own verdict counts
while an instance is out: requests sent before the ejection may still finish either way. A
passed probe ends an ejection early only when connect errors caused it (the server was down and
is back); a timeout ejection means the server answers probes and hangs on chat, so a probe
proves nothing.

``ready_at`` folds admission and ``Retry-After`` into the one number selection compares with the
clock, so an eligible instance costs one comparison. Likewise what placement reads of the
instance's server (``context_window``, ``cold``) is worked out once per probe, in
:meth:`Endpoint.observe`, not per request.

Pure and synchronous: time comes from an injected :class:`Clock`, nothing here touches I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import StrEnum
from hashlib import blake2b
from typing import TYPE_CHECKING, NamedTuple, Protocol

from octoroute.config.redact import redact_url
from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.placement import reserve

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig
    from octoroute.enums import Pool

MAX_ERROR_CHARS = 200
"""``last_error`` is cut to this length: it is shown in ``/models`` and logs, not a traceback."""


class Admission(StrEnum):
    """Where an instance stands in passive outlier detection."""

    ADMITTED = "admitted"
    EJECTED = "ejected"
    """Out until ``ejected_until``; half-open (selectable once) after it."""
    TRIAL = "trial"
    """Half-open and its one trial request is under way: not selectable."""


class Health(StrEnum):
    """What is known of an instance's health, as ``/health`` and ``/models`` show it."""

    UNKNOWN = "unknown"
    """Nothing has succeeded on it yet and it has not failed ``failure_threshold`` times in a
    row: not probed yet, or failing but not yet marked. Selection still tries it (the router
    starts optimistic, so the first requests need not wait for the first probe round)."""
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class OutlierSettings(NamedTuple):
    """``[health]``'s ejection keys, as the endpoint needs them."""

    eject_after: int = 3
    base_seconds: float = 30.0
    max_seconds: float = 300.0


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

    def on_ejected(self, endpoint: Endpoint, cause: str, seconds: float) -> None:
        """``endpoint`` was just ejected for ``seconds``; ``cause`` labels the last failure."""

    def on_readmitted(self, endpoint: Endpoint) -> None:
        """``endpoint``'s trial request succeeded: it is back in rotation."""

    def on_availability(self, endpoint: Endpoint) -> None:
        """``endpoint``'s ``ready_at`` changed for another reason (a trial began or ended
        without a verdict, a ``Retry-After`` was recorded)."""


class NullListener:
    """A :class:`HealthListener` that ignores every transition: the default."""

    __slots__ = ()

    def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
        """Ignore the transition."""

    def on_recovered(self, endpoint: Endpoint) -> None:
        """Ignore the transition."""

    def on_ejected(self, endpoint: Endpoint, cause: str, seconds: float) -> None:
        """Ignore the transition."""

    def on_readmitted(self, endpoint: Endpoint) -> None:
        """Ignore the transition."""

    def on_availability(self, endpoint: Endpoint) -> None:
        """Ignore the change."""


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
    attributes (``pool``, ``name``, ``base_url``, ``priority``, ``weight``, ``healthy``) are plain
    slots, copied out of the config, because the selector reads them on every request; treat them
    as read-only.

    Health changes only through :meth:`mark_success` and :meth:`mark_failure` (probes and
    requests alike); admission and load through :meth:`begin`, :meth:`end`, :meth:`answered`,
    :meth:`succeeded`, :meth:`failed`, :meth:`probe_succeeded` and :meth:`throttle`.
    """

    __slots__ = (
        "_admitted_since",
        "_clock",
        "_consecutive_failures",
        "_last_check",
        "_last_error",
        "_listener",
        "_on_drained",
        "_outlier",
        "_real_failures",
        "_threshold",
        "admission",
        "affinity_placed",
        "base_url",
        "busy_status",
        "busy_until",
        "cold",
        "config",
        "context_window",
        "default_output",
        "ejected_until",
        "ejection_cause",
        "ejections",
        "facts",
        "healthy",
        "id",
        "in_flight",
        "inverse_weight",
        "max_concurrent",
        "name",
        "on_slot_freed",
        "phase",
        "placed",
        "pool",
        "position",
        "priority",
        "ready_at",
        "reserve",
        "retired",
        "seed",
        "seen_healthy",
        "weight",
    )

    id: str
    """Stable and unique within a fleet: pool and position in the file, e.g. ``fast[0]``,
    ``embeddings[1]``."""
    config: EndpointConfig
    pool: Pool
    """The tier it serves, or ``embeddings``."""
    position: int
    """Its place in its pool, in file order (``config.index``): where placement finds its
    rendezvous rank."""
    name: str
    """The model id sent upstream; replicas may share it."""
    base_url: str
    priority: int
    """Higher is preferred; lower priorities serve only when every higher one is unavailable."""
    weight: float
    """Relative share of traffic among eligible endpoints of the same priority; finite and > 0."""
    healthy: bool
    """Whether selection may choose this endpoint; every endpoint starts healthy.

    Read-only for everyone else: assigning it would bypass the transition listener. It is a plain
    slot rather than a property because a property read costs about 100 ns and selection reads it
    once per candidate.
    """
    ready_at: float
    """Clock reading from which selection may choose this instance as far as admission and
    ``Retry-After`` go: ``0`` when admitted and not busy, the end of an ejection or of a busy
    spell, ``inf`` during a trial. Read-only, like ``healthy``."""
    in_flight: int
    """Attempts under way on this instance (between :meth:`begin` and :meth:`end`)."""
    admission: Admission
    ejected_until: float
    ejections: int
    """How many times in a row this instance has been ejected (the next ejection's multiplier
    minus one)."""
    ejection_cause: str | None
    busy_until: float
    """Until when the upstream asked to be left alone (``Retry-After``)."""
    busy_status: int
    """The status that asked (429 or 503), told to clients when nothing else is left."""
    facts: InstanceFacts
    """What the last kind-specific probe learned (``UNKNOWN`` until one has); replaced whole by
    :meth:`observe`."""
    max_concurrent: int
    """``max_concurrent`` from the config; ``0``: unlimited. At the limit the instance is full."""
    context_window: int | None
    """The window placement checks: the configured ``context_window``, else the one the prober
    discovered, else ``None`` (unknown, never taken as too small). Set by :meth:`observe`."""
    cold: bool
    """The server says the model is not loaded, or is loading: known cold. Unknown is not cold.
    Set by :meth:`observe`."""
    default_output: int
    """The ``max_tokens`` the router fills in when a request sets none (``0`` for embeddings)."""
    reserve: int
    """What that default counts for in the context check: at most a quarter of the window
    (``fleet.placement.reserve``). Set by :meth:`observe`."""
    seed: int
    """This instance's stable hash for rendezvous (conversation affinity): the same in every
    process and across restarts, from its pool, model name and URL."""
    phase: float
    """``seed`` as a number in [0, 1): what placement multiplies a conversation key by."""
    inverse_weight: float
    """``1 / weight``, for the rendezvous rank."""
    placed: int
    """Requests placed on this instance since start-up (first attempts and failovers)."""
    affinity_placed: int
    """Of those, the ones placed by conversation affinity."""
    seen_healthy: bool
    """Whether a probe or a request has succeeded on this instance since start-up: until then,
    and while it is not marked unhealthy, its :attr:`health` is ``unknown``."""
    on_slot_freed: Callable[[Endpoint], None] | None
    """Called by :meth:`end` when an attempt ends on an instance with a slot limit, so a request
    waiting for a slot is woken; set by whoever queues requests (``fleet.dispatch``)."""
    retired: bool
    """Removed from the configuration by a reload: never selected again (``ready_at`` is
    ``inf`` for good), its attempts under way finish, then it is drained (:meth:`retire`)."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        failure_threshold: int = 3,
        clock: Clock = time.monotonic,
        listener: HealthListener | None = None,
        outlier: OutlierSettings | None = None,
    ) -> None:
        self.pool = config.pool
        self.name = config.name
        self.base_url = config.base_url
        self._settings(config, failure_threshold, OutlierSettings() if outlier is None else outlier)
        self._clock = clock
        self._listener: HealthListener = NullListener() if listener is None else listener
        self.healthy = True
        self.seen_healthy = False
        self._consecutive_failures = 0
        # Until the first check, "since last check" means "since start-up", as in v1's /models.
        self._last_check = clock()
        self._last_error: str | None = None
        self._real_failures = 0
        self._admitted_since = self._last_check
        self.admission = Admission.ADMITTED
        self.ready_at = 0.0
        self.in_flight = 0
        self.ejected_until = 0.0
        self.ejections = 0
        self.ejection_cause: str | None = None
        self.busy_until = 0.0
        self.busy_status = 429
        identity = f"{config.pool}\x00{config.name}\x00{config.base_url}".encode()
        self.seed = int.from_bytes(blake2b(identity, digest_size=8).digest(), "little")
        self.phase = (self.seed >> 11) * 2.0**-53
        self.placed = 0
        self.affinity_placed = 0
        self.on_slot_freed = None
        self.retired = False
        self._on_drained: Callable[[Endpoint], None] | None = None
        self.facts = UNKNOWN
        self.context_window = config.context_window
        self.reserve = reserve(self.default_output, self.context_window)
        self.cold = False

    def reconfigure(
        self,
        config: EndpointConfig,
        *,
        failure_threshold: int,
        outlier: OutlierSettings,
    ) -> None:
        """Take a reloaded configuration of the same instance (same pool, name and URL; see
        ``config.diff.endpoint_identity``) while keeping its state: health, ejection, failure
        counts, attempts in flight, what the prober learned.

        Everything read from the config is read again: its place in the file (``id``,
        ``position``), ``priority``, ``weight``, ``max_concurrent``, the ``max_tokens`` default,
        a configured ``context_window``, and ``[health]``'s threshold and ejection settings (an
        ejection under way keeps the end it was given). Attempts under way see the new values
        from their next step on.
        """
        self._settings(config, failure_threshold, outlier)
        self.observe(self.facts)  # the configured window, else the discovered one; the reserve

    def _settings(
        self, config: EndpointConfig, failure_threshold: int, outlier: OutlierSettings
    ) -> None:
        """What is read from the configuration rather than learned (at construction and on
        :meth:`reconfigure`); the context window and its reserve are :meth:`observe`'s."""
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        # The loader already enforces this; a non-positive or NaN weight would make weighted
        # selection silently skew or never pick, so refuse to build such an endpoint at all.
        if not (math.isfinite(config.weight) and config.weight > 0):
            raise ValueError(
                f"{config.key_path}: weight must be finite and > 0, got {config.weight}"
            )
        self.config = config
        self.id = f"{config.pool}[{config.index}]"
        self.position = config.index
        self.priority = config.priority
        self.weight = config.weight
        self.inverse_weight = 1.0 / config.weight
        self.max_concurrent = config.max_concurrent or 0
        self.default_output = config.max_tokens or 0
        self._threshold = failure_threshold
        self._outlier = outlier

    def retire(self, on_drained: Callable[[Endpoint], None]) -> None:
        """A reload removed this instance: it is never selected again and hears no transition
        any more; ``on_drained`` is called once the last attempt under way on it has ended (at
        once, from here, when none is)."""
        self.retired = True
        self._listener = NullListener()
        self.on_slot_freed = None
        self._on_drained = on_drained
        self._update_ready()
        if not self.in_flight:
            self._drained()

    def _drained(self) -> None:
        callback, self._on_drained = self._on_drained, None
        if callback is not None:
            callback(self)

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success, uncapped (keeps counting while unhealthy)."""
        return self._consecutive_failures

    @property
    def last_check(self) -> float:
        """Clock reading of the last success or failure, or of construction before any."""
        return self._last_check

    @property
    def health(self) -> Health:
        """``unhealthy`` once marked so, ``healthy`` once something succeeded on it, else
        ``unknown``; selection reads :attr:`healthy`, which is true for ``unknown`` too."""
        if not self.healthy:
            return Health.UNHEALTHY
        return Health.HEALTHY if self.seen_healthy else Health.UNKNOWN

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
        self.seen_healthy = True
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

    # --- passive outlier detection and load ----------------------------------------------------

    @property
    def ejected(self) -> bool:
        """Out of rotation by outlier detection: ejected, half-open or on trial."""
        return self.admission is not Admission.ADMITTED

    def begin(self) -> bool:
        """An attempt on this instance starts; ``True`` when it is the half-open trial.

        The caller passes the answer back to :meth:`succeeded`, :meth:`failed` and :meth:`end`.
        """
        self.in_flight += 1
        if self.admission is Admission.EJECTED:
            self.admission = Admission.TRIAL
            self._update_ready()
            self._listener.on_availability(self)
            return True
        return False

    def end(self, trial: bool) -> None:
        """The attempt started by :meth:`begin` is over, whatever happened.

        A trial that ended without a verdict (cancelled, or the upstream said busy) leaves the
        instance half-open, so the next request tries again.
        """
        self.in_flight -= 1
        if trial and self.admission is Admission.TRIAL:
            self.admission = Admission.EJECTED
            self._update_ready()
            self._listener.on_availability(self)
        if self.max_concurrent and self.on_slot_freed is not None:
            self.on_slot_freed(self)
        if self.retired and not self.in_flight:
            self._drained()

    def answered(self, trial: bool) -> None:
        """A real request got an answer: a success, or a client error the server gave on the
        request's merits. Either proves the server alive: the failure run ends and a trial
        re-admits. Health is not touched (see :meth:`succeeded`)."""
        self._real_failures = 0
        if trial and self.admission is Admission.TRIAL:
            self.admission = Admission.ADMITTED
            self._admitted_since = self._clock()
            self._update_ready()
            self._listener.on_readmitted(self)

    def succeeded(self, trial: bool) -> None:
        """A real request succeeded: health and outlier detection both hear it."""
        self.mark_success()
        self.answered(trial)

    def failed(self, cause: str, reason: str, trial: bool) -> None:
        """A real request failed in a way held against the server (timeout, connect, 5xx, ...).

        ``cause`` is a short fixed label (the ejection metric's), ``reason`` the message kept as
        ``last_error``. Counts towards health like any failure, and towards ejection while the
        instance is admitted; a failed trial ejects it again at once.
        """
        self.mark_failure(reason)
        if self.admission is Admission.ADMITTED:
            self._real_failures += 1
            if self._real_failures >= self._outlier.eject_after:
                self._eject(cause)
        elif trial and self.admission is Admission.TRIAL:
            self._eject(cause)

    def probe_succeeded(self) -> None:
        """A background probe passed: health recovers; a connect-error ejection goes half-open."""
        self.mark_success()
        if (
            self.admission is Admission.EJECTED
            and self.ejection_cause == "connect"
            and self.ejected_until > self._clock()
        ):
            self.ejected_until = self._clock()
            self._update_ready()
            self._listener.on_availability(self)

    def observe(self, facts: InstanceFacts) -> None:
        """Record what a kind-specific probe learned about this instance's server, and what
        placement reads of it: the window to check and whether the model is known cold."""
        self.facts = facts
        configured = self.config.context_window
        self.context_window = configured if configured is not None else facts.context_window
        self.reserve = reserve(self.default_output, self.context_window)
        self.cold = facts.loaded is False or facts.loading

    def loaded(self) -> None:
        """A request or a pre-warm on this instance was answered: its model is resident now,
        whatever the last probe said (the next probe has the final word)."""
        if self.cold:
            self.observe(self.facts._replace(loaded=True, loading=False))

    def throttle(self, seconds: float, status: int) -> None:
        """The upstream said busy (``status`` 429 or 503): leave it alone for ``seconds``."""
        until = self._clock() + seconds
        if until > self.busy_until:
            self.busy_until = until
            self.busy_status = status
            self._update_ready()
            self._listener.on_availability(self)

    def _eject(self, cause: str) -> None:
        now = self._clock()
        settings = self._outlier
        if self.admission is Admission.ADMITTED and now - self._admitted_since >= (
            settings.max_seconds
        ):
            self.ejections = 0  # it stayed admitted long enough: forgive the old ejections
        self.ejections += 1
        seconds = min(settings.base_seconds * self.ejections, settings.max_seconds)
        self.admission = Admission.EJECTED
        self.ejected_until = now + seconds
        self.ejection_cause = cause
        self._real_failures = 0
        self._update_ready()
        self._listener.on_ejected(self, cause, seconds)

    def _update_ready(self) -> None:
        admission = self.admission
        if admission is Admission.TRIAL or self.retired:
            self.ready_at = math.inf
        elif admission is Admission.EJECTED:
            self.ready_at = max(self.ejected_until, self.busy_until)
        else:
            self.ready_at = self.busy_until

    def seconds_since_check(self, now: float | None = None) -> int:
        """Whole seconds since :attr:`last_check` (``now`` defaults to this endpoint's clock).

        Never negative, so a caller passing a slightly older reading still gets a sane value.
        """
        if now is None:
            now = self._clock()
        return max(0, int(now - self._last_check))

    def __repr__(self) -> str:
        state = "healthy" if self.healthy else "unhealthy"
        if self.admission is not Admission.ADMITTED:
            state += f", {self.admission.value}"
        if self.retired:
            state += ", retired"
        return f"<Endpoint {self.id} {self.name!r} {redact_url(self.base_url)} {state}>"
