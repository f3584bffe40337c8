"""``POST /v1/messages`` and ``/v1/messages/count_tokens`` over real sockets with the official
anthropic SDK: translated to chat and back, a tool round trip, an image block, streaming, and
errors raised as the SDK's typed exceptions."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import httpx
import orjson
import pytest
from anthropic import AsyncAnthropic

from octoroute.simulator import Drop, HttpError, SimulatedFleet
from tests.harness import RouterHandle, config_for, running_router, with_server

ALIASES = """
[aliases]
"claude-*" = "deep"
"""
WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
async def router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    async with running_router(config_for(fleet, strategy="rule", extra=ALIASES)) as handle:
        yield handle


@pytest.fixture
async def client(router: RouterHandle) -> AsyncIterator[AsyncAnthropic]:
    sdk = AsyncAnthropic(base_url=router.url, api_key="x", max_retries=0)
    yield sdk
    await sdk.close()


async def test_create_answers_a_message_through_a_chat_endpoint(
    client: AsyncAnthropic, fleet: SimulatedFleet
) -> None:
    message = await client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        stop_sequences=["###"],
        extra_body={"temperature": 0.3, "top_k": 20},
        metadata={"user_id": "u-1"},
    )

    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert message.role == "assistant"
    assert message.model == "claude-sonnet-4-5"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("[deep · sim-deep] You asked")
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    (sent,) = fleet.deep[0].chat_requests
    assert sent.json["model"] == "sim-deep"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert sent.json["max_tokens"] == 100
    assert sent.json["stop"] == ["###"]
    assert sent.json["top_k"] == 20
    assert sent.json["user"] == "u-1"


async def test_a_tool_use_round_trip(client: AsyncAnthropic, fleet: SimulatedFleet) -> None:
    first = await client.messages.create(
        model="deep",
        max_tokens=100,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert call.type == "tool_use"
    assert call.name == "get_weather"
    assert isinstance(call.input, dict)

    second = await client.messages.create(
        model="deep",
        max_tokens=100,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "18 °C"},
                    {"type": "text", "text": "Thanks."},
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    sent = fleet.deep[0].chat_requests
    assert sent[0].json["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert sent[0].json["tool_choice"] == "required"
    messages = sent[1].json["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.id
    assert messages[2] == {"role": "tool", "tool_call_id": call.id, "content": "18 °C"}
    assert messages[3] == {"role": "user", "content": "Thanks."}


async def test_an_image_block_becomes_an_image_url_part(
    client: AsyncAnthropic, fleet: SimulatedFleet
) -> None:
    await client.messages.create(
        model="deep",
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )
    (sent,) = fleet.deep[0].chat_requests
    assert sent.json["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        {"type": "text", "text": "What is this?"},
    ]


async def test_a_missing_max_tokens_is_a_bad_request_in_anthropic_shape(
    router: RouterHandle,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            router.url + "/v1/messages",
            json={"model": "deep", "messages": [{"role": "user", "content": "hi"}]},
            headers={"anthropic-version": "2023-06-01", "x-api-key": "k"},
        ) as response,
    ):
        assert response.status == 400
        body = await response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens is required" in body["error"]["message"]


async def test_errors_are_the_sdks_typed_exceptions(
    client: AsyncAnthropic, fleet: SimulatedFleet
) -> None:
    hi: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.NotFoundError) as not_found:
        await client.messages.create(model="no-such-model", max_tokens=5, messages=hi)
    assert not_found.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.create(model="deep", max_tokens=5, messages=[])
    fleet.deep[0].behaviour.fault = HttpError(400)
    with pytest.raises(anthropic.BadRequestError) as relayed:
        await client.messages.create(model="deep", max_tokens=5, messages=hi)
    assert relayed.value.body["type"] == "error"  # type: ignore[index]
    fleet.deep[0].behaviour.fault = HttpError(500)
    with pytest.raises(anthropic.APIStatusError) as failed:
        await client.messages.create(model="deep", max_tokens=5, messages=hi)
    assert failed.value.status_code >= 500
    assert failed.value.body["error"]["type"] in ("api_error", "overloaded_error")  # type: ignore[index]


async def test_text_stream_gives_the_same_text_as_create(client: AsyncAnthropic) -> None:
    hi: Any = [{"role": "user", "content": "Say hello"}]
    async with client.messages.stream(model="balanced", max_tokens=100, messages=hi) as stream:
        text = "".join([chunk async for chunk in stream.text_stream])
        final = await stream.get_final_message()
    assert text.startswith("[balanced")
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


async def test_a_streamed_tool_call_arrives_as_input_json(client: AsyncAnthropic) -> None:
    hi: Any = [{"role": "user", "content": "Weather in Paris?"}]
    async with client.messages.stream(
        model="deep", max_tokens=100, messages=hi, tools=[WEATHER]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start"
    assert "content_block_start" in kinds
    assert "content_block_stop" in kinds
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert isinstance(final.content[0].input, dict)


async def test_a_stream_broken_midway_ends_with_an_error_event(
    client: AsyncAnthropic, fleet: SimulatedFleet
) -> None:
    fleet.balanced[0].behaviour.fault = Drop(after_chunks=3)
    hi: Any = [{"role": "user", "content": "Say hello"}]

    async def consume() -> None:
        async with client.messages.stream(model="balanced", max_tokens=100, messages=hi) as s:
            async for _ in s:
                pass

    with pytest.raises(anthropic.APIStatusError, match="cut short"):
        await consume()


async def test_count_tokens_answers_the_routers_estimate(client: AsyncAnthropic) -> None:
    counted = await client.messages.count_tokens(
        model="claude-sonnet-4-5",
        system="Be brief.",
        messages=[{"role": "user", "content": "x" * 400}],
    )
    assert counted.input_tokens == (len("Be brief.") + 400) // 4
    with_tools = await client.messages.count_tokens(
        model="claude-sonnet-4-5",
        system="Be brief.",
        messages=[{"role": "user", "content": "x" * 400}],
        tools=[WEATHER],
    )
    # The tools as sent count too: a model's template renders them into its prompt.
    assert with_tools.input_tokens == counted.input_tokens + len(orjson.dumps([WEATHER])) // 4


async def test_count_tokens_answers_an_unknown_model_with_the_same_404_as_create(
    client: AsyncAnthropic,
) -> None:
    hi: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.NotFoundError) as created:
        await client.messages.create(model="no-such-model", max_tokens=5, messages=hi)
    with pytest.raises(anthropic.NotFoundError) as counted:
        await client.messages.count_tokens(model="no-such-model", messages=hi)
    assert counted.value.body == created.value.body
    assert counted.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "no-such-model" in counted.value.body["error"]["message"]  # type: ignore[index]


async def test_count_tokens_refuses_a_key_sent_twice_as_create_does(router: RouterHandle) -> None:
    twice = (
        b'{"model":"deep","messages":[{"role":"user","content":"x"}],'
        b'"messages":[{"role":"user","content":"' + b"y" * 400 + b'"}]}'
    )
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.post(
            router.url + "/v1/messages/count_tokens",
            content=twice,
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert 'the key "messages" appears twice' in answer.json()["error"]["message"]


async def test_count_tokens_refuses_a_model_the_key_may_not_use_as_create_does(
    fleet: SimulatedFleet,
) -> None:
    key = "sk-octo-fastonly-0123456789abcdefgh"
    auth = (
        '[auth]\n[[auth.keys]]\nname = "fastonly"\n'
        f'key_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\ntiers = ["fast"]\n'
    )
    hi: Any = [{"role": "user", "content": "hi"}]
    async with (
        running_router(config_for(fleet, strategy="rule", extra=auth)) as router,
        AsyncAnthropic(base_url=router.url, api_key=key, max_retries=0) as sdk,
    ):
        with pytest.raises(anthropic.PermissionDeniedError) as created:
            await sdk.messages.create(model="deep", max_tokens=5, messages=hi)
        with pytest.raises(anthropic.PermissionDeniedError) as counted:
            await sdk.messages.count_tokens(model="deep", messages=hi)
        allowed = await sdk.messages.count_tokens(model="fast", messages=hi)
    assert counted.value.body == created.value.body
    assert allowed.input_tokens == 0  # "hi" is under four characters


async def test_an_empty_or_thinking_only_user_message_is_a_bad_request_naming_it(
    client: AsyncAnthropic, fleet: SimulatedFleet
) -> None:
    thinking: Any = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    for last in ([], [thinking]):
        history: Any = [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": last},
        ]
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.messages.create(model="deep", max_tokens=5, messages=history)
        error = refused.value.body["error"]  # type: ignore[index]
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("messages[2].content has no content the model can read")
    assert fleet.deep[0].chat_requests == []


async def test_tools_or_thinking_of_the_wrong_type_are_bad_requests_naming_them(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    hi = [{"role": "user", "content": "hi"}]
    async with httpx.AsyncClient(timeout=5) as http:
        for field, value in [
            ("tools", {}),
            ("tools", False),
            ("tools", ""),
            ("thinking", "yes"),
            ("thinking", [1]),
        ]:
            answer = await http.post(
                router.url + "/v1/messages",
                json={"model": "deep", "max_tokens": 5, "messages": hi, field: value},
            )
            assert answer.status_code == 400, (field, value, answer.text)
            assert answer.json()["type"] == "error"
            assert answer.json()["error"]["type"] == "invalid_request_error"
            assert answer.json()["error"]["message"].startswith(f"{field} must be an")
    assert fleet.deep[0].chat_requests == []


# --- errors: each status as the SDK's own exception -------------------------------------------


async def test_a_fleet_that_is_rate_limited_is_a_rate_limit_error_with_retry_after(
    client: AsyncAnthropic, fleet: SimulatedFleet
) -> None:
    for sim in fleet.fast:
        sim.behaviour.fault = HttpError.rate_limited(retry_after=7)
    hi: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(model="fast", max_tokens=5, messages=hi)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["retry-after"]
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_a_busy_fleet_is_a_503_overloaded_error_the_sdk_calls_service_unavailable(
    client: AsyncAnthropic, fleet: SimulatedFleet
) -> None:
    for sim in fleet.fast:
        sim.behaviour.fault = HttpError(503, headers={"Retry-After": "2"})
    hi: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.ServiceUnavailableError) as busy:
        await client.messages.create(model="fast", max_tokens=5, messages=hi)
    assert busy.value.status_code == 503  # never 529: see docs/api.md
    assert busy.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_a_body_over_the_size_limit_is_request_too_large(fleet: SimulatedFleet) -> None:
    config = with_server(config_for(fleet, strategy="rule"), max_request_bytes=4096)
    async with (
        running_router(config) as router,
        AsyncAnthropic(base_url=router.url, api_key="x", max_retries=0) as sdk,
    ):
        with pytest.raises(anthropic.ContentTooLargeError) as too_large:
            await sdk.messages.create(
                model="fast", max_tokens=5, messages=[{"role": "user", "content": "x" * 8000}]
            )
    assert too_large.value.status_code == 413
    assert too_large.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


async def test_a_wrong_method_and_a_wrong_content_type_are_anthropic_errors(
    router: RouterHandle,
) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        wrong_method = await http.get(router.url + "/v1/messages")
        wrong_type = await http.post(
            router.url + "/v1/messages/count_tokens",
            content=b"model=fast",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert wrong_method.status_code == 405
    assert wrong_method.json()["type"] == "error"
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"]["type"] == "invalid_request_error"
    assert "Content-Type" in wrong_type.json()["error"]["message"]


async def test_bearer_and_x_api_key_headers_are_both_accepted(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    body = {"model": "deep", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=5) as http:
        for headers in ({"x-api-key": "k"}, {"authorization": "Bearer k"}, {}):
            answer = await http.post(router.url + "/v1/messages", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
    for request in fleet.deep[0].chat_requests:
        assert "x-api-key" not in request.headers
        assert "Bearer k" not in request.headers.get("Authorization", "")
