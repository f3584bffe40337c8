"""When the OTEL_* variables switch tracing on (a pure rule), and what a decision span records."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from octoroute.enums import DecisionSource, Importance, Strategy, TaskType, Tier
from octoroute.observability.otel import OtelTracing, resource
from octoroute.observability.tracing import (
    DEFAULT_EXCLUDED,
    TracingSettings,
    TracingSetupError,
    tracing_settings,
)
from octoroute.routing.metadata import RouteMetadata
from octoroute.routing.strategy import Decision

COLLECTOR = "http://collector:4318"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="nothing set: off"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR}, ("otlp",), id="an OTLP endpoint: on"
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": COLLECTOR + "/v1/traces"},
            ("otlp",),
            id="a traces endpoint: on",
        ),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, None, id="a blank endpoint: off"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR, "OTEL_SDK_DISABLED": "true"},
            None,
            id="SDK disabled wins",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR, "OTEL_SDK_DISABLED": "false"},
            ("otlp",),
            id="SDK disabled false",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR, "OTEL_TRACES_EXPORTER": "none"},
            None,
            id="exporter none wins over an endpoint",
        ),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",), id="exporter otlp"),
        pytest.param({"OTEL_TRACES_EXPORTER": "Console"}, ("console",), id="exporter console"),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp, console,otlp"},
            ("otlp", "console"),
            id="a list of exporters",
        ),
        pytest.param(
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ("otlp",),
            id="the traces protocol overrides the general one",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ("console",),
            id="the OTLP protocol does not matter without OTLP",
        ),
    ],
)
def test_tracing_is_on_only_when_the_environment_asks(
    environ: dict[str, str], expected: tuple[str, ...] | None
) -> None:
    settings = tracing_settings(environ)
    if expected is None:
        assert settings is None
    else:
        assert settings == TracingSettings(expected, DEFAULT_EXCLUDED)


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, ("'zipkin'", "'otlp'", "'console'")),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "4318"),
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_PYTHON_EXCLUDED_URLS": "^/ok,(unclosed"},
            ("OTEL_PYTHON_EXCLUDED_URLS", "'(unclosed'"),
        ),
    ],
)
def test_what_the_router_cannot_do_is_refused_with_what_to_set(
    environ: dict[str, str], words: tuple[str, ...]
) -> None:
    with pytest.raises(TracingSetupError) as raised:
        tracing_settings(environ)
    for word in words:
        assert word in str(raised.value)


def test_excluded_paths_come_from_the_python_instrumentations_variable() -> None:
    on = {"OTEL_TRACES_EXPORTER": "otlp"}
    assert tracing_settings(on | {"OTEL_PYTHON_EXCLUDED_URLS": ""}) == TracingSettings(
        ("otlp",), ()
    )
    settings = tracing_settings(on | {"OTEL_PYTHON_EXCLUDED_URLS": "^/v1/models, /health$"})
    assert settings is not None
    assert settings.excluded == ("^/v1/models", "/health$")
    tracing = OtelTracing(excluded=settings.excluded)
    assert not tracing.traces("/v1/models/fast")
    assert not tracing.traces("/health")
    assert tracing.traces("/metrics")
    assert tracing.traces("/v1/chat/completions")
    everything = OtelTracing(excluded=())
    assert everything.traces("/health")


class ConfidentDecision(Decision, frozen=True):
    """A decision as learned routing makes them, with its confidence."""

    confidence: float = 0.0


METADATA = RouteMetadata(42, Importance.NORMAL, TaskType.CODE, ("code",))


@pytest.mark.parametrize(
    "decision",
    [
        Decision(Tier.DEEP, DecisionSource.RULE, "task:code", METADATA, fallback="timeout"),
        ConfidentDecision(Tier.DEEP, DecisionSource.LLM, "llm", METADATA, confidence=0.83),
    ],
    ids=["without confidence", "with confidence"],
)
def test_a_decision_span_records_tier_reason_strategy_and_any_confidence(
    decision: Decision,
) -> None:
    exporter = InMemorySpanExporter()
    tracing = OtelTracing(processors=[SimpleSpanProcessor(exporter)])
    trace = tracing.start_request("POST", "/v1/chat/completions", "/v1/chat/completions", {})
    span = trace.routing()
    span.decided(decision, Strategy.HYBRID)
    span.end()

    (recorded,) = exporter.get_finished_spans()
    attributes = dict(recorded.attributes or {})
    assert attributes.pop("octoroute.confidence", None) == getattr(decision, "confidence", None)
    assert attributes == {
        "octoroute.strategy": decision.source.value,
        "octoroute.routing_strategy": "hybrid",
        "octoroute.tier": "deep",
        "octoroute.reason": decision.reason,
        "octoroute.task_type": "code",
        "octoroute.token_estimate": 42,
        **({"octoroute.routing_fallback": "timeout"} if decision.fallback else {}),
    }


def test_the_service_is_named_octoroute_unless_the_environment_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert resource().attributes["service.name"] == "octoroute"
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.name=router-eu,deployment.environment=prod"
    )
    assert resource().attributes["service.name"] == "router-eu"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "router-us")
    found = resource().attributes
    assert found["service.name"] == "router-us"
    assert found["deployment.environment"] == "prod"
