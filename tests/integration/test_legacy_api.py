"""v1's native API over real sockets: ``POST /chat``, ``GET /health``, ``GET /models``, and the
``/chat``-shaped body of ``POST /route``.

Old clients keep their request and response shapes; only the errors changed (a JSON envelope and
400 where v1 answered plain-text 422).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from octoroute import __version__
from octoroute.enums import TaskType, Tier
from octoroute.simulator import Behaviour, HttpError, SimulatedFleet, SimulatedModel
from tests.harness import RouterHandle, config_for, first_probe_round, running_router


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: object,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    """``(status, headers, parsed body)``."""
    data = json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    async with session.post(url, data=data, headers=sent) as response:
        assert response.headers["Content-Type"] == "application/json"
        return response.status, response.headers, await response.json()


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["x-request-id"]
        return await response.json()


def chat_requests(fleet: SimulatedFleet) -> list[tuple[str, Any]]:
    return [(sim.name, record) for sim in fleet.models for record in sim.chat_requests]


# -- POST /chat ----------------------------------------------------------------------------------


async def test_chat_answers_with_v1s_shape_and_no_warnings_key_when_there_are_none(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    fleet.balanced[0].behaviour.reply = "Use a dict."
    status, headers, answer = await post_json(
        session, router.url + "/chat", {"message": "Write a Python function to count words."}
    )

    assert status == 200
    assert answer == {
        "content": "Use a dict.",
        "model_tier": "balanced",
        "model_name": "sim-balanced",
        "routing_strategy": "rule",
    }
    assert list(answer) == ["content", "model_tier", "model_name", "routing_strategy"]
    assert headers["x-octoroute-tier"] == "balanced"
    assert headers["x-octoroute-endpoint"] == "sim-balanced"
    assert headers["x-octoroute-strategy"] == "rule"
    assert headers["x-request-id"]


async def test_chat_sends_the_message_as_one_user_turn_with_the_endpoint_defaults(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    message = "Bonjour ! Ça va ?\nLine two."
    status, _, answer = await post_json(session, router.url + "/chat", {"message": message})

    assert status == 200
    [(name, record)] = chat_requests(fleet)
    assert answer["model_name"] == name
    endpoint = next(ep for ep in router.config.models.all() if ep.name == name)
    assert record.json == {
        "model": name,
        "messages": [{"role": "user", "content": message}],
        "max_tokens": endpoint.max_tokens,
        "temperature": endpoint.temperature,
    }


@pytest.mark.parametrize(
    ("hints", "tier"),
    [
        ({"task_type": "casual_chat"}, "fast"),
        ({"task_type": "deep_analysis"}, "deep"),
        ({"task_type": "question_answer", "importance": "high"}, "deep"),
        # v1: casual chat at high importance matches no rule, so the default tier serves it.
        ({"task_type": "casual_chat", "importance": "high"}, "balanced"),
        ({"task_type": "code"}, "balanced"),
    ],
)
async def test_stated_task_type_and_importance_are_routed_by_v1s_table(
    router: RouterHandle, session: aiohttp.ClientSession, hints: dict[str, str], tier: str
) -> None:
    status, _, answer = await post_json(
        session, router.url + "/chat", {"message": "hello there", **hints}
    )

    assert status == 200
    assert answer["model_tier"] == tier
    assert answer["routing_strategy"] == "rule"


async def test_chat_reports_llm_routing_and_warns_when_the_router_model_fails() -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-router", behaviour=Behaviour(router_answer="DEEP"))],
        deep=[SimulatedModel("sim-deep")],
    )
    async with (
        fleet,
        running_router(config_for(fleet, strategy="llm")) as router,
        aiohttp.ClientSession() as session,
    ):
        _, _, decided = await post_json(session, router.url + "/chat", {"message": "hello"})
        fleet.balanced[0].behaviour.router_answer = "I would rather not say."
        _, _, fell_back = await post_json(session, router.url + "/chat", {"message": "hello"})

    assert (decided["routing_strategy"], decided["model_tier"]) == ("llm", "deep")
    assert "warnings" not in decided
    assert fell_back["routing_strategy"] == "rule"
    [warning] = fell_back["warnings"]
    assert "LLM router could not decide" in warning


INVALID_CHAT: list[tuple[object, str, str]] = [
    ({}, "message", "message is required"),
    ({"message": None}, "message", "must be a string, got null"),
    ({"message": 42}, "message", "must be a string, got 42"),
    ({"message": ["hi"]}, "message", 'must be a string, got ["hi"]'),
    ({"message": ""}, "message", "must not be empty or contain only whitespace"),
    ({"message": " \n\t "}, "message", "must not be empty or contain only whitespace"),
    ({"message": "x" * 100_001}, "message", "at most 100000 characters, got 100001"),
    (
        {"message": "hi", "importance": "urgent"},
        "importance",
        'low, normal, high (or left out), got "urgent"',
    ),
    ({"message": "hi", "importance": None}, "importance", "got null"),
    ({"message": "hi", "task_type": "poetry"}, "task_type", "casual_chat, code, creative_writing"),
    ({"message": "hi", "task_type": 3}, "task_type", "got 3"),
]


@pytest.mark.parametrize(("body", "param", "fragment"), INVALID_CHAT)
async def test_chat_validation_errors_are_400_envelopes_naming_the_field(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    body: object,
    param: str,
    fragment: str,
) -> None:
    status, headers, answer = await post_json(session, router.url + "/chat", body)

    assert status == 400
    assert headers["x-request-id"]
    error = answer["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_request"
    assert error["param"] == param
    assert fragment in error["message"]
    assert chat_requests(fleet) == []


async def test_chat_accepts_exactly_100000_characters_and_ignores_unknown_fields(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    body = {"message": "é" * 100_000, "stream": True, "model": "whatever"}
    status, _, answer = await post_json(session, router.url + "/chat", body)

    assert status == 200
    assert answer["content"]


async def test_chat_upstream_failures_use_the_envelope(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = HttpError(500)
    status, _, answer = await post_json(session, router.url + "/chat", {"message": "hi"})

    assert status == 502
    assert answer["error"]["code"] == "upstream_failed"
    assert answer["error"]["type"] == "api_error"


async def test_chat_relays_an_upstream_client_error_as_a_json_envelope(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = HttpError.context_length()
    status, _, answer = await post_json(session, router.url + "/chat", {"message": "hi"})

    assert status == 400
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert "maximum context length" in answer["error"]["message"]


# -- POST /route with a /chat body ----------------------------------------------------------------


async def test_route_accepts_a_chat_body_and_calls_no_model(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    body = {"message": "hello there", "task_type": "deep_analysis", "importance": "low"}
    status, _, decision = await post_json(session, router.url + "/route", body)

    assert status == 200
    assert decision["tier"] == "deep"
    assert decision["strategy"] == "rule"
    assert decision["task_type"] == "deep_analysis"
    assert decision["importance"] == "low"
    assert decision["token_estimate"] == len("hello there") // 4
    assert decision["reason"] == "rule:deep_analysis"
    assert decision["routing_ms"] >= 0
    assert chat_requests(fleet) == []


async def test_route_validates_a_chat_body_like_chat(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    status, _, answer = await post_json(session, router.url + "/route", {"message": "  "})

    assert status == 400
    assert answer["error"]["param"] == "message"


@pytest.mark.parametrize("task", [t.value for t in TaskType])
async def test_route_echoes_every_stated_task_type(
    router: RouterHandle, session: aiohttp.ClientSession, task: str
) -> None:
    _, _, decision = await post_json(
        session, router.url + "/route", {"message": "x", "task_type": task}
    )
    assert decision["task_type"] == task
    assert decision["tier"] in {t.value for t in Tier}


# -- GET /health ---------------------------------------------------------------------------------


async def test_health_reports_ok_v1s_statuses_the_version_and_each_tiers_endpoints(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    await first_probe_round(router)
    health = await get_json(session, router.url + "/health")

    assert health["status"] == "OK"
    assert health["health_tracking_status"] == "operational"
    assert health["metrics_recording_status"] == "operational"
    assert health["background_task_status"] == "operational"
    assert health["background_task_failures"] == 0
    assert health["version"] == __version__
    assert isinstance(health["uptime_seconds"], float)
    assert 0 <= health["uptime_seconds"] < 60
    assert health["tiers"] == {
        "fast": {"healthy": 2, "unknown": 0, "total": 2},
        "balanced": {"healthy": 1, "unknown": 0, "total": 1},
        "deep": {"healthy": 1, "unknown": 0, "total": 1},
    }
    instances = [i for tier in health["placement"].values() for i in tier["instances"]]
    assert {(i["health"], i["healthy"]) for i in instances} == {("healthy", True)}


async def test_health_counts_an_unhealthy_endpoint_and_still_answers_ok(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    await first_probe_round(router)
    fleet.fast[0].behaviour.health_status = 503
    endpoint = router.runtime.fleet.tiers[Tier.FAST][0]
    for _ in range(endpoint.failure_threshold):
        router.runtime.fleet.mark_failure(endpoint, "test")
    health = await get_json(session, router.url + "/health")

    assert health["status"] == "OK"
    assert health["tiers"]["fast"] == {"healthy": 1, "unknown": 0, "total": 2}
    first, second = health["placement"]["fast"]["instances"]
    assert (first["health"], first["healthy"]) == ("unhealthy", False)
    assert (second["health"], second["healthy"]) == ("healthy", True)


# -- GET /models ---------------------------------------------------------------------------------


async def test_models_lists_every_endpoint_instance_with_its_health() -> None:
    fleet = SimulatedFleet(
        fast=[
            SimulatedModel("sim-twin", config_keys={"priority": 3, "weight": 2.5}),
            SimulatedModel("sim-twin"),
        ],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule")) as router,
        aiohttp.ClientSession() as session,
    ):
        twin = router.runtime.fleet.tiers[Tier.FAST][1]
        fleet.fast[1].behaviour.health_status = 503
        for _ in range(twin.failure_threshold):
            router.runtime.fleet.mark_failure(twin, "connect")
        listing = await get_json(session, router.url + "/models")

    entries = listing["models"]
    assert [(e["name"], e["tier"]) for e in entries] == [
        ("sim-twin", "fast"),
        ("sim-twin", "fast"),
        ("sim-balanced", "balanced"),
        ("sim-deep", "deep"),
    ]
    assert [e["endpoint"] for e in entries] == [sim.base_url for sim in fleet.models]
    first, second = entries[0], entries[1]
    assert (first["healthy"], first["consecutive_failures"]) == (True, 0)
    assert (first["priority"], first["weight"]) == (3, 2.5)
    assert second["healthy"] is False
    assert second["consecutive_failures"] >= twin.failure_threshold
    assert (second["priority"], second["weight"]) == (1, 1.0)
    for entry in entries:
        assert {
            "name",
            "tier",
            "endpoint",
            "healthy",
            "last_check_seconds_ago",
            "consecutive_failures",
            "priority",
            "weight",
        } <= set(entry)
        assert isinstance(entry["last_check_seconds_ago"], int)
        assert entry["last_check_seconds_ago"] >= 0
