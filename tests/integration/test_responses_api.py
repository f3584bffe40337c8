"""``POST /v1/responses`` over real sockets with the official openai SDK: translated to chat and
back, streamed, tool round trips with and without ``previous_response_id``, structured output,
refusals, native pass-through beside translation in one scope, and failover."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from octoroute.simulator import Drop, HttpError, SimulatedFleet
from tests.harness import RouterHandle, config_for, first_probe_round, running_router
from tests.integration.test_metrics import scrape, value

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def client_for(router: RouterHandle) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0)


async def test_responses_create_answers_through_a_chat_endpoint(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    async with client_for(router) as client:
        raw = await client.responses.with_raw_response.create(
            model="deep", input="What is the capital of France?", instructions="Be brief."
        )
    response = raw.parse()

    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == "deep"
    assert response.instructions == "Be brief."
    assert response.output_text.startswith("[deep · sim-deep] You asked: “What is the capital")
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert raw.headers["x-octoroute-tier"] == "deep"
    assert raw.headers["x-octoroute-endpoint"] == "sim-deep"
    assert raw.headers["x-octoroute-strategy"] == "direct"
    assert raw.headers["x-request-id"]
    (sent,) = fleet.deep[0].chat_requests
    assert sent.json["model"] == "sim-deep"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]


async def test_a_streamed_response_arrives_as_typed_events_in_order(router: RouterHandle) -> None:
    async with client_for(router) as client:
        stream = await client.responses.create(model="balanced", input="Say hello", stream=True)
        events = [event async for event in stream]

    kinds = [event.type for event in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == text
    assert text.startswith("[balanced")
    assert final.usage is not None
    assert final.usage.output_tokens > 0


async def test_the_sdk_stream_helper_consumes_the_events(router: RouterHandle) -> None:
    async with (
        client_for(router) as client,
        client.responses.stream(model="fast", input="Say hello") as stream,
    ):
        deltas = [
            event.delta async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == "".join(deltas)


async def test_a_function_tool_round_trip_continues_from_previous_response_id(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    async with client_for(router) as client:
        first = await client.responses.create(
            model="deep", input="Weather in Paris?", tools=[WEATHER_TOOL]
        )
        (call,) = first.output
        assert call.type == "function_call"
        assert call.name == "get_weather"
        assert json.loads(call.arguments) == {"city": "sim"}
        second = await client.responses.create(
            model="deep",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            tools=[WEATHER_TOOL],
        )

    assert "The tool returned: sunny" in second.output_text
    assert second.previous_response_id == first.id
    sent = fleet.deep[0].chat_requests[-1].json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.call_id
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert sent["tools"][0] == {
        "type": "function",
        "function": {k: v for k, v in WEATHER_TOOL.items() if k != "type"},
    }


async def test_a_function_tool_round_trip_with_the_full_input_and_store_false(
    router: RouterHandle,
) -> None:
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    history: Any
    async with client_for(router) as client:
        first = await client.responses.create(
            model="fast", input=[question], tools=[WEATHER_TOOL], store=False
        )
        call = first.output[0]
        assert call.type == "function_call"
        history = [item.model_dump(exclude_none=True) for item in first.output]
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="fast", previous_response_id=first.id, input="x")
        second = await client.responses.create(
            model="fast",
            input=[
                question,
                *history,
                {"type": "function_call_output", "call_id": call.call_id, "output": "rain"},
            ],
            tools=[WEATHER_TOOL],
        )
    assert caught.value.param == "previous_response_id"
    assert "The tool returned: rain" in second.output_text


async def test_a_streamed_tool_call_arrives_as_function_call_events(router: RouterHandle) -> None:
    async with (
        client_for(router) as client,
        client.responses.stream(model="deep", input="Weather?", tools=[WEATHER_TOOL]) as stream,
    ):
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    (call,) = final.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"city": "sim"}


async def test_text_format_json_schema_becomes_response_format(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    text_format: Any = {"format": {"type": "json_schema", "name": "city", "schema": schema}}
    async with client_for(router) as client:
        response = await client.responses.create(model="deep", input="A city", text=text_format)
    assert json.loads(response.output_text) == {"city": "sim", "population": 1}
    sent = fleet.deep[0].chat_requests[-1].json
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": schema},
    }
    assert response.text is not None
    assert response.text.format is not None
    assert response.text.format.type == "json_schema"


class City(BaseModel):
    name: str
    population: int
    coastal: bool


async def test_responses_parse_fills_a_pydantic_model(router: RouterHandle) -> None:
    async with client_for(router) as client:
        parsed = await client.responses.parse(model="balanced", input="A city", text_format=City)
    assert parsed.output_parsed == City(name="sim", population=1, coastal=True)


async def test_an_unknown_previous_response_id_is_a_400_naming_it(router: RouterHandle) -> None:
    async with client_for(router) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="fast", input="hi", previous_response_id="resp_x")
    assert caught.value.param == "previous_response_id"


@pytest.mark.parametrize(
    ("extra", "param", "fragment"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", '"web_search"'),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "no chat-completions equivalent"),
        ({"background": True}, "background", "background"),
        ({"include": ["file_search_call.results"]}, "include[0]", "file_search_call"),
    ],
)
async def test_what_cannot_be_translated_is_a_400_naming_it(
    router: RouterHandle,
    session: aiohttp.ClientSession,
    extra: dict[str, Any],
    param: str,
    fragment: str,
) -> None:
    body = {"model": "fast", "input": "hi", **extra}
    async with session.post(router.v1 + "/responses", json=body) as response:
        answer = await response.json()
    assert response.status == 400
    assert answer["error"]["param"] == param
    assert fragment in answer["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b'{"model": "fast", "input": []}', "input", "empty array"),
        (b'{"model": "fast", "input": "hi", "previous_response_id": 5}', "previous_response_id", "a string"),
        (b'{"model": "fast", "input": "hi", "metadata": "x"}', "metadata", "an object"),
        (b'{"model": "fast", "input": "hi", "metadata": {"k": 1}}', "metadata.k", "a string"),
        (b'{"model": "fast", "input": "hi", "instructions": "a", "instructions": "b"}', "instructions", "twice"),
        (b'{"model": "fast", "input": "hi", "tool_choice": "auto", "tool_choice": "none"}', "tool_choice", "twice"),
    ],
    ids=["empty input", "id not a string", "metadata a string", "metadata value", "instructions twice", "tool_choice twice"],
)  # fmt: skip
async def test_a_body_the_translation_would_misread_is_a_400_naming_the_field(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    body: bytes,
    param: str,
    fragment: str,
) -> None:
    """Nothing reaches a model: not an empty conversation, not one of two values of a key, not
    a metadata value the response would echo in a shape its SDK type refuses."""
    async with session.post(
        router.v1 + "/responses", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        answer = await response.json()
    assert response.status == 400
    assert answer["error"]["param"] == param
    assert fragment in answer["error"]["message"]
    asked = [r.path for model in fleet.models for r in model.requests if r.path != "/v1/models"]
    assert asked == []


async def test_reasoning_is_dropped_when_translated(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    async with client_for(router) as client:
        response = await client.responses.create(
            model="deep",
            input="hi",
            reasoning={"effort": "high"},
            include=["reasoning.encrypted_content"],
            metadata={"k": "v"},
            max_output_tokens=64,
        )
    assert response.status == "completed"
    assert response.metadata == {"k": "v"}
    sent = fleet.deep[0].chat_requests[-1].json
    assert not {"reasoning", "metadata", "include"} & set(sent)
    assert sent["max_tokens"] == 64


@pytest.fixture
async def mixed(fleet: SimulatedFleet) -> Any:
    """The fast tier with ``sim-fast-a`` native (preferred) beside ``sim-fast-b`` translated."""
    native, translated = fleet.fast
    native.config_keys.update(native=["responses"], priority=2)
    native.behaviour.native_responses = True
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        yield router, native, translated


async def test_a_native_endpoint_gets_the_body_with_only_model_replaced(mixed: Any) -> None:
    router, native, translated = mixed
    async with client_for(router) as client:
        first = await client.responses.create(
            model="sim-fast-a", input="hi", reasoning={"effort": "low"}, extra_body={"vendor_x": 1}
        )
        second = await client.responses.create(
            model="fast", input="again", previous_response_id=first.id
        )

    assert first.output_text.startswith("[fast · sim-fast-a]")
    (sent, continued) = native.responses_requests
    assert sent.json == {
        "model": "sim-fast-a",
        "input": "hi",
        "reasoning": {"effort": "low"},
        "vendor_x": 1,
    }
    # The router keeps the conversation, so a stateless server can continue it.
    assert "previous_response_id" not in continued.json
    assert [item.get("role") for item in continued.json["input"]] == ["user", "assistant", "user"]
    assert second.status == "completed"
    assert translated.requests == [r for r in translated.requests if r.path == "/v1/models"]


async def test_one_scope_fails_over_from_native_to_translated_before_the_first_byte(
    mixed: Any,
) -> None:
    router, native, translated = mixed
    native.behaviour.fault = HttpError(503)
    async with client_for(router) as client:
        raw = await client.responses.with_raw_response.create(model="fast", input="hi", stream=True)
        events = [event async for event in raw.parse()]
    assert raw.headers["x-octoroute-endpoint"] == translated.name
    assert len(native.responses_requests) == 1
    assert len(translated.chat_requests) == 1
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text.startswith("[fast · sim-fast-b]")


async def test_a_native_stream_is_relayed_as_the_server_sent_it(mixed: Any) -> None:
    router, native, _ = mixed
    async with (
        client_for(router) as client,
        client.responses.stream(model="fast", input="hi") as stream,
    ):
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert final.output_text.startswith("[fast · sim-fast-a]")
    assert native.responses_requests[0].json["stream"] is True
    async with client_for(router) as client:
        follow = await client.responses.create(
            model="fast", input="more", previous_response_id=final.id
        )
    assert follow.status == "completed"


async def test_native_responses_count_their_tokens_in_metrics(mixed: Any) -> None:
    router, _, _ = mixed
    async with client_for(router) as client:
        buffered = await client.responses.create(model="fast", input="hi")
        async with client.responses.stream(model="fast", input="more") as stream:
            async for _ in stream:
                pass
            streamed = await stream.get_final_response()
    assert buffered.usage is not None
    assert streamed.usage is not None
    samples = await scrape(router)
    prompt = buffered.usage.input_tokens + streamed.usage.input_tokens
    completion = buffered.usage.output_tokens + streamed.usage.output_tokens
    assert value(samples, "octoroute_tokens_total", tier="fast", kind="prompt") == prompt
    assert value(samples, "octoroute_tokens_total", tier="fast", kind="completion") == completion


async def test_untranslatable_fields_pass_when_every_endpoint_is_native(mixed: Any) -> None:
    router, native, _ = mixed
    async with client_for(router) as client:
        response = await client.responses.create(
            model="sim-fast-a", input="hi", tools=[{"type": "web_search"}]
        )
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model="fast", input="hi", tools=[{"type": "web_search"}])
    assert response.status == "completed"
    assert native.responses_requests[0].json["tools"] == [{"type": "web_search"}]


async def test_a_translated_stream_fails_over_before_the_first_byte(
    fleet: SimulatedFleet,
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = HttpError(500)
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        async with (
            client_for(router) as client,
            client.responses.stream(model="fast", input="hi") as stream,
        ):
            final = await stream.get_final_response()
    assert final.output_text.startswith(f"[fast · {other.name}]")
    assert len(preferred.chat_requests) == 1


async def test_a_stream_broken_after_it_started_ends_with_response_failed(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    fleet.deep[0].behaviour.fault = Drop(after_chunks=3)
    async with client_for(router) as client:
        stream = await client.responses.create(model="deep", input="hi", stream=True)
        events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None


async def test_a_200_that_is_not_a_chat_completion_fails_over_and_counts_against_it(
    fleet: SimulatedFleet,
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = HttpError(200, {"error": "model overloaded, try later"})
    async with running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        async with client_for(router) as client:
            response = await client.responses.create(model="fast", input="hi")
        first = router.runtime.fleet.by_name(preferred.name)[0]

    assert response.output_text.startswith(f"[fast · {other.name}]")
    assert len(preferred.chat_requests) == 1
    assert first.consecutive_failures == 1
    assert "not the JSON expected" in (first.last_error or "")
