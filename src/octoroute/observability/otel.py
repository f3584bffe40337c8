"""OpenTelemetry tracing (the ``octoroute[otel]`` extra): the one module that imports it.

Imported only by the entry point, at start-up, when ``observability.tracing.tracing_settings``
says the environment switched tracing on; a missing extra is an ``ImportError`` there. The SDK
reads its own standard variables (``OTEL_EXPORTER_OTLP_*`` for where and how to export,
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``);
this module adds only the default ``service.name`` (``octoroute``) and the spans.

Spans are exported in batches by the SDK's own thread (``BatchSpanProcessor``), so the event loop
never waits on the collector. The tracer provider is this object's, not OpenTelemetry's global
one: several routers in one process (the tests) each keep their own.

Three kinds of span, explicitly parented (no reliance on the ambient context):

* the request, ``SERVER``, named ``{method} {route}``, continuing the client's ``traceparent``;
* ``routing``, the decision: strategy, tier, reason, confidence when the decision has one;
* ``upstream attempt``, ``CLIENT``, one per attempt: endpoint, instance, tier, attempt number,
  failover, upstream status, error; its context is what the model server gets as
  ``traceparent``, so the server's own spans hang under the attempt that reached it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from octoroute import __version__
from octoroute.config.schema import EndpointConfig
from octoroute.enums import Strategy
from octoroute.observability.tracing import (
    DEFAULT_EXCLUDED,
    SERVICE_NAME,
    RoutedDecision,
    TracingSettings,
)

SCOPE: Final = "octoroute"
"""The instrumentation scope every span is reported under."""
PREFIX: Final = "octoroute."
"""Our own attributes: the request log line's field names under this prefix."""
SPANNED: Final = frozenset({"status", "duration_ms", "routing_ms"})
"""Log line fields a request span does not repeat: its ``http.response.status_code``, its own
duration and its routing child's say them."""
_PROPAGATOR: Final = TraceContextTextMapPropagator()
"""W3C ``traceparent``/``tracestate`` only: how a client's trace context is read (what is sent
upstream is written by ``_header_lines``)."""
_UNKNOWN_SERVICE: Final = "unknown_service"


def resource() -> Resource:
    """The SDK's resource from the environment, with ``service.name`` defaulting to
    ``octoroute`` rather than the SDK's ``unknown_service:python``."""
    found = Resource.create({"service.version": __version__})
    name = found.attributes.get("service.name")
    if isinstance(name, str) and not name.startswith(_UNKNOWN_SERVICE):
        return found
    return found.merge(Resource({"service.name": SERVICE_NAME}))


def provider_from(settings: TracingSettings) -> TracerProvider:
    """A tracer provider exporting as ``settings`` say, in batches off the event loop."""
    provider = TracerProvider(resource=resource())
    for name in settings.exporters:
        exporter = OTLPSpanExporter() if name == "otlp" else ConsoleSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def from_settings(settings: TracingSettings) -> OtelTracing:
    """The process's tracing, as the environment configured it."""
    return OtelTracing(provider_from(settings), excluded=settings.excluded)


class OtelTracing:
    """``observability.tracing.Tracing`` over an OpenTelemetry tracer provider.

    Tests build one over a provider with the SDK's in-memory exporter; ``from_settings`` builds
    the one ``octoroute serve`` uses.
    """

    def __init__(
        self,
        provider: TracerProvider | None = None,
        *,
        excluded: Sequence[str] = DEFAULT_EXCLUDED,
        processors: Sequence[SpanProcessor] = (),
    ) -> None:
        self.provider = TracerProvider(resource=resource()) if provider is None else provider
        for processor in processors:
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer(SCOPE, __version__)
        self._excluded = re.compile("|".join(f"(?:{p})" for p in excluded)) if excluded else None
        self._endpoints: dict[str, dict[str, str | int]] = {}

    def traces(self, path: str) -> bool:
        """Whether ``path`` gets a span: not matched by an excluded pattern."""
        return self._excluded is None or self._excluded.search(path) is None

    def start_request(
        self, method: str, route: str | None, path: str, headers: Mapping[str, str]
    ) -> OtelRequest | Unsampled:
        """The request's server span, a child of the client's span when it sent one; a request
        the sampler drops gets no child spans at all (``Unsampled``)."""
        parent = _PROPAGATOR.extract(headers)
        attributes: dict[str, str] = {"http.request.method": method, "url.path": path}
        if route is not None:
            attributes["http.route"] = route
        span = self._tracer.start_span(
            f"{method} {route}" if route is not None else method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        if not span.is_recording():
            return Unsampled(span.get_span_context())
        return OtelRequest(self, span)

    def endpoint_attributes(self, endpoint: EndpointConfig, instance: str) -> dict[str, str | int]:
        """An attempt's fixed attributes for ``endpoint`` (the instance the log line calls
        ``instance``), worked out on its first attempt."""
        known = self._endpoints.get(instance)
        if known is None:
            url = urlsplit(endpoint.base_url)  # hostname and port only: never its userinfo
            known = {
                "octoroute.endpoint": endpoint.name,
                "octoroute.instance": instance,
                "octoroute.tier": endpoint.pool.value,
                "http.request.method": "POST",
                "server.address": url.hostname or "",
                "server.port": url.port or (443 if url.scheme == "https" else 80),
            }
            self._endpoints[instance] = known
        return known

    @property
    def tracer(self) -> trace.Tracer:
        """The tracer every span of this router is started with."""
        return self._tracer

    def shutdown(self) -> None:
        """Flush buffered spans to the exporters and stop them."""
        self.provider.shutdown()


class OtelRequest:
    """One request's server span and the parent context of its children."""

    __slots__ = ("_context", "_span", "_tracing")

    def __init__(self, tracing: OtelTracing, span: trace.Span) -> None:
        self._tracing = tracing
        self._span = span
        self._context = trace.set_span_in_context(span)

    @property
    def span(self) -> trace.Span:
        """The server span."""
        return self._span

    def routing(self) -> OtelDecision:
        """Open the routing decision's span under the request's."""
        return OtelDecision(self._tracing.tracer.start_span("routing", context=self._context))

    def attempt(self, endpoint: EndpointConfig, instance: str, number: int) -> OtelAttempt:
        """Open attempt ``number``'s span under the request's."""
        attributes: dict[str, str | int | bool] = {
            **self._tracing.endpoint_attributes(endpoint, instance),
            "octoroute.attempt": number,
            "octoroute.failover": number > 1,
        }
        if number > 1:
            attributes["http.request.resend_count"] = number - 1
        span = self._tracing.tracer.start_span(
            "upstream attempt", context=self._context, kind=SpanKind.CLIENT, attributes=attributes
        )
        return OtelAttempt(span)

    def annotate(self, fields: Mapping[str, object]) -> None:
        """The log line's fields, as ``octoroute.<field>`` attributes (all at once: the SDK
        takes a lock per call), but those the span tells by itself (``SPANNED``)."""
        self._span.set_attributes(_prefixed(fields))

    def finish(self, status: int | None, error: str | None, context: Mapping[str, object]) -> None:
        """End the server span: a 5xx is an error; a client that left is ``error.type``."""
        span = self._span
        attributes = _prefixed(context)
        if status is not None:
            attributes["http.response.status_code"] = status
            if status >= 500:
                error = error or str(status)
                span.set_status(Status(StatusCode.ERROR, error))
        if error is not None:
            attributes["error.type"] = error
        span.set_attributes(attributes)
        span.end()


def _prefixed(fields: Mapping[str, object]) -> dict[str, str | bool | int | float]:
    """``fields`` as our attributes: ``octoroute.`` names, scalar values, ``SPANNED`` left out."""
    return {
        PREFIX + name: value
        for name, value in fields.items()
        if name not in SPANNED and isinstance(value, str | bool | int | float)
    }


class OtelDecision:
    """The routing decision's span."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def decided(self, decision: RoutedDecision, strategy: Strategy) -> None:
        """Record where the request goes and why (never what it says)."""
        attributes: dict[str, str | int | float] = {
            "octoroute.strategy": decision.source.value,
            "octoroute.routing_strategy": strategy.value,
            "octoroute.tier": decision.tier.value,
            "octoroute.reason": decision.reason,
            "octoroute.task_type": decision.metadata.task_type.value,
            "octoroute.token_estimate": decision.metadata.token_estimate,
        }
        if decision.fallback is not None:
            attributes["octoroute.routing_fallback"] = decision.fallback
        confidence = getattr(decision, "confidence", None)
        if isinstance(confidence, int | float):
            attributes["octoroute.confidence"] = float(confidence)
        self._span.set_attributes(attributes)

    def end(self) -> None:
        """End the span."""
        self._span.end()


class OtelAttempt:
    """One upstream attempt's span."""

    __slots__ = ("_done", "_span")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._done = False

    def header_lines(self) -> bytes:
        """The attempt's W3C trace context as header lines for the upstream request."""
        return _header_lines(self._span.get_span_context())

    def answered(self, status: int | None, error: str | None) -> None:
        """The answer went to the client (``error``: it broke on the way)."""
        self._done = True
        attributes: dict[str, str | int] = {"octoroute.outcome": "answered"}
        if status is not None:
            attributes["http.response.status_code"] = status
        if error is not None:
            attributes["error.type"] = error
            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.set_attributes(attributes)

    def failed(self, reason: str, status: int | None, relayed: bool) -> None:
        """The attempt failed: failed over, or (``relayed``) the client's own error, which an
        HTTP client span still reports as an error (OpenTelemetry's HTTP conventions)."""
        self._done = True
        attributes: dict[str, str | int] = {
            "octoroute.outcome": "relayed" if relayed else "failed",
            "error.type": reason,
        }
        if status is not None:
            attributes["http.response.status_code"] = status
        self._span.set_attributes(attributes)
        self._span.set_status(Status(StatusCode.ERROR, reason))

    def end(self) -> None:
        """End the span; one never answered nor failed was cancelled (the client left)."""
        if not self._done:
            self._span.set_attribute("octoroute.outcome", "cancelled")
            self._span.set_attribute("error.type", "cancelled")
        self._span.end()


class Unsampled:
    """A request the sampler dropped, as its request, decision and attempt traces at once:
    nothing is recorded, and no child span is made (the SDK's cost of a span that records
    nothing is most of a recorded one's). The model server still learns the trace and that it is
    not sampled: its ``traceparent`` names the request's span, with the sampled flag off."""

    __slots__ = ("_lines",)

    def __init__(self, context: trace.SpanContext) -> None:
        self._lines = _header_lines(context)

    def routing(self) -> Unsampled:
        """Itself: no decision span."""
        return self

    def attempt(self, endpoint: EndpointConfig, instance: str, number: int) -> Unsampled:
        """Itself: no attempt span."""
        return self

    def header_lines(self) -> bytes:
        """The request span's trace context, not sampled."""
        return self._lines

    def decided(self, decision: RoutedDecision, strategy: Strategy) -> None:
        """Nothing to record."""

    def answered(self, status: int | None, error: str | None) -> None:
        """Nothing to record."""

    def failed(self, reason: str, status: int | None, relayed: bool) -> None:
        """Nothing to record."""

    def annotate(self, fields: Mapping[str, object]) -> None:
        """Nothing to record."""

    def finish(self, status: int | None, error: str | None, context: Mapping[str, object]) -> None:
        """Nothing to end: the span records nothing."""

    def end(self) -> None:
        """Nothing to end."""


def _header_lines(context: trace.SpanContext) -> bytes:
    """``context`` as W3C trace context header lines: ``traceparent`` (version 00) and the
    trace's ``tracestate``, if it has one."""
    lines = b"traceparent: 00-%032x-%016x-%02x\r\n" % (
        context.trace_id,
        context.span_id,
        context.trace_flags,
    )
    if context.trace_state:
        lines += b"tracestate: %s\r\n" % context.trace_state.to_header().encode("ascii")
    return lines
