"""Real clients pointed at the router with nothing changed but ``base_url``: the official ``openai``
SDK (sync and async, JSON and streaming, tool calls, errors) and LangChain's ``ChatOpenAI``.

The sync SDK blocks, so it runs in a worker thread while the event loop keeps serving the router
and the simulated fleet.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI
from pydantic import SecretStr

from octoroute.simulator import Drop, SimulatedFleet
from tests.harness import RouterHandle

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def sdk(router: RouterHandle) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def sync_sdk(router: RouterHandle) -> Iterator[OpenAI]:
    client = OpenAI(base_url=router.v1, api_key="x", max_retries=0)
    yield client
    client.close()


@pytest.fixture
async def llm(router: RouterHandle) -> AsyncIterator[ChatOpenAI]:
    model = ChatOpenAI(base_url=router.v1, api_key=SecretStr("x"), model="auto", max_retries=0)
    yield model
    # ChatOpenAI builds its own openai clients; close them so no socket outlives the test.
    await model.root_async_client.close()
    model.root_client.close()


def served_by(fleet: SimulatedFleet) -> list[str]:
    return [sim.name for sim in fleet.models for _ in sim.chat_requests]


# -- openai SDK, async ------------------------------------------------------------------------------


async def test_async_sdk_completion_with_auto(sdk: AsyncOpenAI, fleet: SimulatedFleet) -> None:
    fleet.fast[0].behaviour.reply = fleet.fast[1].behaviour.reply = "Hello!"
    raw = await sdk.chat.completions.with_raw_response.create(model="auto", messages=HI)
    completion = raw.parse()

    assert completion.choices[0].message.content == "Hello!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model in ("sim-fast-a", "sim-fast-b")
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    assert raw.headers["x-octoroute-tier"] == "fast"
    assert raw.headers["x-octoroute-strategy"] == "rule"
    assert raw.headers["x-octoroute-endpoint"] == completion.model
    assert served_by(fleet) == [completion.model]


async def test_async_sdk_stream_concatenates_to_the_reply_with_usage(
    sdk: AsyncOpenAI, fleet: SimulatedFleet
) -> None:
    fleet.deep[0].behaviour.reply = "One token after another."
    stream = await sdk.chat.completions.create(
        model="DEEP", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    text, usage, models = "", None, set()
    async for chunk in stream:
        models.add(chunk.model)
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage

    assert text == "One token after another."
    assert models == {"sim-deep"}
    assert usage is not None
    assert usage.completion_tokens == 4


async def test_async_sdk_tool_call_round_trip(sdk: AsyncOpenAI, fleet: SimulatedFleet) -> None:
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What is the weather in Paris?"}
    ]
    first = await sdk.chat.completions.create(
        model="balanced", messages=question, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    [call] = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sim", "days": 1}

    follow_up: list[ChatCompletionMessageParam] = [
        *question,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    second = await sdk.chat.completions.create(
        model="balanced", messages=follow_up, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.tool_calls is None
    assert "The tool returned" in (second.choices[0].message.content or "")

    [_, forwarded] = fleet.balanced[0].chat_requests
    assert forwarded.json["messages"][1]["tool_calls"][0]["id"] == call.id
    assert forwarded.json["messages"][2] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": '{"temp_c": 21}',
    }
    assert forwarded.json["tools"] == [WEATHER_TOOL]


async def test_async_sdk_streamed_tool_call_arrives_as_deltas(sdk: AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="sim-deep", messages=HI, tools=[WEATHER_TOOL], stream=True
    )
    name, arguments, finish = "", "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                if delta.function is not None:
                    name += delta.function.name or ""
                    arguments += delta.function.arguments or ""
            finish = choice.finish_reason or finish

    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "sim", "days": 1}
    assert finish == "tool_calls"


async def test_async_sdk_lists_the_routers_models(sdk: AsyncOpenAI) -> None:
    ids = [model.id async for model in sdk.models.list()]
    assert ids == [
        "auto",
        "fast",
        "balanced",
        "deep",
        "sim-fast-a",
        "sim-fast-b",
        "sim-balanced",
        "sim-deep",
    ]


async def test_async_sdk_raises_its_own_errors_for_ours(sdk: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        await sdk.chat.completions.create(model="gpt-4o", messages=HI)
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.chat.completions.create(model="auto", messages=HI, temperature=3)

    assert not_found.value.status_code == 404
    assert not_found.value.code == "model_not_found"
    assert bad.value.code == "invalid_request"
    assert bad.value.param == "temperature"
    assert not_found.value.response.headers["x-request-id"]


async def test_async_sdk_raises_on_a_mid_stream_error_event(
    sdk: AsyncOpenAI, fleet: SimulatedFleet
) -> None:
    fleet.deep[0].behaviour.fault = Drop(after_chunks=3)
    stream = await sdk.chat.completions.create(model="deep", messages=HI, stream=True)
    received: list[str] = []

    async def consume() -> None:
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as raised:
        await consume()

    assert "".join(received)
    assert "incomplete" in raised.value.message


# -- openai SDK, sync (in a thread) --------------------------------------------------------------


async def test_sync_sdk_completion_and_stream(sync_sdk: OpenAI, fleet: SimulatedFleet) -> None:
    fleet.balanced[0].behaviour.reply = "Synchronous, but not blocking the loop."

    def run() -> tuple[str | None, str, list[str]]:
        completion = sync_sdk.chat.completions.create(model="sim-balanced", messages=HI)
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in sync_sdk.chat.completions.create(
                model="balanced", messages=HI, stream=True
            )
            if chunk.choices
        )
        ids = [model.id for model in sync_sdk.models.list()]
        return completion.choices[0].message.content, text, ids

    content, streamed, ids = await asyncio.to_thread(run)

    assert content == streamed == "Synchronous, but not blocking the loop."
    assert ids[:4] == ["auto", "fast", "balanced", "deep"]
    assert served_by(fleet) == ["sim-balanced", "sim-balanced"]


async def test_sync_sdk_tool_call_and_error(sync_sdk: OpenAI) -> None:
    def run() -> tuple[Any, openai.APIStatusError]:
        completion = sync_sdk.chat.completions.create(
            model="fast",
            messages=HI,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        try:
            sync_sdk.chat.completions.create(model="auto", messages=[])
        except openai.APIStatusError as error:
            return completion, error
        raise AssertionError("an empty conversation was accepted")

    completion, error = await asyncio.to_thread(run)

    [call] = completion.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert error.status_code == 400
    assert error.body is not None
    assert isinstance(error.body, dict)
    assert error.body["param"] == "messages"


# -- LangChain -------------------------------------------------------------------------------------


async def test_langchain_ainvoke_through_auto(llm: ChatOpenAI, fleet: SimulatedFleet) -> None:
    for sim in fleet.models:
        sim.behaviour.reply = f"answered by {sim.name}"
    answer = await llm.ainvoke([HumanMessage("Write a Python function that sorts a list.")])

    assert isinstance(answer, AIMessage)
    assert answer.content == "answered by sim-balanced"
    assert answer.response_metadata["model_name"] == "sim-balanced"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["total_tokens"] > 0


async def test_langchain_astream_through_auto(llm: ChatOpenAI, fleet: SimulatedFleet) -> None:
    fleet.deep[0].behaviour.reply = "Streaming through LangChain works."
    chunks = [
        chunk async for chunk in llm.astream([HumanMessage("Prove that sqrt(2) is irrational.")])
    ]

    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert "".join(str(chunk.content) for chunk in chunks) == "Streaming through LangChain works."
    assert served_by(fleet) == ["sim-deep"]


async def test_langchain_bind_tools_gets_the_tool_call(
    llm: ChatOpenAI, fleet: SimulatedFleet
) -> None:
    with_tools = llm.bind_tools([dict(WEATHER_TOOL)])
    answer = await with_tools.ainvoke([HumanMessage("What is the weather in Paris?")])
    streamed = [chunk async for chunk in with_tools.astream([HumanMessage("Weather in Rome?")])]

    assert isinstance(answer, AIMessage)
    [call] = answer.tool_calls
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "sim", "days": 1}
    chunks = [chunk for chunk in streamed if isinstance(chunk, AIMessageChunk)]
    assert len(chunks) == len(streamed)
    merged = add_ai_message_chunks(chunks[0], *chunks[1:])
    assert [c["name"] for c in merged.tool_calls] == ["get_weather"]
    for _, record in [(s.name, r) for s in fleet.models for r in s.chat_requests]:
        assert record.json["tools"][0]["function"]["name"] == "get_weather"


# -- n choices and parallel tool calls, relayed ---------------------------------------------------

CLOCK_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


async def test_async_sdk_gets_n_choices_through_the_router(sdk: AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(model="fast", messages=HI, n=2)
    async with sdk.chat.completions.stream(model="fast", messages=HI, n=2) as stream:
        streamed = await stream.get_final_completion()

    assert [choice.index for choice in answer.choices] == [0, 1]
    assert answer.choices[0].message.content == answer.choices[1].message.content
    assert [choice.index for choice in streamed.choices] == [0, 1]
    assert all((choice.message.content or "").startswith("[fast") for choice in streamed.choices)


async def test_async_sdk_reassembles_two_parallel_tool_calls_through_the_router(
    sdk: AsyncOpenAI,
) -> None:
    tools = [WEATHER_TOOL, CLOCK_TOOL]
    async with sdk.chat.completions.stream(model="deep", messages=HI, tools=tools) as stream:
        final = await stream.get_final_completion()
    buffered = await sdk.chat.completions.create(model="deep", messages=HI, tools=tools)

    for completion in (final, buffered):
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        calls = choice.message.tool_calls or []
        assert [call.function.name for call in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
        assert [json.loads(call.function.arguments) for call in calls] == [  # type: ignore[union-attr]
            {"city": "sim", "days": 1},
            {},
        ]
