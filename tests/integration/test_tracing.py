"""OpenTelemetry spans of real requests: the router in-process over real sockets, the simulated
fleet behind it, the SDK's in-memory exporter collecting what a collector would get.

A span is exported when it ends, so "not exported yet" means "still open".
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from octoroute.observability.otel import OtelTracing
from octoroute.simulator import Drop, HttpError, SimulatedFleet, SimulatedModel
from octoroute.simulator.behaviour import RecordedRequest
from tests.harness import RouterHandle, config_for, first_probe_round, running_router, wait_until

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
SECRET_PROMPT = "my locker combination is 31-7-42, say hello"


class Spans:
    """The in-memory exporter of one router, with the lookups the tests need."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracing = OtelTracing(processors=[SimpleSpanProcessor(self.exporter)])

    def all(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.all() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        (only,) = self.named(name)
        return only

    def attempts(self) -> list[ReadableSpan]:
        return sorted(
            self.named("upstream attempt"), key=lambda span: attr(span, "octoroute.attempt")
        )


def attr(span: ReadableSpan, name: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(name)


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


def upstream_parent(request: RecordedRequest) -> tuple[str, str]:
    """The trace id and parent span id of the ``traceparent`` a model server received."""
    version, trace, parent, flags = request.headers["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    return trace, parent


def chat_posts(fleet: SimulatedFleet) -> list[RecordedRequest]:
    """Every chat request the fleet received, in arrival order."""
    posts = [request for model in fleet.models for request in model.chat_requests]
    return sorted(posts, key=lambda request: request.received_at)


def failing_first(fleet: SimulatedFleet) -> tuple[SimulatedModel, SimulatedModel]:
    """The fast replicas, the first preferred (``priority = 2``) and answering 503."""
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = HttpError(503)
    return preferred, other


@pytest.fixture
def spans() -> Spans:
    return Spans()


@pytest.fixture
async def traced(fleet: SimulatedFleet, spans: Spans) -> AsyncIterator[RouterHandle]:
    async with running_router(config_for(fleet, strategy="rule"), tracing=spans.tracing) as handle:
        yield handle


async def test_a_routed_request_has_a_server_span_with_its_decision_and_its_attempt_as_children(
    traced: RouterHandle, spans: Spans, fleet: SimulatedFleet
) -> None:
    client = AsyncOpenAI(base_url=traced.v1, api_key="sk-client-secret-key", max_retries=0)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": SECRET_PROMPT}]
        )
    await wait_until(lambda: bool(spans.named("POST /v1/chat/completions")), what="request span")

    request = spans.one("POST /v1/chat/completions")
    routing = spans.one("routing")
    (attempt,) = spans.attempts()
    assert request.kind is SpanKind.SERVER
    assert request.parent is None  # the client sent no trace context: a new trace
    assert attr(request, "http.request.method") == "POST"
    assert attr(request, "http.route") == "/v1/chat/completions"
    assert attr(request, "http.response.status_code") == 200
    assert attr(request, "octoroute.model") == "auto"
    assert attr(request, "octoroute.tier") == raw.headers["x-octoroute-tier"]
    assert attr(request, "octoroute.reason") == raw.headers["x-octoroute-reason"]
    assert attr(request, "octoroute.request_id") == raw.headers["x-request-id"]
    assert attr(request, "octoroute.endpoint") == raw.headers["x-octoroute-endpoint"]
    assert request.status.status_code is StatusCode.UNSET

    assert parent_id(routing) == span_id(request)
    assert attr(routing, "octoroute.strategy") == "rule"
    assert attr(routing, "octoroute.routing_strategy") == "rule"
    assert attr(routing, "octoroute.tier") == raw.headers["x-octoroute-tier"]
    assert attr(routing, "octoroute.reason") == raw.headers["x-octoroute-reason"]
    assert attr(routing, "octoroute.confidence") is None  # the rule decision has none

    served = raw.headers["x-octoroute-endpoint"]
    assert parent_id(attempt) == span_id(request)
    assert attempt.kind is SpanKind.CLIENT
    assert attr(attempt, "octoroute.endpoint") == served
    assert attr(attempt, "octoroute.tier") == raw.headers["x-octoroute-tier"]
    assert attr(attempt, "octoroute.instance") == attr(request, "octoroute.instance")
    assert attr(attempt, "octoroute.attempt") == 1
    assert attr(attempt, "octoroute.failover") is False
    assert attr(attempt, "http.response.status_code") == 200
    assert attr(attempt, "server.address") == "127.0.0.1"
    (upstream,) = chat_posts(fleet)
    assert attr(attempt, "server.port") == int(upstream.headers["Host"].rpartition(":")[2])
    assert upstream_parent(upstream) == (trace_id(request), span_id(attempt))

    for span in spans.all():
        for value in (span.attributes or {}).values():
            assert "locker" not in str(value), span.name
            assert "client-secret" not in str(value), span.name


async def test_the_client_trace_is_continued_and_the_model_server_gets_the_attempt_as_parent(
    traced: RouterHandle, spans: Spans, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    headers = {"traceparent": CLIENT_TRACEPARENT, "tracestate": "vendor=abc"}
    body = {"model": "deep", "messages": [{"role": "user", "content": "hi"}]}
    async with session.post(traced.v1 + "/chat/completions", json=body, headers=headers) as answer:
        assert answer.status == 200
        await answer.read()
    await wait_until(lambda: bool(spans.named("POST /v1/chat/completions")), what="request span")

    request = spans.one("POST /v1/chat/completions")
    (attempt,) = spans.attempts()
    assert trace_id(request) == CLIENT_TRACE_ID
    assert parent_id(request) == CLIENT_SPAN_ID
    assert request.parent is not None
    assert request.parent.is_remote
    routing = spans.one("routing")
    assert attr(routing, "octoroute.strategy") == "direct"
    assert attr(routing, "octoroute.reason") == "explicit_tier"
    (upstream,) = fleet.deep[0].chat_requests
    # The model server's parent is our attempt, in the client's trace; never the client's span.
    assert upstream_parent(upstream) == (CLIENT_TRACE_ID, span_id(attempt))
    assert upstream.headers.getall("traceparent") == [upstream.headers["traceparent"]]
    assert upstream.headers["tracestate"] == "vendor=abc"


async def test_a_failover_has_one_attempt_span_per_try_and_each_server_its_own_parent(
    spans: Spans, session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    preferred, other = failing_first(fleet)
    config = config_for(fleet, strategy="rule")
    async with running_router(config, tracing=spans.tracing) as router:
        await first_probe_round(router)
        body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(router.v1 + "/chat/completions", json=body) as answer:
            assert answer.status == 200
            assert answer.headers["x-octoroute-endpoint"] == other.name
    await wait_until(lambda: bool(spans.named("POST /v1/chat/completions")), what="request span")

    request = spans.one("POST /v1/chat/completions")
    first, second = spans.attempts()
    assert [parent_id(first), parent_id(second)] == [span_id(request)] * 2
    assert attr(first, "octoroute.endpoint") == preferred.name
    assert attr(first, "http.response.status_code") == 503
    assert attr(first, "error.type") == "status"
    assert attr(first, "octoroute.outcome") == "failed"
    assert first.status.status_code is StatusCode.ERROR
    assert attr(first, "octoroute.failover") is False
    assert attr(second, "octoroute.endpoint") == other.name
    assert attr(second, "octoroute.attempt") == 2
    assert attr(second, "octoroute.failover") is True
    assert attr(second, "http.request.resend_count") == 1
    assert attr(second, "http.response.status_code") == 200
    assert attr(second, "error.type") is None
    assert second.status.status_code is StatusCode.UNSET
    assert first.end_time is not None
    assert second.start_time is not None
    assert first.end_time <= second.start_time
    assert attr(request, "octoroute.attempts") == 2
    (failed,) = preferred.chat_requests
    (served,) = other.chat_requests
    assert upstream_parent(failed) == (trace_id(request), span_id(first))
    assert upstream_parent(served) == (trace_id(request), span_id(second))


async def test_a_client_error_from_the_model_server_is_one_relayed_attempt(
    spans: Spans, session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    fleet.deep[0].behaviour.fault = HttpError.context_length()
    async with running_router(config_for(fleet, strategy="rule"), tracing=spans.tracing) as router:
        body = {"model": "deep", "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(router.v1 + "/chat/completions", json=body) as answer:
            assert answer.status == 400
    await wait_until(lambda: bool(spans.named("POST /v1/chat/completions")), what="request span")

    request = spans.one("POST /v1/chat/completions")
    (attempt,) = spans.attempts()
    assert attr(attempt, "octoroute.outcome") == "relayed"
    assert attr(attempt, "http.response.status_code") == 400
    assert attr(request, "http.response.status_code") == 400
    assert request.status.status_code is StatusCode.UNSET  # a client's error, not the server's


async def test_every_attempt_failing_makes_the_request_span_an_error(
    spans: Spans, session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    for model in fleet.fast:
        model.behaviour.fault = HttpError(500)
    async with running_router(config_for(fleet, strategy="rule"), tracing=spans.tracing) as router:
        await first_probe_round(router)
        body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(router.v1 + "/chat/completions", json=body) as answer:
            assert answer.status == 502
    await wait_until(lambda: bool(spans.named("POST /v1/chat/completions")), what="request span")

    request = spans.one("POST /v1/chat/completions")
    attempts = spans.attempts()
    assert [attr(span, "http.response.status_code") for span in attempts] == [500, 500]
    assert {attr(span, "octoroute.endpoint") for span in attempts} == {m.name for m in fleet.fast}
    assert request.status.status_code is StatusCode.ERROR
    assert attr(request, "http.response.status_code") == 502
    assert attr(request, "error.type") == "502"  # OpenTelemetry's HTTP conventions
    assert attr(request, "octoroute.error") == "status"  # the log line's


async def test_a_streamed_request_span_ends_when_the_stream_ends(
    traced: RouterHandle, spans: Spans, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    deep = fleet.deep[0].behaviour
    deep.reply = "one two three four five six"
    deep.token_gap = 0.05
    body = {"model": "deep", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with session.post(traced.v1 + "/chat/completions", json=body) as answer:
        assert answer.status == 200
        first = await answer.content.readline()
        assert first.startswith(b"data: ")
        # The answer has started and is still coming: nothing of the request has ended but
        # its decision.
        assert [span.name for span in spans.all()] == ["routing"]
        rest = await answer.read()
        assert rest.rstrip().endswith(b"data: [DONE]")
    await wait_until(lambda: bool(spans.named("POST /v1/chat/completions")), what="request span")

    request = spans.one("POST /v1/chat/completions")
    (attempt,) = spans.attempts()
    assert attr(request, "octoroute.stream") is True
    assert attr(attempt, "http.response.status_code") == 200
    (upstream,) = fleet.deep[0].chat_requests
    stream_seconds = upstream.chunk_times[-1] - upstream.chunk_times[0]
    assert stream_seconds >= 0.2
    for span in (request, attempt):
        assert span.end_time is not None
        assert span.start_time is not None
        assert (span.end_time - span.start_time) / 1e9 >= stream_seconds


async def test_a_client_leaving_mid_stream_ends_its_spans_as_disconnected(
    traced: RouterHandle, spans: Spans, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    deep = fleet.deep[0].behaviour
    deep.reply = " ".join(["word"] * 200)
    deep.token_gap = 0.05
    body = {"model": "deep", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    answer = await session.post(traced.v1 + "/chat/completions", json=body)
    assert (await answer.content.readline()).startswith(b"data: ")
    answer.close()
    await wait_until(
        lambda: bool(spans.named("POST /v1/chat/completions")), what="request span", timeout=10
    )

    request = spans.one("POST /v1/chat/completions")
    (attempt,) = spans.attempts()
    assert attr(request, "error.type") == "client_disconnected"
    assert attr(request, "http.response.status_code") is None
    assert attr(attempt, "octoroute.outcome") == "cancelled"


async def test_health_checks_and_scrapes_are_not_traced_other_requests_are(
    traced: RouterHandle, spans: Spans, session: aiohttp.ClientSession
) -> None:
    for path in ("/health", "/metrics", "/v1/models", "/v1/models/fast", "/no/such/path"):
        async with session.get(traced.url + path) as answer:
            await answer.read()
    await wait_until(lambda: len(spans.all()) >= 3, what="three spans")

    names = sorted(span.name for span in spans.all())
    assert names == ["GET", "GET /v1/models", "GET /v1/models/{id}"]
    unknown = spans.one("GET")
    assert attr(unknown, "http.route") is None
    assert attr(unknown, "url.path") == "/no/such/path"
    assert attr(unknown, "http.response.status_code") == 404


async def test_legacy_chat_and_the_route_dry_run_have_decision_spans(
    traced: RouterHandle, spans: Spans, session: aiohttp.ClientSession
) -> None:
    async with session.post(traced.url + "/chat", json={"message": "hello"}) as answer:
        assert answer.status == 200
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    async with session.post(traced.url + "/route", json=body) as answer:
        assert answer.status == 200
    await wait_until(lambda: len(spans.named("routing")) == 2, what="two decisions")

    for name in ("POST /chat", "POST /route"):
        request = spans.one(name)
        (routing,) = [
            span for span in spans.named("routing") if parent_id(span) == span_id(request)
        ]
        assert attr(routing, "octoroute.tier") in ("fast", "balanced", "deep")
    assert len(spans.attempts()) == 1  # the dry run sends nothing upstream


def documented_attributes() -> tuple[dict[str, set[str]], set[str]]:
    """docs/observability.md's span attributes by span (``request``, ``routing``, ``upstream
    attempt``), and the request line's field names."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    by_span: dict[str, set[str]] = {}
    table = text.split("### Span attributes", 1)[1].split("\n\n", 2)[1]
    for row in table.splitlines()[2:]:
        span, names, _ = (cell.strip() for cell in row.strip("|").split("|"))
        by_span.setdefault(span, set()).update(re.findall(r"`([^`]+)`", names))
    request_line = text.split("### The request line", 1)[1].split("### ", 1)[0]
    fields = set()
    for row in request_line.splitlines():
        if row.startswith("| `"):
            fields.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    return by_span, fields


async def test_every_attribute_a_span_carries_is_documented(
    spans: Spans, session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    preferred, _ = failing_first(fleet)
    preferred.behaviour.fault_times = 1
    fleet.deep[0].behaviour.fault = HttpError.context_length()
    async with running_router(config_for(fleet, strategy="rule"), tracing=spans.tracing) as router:
        await first_probe_round(router)
        for model in ("fast", "deep", "auto"):
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            async with session.post(router.v1 + "/chat/completions", json=body) as answer:
                await answer.read()
        async with session.get(router.url + "/nowhere") as answer:
            await answer.read()
    await wait_until(lambda: len(spans.named("routing")) == 3, what="three decisions")

    documented, log_fields = documented_attributes()
    kinds = {SpanKind.SERVER: "request", SpanKind.INTERNAL: "routing"}
    seen: set[str] = set()
    for span in spans.all():
        table = kinds.get(span.kind, "upstream attempt")
        for name in span.attributes or {}:
            seen.add(name)
            if name in documented[table]:
                continue
            assert table == "request", f"{span.name}: {name} is not documented"
            assert name.removeprefix("octoroute.") in log_fields, f"{name} is not documented"
    # Every row was exercised but those that need a condition these requests do not meet.
    conditional = {
        "octoroute.key",
        "octoroute.confidence",
        "octoroute.routing_fallback",
        "octoroute.*",
    }
    assert {n for names in documented.values() for n in names} - conditional <= seen


async def test_a_request_the_sampler_drops_records_nothing_but_passes_its_trace_on(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    exporter = InMemorySpanExporter()
    # What OTEL_TRACES_SAMPLER's default (parentbased_always_on) does with a client's
    # traceparent whose sampled flag is off.
    tracing = OtelTracing(
        TracerProvider(sampler=ParentBased(ALWAYS_ON)),
        processors=[SimpleSpanProcessor(exporter)],
    )
    unsampled = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-00"
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    async with running_router(config_for(fleet, strategy="rule"), tracing=tracing) as router:
        async with session.post(
            router.v1 + "/chat/completions", json=body, headers={"traceparent": unsampled}
        ) as answer:
            assert answer.status == 200
        async with session.post(router.v1 + "/chat/completions", json=body) as answer:
            assert answer.status == 200
    await wait_until(lambda: len(exporter.get_finished_spans()) == 3, what="the sampled request")

    assert {span.name for span in exporter.get_finished_spans()} == {
        "POST /v1/chat/completions",
        "routing",
        "upstream attempt",
    }
    first, second = chat_posts(fleet)
    _, trace, parent, flags = first.headers["traceparent"].split("-")
    assert trace == CLIENT_TRACE_ID
    assert parent != CLIENT_SPAN_ID  # the router's own (unrecorded) span
    assert int(flags, 16) & 1 == 0
    assert int(second.headers["traceparent"].split("-")[3], 16) & 1  # sampled, recorded


async def test_a_stream_broken_mid_way_is_an_answered_attempt_with_its_error(
    traced: RouterHandle, spans: Spans, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    deep = fleet.deep[0].behaviour
    deep.reply = "one two three four five six"
    deep.fault = Drop(after_chunks=3)
    body = {"model": "deep", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with session.post(traced.v1 + "/chat/completions", json=body) as answer:
        assert answer.status == 200
        assert b"upstream_stream_interrupted" in await answer.read()
    await wait_until(lambda: bool(spans.named("POST /v1/chat/completions")), what="request span")

    request = spans.one("POST /v1/chat/completions")
    (attempt,) = spans.attempts()
    assert attr(attempt, "octoroute.outcome") == "answered"
    assert attr(attempt, "http.response.status_code") == 200
    assert str(attr(attempt, "error.type")).startswith("mid_stream_")
    assert attempt.status.status_code is StatusCode.ERROR
    assert attr(request, "http.response.status_code") == 200
    assert attr(request, "octoroute.error") == attr(attempt, "error.type")
