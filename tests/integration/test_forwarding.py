"""Non-streaming forwarding over real sockets: retries, failover, relayed errors, exhaustion.

The router runs in front of simulated upstreams; clients are the official openai SDK or a raw
aiohttp session where bytes and headers matter. Synchronisation is by conditions with deadlines
(the prober's first round, the simulators' recorded requests), never by sleeping.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from octoroute.config import parse_config
from octoroute.simulator import (
    Drop,
    Fault,
    Hang,
    HttpError,
    SimulatedFleet,
    SimulatedModel,
    fleet_config_toml,
)
from tests.harness import (
    RouterHandle,
    config_for,
    endpoint,
    first_probe_round,
    running_router,
    wait_until,
)

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
FAST_PROBES = "[health]\ninterval_seconds = 0.1\nprobe_timeout_seconds = 0.5\n"
"""Probe every 100 ms. The short probe timeout bounds a probe caught by a simulator's ``stop()``
(a connection accepted while the server shuts down is never answered)."""
ENVELOPE_KEYS = {"message", "type", "param", "code"}
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


async def chat(
    session: aiohttp.ClientSession,
    router: RouterHandle,
    model: str,
    *,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> tuple[int, dict[str, str], bytes]:
    """POST a chat completion; the status, the headers (lower-cased names) and the raw body."""
    body = {"model": model, "messages": HELLO, **fields}
    async with session.post(
        router.v1 + "/chat/completions", json=body, headers=headers
    ) as response:
        raw = await response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}, raw


def error_of(status: int, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """The OpenAI error envelope's inner object, after checking its shape."""
    assert status >= 400
    assert headers["content-type"].startswith("application/json")
    assert b"Traceback" not in raw
    body = orjson.loads(raw)
    assert set(body) == {"error"}
    assert set(body["error"]) == ENVELOPE_KEYS
    inner: dict[str, Any] = body["error"]
    return inner


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [HttpError(500), HttpError(503), Drop(), Drop(after_chunks=0)],
    ids=["500", "503", "drop-before-response", "drop-mid-body"],
)
async def test_failed_attempt_is_retried_on_another_endpoint_and_counted(
    fleet: SimulatedFleet, session: aiohttp.ClientSession, fault: Fault
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = fault
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        status, headers, raw = await chat(session, router, "fast")
        assert status == 200, raw
        assert headers["x-octoroute-endpoint"] == "sim-fast-b"
        assert orjson.loads(raw)["choices"][0]["message"]["content"].startswith(
            "[fast · sim-fast-b]"
        )
        # A drop before any answer on the probe's pooled connection looks like a keep-alive
        # race, which the client retries once on a fresh connection before failing over.
        retried = isinstance(fault, Drop) and fault.after_chunks is None
        assert len(preferred.chat_requests) == (2 if retried else 1)
        assert len(other.chat_requests) == 1
        assert endpoint(router, "sim-fast-a").consecutive_failures == 1
        assert endpoint(router, "sim-fast-a").healthy
        assert endpoint(router, "sim-fast-b").consecutive_failures == 0


async def test_connection_refused_is_retried_on_another_endpoint(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        await preferred.stop()
        status, headers, raw = await chat(session, router, "fast")
        assert status == 200, raw
        assert headers["x-octoroute-endpoint"] == "sim-fast-b"
        assert len(other.chat_requests) == 1
        failed = endpoint(router, "sim-fast-a")
        assert failed.consecutive_failures == 1
        assert failed.last_error is not None
        assert "cannot connect" in failed.last_error


async def test_the_same_endpoint_is_never_retried(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    (balanced,) = fleet.balanced
    balanced.behaviour.fault = HttpError(500)
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        status, headers, raw = await chat(session, router, "balanced")
        error = error_of(status, headers, raw)
        assert status == 502
        assert error["code"] == "upstream_failed"
        assert "(1 endpoint tried)" in error["message"]
        assert len(balanced.chat_requests) == 1
        assert endpoint(router, "sim-balanced").consecutive_failures == 1


async def test_a_retried_attempt_succeeds_after_a_transient_failure(
    fleet: SimulatedFleet,
) -> None:
    preferred, _ = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = HttpError(502)
    preferred.behaviour.fault_times = 1
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client,
    ):
        await first_probe_round(router)
        first = await client.chat.completions.create(model="fast", messages=HELLO)
        second = await client.chat.completions.create(model="fast", messages=HELLO)
        assert (first.choices[0].message.content or "").startswith("[fast · sim-fast-b]")
        # The preferred replica answers again; its success resets the count.
        assert (second.choices[0].message.content or "").startswith("[fast · sim-fast-a]")
        assert endpoint(router, "sim-fast-a").consecutive_failures == 0


async def test_client_disconnect_cancels_the_buffered_upstream_request(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.latency = 30
    await first_probe_round(router)
    body = {"model": "deep", "messages": HELLO}
    async with aiohttp.ClientSession() as client:
        request = asyncio.ensure_future(client.post(router.v1 + "/chat/completions", json=body))
        await deep.wait_for_in_flight(1)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    await deep.wait_for_disconnects(1, timeout=5)
    assert deep.chat_requests[0].client_disconnected
    assert endpoint(router, "sim-deep").consecutive_failures == 0


# -- upstream client errors --------------------------------------------------------------------


async def test_upstream_4xx_is_relayed_unchanged_and_not_retried(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    fault = HttpError.context_length()
    preferred.behaviour.fault = fault
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        status, headers, raw = await chat(session, router, "fast")
        assert status == 400
        assert raw == orjson.dumps(fault.body)
        assert headers["content-type"].startswith("application/json")
        assert headers["x-octoroute-endpoint"] == "sim-fast-a"
        assert len(preferred.chat_requests) == 1
        assert other.chat_requests == []
        relayed = endpoint(router, "sim-fast-a")
        assert relayed.healthy
        assert relayed.consecutive_failures == 0


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streaming"])
async def test_large_upstream_4xx_body_is_relayed_whole(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession, stream: bool
) -> None:
    # Far more than one socket read: the whole body must be collected, not its first piece.
    long_message = "Your prompt contains unsupported content. " * 8000
    body = {"error": {"message": long_message, "type": "invalid_request_error", "param": None}}
    fleet.deep[0].behaviour.fault = HttpError(422, body)
    status, headers, raw = await chat(session, router, "deep", stream=stream)
    assert status == 422
    assert headers["content-type"].startswith("application/json")
    assert raw == orjson.dumps(body)


async def test_upstream_4xx_reaches_the_sdk_as_its_own_error(fleet: SimulatedFleet) -> None:
    (deep,) = fleet.deep
    deep.behaviour.fault = HttpError.context_length(4096)
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client,
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="deep", messages=HELLO)
        assert caught.value.code == "context_length_exceeded"
        assert caught.value.param == "messages"
        assert "maximum context length is 4096 tokens" in caught.value.message
        assert len(deep.chat_requests) == 1


# -- health through real requests --------------------------------------------------------------


async def test_priority_replica_made_unhealthy_by_failures_is_skipped(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = HttpError(500)
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        failing = endpoint(router, "sim-fast-a")
        for n in range(1, 4):
            status, headers, _ = await chat(session, router, "fast")
            assert (status, headers["x-octoroute-endpoint"]) == (200, "sim-fast-b")
            assert failing.consecutive_failures == n
        assert not failing.healthy
        for _ in range(3):
            status, headers, _ = await chat(session, router, "fast")
            assert (status, headers["x-octoroute-endpoint"]) == (200, "sim-fast-b")
        assert len(preferred.chat_requests) == 3
        assert len(other.chat_requests) == 6


async def test_tier_made_unhealthy_by_failures_answers_503(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.fast:
        sim.behaviour.fault = HttpError(500)
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        for _ in range(3):
            status, headers, raw = await chat(session, router, "fast")
            error = error_of(status, headers, raw)
            assert status == 502
            assert "tier 'fast'" in error["message"]
            assert "(2 endpoints tried)" in error["message"]
        status, headers, raw = await chat(session, router, "fast")
        error = error_of(status, headers, raw)
        assert status == 503
        assert error["code"] == "no_healthy_endpoint"
        assert error["type"] == "api_error"
        assert "tier 'fast'" in error["message"]
        assert "x-request-id" in headers
        assert [len(sim.chat_requests) for sim in fleet.fast] == [3, 3]


# -- exhaustion --------------------------------------------------------------------------------


async def test_every_attempt_failing_is_502_naming_tier_count_and_last_error(
    session: aiohttp.ClientSession,
) -> None:
    replicas = [SimulatedModel(f"sim-fast-{i}") for i in range(4)]
    for sim in replicas:
        sim.behaviour.fault = HttpError(500)
    fleet = SimulatedFleet(
        fast=replicas, balanced=[SimulatedModel("sim-balanced")], deep=[SimulatedModel("sim-deep")]
    )
    async with fleet, running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        started = time.monotonic()
        status, headers, raw = await chat(session, router, "fast")
        elapsed = time.monotonic() - started
    error = error_of(status, headers, raw)
    assert status == 502
    assert error["type"] == "api_error"
    assert error["code"] == "upstream_failed"
    assert error["param"] is None
    message = error["message"]
    assert message.startswith("Every attempt on tier 'fast' failed (3 endpoints tried)")
    assert "last error: sim-fast-" in message
    assert "answered HTTP 500" in message
    assert sorted(len(sim.chat_requests) for sim in replicas) == [0, 1, 1, 1]
    assert elapsed >= 0.3 * 0.9  # backoff 100 ms then 200 ms


async def test_all_endpoints_hanging_past_the_tier_timeout_is_504_after_one_timeout(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.fault = Hang()
    config = config_for(fleet, strategy="rule", extra="[timeouts]\ndeep = 1\n")
    async with running_router(config) as router:
        started = time.monotonic()
        status, headers, raw = await chat(session, router, "deep")
        elapsed = time.monotonic() - started
        error = error_of(status, headers, raw)
        assert status == 504
        assert 0.9 <= elapsed < 2.5
        assert error["code"] == "upstream_timeout"
        assert error["message"].startswith("Every attempt on tier 'deep' failed (1 endpoint tried)")
        assert "no complete answer within 1 s" in error["message"]
        assert len(deep.chat_requests) == 1
        assert endpoint(router, "sim-deep").consecutive_failures >= 1


async def test_exhaustion_reaches_the_sdk_as_a_server_error(fleet: SimulatedFleet) -> None:
    (balanced,) = fleet.balanced
    balanced.behaviour.fault = Drop()
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client,
    ):
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="balanced", messages=HELLO)
        assert caught.value.status_code == 502
        assert "tier 'balanced'" in caught.value.message
        assert "closed the connection" in caught.value.message


# -- faithful relay ----------------------------------------------------------------------------

CANNED = (
    b'{\n  "id": "chatcmpl-vendor-1",\n  "object": "chat.completion",\n'
    b'  "created": 1700000000, "model": "vendor/model-x", "system_fingerprint": "fp_abc",\n'
    b'  "choices": [ {"index": 0, "finish_reason": "tool_calls", "logprobs": null,\n'
    b'    "message": {"role": "assistant", "content": null,\n'
    b'      "reasoning_content": "caf\\u00e9 \xe2\x98\x95",\n'
    b'      "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": '
    b'"get_weather", "arguments": "{\\"location\\": \\"Paris\\"}"}}]}} ],\n'
    b'  "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,\n'
    b'            "prompt_tokens_details": {"cached_tokens": 0}},\n'
    b'  "x_vendor": {"latency_ms": 12.50, "region": "eu", "big": 12345678901234567890}\n}\n'
)
"""Pretty-printed, escaped, key-ordered oddly, with vendor fields: any re-serialisation shows."""


@pytest.fixture
async def canned_upstream() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A model server answering every chat request with ``CANNED``; its URL and what it got."""
    received: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(body=CANNED, content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", received
    finally:
        await runner.cleanup()


async def test_upstream_json_body_is_returned_byte_identical_with_routing_headers(
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    canned_upstream: tuple[str, list[bytes]],
) -> None:
    url, received = canned_upstream
    text = fleet_config_toml(fleet, strategy="rule").replace(fleet.deep[0].base_url, url)
    request_id = f"test-{uuid.uuid4()}"
    async with running_router(parse_config(text)) as router:
        status, headers, raw = await chat(
            session,
            router,
            "deep",
            headers={"x-request-id": request_id},
            tools=[WEATHER_TOOL],
            x_vendor_option={"keep": True},
        )
    assert status == 200
    assert raw == CANNED
    assert headers["content-type"].startswith("application/json")
    assert headers["x-octoroute-tier"] == "deep"
    assert headers["x-octoroute-endpoint"] == "sim-deep"
    assert headers["x-octoroute-strategy"] == "direct"
    assert headers["x-request-id"] == request_id
    (sent,) = received
    forwarded = orjson.loads(sent)
    assert forwarded["model"] == "sim-deep"
    assert forwarded["tools"] == [WEATHER_TOOL]
    assert forwarded["x_vendor_option"] == {"keep": True}


async def test_routed_request_carries_rule_strategy_and_a_fresh_request_id(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    status, headers, _ = await chat(session, router, "auto")
    assert status == 200
    assert headers["x-octoroute-strategy"] == "rule"
    assert headers["x-octoroute-tier"] in {"fast", "balanced", "deep"}
    assert headers["x-octoroute-endpoint"].startswith("sim-")
    assert uuid.UUID(headers["x-request-id"]).version == 4


async def test_sdk_non_streaming_returns_the_simulators_reply(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    (balanced,) = fleet.balanced
    balanced.behaviour.reply = "Forty-two, as computed by the balanced tier."
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        answer = await client.chat.completions.create(model="balanced", messages=HELLO)
    assert answer.choices[0].message.content == "Forty-two, as computed by the balanced tier."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "sim-balanced"
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0


async def test_sdk_non_streaming_tool_call_survives_the_router(router: RouterHandle) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        answer = await client.chat.completions.create(
            model="deep",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=[WEATHER_TOOL],
        )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert "location" in orjson.loads(call.function.arguments)


# -- replicas sharing a name -------------------------------------------------------------------


@pytest.fixture
async def twin_fleet() -> AsyncIterator[SimulatedFleet]:
    """The fast tier is two replicas of one model name on two ports."""
    fleet = SimulatedFleet(
        fast=[SimulatedModel("same", label="fast #1"), SimulatedModel("same", label="fast #2")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    async with fleet:
        yield fleet


async def test_replicas_sharing_a_name_share_the_load(
    twin_fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    first, second = twin_fleet.fast
    async with running_router(config_for(twin_fleet, strategy="rule")) as router:
        for _ in range(40):
            status, headers, _ = await chat(session, router, "same")
            assert (status, headers["x-octoroute-endpoint"]) == (200, "same")
        async with session.get(router.url + "/models") as response:
            listing = await response.json()
    # Weighted random, 50/50: the chance that one replica got all 40 is 2**-39.
    assert len(first.chat_requests) > 0
    assert len(second.chat_requests) > 0
    assert len(first.chat_requests) + len(second.chat_requests) == 40
    same = [entry for entry in listing["models"] if entry["name"] == "same"]
    assert [entry["endpoint"] for entry in same] == [first.base_url, second.base_url]
    assert all(entry["healthy"] for entry in same)


async def test_replica_sharing_a_name_keeps_its_own_health_and_the_other_serves(
    twin_fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    first, second = twin_fleet.fast
    async with running_router(config_for(twin_fleet, strategy="rule")) as router:
        await first_probe_round(router)
        await first.stop()
        first.reset()
        for _ in range(12):
            status, headers, raw = await chat(session, router, "same")
            assert status == 200, raw
            assert headers["x-octoroute-endpoint"] == "same"
            assert orjson.loads(raw)["choices"][0]["message"]["content"].startswith(
                "[fast #2 · same]"
            )
        assert len(second.chat_requests) == 12
        stopped, alive = router.runtime.fleet.by_name("same")
        # Each request tries the stopped replica at most once, then fails over.
        assert stopped.consecutive_failures >= 1 or not stopped.healthy
        assert alive.healthy
        assert alive.consecutive_failures == 0
        async with session.get(router.url + "/models") as response:
            listing = await response.json()
    by_url = {entry["endpoint"]: entry for entry in listing["models"] if entry["name"] == "same"}
    assert set(by_url) == {first.base_url, second.base_url}
    assert by_url[first.base_url]["consecutive_failures"] == stopped.consecutive_failures
    assert by_url[second.base_url]["consecutive_failures"] == 0
    assert by_url[second.base_url]["healthy"] is True


async def test_replica_sharing_a_name_down_for_good_is_skipped(
    twin_fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    first, second = twin_fleet.fast
    config = config_for(twin_fleet, strategy="rule", extra=FAST_PROBES)
    async with running_router(config) as router:
        await first_probe_round(router)
        await first.stop()
        stopped, alive = router.runtime.fleet.by_name("same")
        await wait_until(lambda: not stopped.healthy, what="stopped replica marked unhealthy")
        served_before = len(second.chat_requests)
        for _ in range(10):
            status, _, _ = await chat(session, router, "same")
            assert status == 200
        assert len(second.chat_requests) - served_before == 10
        assert alive.healthy
