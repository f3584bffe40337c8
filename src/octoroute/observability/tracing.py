"""Tracing's seam: when OpenTelemetry tracing is on, and what the router asks of it.

Tracing is optional twice over: it needs the ``octoroute[otel]`` extra, and it is switched on
only by the standard ``OTEL_*`` environment variables (:func:`tracing_settings` states the rule).
The router never imports OpenTelemetry itself: ``observability.otel`` does, and only the entry
point imports that module, at start-up, when the settings say tracing is on. Everything else
holds a ``Tracing | None`` (and, per request, a ``RequestTrace | None``) typed by the protocols
below, so with tracing off a request pays one ``is None`` test where a span would start, and no
OpenTelemetry module is ever loaded.

Spans carry what the request's log line carries (its fields under ``octoroute.``), the routing
decision and each upstream attempt; never prompt text, never a key (only a client key's name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Protocol

import msgspec

from octoroute.config.schema import EndpointConfig
from octoroute.enums import DecisionSource, Strategy, TaskType, Tier

SDK_DISABLED_ENV: Final = "OTEL_SDK_DISABLED"
TRACES_EXPORTER_ENV: Final = "OTEL_TRACES_EXPORTER"
ENDPOINT_ENVS: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""Either one switches tracing on with the OTLP exporter (the traces-specific one wins)."""
PROTOCOL_ENVS: Final = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
"""The first one set says which OTLP transport to use; only ``http/protobuf`` is shipped."""
EXCLUDED_URLS_ENV: Final = "OTEL_PYTHON_EXCLUDED_URLS"
"""Comma-separated regular expressions; a request whose path matches one gets no span (the
name OpenTelemetry's Python instrumentations read)."""
DEFAULT_EXCLUDED: Final = ("^/health$", "^/metrics$")
"""Without ``OTEL_PYTHON_EXCLUDED_URLS``: health checks and Prometheus scrapes, which would
otherwise be most of the traces and none of the interest."""
SERVICE_NAME: Final = "octoroute"
"""``service.name`` unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` names one."""
EXPORTERS: Final = frozenset({"otlp", "console"})
"""What ``OTEL_TRACES_EXPORTER`` may list (besides ``none``): OTLP over HTTP, or JSON lines on
stdout (for a first look without a collector)."""
OTLP_PROTOCOL: Final = "http/protobuf"
_TRUE: Final = frozenset({"true", "1", "yes", "on"})


class TracingSetupError(ValueError):
    """The ``OTEL_*`` variables ask for something this router cannot do; the message says what
    to set instead. Raised at start-up, before the server listens."""


class TracingSettings(msgspec.Struct, frozen=True):
    """What the environment asks of tracing, decided once at start-up."""

    exporters: tuple[str, ...]
    """``otlp`` and/or ``console``, in the order given."""
    excluded: tuple[str, ...] = DEFAULT_EXCLUDED
    """Regular expressions of paths that get no span."""


def tracing_settings(environ: Mapping[str, str]) -> TracingSettings | None:
    """Whether ``environ`` switches tracing on, and how; ``None`` means off.

    The rule: ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set. Otherwise
    ``OTEL_TRACES_EXPORTER`` decides when it is set (``none`` is off; ``otlp``, ``console`` or
    both comma-separated are on), and when it is not, setting
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns on the OTLP
    exporter. Nothing set: off (unlike the SDK's own default of exporting to localhost, the
    router stays silent until asked). Raises ``TracingSetupError`` for an exporter or OTLP
    protocol this router does not ship, or an excluded-URL pattern that does not compile.
    """
    if environ.get(SDK_DISABLED_ENV, "").strip().lower() in _TRUE:
        return None
    named = environ.get(TRACES_EXPORTER_ENV, "").strip().lower()
    if named:
        exporters = tuple(dict.fromkeys(part.strip() for part in named.split(",") if part.strip()))
        unknown = [name for name in exporters if name not in EXPORTERS | {"none"}]
        if unknown:
            raise TracingSetupError(
                f"{TRACES_EXPORTER_ENV}={named!r}: this router can export traces with 'otlp' "
                f"(OTLP over HTTP) or 'console', or not at all ('none'); it cannot use "
                f"{', '.join(map(repr, unknown))}."
            )
        exporters = tuple(name for name in exporters if name != "none")
        if not exporters:
            return None
    elif any(environ.get(name, "").strip() for name in ENDPOINT_ENVS):
        exporters = ("otlp",)
    else:
        return None
    if "otlp" in exporters:
        _check_protocol(environ)
    return TracingSettings(exporters, _excluded(environ))


def _check_protocol(environ: Mapping[str, str]) -> None:
    for name in PROTOCOL_ENVS:
        value = environ.get(name, "").strip().lower()
        if not value:
            continue
        if value != OTLP_PROTOCOL:
            raise TracingSetupError(
                f"{name}={value!r}: octoroute[otel] ships the OTLP exporter over HTTP only. "
                f"Set {name}={OTLP_PROTOCOL} and point the endpoint at the collector's HTTP "
                "port (4318 by default), or unset it."
            )
        return


def _excluded(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = environ.get(EXCLUDED_URLS_ENV)
    if raw is None:
        return DEFAULT_EXCLUDED
    patterns = tuple(part.strip() for part in raw.split(",") if part.strip())
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise TracingSetupError(
                f"{EXCLUDED_URLS_ENV}: {pattern!r} is not a regular expression ({error})."
            ) from None
    return patterns


# --- what the router asks of a tracer ------------------------------------------------------------


class RoutedMetadata(Protocol):
    """What a decision span reads of the routing metadata (never the prompt itself)."""

    @property
    def token_estimate(self) -> int: ...

    @property
    def task_type(self) -> TaskType: ...


class RoutedDecision(Protocol):
    """What a decision span reads of ``routing.strategy.Decision``. An optional ``confidence``
    (a float, from learned routing) is read with ``getattr`` when the decision has one."""

    @property
    def tier(self) -> Tier: ...

    @property
    def source(self) -> DecisionSource: ...

    @property
    def reason(self) -> str: ...

    @property
    def fallback(self) -> str | None: ...

    @property
    def metadata(self) -> RoutedMetadata: ...


class DecisionTrace(Protocol):
    """The span of one routing decision, open while routing runs."""

    def decided(self, decision: RoutedDecision, strategy: Strategy) -> None:
        """Record the decision (``strategy`` is the configured one, ``rule``/``llm``/``hybrid``)."""
        ...

    def end(self) -> None:
        """Close the span (a decision never recorded: routing was cancelled)."""
        ...


class AttemptTrace(Protocol):
    """The span of one upstream attempt, open from its slot to its last byte."""

    def header_lines(self) -> bytes:
        """``traceparent`` (and ``tracestate``) header lines naming this attempt as the parent
        of whatever the model server records."""
        ...

    def answered(self, status: int | None, error: str | None) -> None:
        """The attempt's answer reached the client: its upstream status, and ``error`` when it
        still went wrong on the way (a stream broken mid-way, a client that left)."""
        ...

    def failed(self, reason: str, status: int | None, relayed: bool) -> None:
        """The attempt failed with ``reason`` (and the upstream's ``status`` if it answered);
        ``relayed``: it was the client's own error, sent back as it came, not failed over."""
        ...

    def end(self) -> None:
        """Close the span (neither answered nor failed: the request was cancelled)."""
        ...


class RequestTrace(Protocol):
    """The server span of one request, and the parent of its decision and attempts."""

    def routing(self) -> DecisionTrace:
        """Open the span of the routing decision."""
        ...

    def attempt(self, endpoint: EndpointConfig, instance: str, number: int) -> AttemptTrace:
        """Open the span of attempt ``number`` (1-based) on ``endpoint``, the instance the log
        line calls ``instance`` (``fast[1]``)."""
        ...

    def annotate(self, fields: Mapping[str, object]) -> None:
        """Add the request log line's fields (``route``, ``model``, ``tier``, ...)."""
        ...

    def finish(self, status: int | None, error: str | None, context: Mapping[str, object]) -> None:
        """Close the span with the status the client got (``None``: it left first), and the
        fields bound to the request's log context (``request_id``; ``key``, the client key's
        name, when ``[auth]`` is on)."""
        ...


class Tracing(Protocol):
    """A process's tracer: one per server process, built at start-up from the environment."""

    def traces(self, path: str) -> bool:
        """Whether a request for ``path`` gets a span (not excluded)."""
        ...

    def start_request(
        self, method: str, route: str | None, path: str, headers: Mapping[str, str]
    ) -> RequestTrace:
        """Open a request's server span, continuing the client's W3C trace context from
        ``headers`` (``traceparent``, ``tracestate``) when it sent a valid one."""
        ...

    def shutdown(self) -> None:
        """Export what is still buffered and stop; called once the event loop has ended, since
        it may block for the exporter's timeout."""
        ...
