"""``POST /v1/completions`` over real sockets with the official openai SDK: buffered, streamed,
fill-in-the-middle, routing on the prompt, validation, failover, and trace headers upstream."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI

from octoroute.simulator import HttpError, SimulatedFleet
from tests.harness import RouterHandle, config_for, endpoint, first_probe_round, running_router


async def post(
    session: aiohttp.ClientSession,
    router: RouterHandle,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    async with session.post(router.v1 + "/completions", json=body, headers=headers) as response:
        return (
            response.status,
            {k.lower(): v for k, v in response.headers.items()},
            orjson.loads(await response.read()),
        )


async def test_the_openai_sdk_gets_a_text_completion_from_the_named_tier(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        raw = await client.completions.with_raw_response.create(
            model="deep", prompt="The capital of France is", max_tokens=12, temperature=0.2
        )
    completion = raw.parse()

    assert completion.object == "text_completion"
    assert completion.choices[0].text.startswith("[deep")
    assert completion.model == "sim-deep"
    assert raw.headers["x-octoroute-tier"] == "deep"
    assert raw.headers["x-octoroute-endpoint"] == "sim-deep"
    (sent,) = fleet.deep[0].completion_requests
    # Forwarded as sent, only the model replaced; no defaults added.
    assert sent.json == {
        "model": "sim-deep",
        "prompt": "The capital of France is",
        "max_tokens": 12,
        "temperature": 0.2,
    }


async def test_a_streamed_completion_arrives_chunk_by_chunk_with_usage(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        stream = await client.completions.create(
            model="balanced",
            prompt="Once upon a time",
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    text = "".join(choice.text for chunk in chunks for choice in chunk.choices)
    assert text.startswith("[balanced")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert fleet.balanced[0].completion_requests[0].stream


async def test_fill_in_the_middle_forwards_the_suffix_untouched(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    fleet.deep[0].behaviour.reply = lambda body: f"<{body['prompt']}|{body['suffix']}>"
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        completion = await client.completions.create(
            model="sim-deep", prompt="def add(a, b):\n", suffix="\n    return c\n", max_tokens=8
        )

    assert completion.choices[0].text == "<def add(a, b):\n|\n    return c\n>"
    assert fleet.deep[0].completion_requests[0].json["suffix"] == "\n    return c\n"


async def test_auto_routes_on_the_prompt_as_one_user_turn(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    hard = "Prove that there are infinitely many primes, step by step, rigorously."
    status, headers, body = await post(session, router, {"model": "auto", "prompt": [hard, "x"]})
    assert status == 200, body
    assert headers["x-octoroute-strategy"] == "rule"
    async with session.post(
        router.url + "/route",
        json={"model": "auto", "messages": [{"role": "user", "content": hard}]},
    ) as dry:
        decided = (await dry.json())["tier"]
    assert headers["x-octoroute-tier"] == decided


async def test_token_id_prompts_are_forwarded(
    router: RouterHandle, session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    status, _, body = await post(session, router, {"model": "fast", "prompt": [[1, 2, 3]]})
    assert status == 200, body
    requests = [r for sim in fleet.fast for r in sim.completion_requests]
    assert requests[0].json["prompt"] == [[1, 2, 3]]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "fast"}, "prompt", "prompt is required"),
        ({"model": "fast", "prompt": 7}, "prompt", "prompt must be a string"),
        ({"model": "fast", "prompt": [{"text": "x"}]}, "prompt", "prompt must be a string"),
        ({"model": "fast", "prompt": ["mixed", 1]}, "prompt", "prompt must be a string"),
        ({"model": "fast", "prompt": []}, "prompt", "prompt must be a string"),
        ({"prompt": "hi"}, "model", "model is required"),
        ({"model": "fast", "prompt": "hi", "temperature": 9}, "temperature", "between 0 and 2"),
        ({"model": "fast", "prompt": "hi", "stream": "yes"}, "stream", "true or false"),
    ],
)
async def test_invalid_bodies_get_a_400_naming_the_field(
    router: RouterHandle,
    session: aiohttp.ClientSession,
    body: dict[str, Any],
    param: str,
    fragment: str,
) -> None:
    status, headers, answer = await post(session, router, body)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert answer["error"]["param"] == param
    assert fragment in answer["error"]["message"]


async def test_the_sdk_raises_on_an_unknown_model(router: RouterHandle) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.completions.create(model="nope", prompt="hi")
    assert caught.value.code == "model_not_found"


async def test_a_failed_attempt_fails_over_like_chat(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = HttpError(503)
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        status, headers, body = await post(session, router, {"model": "fast", "prompt": "hi"})
        assert status == 200, body
        assert headers["x-octoroute-endpoint"] == other.name
        assert len(preferred.completion_requests) == 1
        assert endpoint(router, preferred.name).consecutive_failures == 1


async def test_the_request_id_and_trace_context_reach_the_model_server(
    router: RouterHandle, session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {"traceparent": trace, "tracestate": "vendor=1", "x-request-id": "req-42"}
    status, answer_headers, _ = await post(
        session, router, {"model": "deep", "prompt": "hi"}, headers
    )
    async with session.post(
        router.v1 + "/chat/completions",
        json={"model": "deep", "messages": [{"role": "user", "content": "hi"}]},
        headers={"traceparent": "bad\u00e9value"},
    ) as chat:
        assert chat.status == 200
        chat_id = chat.headers["x-request-id"]

    assert status == 200
    assert answer_headers["x-request-id"] == "req-42"
    first, second = fleet.deep[0].requests[-2:]
    assert first.headers["traceparent"] == trace
    assert first.headers["tracestate"] == "vendor=1"
    assert first.headers["x-request-id"] == "req-42"
    assert second.headers["x-request-id"] == chat_id
    assert "traceparent" not in second.headers  # not header-safe: not forwarded
